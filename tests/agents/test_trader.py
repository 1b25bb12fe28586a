"""The per-candle trader: rows it writes, sizing by the allocation file, its status, the PPO book."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from agents.paper_trader import check_trader_config
from agents.trader import PaperTrader
from agents.trader_state import fresh_state
from core.atomic import publish_json
from core.config import Config, config_from_dict
from core.contracts.pnl_history import history_path, read_history
from core.contracts.trader_status import status_path
from core.contracts.weights import allocations_path, publish_weights

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trader_fixtures import HOUR, T0, feed, make_trader, trader_cfg, weights_with  # noqa: E402


def test_trader_writes_hand_checked_rows_to_the_history(cfg: Config) -> None:
    cfg = trader_cfg()
    trader = make_trader(cfg)
    publish_weights(allocations_path(cfg), "weights_bridge", weights_with(turtle_trading=0.5),
                    source="rl", fallback_reasons={})
    feed(trader, [100.0, 110.0], [{"turtle_trading": 1.0}, {"turtle_trading": 0.0}])
    history = read_history(history_path(cfg))
    assert history.skipped == 0 and len(history.trades) == 1
    row = history.trades.iloc[0]
    entry, exit_ = 101.0, 108.9
    pct = (exit_ - entry) / entry - 0.001 * (entry + exit_) / entry
    assert row["strategy"] == "turtle_trading" and row["side"] == "long" and row["symbol"] == "BTC/USDT"
    assert row["qty"] == pytest.approx(500 / 101, rel=1e-15)
    assert row["pnl_pct"] == pytest.approx(pct, rel=1e-12)
    assert row["pnl"] == pytest.approx(500 * pct, rel=1e-12)
    assert row["equity_after"] == pytest.approx(1000 + 500 * pct, rel=1e-12)
    assert row["opened_at"] == pd.Timestamp("2024-01-01T01:00:00Z")  # filled at the first candle's close
    assert row["closed_at"] == pd.Timestamp("2024-01-01T02:00:00Z")

def test_allocation_file_sets_and_changes_the_sizing(cfg: Config) -> None:
    cfg = trader_cfg()
    trader = make_trader(cfg)
    path = allocations_path(cfg)
    on, off = {"turtle_trading": 1.0}, {"turtle_trading": 0.0}
    publish_weights(path, "weights_bridge", weights_with(turtle_trading=0.5), source="rl", fallback_reasons={})
    feed(trader, [100.0], [on])
    assert trader.state.portfolio.positions["turtle_trading"].notional == pytest.approx(500.0, rel=1e-15)
    status = trader.status()
    assert status["allocation"]["source"] == "rl"
    assert status["allocation"]["weights"]["turtle_trading"] == pytest.approx(0.5)
    assert status["positions"]["turtle_trading"]["side"] == "long"
    assert status["positions"]["vix_strategy"] is None

    # a new allocation sizes the next trade; the open one keeps its size
    publish_weights(path, "weights_bridge", weights_with(turtle_trading=0.25), source="portfolio_optimizer",
                    fallback_reasons={"rl": "stale"})
    trader.process(T0 + HOUR, 100.0, on)
    assert trader.state.portfolio.positions["turtle_trading"].notional == pytest.approx(500.0, rel=1e-15)
    (row,) = trader.process(T0 + 2 * HOUR, 100.0, off)
    trader.process(T0 + 3 * HOUR, 100.0, on)
    assert trader.state.portfolio.positions["turtle_trading"].notional == pytest.approx(
        0.25 * row["equity_after"], rel=1e-12)
    assert trader.status()["allocation"]["source"] == "portfolio_optimizer"

    # an invalid file falls back to equal weights and says why
    path.write_text('{"weights": {"turtle_trading": -1}}')
    (row,) = trader.process(T0 + 4 * HOUR, 100.0, off)
    trader.process(T0 + 5 * HOUR, 100.0, on)
    allocation = trader.status()["allocation"]
    assert allocation["source"] == "equal" and allocation["file_status"] == "invalid"
    assert "missing from `weights`" in allocation["reason"]
    assert trader.state.portfolio.positions["turtle_trading"].notional == pytest.approx(
        row["equity_after"] / 8, rel=1e-12)
    path.unlink()
    assert trader.allocations.poll()[0].reason.endswith("file not found")

def test_status_between_candles_shows_the_allocation_now_in_force(cfg: Config) -> None:
    cfg = trader_cfg()
    now = [0.0]
    trader = PaperTrader(cfg, "live", fresh_state(cfg, check_trader_config(cfg)), clock=lambda: now[0])
    feed(trader, [100.0], [{}])
    trader.tick(force=True)
    publish_weights(allocations_path(cfg), "weights_bridge", weights_with(turtle_trading=0.5),
                    source="portfolio_optimizer", fallback_reasons={"rl": "stale"})
    now[0] += cfg.trader.status_interval_s  # no new candle, only time passing
    trader.tick()
    status = json.loads(status_path(cfg).read_text())
    assert status["allocation"]["source"] == "portfolio_optimizer"
    assert status["allocation"]["weights"]["turtle_trading"] == pytest.approx(0.5)

@pytest.mark.parametrize(("apply", "published", "expected"), [
    (False, 2.0, 1.0),   # shadow mode (the default): the policy is ignored
    (True, 2.0, 2.0),    # applied
    (True, None, 1.0),   # applied but no policy file: neutral
    (True, 7.5, 1.0),    # applied but out of range: neutral
])
def test_qlearning_sizing_multiplier_scales_new_positions(apply: bool, published: float | None,
                                                         expected: float) -> None:
    cfg = config_from_dict({"costs": {"fee": 0.001, "slippage": 0.01}, "trader": {"initial_equity": 1000.0},
                            "market": {"timeframe": "1h"}, "qlearning": {"apply_sizing": apply}})
    if published is not None:
        publish_json(cfg.runtime_dir / "qlearning_policy.json", "qlearning", {"sizing_multiplier": published})
    trader = make_trader(cfg)
    publish_weights(allocations_path(cfg), "weights_bridge", weights_with(turtle_trading=0.25), source="rl",
                    fallback_reasons={})
    feed(trader, [100.0], [{"turtle_trading": 1.0}])
    assert trader.state.portfolio.positions["turtle_trading"].notional == pytest.approx(250.0 * expected)
    assert trader.status()["sizing_multiplier"] == expected

# ------------------------------------------------------------------------------------ the trading PPO book

def test_ppo_rollout_moves_capital_and_the_risk_guard_trips_it_back() -> None:
    from agents.ppo_book import BOOK
    from core.contracts.rollout import read_rollout, shadow_mode, write_rollout
    from core.contracts.shadow_decisions import decisions_path
    from core.jsonl import append_jsonl

    cfg = trader_cfg()
    trader = make_trader(cfg)
    feed(trader, [100.0], [{}])
    assert BOOK not in trader.state.portfolio.positions  # no rollout: shadow only

    write_rollout(cfg, 5.0, 30.0, True)  # 5 % of 1000 is 50 of notional, capped at 30
    decide = decisions_path(cfg)
    append_jsonl(decide, {"timestamp": T0 + HOUR, "exposure": 1.0, "action_name": "LONG"})
    trader.process(T0 + HOUR, 100.0, {})
    position = trader.state.portfolio.positions[BOOK]
    assert position.direction == 1 and position.notional == pytest.approx(30.0, rel=1e-12)
    assert trader.status()["ppo_rollout"]["capital_percentage"] == 5.0

    # The next decision closes it at a 20 % loss: far beyond the 2 % daily-loss limit of the book's capital.
    append_jsonl(decide, {"timestamp": T0 + 2 * HOUR, "exposure": 0.0, "action_name": "CLOSE"})
    (row,) = trader.process(T0 + 2 * HOUR, 80.0, {})
    entry, exit_ = 101.0, 79.2
    assert row["strategy"] == BOOK
    assert row["pnl_pct"] == pytest.approx((exit_ - entry) / entry - 0.001 * (entry + exit_) / entry, rel=1e-12)
    assert read_history(history_path(cfg)).trades["strategy"].tolist() == [BOOK]
    rollout = read_rollout(cfg)
    assert rollout is not None and rollout.capital_percentage == 0.0 and rollout.stage_index == 0
    assert "daily loss" in rollout.tripped["reason"]
    assert shadow_mode(cfg)

    # Back in Stage 0 a LONG decision moves no capital.
    append_jsonl(decide, {"timestamp": T0 + 3 * HOUR, "exposure": 1.0, "action_name": "LONG"})
    trader.process(T0 + 3 * HOUR, 80.0, {})
    assert BOOK not in trader.state.portfolio.positions


def test_write_errors_leave_trades_pending_and_every_trade_is_written_once_later(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import agents.trader as trader_module
    from agents.trader_state import state_path
    from core import atomic
    from core.daemon import DaemonContext, WriteErrors, read_heartbeat

    cfg = trader_cfg()
    targets = [{"turtle_trading": float(k % 2 == 0)} for k in range(6)]  # a trade closes at k = 1, 3, 5
    closes = [100.0, 110.0, 105.0, 99.0, 101.0, 120.0]
    reference = make_trader(cfg)
    feed(reference, closes, targets)
    expected = read_history(history_path(cfg)).trades
    assert len(expected) == 3
    history_path(cfg).unlink()

    now = [0.0]
    ctx = DaemonContext(name="paper_trader", cfg=cfg, writes=WriteErrors(clock=lambda: now[0]))
    trader = PaperTrader(cfg, "replay", fresh_state(cfg, check_trader_config(cfg)), ctx)
    real_write, real_append = atomic.atomic_write_text, trader_module.append_trades
    read_only = {state_path(cfg).name, status_path(cfg).name}

    def write(path: str | Path, text: str) -> None:
        if Path(path).name in read_only:
            raise PermissionError(13, "Permission denied", str(path))
        real_write(path, text)

    def disk_fills_mid_append(path: Path, rows: list[dict]) -> None:
        real_append(path, rows[:1])  # the first row made it, then the disk was full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic, "atomic_write_text", write)
    for k in range(2):
        trader.process(T0 + k * HOUR, closes[k], targets[k])
        trader.tick(force=True)  # must not raise either
    assert not history_path(cfg).exists() and len(trader.state.pending) == 1  # unsaved state: nothing appended
    beat = read_heartbeat(cfg, "paper_trader")
    assert beat is None or beat["state"] == "degraded"  # the heartbeat folder itself is writable here
    assert "Permission denied" in ctx.writes.reason()

    read_only.clear()
    now[0] += 10.0
    monkeypatch.setattr(trader_module, "append_trades", disk_fills_mid_append)
    for k in range(2, 4):
        trader.process(T0 + k * HOUR, closes[k], targets[k])
    assert len(trader.state.pending) == 2 and "No space left" in ctx.writes.reason()

    monkeypatch.setattr(trader_module, "append_trades", real_append)
    now[0] += 10.0
    for k in range(4, 6):
        trader.process(T0 + k * HOUR, closes[k], targets[k])
    trader.tick(force=True)
    written = read_history(history_path(cfg)).trades
    pd.testing.assert_frame_equal(written.reset_index(drop=True), expected.reset_index(drop=True))
    assert trader.state.pending == [] and not ctx.writes.failing
    assert read_heartbeat(cfg, "paper_trader")["state"] == "running"
