"""The weight history: what is recorded as in force, bounding, the trader's clock, and the time-weighted
mean of the recorded step function."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from analytics.performance.tracking import load_weight_history, time_weighted_mean, track_weights
from core.atomic import publish_json
from core.config import STRATEGIES, Config, replace_section
from core.contracts.performance import weight_history_path
from core.contracts.weights import publish_weights
from tests.analytics.performance.support import W_A, W_B


def test_time_weighted_mean_by_hand() -> None:
    times = np.array([5.0, 15.0])
    values = np.array([[1.0, 0.0], [0.0, 1.0]])
    means = time_weighted_mean(times, values, np.array([0.5, 0.5]), np.array([0.0, 10.0, 20.0, 30.0]))
    # [0,10): 5 s of the initial (0.5, 0.5) then 5 s of (1, 0); [10,20): 5 s (1, 0), 5 s (0, 1); [20,30): (0, 1).
    assert means.tolist() == [[0.75, 0.25], [0.5, 0.5], [0.0, 1.0]]


def test_track_records_the_allocations_and_rl_weights_in_force(cfg: Config) -> None:
    publish_weights(cfg.runtime_dir / "allocations_override.json", "weights_bridge", W_A, source="rl",
                    fallback_reasons={}, input_ages_s={"rl": 3.0})
    publish_weights(cfg.runtime_dir / "rl_strategy_weights.json", "rl_inference", W_B, model_version="v7")
    rec = track_weights(cfg)
    assert rec["source"] == "rl" and rec["weights"] == pytest.approx(W_A)
    assert rec["allocations"]["status"] == "ok" and rec["allocations"]["input_ages_s"] == {"rl": 3.0}
    assert rec["rl"]["status"] == "ok" and rec["rl"]["weights"] == pytest.approx(W_B)
    assert rec["rl"]["model_version"] == "v7"
    history = load_weight_history(cfg)
    assert history.size == 1 and history.sources == ["rl"]
    assert history.weights[0] == pytest.approx(list(W_A.values()))


def test_track_without_allocations_records_what_the_trader_uses(cfg: Config) -> None:
    cfg.runtime_dir.mkdir(parents=True)
    (cfg.runtime_dir / "rl_strategy_weights.json").write_text('{"weights": {"turtle_trading": NaN}}')
    rec = track_weights(cfg)
    assert rec["source"] == "equal" and rec["weights"] == {s: 1 / 8 for s in STRATEGIES}
    assert rec["allocations"]["status"] == "absent"
    assert rec["rl"]["status"] == "invalid" and "rl_strategy_weights.json" in rec["rl"]["reason"]


def test_weight_history_stays_bounded(cfg: Config) -> None:
    cfg = replace_section(cfg, "performance", history_max_lines=4)
    for _ in range(9):
        track_weights(cfg)
    lines = weight_history_path(cfg).read_text().splitlines()
    assert 1 <= len(lines) <= 4


def test_records_are_placed_at_the_traders_clock_in_a_replay(cfg: Config) -> None:
    # A replay trades in the market's past: weights tracked now are in force for the candle just processed.
    publish_json(cfg.runtime_dir / "trader_status.json", "paper_trader",
                 {"last_candle": {"timestamp": 1_704_067_200_000, "close": 1.0}})  # 2024-01-01T00:00Z, 1h candles
    publish_weights(cfg.runtime_dir / "allocations_override.json", "weights_bridge",
                    {s: (0.3 if s == STRATEGIES[0] else 0.1) for s in STRATEGIES}, source="rl",
                    fallback_reasons={})
    record = track_weights(cfg)
    assert record["market_at"] == "2024-01-01T01:00:00Z" and record["at"] > "2025"
    history = load_weight_history(cfg)
    assert history.times.tolist() == [datetime(2024, 1, 1, 1, tzinfo=timezone.utc).timestamp()]
    (cfg.runtime_dir / "trader_status.json").unlink()
    assert "market_at" not in track_weights(cfg)  # no trader: the wall clock only
