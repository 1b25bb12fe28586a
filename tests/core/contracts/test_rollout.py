"""The rollout file, the shadow switch and the risk guard: round trips, tolerant reads, hand-computed verdicts."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pytest

from core.atomic import read_json
from core.config import Config
from core.contracts.pnl_history import append_trades, history_path
from core.contracts.rollout import (
    BOOK,
    ROLLOUT_NAME,
    RiskGuard,
    Rollout,
    book_risk,
    book_trade_count,
    check_risk_guard,
    read_rollout,
    read_rollout_document,
    rollout_path,
    set_shadow_mode,
    settings_path,
    shadow_mode,
    stage_for,
    trip_rollout,
    validate_rollout,
    write_rollout,
)

NOW = datetime(2024, 3, 5, 12, tzinfo=timezone.utc)


def trade(pnl: float, closed: str) -> dict[str, object]:
    return {"closed_at": closed, "opened_at": "2024-03-01T00:00:00Z", "symbol": "BTC/USDT", "strategy": BOOK,
            "side": "long", "qty": 1.0, "entry_price": 100.0, "exit_price": 100.0 + pnl, "pnl": pnl,
            "pnl_pct": pnl / 100.0, "fees": 0.0, "equity_after": 1000.0 + pnl}


def test_paths_and_book_name(cfg: Config) -> None:
    assert rollout_path(cfg) == cfg.runtime_dir / "rl_v3_rollout.json" and ROLLOUT_NAME == "rl_v3_rollout.json"
    assert settings_path(cfg) == cfg.state_dir / "rl_v3" / "settings.json"
    assert BOOK == "rl_v3_ppo"


@pytest.mark.parametrize(("pct", "index"), [(0.0, 0), (0.5, 1), (1.0, 1), (5.0, 2), (10.0, 3), (10.01, 4), (100, 4)])
def test_stage_for_each_percentage(pct: float, index: int) -> None:
    assert stage_for(pct)[0] == index


def test_stage_for_refuses_negative_or_nan() -> None:
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="capital percentage"):
            stage_for(bad)


def test_write_then_read_round_trips_and_switches_shadow_mode(cfg: Config) -> None:
    assert read_rollout(cfg) is None and shadow_mode(cfg) is True
    doc = write_rollout(cfg, 5.0, 50_000.0, True, note="by hand")
    assert doc["producer"] == "shadow_ppo" and doc["note"] == "by hand" and doc["book_trades_before"] == 0
    rollout = read_rollout(cfg)
    assert rollout == Rollout(5.0, 50_000.0, True, doc["configured_at"], "Stage 2: Confidence Building", 2)
    assert rollout.live and shadow_mode(cfg) is False
    whole, reason = read_rollout_document(cfg)
    assert whole == doc and reason == ""
    write_rollout(cfg, 0.0, 1.0, False)
    assert read_rollout(cfg).live is False and shadow_mode(cfg) is True


def test_write_refuses_impossible_rollouts(cfg: Config) -> None:
    with pytest.raises(ValueError, match="at most 100"):
        write_rollout(cfg, 101.0, 1.0, True)
    with pytest.raises(ValueError, match="max position size"):
        write_rollout(cfg, 1.0, 0.0, True)
    assert not rollout_path(cfg).exists()


@pytest.mark.parametrize(("doc", "reason"), [
    ({"capital_percentage": -1, "max_position_size": 1, "enable_risk_guard": True, "configured_at": "x"},
     "`capital_percentage` must be a number >= 0"),
    ({"capital_percentage": 101, "max_position_size": 1, "enable_risk_guard": True, "configured_at": "x"},
     "at most 100"),
    ({"capital_percentage": 1, "max_position_size": 1, "enable_risk_guard": "yes", "configured_at": "x"},
     "`enable_risk_guard` must be true or false"),
    ({"capital_percentage": 1, "max_position_size": 1, "enable_risk_guard": True}, "`configured_at` is missing"),
    ({"capital_percentage": 1, "max_position_size": 1, "enable_risk_guard": True, "configured_at": "x",
      "book_trades_before": -2}, "`book_trades_before` must be an integer >= 0"),
    ({"schema_version": 9, "capital_percentage": 1, "max_position_size": 1, "enable_risk_guard": True,
      "configured_at": "x"}, "`schema_version` is 9"),
])
def test_invalid_documents_name_their_problem(doc: dict[str, object], reason: str) -> None:
    assert reason in (validate_rollout(doc) or "")


@pytest.mark.parametrize("text", ["{not json", "[]", '{"capital_percentage": 5}'])
def test_garbage_is_no_rollout_with_a_logged_reason(cfg: Config, caplog: pytest.LogCaptureFixture,
                                                    text: str) -> None:
    rollout_path(cfg).parent.mkdir(parents=True)
    rollout_path(cfg).write_text(text)
    with caplog.at_level(logging.WARNING, logger="core.contracts.rollout"):
        assert read_rollout(cfg) is None
    assert "no rollout in force" in caplog.text
    assert read_rollout_document(cfg)[0] is None and read_rollout_document(cfg)[1]


def test_the_shadow_switch_round_trips_and_defaults_to_on(cfg: Config) -> None:
    set_shadow_mode(cfg, False, reason="test")
    assert shadow_mode(cfg) is False
    assert json.loads(settings_path(cfg).read_text())["reason"] == "test"
    settings_path(cfg).write_text("garbage")
    assert shadow_mode(cfg) is True


def test_trip_sends_the_rollout_to_stage_0_and_records_why(cfg: Config) -> None:
    write_rollout(cfg, 10.0, 1000.0, True)
    append_trades(history_path(cfg), [trade(-1.0, "2024-03-05T10:00:00Z")])
    doc = trip_rollout(cfg, "too much loss")
    rollout = read_rollout(cfg)
    assert rollout is not None and rollout.capital_percentage == 0.0 and rollout.stage_index == 0
    assert rollout.tripped == {"reason": "too much loss", "at": doc["tripped"]["at"],
                               "previous_capital_percentage": 10.0, "previous_stage": "Stage 3: Standard Operation"}
    assert rollout.book_trades_before == 1 == book_trade_count(cfg)
    assert rollout.max_position_size == 1000.0 and shadow_mode(cfg) is True


def test_risk_guard_verdicts_by_hand() -> None:
    guard = RiskGuard(max_daily_loss_pct=2.0, max_drawdown_pct=10.0)
    # 9 lost on 500 of capital is 1.8 %: below the limit; 10 is exactly 2 %: reaching the limit trips.
    assert guard.check(-9.0, 500.0, 0.0).trip is False
    verdict = guard.check(-10.0, 500.0, 0.0)
    assert verdict.trip and verdict.daily_loss_pct == pytest.approx(2.0) and "daily loss 2.00%" in verdict.reason
    # a gain is no loss; a drawdown of -0.12 counts as 12 %
    verdict = guard.check(25.0, 500.0, -0.12)
    assert verdict.trip and verdict.daily_loss_pct == 0.0 and verdict.drawdown_pct == pytest.approx(12.0)
    assert verdict.reasons == ["drawdown 12.00% reached the 10% limit"]
    both = guard.check(-50.0, 500.0, 0.2)
    assert len(both.reasons) == 2 and both.reason == "; ".join(both.reasons)
    assert guard.check(-1000.0, 0.0, 0.5).trip is False  # no capital: nothing to judge


def test_book_risk_by_hand() -> None:
    trades = pd.DataFrame({
        "strategy": [BOOK, BOOK, "turtle_trading", BOOK],
        "closed_at": pd.to_datetime(["2024-03-04T10:00Z", "2024-03-05T09:00Z", "2024-03-05T09:30Z",
                                     "2024-03-05T11:00Z"], utc=True),
        "pnl": [20.0, -30.0, -999.0, -5.0],
    })
    # curve from 100: 120, 90, 85; peak 120: drawdown 1 - 85/120; today's book pnl -35
    daily, drawdown = book_risk(trades, 100.0, NOW)
    assert daily == pytest.approx(-35.0) and drawdown == pytest.approx(1 - 85 / 120)
    # skipping the first book trade: curve 70, 65 from 100; drawdown 35 %
    daily, drawdown = book_risk(trades, 100.0, NOW, skip=1)
    assert daily == pytest.approx(-35.0) and drawdown == pytest.approx(0.35)
    assert book_risk(trades.iloc[2:3], 100.0, NOW) == (0.0, 0.0)


def test_check_risk_guard_trips_a_live_rollout_only(cfg: Config) -> None:
    assert check_risk_guard(cfg, 500.0, NOW) is None  # no rollout
    write_rollout(cfg, 5.0, 1000.0, False)
    append_trades(history_path(cfg), [trade(-50.0, "2024-03-05T10:00:00Z")])
    assert check_risk_guard(cfg, 500.0, NOW) is None  # guard disabled in the rollout
    write_rollout(cfg, 5.0, 1000.0, True)  # the earlier loss belongs to the previous rollout
    verdict = check_risk_guard(cfg, 500.0, NOW)
    assert verdict is not None and not verdict.trip
    append_trades(history_path(cfg), [trade(-10.0, "2024-03-05T11:00:00Z")])  # 10 of 500: 2 %
    verdict = check_risk_guard(cfg, 500.0, NOW)
    assert verdict is not None and verdict.trip
    assert read_rollout(cfg).capital_percentage == 0.0


# --------------------------------------------------------------------- moved from the trading CLI tests


@pytest.mark.parametrize(("pct", "stage"), [
    (0, "Stage 0: Shadow Mode (observation only)"), (1, "Stage 1: Initial Testing"), (0.5, "Stage 1: Initial Testing"),
    (5, "Stage 2: Confidence Building"), (10, "Stage 3: Standard Operation"), (25, "Stage 4: Expanded Operation"),
])
def test_stage_names(pct: float, stage: str) -> None:
    assert stage_for(pct)[1] == stage


def test_risk_guard_trips_at_its_limits() -> None:
    guard = RiskGuard(max_daily_loss_pct=2.0, max_drawdown_pct=10.0)
    assert not guard.check(daily_pnl=-19.0, capital=1000.0, drawdown=0.05).trip
    verdict = guard.check(daily_pnl=-20.0, capital=1000.0, drawdown=0.0)
    assert verdict.trip and verdict.daily_loss_pct == pytest.approx(2.0) and "daily loss" in verdict.reason
    assert guard.check(daily_pnl=50.0, capital=1000.0, drawdown=-0.1).trip  # the sign of a drawdown is ignored
    assert not guard.check(daily_pnl=-500.0, capital=0.0, drawdown=0.5).trip  # no capital, nothing at risk


def losing_trade(pnl: float, closed_at: datetime) -> dict[str, Any]:
    return {"closed_at": closed_at.isoformat(), "opened_at": (closed_at - timedelta(hours=2)).isoformat(),
            "symbol": "BTC/USDT", "strategy": BOOK, "side": "long", "qty": 0.01, "entry_price": 40_000.0,
            "exit_price": 40_000.0 + pnl / 0.01, "pnl": pnl, "pnl_pct": pnl / 400.0, "fees": 0.0,
            "equity_after": 10_000.0 + pnl}


def test_a_forced_loss_trips_the_rollout_back_to_stage_0(cfg: Config, caplog: pytest.LogCaptureFixture) -> None:
    write_rollout(cfg, 5.0, 50_000.0, True)
    assert shadow_mode(cfg) is False
    history = cfg.state_dir / "pnl_history.csv"
    now = datetime.now(timezone.utc)
    append_trades(history, [losing_trade(-3.0, now)])
    verdict = check_risk_guard(cfg, capital=500.0, now=now)
    assert verdict is not None and not verdict.trip and read_rollout(cfg).capital_percentage == 5.0
    append_trades(history, [losing_trade(-9.0, now)])  # 12 of 500 today: 2.4 %
    with caplog.at_level(logging.WARNING, logger="core.contracts.rollout"):
        verdict = check_risk_guard(cfg, capital=500.0, now=now)
    assert verdict.trip
    rollout = read_rollout(cfg)
    assert rollout.capital_percentage == 0.0 and rollout.stage_index == 0
    assert "daily loss 2.40%" in rollout.tripped["reason"] and rollout.tripped["previous_capital_percentage"] == 5.0
    assert "risk guard tripped" in caplog.text and shadow_mode(cfg) is True
    assert check_risk_guard(cfg, capital=500.0, now=now) is None  # nothing live to guard any more


def test_a_new_rollout_is_judged_on_its_own_trades_not_those_that_tripped_the_last(cfg: Config) -> None:
    history = cfg.state_dir / "pnl_history.csv"
    now = datetime.now(timezone.utc)
    write_rollout(cfg, 5.0, 50_000.0, True)
    append_trades(history, [losing_trade(-60.0, now - timedelta(hours=3))])  # 12 % of 500: trips
    assert check_risk_guard(cfg, capital=500.0, now=now).trip
    assert read_rollout(cfg).capital_percentage == 0.0
    write_rollout(cfg, 1.0, 50_000.0, True)  # rolled out again after a new benchmark
    assert read_rollout(cfg).book_trades_before == 1
    append_trades(history, [losing_trade(1.0, now)])
    verdict = check_risk_guard(cfg, capital=100.0, now=now)
    assert verdict is not None and not verdict.trip and verdict.daily_loss_pct == 0.0
    assert read_rollout(cfg).capital_percentage == 1.0
    append_trades(history, [losing_trade(-3.0, now)])  # 3 % of 100 today, the rollout's own loss
    assert check_risk_guard(cfg, capital=100.0, now=now).trip


def test_trip_rollout_records_the_reason(cfg: Config) -> None:
    write_rollout(cfg, 10.0, 1000.0, True)
    doc = trip_rollout(cfg, "manual test")
    assert doc["tripped"]["reason"] == "manual test" and doc["stage"].startswith("Stage 0")
    assert read_json(cfg.runtime_dir / "rl_v3_rollout.json").data["tripped"]["previous_stage"] == \
        "Stage 3: Standard Operation"
