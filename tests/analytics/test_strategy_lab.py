"""Strategy lab: Sharpe scores, ranks and floored softmax weights on histories with known returns."""

from __future__ import annotations

import json
import math
import statistics
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from analytics import strategy_lab as lab
from core.config import STRATEGIES, Config, replace_section
from core.contracts.pnl_history import append_trades

AS_OF = date(2024, 6, 30)
T, MR, MOM, BO, PAIRS, MACD, BB, VIX = STRATEGIES
# Every strategy shares one zero-mean noise pattern and differs only by its drift, so the Sharpe ratios (and
# the ranks) follow the drifts: VIX best, then PAIRS, ..., MACD worst.
DRIFT = {VIX: 0.004, PAIRS: 0.003, T: 0.002, BO: 0.001, MOM: 0.0005, BB: -0.001, MR: -0.002, MACD: -0.003}
NOISE = [0.011, -0.007, 0.004, -0.013, 0.009, -0.002, 0.006, -0.008]


def trade(day: date, strategy: str, pnl_pct: float) -> dict[str, object]:
    closed = datetime(day.year, day.month, day.day, 15, tzinfo=timezone.utc)
    return {
        "closed_at": closed.isoformat(), "opened_at": (closed - timedelta(hours=5)).isoformat(),
        "symbol": "ETH/USDT", "strategy": strategy, "side": "short", "qty": 2.0, "entry_price": 50.0,
        "exit_price": 50.0 * (1 - pnl_pct), "pnl": 100.0 * pnl_pct, "pnl_pct": pnl_pct, "fees": 0.0,
        "equity_after": 5_000.0,
    }


def known_series(days: int) -> dict[str, list[float]]:
    return {s: [round(DRIFT[s] + NOISE[i % len(NOISE)], 6) for i in range(days)] for s in STRATEGIES}


def write_series(cfg: Config, series: dict[str, list[float]]) -> None:
    rows = []
    for name, values in series.items():
        n = len(values)
        rows += [trade(AS_OF - timedelta(days=n - 1 - i), name, v) for i, v in enumerate(values) if v != 0]
    rows.append(trade(AS_OF, "rl_v3_ppo", 10.0))  # another book: must not change anything
    append_trades(cfg.state_dir / "pnl_history.csv", rows)


def lab_cfg(cfg: Config, **changes: object) -> Config:
    return replace_section(cfg, "strategy_lab", **{"window_days": 24, "temperature": 3.0, "floor": 0.02, **changes})


def read_output(cfg: Config) -> dict:
    return json.loads((cfg.runtime_dir / "strategy_lab_weights.json").read_text())


def expected_weights(scores: dict[str, float], temperature: float, floor: float) -> dict[str, float]:
    exps = {s: math.exp(v / temperature) for s, v in scores.items()}
    return {s: floor + (1 - 8 * floor) * exps.get(s, 0.0) / sum(exps.values()) for s in STRATEGIES}


def test_ranks_scores_and_weights_follow_the_known_returns(cfg: Config) -> None:
    series = known_series(24)
    write_series(cfg, series)
    cfg = lab_cfg(cfg)
    assert lab.run_once(cfg, as_of=AS_OF) == cfg.runtime_dir / "strategy_lab_weights.json"
    doc = read_output(cfg)

    scores = {s: statistics.mean(v) / statistics.stdev(v) * math.sqrt(365) for s, v in series.items()}
    assert doc["scores"] == pytest.approx(scores, rel=1e-9)
    by_drift = sorted(STRATEGIES, key=lambda s: -DRIFT[s])
    assert [s for s, _ in sorted(doc["ranks"].items(), key=lambda kv: kv[1])] == by_drift
    assert doc["ranks"][VIX] == 1 and doc["ranks"][MACD] == 8
    assert doc["weights"] == pytest.approx(expected_weights(scores, 3.0, 0.02), rel=1e-9)
    assert list(doc["weights"]) == list(STRATEGIES)
    weights_by_rank = [doc["weights"][s] for s in by_drift]
    assert weights_by_rank == sorted(weights_by_rank, reverse=True)
    assert min(doc["weights"].values()) >= 0.02
    assert doc["method"] == "softmax_sharpe" and doc["window_days"] == 24 and doc["unscored"] == []
    assert doc["data_range"]["days"] == 24 and doc["trades"][VIX] == 24


