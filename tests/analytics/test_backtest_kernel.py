"""The fast baseline backtest against straightforward computations: pandas rolling means, a plain loop over
candles for trades and metrics, and the numpy path against the numba kernel."""

from __future__ import annotations

import math
import sys

import numpy as np
import pandas as pd
import pytest

from analytics import backtest_kernel, baselines
from analytics.backtest_speed import random_walk_closes
from analytics.baselines import baseline_backtest, ma_crossover_exposures, moving_average, strategy_metrics


def loop_metrics(closes: np.ndarray, exposures: np.ndarray, fee: float, ppy: float) -> dict[str, float]:
    """The metrics by the book, one candle at a time (the module docstring's definitions)."""
    returns, trades = [], []
    previous, side, growth = 0.0, 0.0, 1.0
    for k, p in enumerate(exposures):
        move = closes[k + 1] / closes[k] - 1.0
        returns.append(p * move - fee * abs(p - previous))
        current = float(np.sign(p))
        if side != 0 and current != side:  # the trade closes, paying the exit fee on its last exposure
            trades.append(growth * (1 - fee * abs(previous)) - 1)
            side = 0.0
        if current != 0:
            if side == 0:
                side, growth, turnover = current, 1.0, abs(p)
            else:
                turnover = abs(p - previous)
            growth *= 1 + p * move - fee * turnover
        previous = p
    if side != 0:
        trades.append(growth - 1)
    equity, peak, deepest = 1.0, 1.0, 0.0
    for r in returns:
        equity *= 1 + r
        peak = max(peak, equity)
        deepest = min(deepest, equity / peak - 1)
    mean = sum(returns) / len(returns)
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1))
    return {"total_return": equity - 1, "sharpe_ratio": mean / std * math.sqrt(ppy), "max_drawdown": deepest,
            "win_rate": sum(t > 0 for t in trades) / len(trades), "avg_return": sum(trades) / len(trades),
            "n_trades": float(len(trades))}


def test_moving_average_equals_pandas_rolling_mean() -> None:
    closes = random_walk_closes(20_000, seed=5) * 1000  # levels far from 0 test the anchoring
    for period in (1, 2, 10, 20, 200):
        expected = pd.Series(closes).rolling(period).mean().to_numpy()
        mine = moving_average(closes, period)
        assert np.array_equal(np.isnan(mine), np.isnan(expected))
        np.testing.assert_allclose(mine[period - 1:], expected[period - 1:], rtol=1e-12)
    flat = np.full(500, 1.2345)
    assert np.all(moving_average(flat, 20)[19:] == 1.2345)  # a flat series has exact means, so no crossover
    assert np.all(ma_crossover_exposures(flat, 0, 499) == 0.0)
    assert np.isnan(moving_average([1.0, 2.0], 3)).all()
    with pytest.raises(ValueError, match="period >= 1"):
        moving_average([1.0], 0)


def test_ma_crossover_equals_the_sign_of_pandas_rolling_means_away_from_ties() -> None:
    closes = random_walk_closes(50_000, seed=8)
    fast = pd.Series(closes).rolling(10).mean().to_numpy()
    slow = pd.Series(closes).rolling(20).mean().to_numpy()
    expected = np.nan_to_num(np.sign(fast - slow), nan=0.0)[100:49_999]
    mine = ma_crossover_exposures(closes, 100, 49_999)
    clear = np.abs(fast - slow)[100:49_999] > 1e-9 * closes[100:49_999]
    assert clear.mean() > 0.99 and np.array_equal(mine[clear], expected[clear])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_strategy_metrics_equal_a_plain_loop_on_random_exposures(seed: int) -> None:
    rng = np.random.default_rng(seed)
    closes = random_walk_closes(3_001, seed=seed)
    exposures = rng.choice([-1.0, -0.5, 0.0, 0.0, 0.3, 1.0], size=3_000)
    expected = loop_metrics(closes, exposures, 0.002, 8760.0)
    for metrics in (strategy_metrics(closes, exposures, 0.002, 8760.0), baselines._metrics(
            exposures, closes[1:] / closes[:-1] - 1.0, 0.002, 8760.0)):
        assert metrics == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_baseline_backtest_equals_the_loop_and_the_kernel_equals_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    closes = random_walk_closes(20_001, seed=4)
    fast_path = baseline_backtest(closes, 0.001, 8760.0)
    crossover = ma_crossover_exposures(closes, 0, 20_000)
    assert fast_path["ma_crossover"] == pytest.approx(loop_metrics(closes, crossover, 0.001, 8760.0), rel=1e-9)
    assert fast_path["buy_and_hold"] == pytest.approx(loop_metrics(closes, np.ones(20_000), 0.001, 8760.0),
                                                      rel=1e-9)
    monkeypatch.setattr(baselines, "_kernel", lambda: None)  # the numpy path, as without numba
    numpy_path = baseline_backtest(closes, 0.001, 8760.0)
    for name, metrics in numpy_path.items():
        for key in ("total_return", "sharpe_ratio", "max_drawdown", "n_trades"):
            assert metrics[key] == fast_path[name][key], (name, key)  # the same floats
        assert metrics == pytest.approx(fast_path[name], rel=1e-12)


def test_the_kernel_is_optional(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (backtest_kernel.load() is None) == (baselines._kernel() is None)
    monkeypatch.setitem(sys.modules, "numba", None)  # an import of numba now fails, as without the fast extra
    assert backtest_kernel.load() is None
    with pytest.raises(ValueError, match="at least 2 closes"):
        baseline_backtest([1.0], 0.001, 8760.0)
