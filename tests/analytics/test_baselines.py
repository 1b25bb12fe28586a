"""Tests of the benchmark's step accounting, trades and baselines against hand-computed values and plain loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.baselines import (
    buy_and_hold_exposures,
    env_exposures,
    equity_from_returns,
    exposure_returns,
    ma_crossover_exposures,
    mean_metrics,
    random_action_chooser,
    step_return,
    strategy_metrics,
    trades_from_exposures,
)


def test_step_returns_match_hand_computed_values() -> None:
    closes = [100.0, 110.0, 99.0, 99.0]
    exposures = [1.0, -0.5, 0.0]
    # r0 = 1 * 10% - 1% fee on 1; r1 = -0.5 * -10% - 1% on 1.5; r2 = 0 - 1% on 0.5
    expected = [0.09, 0.035, -0.005]
    assert exposure_returns(closes, exposures, fee=0.01) == pytest.approx(expected, abs=1e-12)
    assert step_return(0.0, 1.0, 100.0, 110.0, 0.01) == pytest.approx(0.09)


def test_exposure_returns_start_from_the_given_exposure() -> None:
    assert exposure_returns([100.0, 100.0], [1.0], 0.01, initial_exposure=1.0) == pytest.approx([0.0])


def test_exposure_returns_refuse_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="3 exposures need 4 closes"):
        exposure_returns([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], 0.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0.5, 2.0), st.sampled_from([-1.0, -0.5, 0.0, 0.3, 1.0])), min_size=1,
                max_size=30), st.floats(0.0, 0.01))
def test_exposure_returns_equal_a_plain_loop(steps: list[tuple[float, float]], fee: float) -> None:
    closes = [100.0]
    for growth, _ in steps:
        closes.append(closes[-1] * growth)
    exposures = [p for _, p in steps]
    expected, previous = [], 0.0
    for k, p in enumerate(exposures):
        expected.append(p * (closes[k + 1] / closes[k] - 1.0) - fee * abs(p - previous))
        previous = p
    assert exposure_returns(closes, exposures, fee) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_trades_split_exit_and_entry_fees_at_a_flip() -> None:
    trades = trades_from_exposures([100.0, 110.0, 99.0, 99.0], [1.0, -0.5, 0.0], fee=0.01)
    assert [(t.first, t.last, t.side, t.closed) for t in trades] == [(0, 0, 1, True), (1, 1, -1, True)]
    # long: (1 + 0.10 - 0.01) then its exit fee on 1; short: (1 + 0.05 - 0.005) then its exit fee on 0.5
    assert trades[0].ret == pytest.approx(1.09 * 0.99 - 1.0)
    assert trades[1].ret == pytest.approx(1.045 * 0.995 - 1.0)


def test_a_resized_trade_pays_fees_on_its_changes_and_an_open_one_no_exit_fee() -> None:
    closes = [100.0, 102.0, 101.0, 103.0, 103.0]
    trades = trades_from_exposures(closes, [0.1, 0.2, 0.2, 0.1], fee=0.001)
    assert len(trades) == 1 and not trades[0].closed
    growth = (1 + 0.1 * 0.02 - 0.001 * 0.1) * (1 + 0.2 * (101 / 102 - 1) - 0.001 * 0.1) \
        * (1 + 0.2 * (103 / 101 - 1)) * (1 + 0.1 * 0.0 - 0.001 * 0.1)
    assert trades[0].ret == pytest.approx(growth - 1.0)


def test_strategy_metrics_of_a_flat_series_are_undefined_where_they_should_be() -> None:
    metrics = strategy_metrics([1.0, 2.0, 3.0], [0.0, 0.0], fee=0.001, periods_per_year=365)
    assert metrics["total_return"] == 0.0 and metrics["max_drawdown"] == 0.0
    assert metrics["n_trades"] == 0.0
    assert math.isnan(metrics["sharpe_ratio"]) and math.isnan(metrics["win_rate"])
    assert math.isnan(metrics["avg_return"])


def test_strategy_metrics_match_an_independent_computation() -> None:
    rng = np.random.default_rng(3)
    closes = 100 * np.cumprod(1 + rng.normal(0, 0.01, 41))
    exposures = rng.choice([-1.0, 0.0, 0.5, 1.0], size=40)
    fee, ppy = 0.002, 8760.0
    returns = []
    previous = 0.0
    for k in range(40):
        returns.append(exposures[k] * (closes[k + 1] / closes[k] - 1) - fee * abs(exposures[k] - previous))
        previous = exposures[k]
    equity, peak, deepest = 1.0, 1.0, 0.0
    for r in returns:
        equity *= 1 + r
        peak = max(peak, equity)
        deepest = min(deepest, equity / peak - 1)
    mean = sum(returns) / len(returns)
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1))
    metrics = strategy_metrics(closes, exposures, fee, ppy)
    assert metrics["total_return"] == pytest.approx(equity - 1)
    assert metrics["sharpe_ratio"] == pytest.approx(mean / std * math.sqrt(ppy))
    assert metrics["max_drawdown"] == pytest.approx(deepest)
    runs = sum(1 for k in range(40) if exposures[k] != 0 and (k == 0 or np.sign(exposures[k - 1]) != np.sign(exposures[k])))
    assert metrics["n_trades"] == runs


def test_buy_and_hold_is_fully_long() -> None:
    assert buy_and_hold_exposures(3).tolist() == [1.0, 1.0, 1.0]


def test_ma_crossover_uses_history_before_the_window_and_is_flat_until_defined() -> None:
    closes = np.array([10, 11, 12, 13, 12, 11, 10, 10, 11, 12], dtype=float)
    fast, slow = 2, 4
    expected = []
    for k in range(2, 9):
        if k + 1 < slow:
            expected.append(0.0)
            continue
        f = sum(closes[k - fast + 1:k + 1]) / fast
        s = sum(closes[k - slow + 1:k + 1]) / slow
        expected.append(1.0 if f > s else -1.0 if f < s else 0.0)
    assert ma_crossover_exposures(closes, 2, 9, fast, slow).tolist() == expected
    assert ma_crossover_exposures(closes, 2, 9, fast, slow)[0] == 0.0  # slow SMA needs 4 closes


def test_ma_crossover_refuses_bad_periods() -> None:
    with pytest.raises(ValueError, match="fast < slow"):
        ma_crossover_exposures([1.0, 2.0], 0, 1, fast=5, slow=5)


def test_mean_metrics_skip_undefined_runs() -> None:
    runs = [{"total_return": 0.1, "sharpe_ratio": math.nan, "max_drawdown": -0.1, "win_rate": 0.5,
             "avg_return": 0.01, "n_trades": 2.0},
            {"total_return": 0.3, "sharpe_ratio": 2.0, "max_drawdown": -0.3, "win_rate": math.nan,
             "avg_return": math.nan, "n_trades": 0.0}]
    mean = mean_metrics(runs)
    assert mean["total_return"] == pytest.approx(0.2) and mean["sharpe_ratio"] == 2.0
    assert mean["win_rate"] == 0.5 and mean["n_trades"] == 1.0


def test_equity_from_returns_starts_at_the_start_value() -> None:
    assert equity_from_returns([0.1, -0.5], start=2.0).tolist() == pytest.approx([2.0, 2.2, 1.1])


class _ScriptedEnv:
    """An environment reporting given exposures and returns; ends (terminated) after ``stop`` steps."""

    def __init__(self, stop: int) -> None:
        self.stop = stop
        self.k = 0

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict]:
        self.k = 0
        return np.zeros(1), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.k += 1
        return np.zeros(1), 0.0, self.k >= self.stop, False, {"exposure": action / 10, "step_return": action / 100}


def test_env_exposures_pads_an_early_end_with_flat_steps() -> None:
    chooser = random_action_chooser(6, seed=1)
    exposures, returns = env_exposures(_ScriptedEnv(stop=3), chooser, steps=5)
    expected_actions = np.random.default_rng(1).integers(6, size=3)
    assert exposures.tolist() == pytest.approx((expected_actions / 10).tolist() + [0.0, 0.0])
    assert returns.tolist() == pytest.approx((expected_actions / 100).tolist() + [0.0, 0.0])