def test_the_window_ends_on_the_newest_trade_by_default(cfg: Config) -> None:
    # 40 days of a replayed past: the default window is the last 24 of them, not the 24 days up to today.
    series = known_series(40)
    write_series(cfg, series)
    cfg = lab_cfg(cfg)
    assert lab.run_once(cfg) is not None
    doc = read_output(cfg)
    recent = {s: v[-24:] for s, v in series.items()}
    scores = {s: statistics.mean(v) / statistics.stdev(v) * math.sqrt(365) for s, v in recent.items()}
    assert doc["scores"] == pytest.approx(scores, rel=1e-9)
    assert doc["data_range"]["end"] == AS_OF.isoformat() and doc["data_range"]["days"] == 24


def test_a_lower_temperature_concentrates_on_the_leader(cfg: Config) -> None:
    write_series(cfg, known_series(24))
    hot = lab.compute_weights(lab_cfg(cfg, temperature=10.0), as_of=AS_OF)["weights"]
    cold = lab.compute_weights(lab_cfg(cfg, temperature=1.0), as_of=AS_OF)["weights"]
    assert cold[VIX] > hot[VIX] and cold[MACD] < hot[MACD]
    assert cold[MACD] >= 0.02  # the floor holds however cold


def test_a_strategy_with_too_few_trades_is_unscored_and_keeps_the_floor(cfg: Config) -> None:
    series = known_series(24)
    series[VIX] = [0.05 if i in (2, 11) else 0.0 for i in range(24)]  # 2 trades < min_trades 5
    write_series(cfg, series)
    doc = lab.compute_weights(lab_cfg(cfg), as_of=AS_OF)
    assert doc["scores"][VIX] is None and doc["ranks"][VIX] is None and doc["unscored"] == [VIX]
    assert doc["weights"][VIX] == pytest.approx(0.02)
    assert doc["ranks"][PAIRS] == 1
    scores = {s: statistics.mean(series[s]) / statistics.stdev(series[s]) * math.sqrt(365)
              for s in STRATEGIES if s != VIX}
    assert doc["weights"] == pytest.approx(expected_weights(scores, 3.0, 0.02), rel=1e-9)


def test_rank_ties_keep_the_strategy_order() -> None:
    scores = dict.fromkeys(STRATEGIES, 1.0) | {BB: None}
    ranks = lab.rank_strategies(scores)
    assert [ranks[s] for s in STRATEGIES] == [1, 2, 3, 4, 5, 6, None, 7]


def test_cli_exits_3_without_enough_history_and_2_on_a_bad_floor(cfg: Config, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    write_series(cfg, {s: v[:3] for s, v in known_series(3).items()})
    assert lab.main(["--as-of", AS_OF.isoformat()]) == 3
    assert "strategy_lab.min_days" in capsys.readouterr().err
    assert not (cfg.runtime_dir / "strategy_lab_weights.json").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text("[strategy_lab]\nfloor = 0.2\n")
    assert lab.main(["--config", str(bad)]) == 2
    assert "strategy_lab.floor" in capsys.readouterr().err


def test_cli_writes_with_overrides(cfg: Config, capsys: pytest.CaptureFixture) -> None:
    write_series(cfg, known_series(24))
    assert lab.main(["--window-days", "24", "--temperature", "2", "--as-of", AS_OF.isoformat()]) == 0
    doc = read_output(cfg)
    assert doc["temperature"] == 2.0 and doc["ranks"][VIX] == 1
    assert "1. vix_strategy" in capsys.readouterr().out
