"""The 42 features of the strategy-weight agent: names and order, no look-ahead by truncation, and golden
values computed independently of the module (by hand or with plain numpy)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import ai.allocation.features as features_module
from ai.allocation.features import (
    CANDLE_FEATURES,
    FEATURE_NAMES,
    MARKET,
    N_FEATURES,
    PORTFOLIO,
    RECENT,
    REGIME,
    STRATEGY,
    PeriodGrid,
    TradeArrays,
    bucket_trades,
    build_history,
    candle_features,
    clip_features,
    portfolio_features,
    recent_performance,
    sanitize_weights,
    trade_statistics,
    window,
)
from core.config import STRATEGIES, StrategyAgentConfig

H = 3_600_000
DAY_MS = 24 * H
T0 = 1_704_153_600_000  # 2024-01-02T00:00:00Z
ACFG = StrategyAgentConfig(window_periods=5, market_window_candles=24)


def trades_frame(n: int, days: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    closed = pd.Timestamp(T0, unit="ms", tz="UTC") + pd.to_timedelta(np.sort(rng.uniform(0, days * 24, n)), unit="h")
    return pd.DataFrame({"closed_at": closed, "strategy": [STRATEGIES[i] for i in rng.integers(0, 8, n)],
                         "pnl_pct": rng.normal(0.001, 0.01, n)})


def candles_frame(hours: int, seed: int = 0, start_ms: int = T0 - 10 * DAY_MS) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.004, hours)))
    open_ = np.r_[close[0], close[:-1]]
    return pd.DataFrame({"timestamp": start_ms + np.arange(hours, dtype=np.int64) * H, "open": open_,
                         "high": np.maximum(open_, close) * 1.001, "low": np.minimum(open_, close) * 0.999,
                         "close": close, "volume": rng.uniform(1.0, 3.0, hours)})


# ---------------------------------------------------------------------------------------------- names


def test_there_are_42_features_in_blocks_of_8_6_16_4_8() -> None:
    assert N_FEATURES == len(FEATURE_NAMES) == 42 and len(set(FEATURE_NAMES)) == 42
    assert [len(FEATURE_NAMES[block]) for block in (MARKET, PORTFOLIO, STRATEGY, REGIME, RECENT)] == [8, 6, 16, 4, 8]
    assert list(FEATURE_NAMES[RECENT]) == [f"recent_{s}" for s in STRATEGIES]
    assert all(name.startswith("mkt_") for name in FEATURE_NAMES[MARKET])
    assert all(name.startswith("pf_") for name in FEATURE_NAMES[PORTFOLIO])
    assert all(name.startswith("reg_") for name in FEATURE_NAMES[REGIME])
    assert list(FEATURE_NAMES[STRATEGY]) == [f"sharpe_{s}" for s in STRATEGIES] + [f"drawdown_{s}" for s in STRATEGIES]
    assert [FEATURE_NAMES[i] for i in CANDLE_FEATURES] == [
        "mkt_volatility", "mkt_trend", "mkt_momentum", "mkt_volume", "mkt_drawdown", "mkt_sharpe",
        "reg_bull_bear", "reg_volatility", "reg_stability", "reg_trend_strength"]


def test_every_feature_is_documented_in_the_table() -> None:
    doc = features_module.__doc__ or ""
    for name in FEATURE_NAMES:
        if name.startswith(("sharpe_", "drawdown_", "recent_")):
            continue  # documented as sharpe_<strategy> / drawdown_<strategy> / recent_<strategy>
        assert f" {name} " in doc, f"{name} missing from the feature table"
    assert "sharpe_<strategy>" in doc and "drawdown_<strategy>" in doc


def test_features_of_the_last_boundaries_only_are_those_of_the_whole_grid() -> None:
    trades, candles = trades_frame(400, 30, seed=1), candles_frame(45 * 24, seed=2)
    end = T0 + 25 * DAY_MS
    whole = build_history(TradeArrays.from_frame(trades), candles, ACFG, "1h", "crypto", end, max_periods=20)
    last = build_history(TradeArrays.from_frame(trades), candles, ACFG, "1h", "crypto", end, max_periods=20,
                         last_boundaries=6)
    np.testing.assert_array_equal(last.base[-6:], whole.base[-6:])
    assert not last.base[:-6].any() and whole.base[:-6].any()
    np.testing.assert_array_equal(last.returns, whole.returns)


# ---------------------------------------------------------------------------------------------- look-ahead


def test_base_features_do_not_change_when_the_data_is_truncated_at_the_decision_time() -> None:
    trades, candles = trades_frame(400, 30, seed=1), candles_frame(45 * 24, seed=2)
    end = T0 + 20 * DAY_MS
    full = build_history(TradeArrays.from_frame(trades), candles, ACFG, "1h", "crypto", end + 5 * DAY_MS)
    closed = (trades["closed_at"] <= pd.Timestamp(end, unit="ms", tz="UTC")).to_numpy()
    cut = candles[candles["timestamp"] + H <= end]
    truncated = build_history(TradeArrays.from_frame(trades[closed]), cut, ACFG, "1h", "crypto", end)
    # Both grids lie on one lattice of days; the truncated grid's boundaries are the first ones of the full grid.
    n = truncated.n_periods + 1
    np.testing.assert_array_equal(truncated.grid.boundaries, full.grid.boundaries[:n])
    assert np.count_nonzero(truncated.base[-1][list(CANDLE_FEATURES)]) >= 8  # candle features are in play
    np.testing.assert_array_equal(truncated.base, full.base[:n])
    np.testing.assert_array_equal(truncated.returns, full.returns[: n - 1])


# ---------------------------------------------------------------------------------------------- golden values


def test_a_trade_at_a_boundary_belongs_to_the_period_it_ends() -> None:
    grid = PeriodGrid(end_ms=3 * DAY_MS, period_ms=DAY_MS, n=3)  # periods (0, 1d], (1d, 2d], (2d, 3d]
    closed = np.array([1, DAY_MS, DAY_MS + 1, 3 * DAY_MS, 3 * DAY_MS + 1], dtype=np.int64)
    assert grid.period_of(closed).tolist() == [0, 0, 1, 2, 3]
    trades = TradeArrays(closed, np.array([0, 0, 1, 7, 7]), np.array([0.01, -0.02, 0.03, 0.04, 0.5]))
    stats = bucket_trades(trades, grid)
    assert stats.returns[0, 0] == pytest.approx(-0.01) and stats.counts[0, 0] == 2 and stats.wins[0, 0] == 1
    assert stats.returns[1, 1] == pytest.approx(0.03) and stats.returns[2, 7] == pytest.approx(0.04)
    assert stats.counts.sum() == 4  # the trade after the grid's end is left out


def test_window_pads_with_zeros_before_the_grid() -> None:
    values = np.arange(1.0, 5.0).reshape(4, 1)
    assert window(values, 2, 3)[:, 0].tolist() == [0.0, 1.0, 2.0]
    assert window(values, 4, 2)[:, 0].tolist() == [3.0, 4.0]


def test_trade_statistics_hand_computed() -> None:
    counts = np.array([[2.0, 0.0], [1.0, 1.0]])
    wins = np.array([[1.0, 0.0], [1.0, 0.0]])
    returns = np.array([[0.02, 0.0], [0.01, -0.01]])
    acfg = StrategyAgentConfig(pnl_scale=0.01)
    win_rate, avg_pnl = trade_statistics(counts, wins, returns, acfg)
    assert win_rate == pytest.approx(2 * 2 / 4 - 1)  # 2 winners of 4 trades -> 0
    assert avg_pnl == pytest.approx(0.02 / 4 / 0.01)  # mean pnl 0.005 in units of 1 %
    assert trade_statistics(np.zeros((2, 2)), wins, returns, acfg) == (0.0, 0.0)


def test_portfolio_features_hand_computed() -> None:
    acfg = StrategyAgentConfig(pnl_scale=0.01, drawdown_scale=0.1)
    weights = np.array([0.5, 0.25, 0.25, 0, 0, 0, 0, 0])
    traded_last = np.array([True, False, True, False, False, False, False, False])
    out = portfolio_features([0.1, -0.2, 0.05], weights, traded_last, acfg)
    growth = math.log(1.1) + math.log(0.8) + math.log(1.05)
    drawdown = 1.1 * 0.8 * 1.05 / 1.1 - 1.0  # from the peak after the first period
    n_eff = 1.0 / (0.25 + 0.0625 + 0.0625)
    expected = [growth / 0.1, 2 * 0.25 - 1, 3 / 4 - 1, drawdown / 0.1, 0.05 / 0.01, (n_eff - 1) / 3.5 - 1]
    np.testing.assert_allclose(out, np.clip(expected, -5, 5), rtol=1e-12)
    assert out[4] == 5.0  # clipped: a 5 % period is 5 units already


def test_candle_volatility_and_drawdown_hand_computed() -> None:
    candles = candles_frame(200, seed=3)
    acfg = StrategyAgentConfig(market_window_candles=24, drawdown_scale=0.1)
    features = candle_features(candles, "1h", "crypto", acfg)
    close, high = candles["close"].to_numpy(), candles["high"].to_numpy()
    log_returns = np.diff(np.log(close))[-24:]
    volatility = np.std(log_returns, ddof=1) * math.sqrt(24 * 365)
    last = features.values[-1]
    assert last[0] == pytest.approx(2 * math.log(volatility / 0.5), rel=1e-9)
    assert last[4] == pytest.approx(min(close[-1] / high[-24:].max() - 1, 0.0) / 0.1, rel=1e-9)
    # A candle's features are known from its close, and stale ones (older than a period) count as 0.
    close_ms = int(candles["timestamp"].iloc[-1]) + H
    np.testing.assert_array_equal(features.at(close_ms), last)
    np.testing.assert_array_equal(features.at(close_ms - 1), features.values[-2])
    assert not features.at(close_ms + DAY_MS + 1).any()


def test_recent_performance_hand_computed() -> None:
    returns = np.zeros((5, 8))
    returns[:, 0] = [0.01, -0.01, 0.02, 0.0, 0.04]  # std (ddof 1) 0.019235..., last 3 mean 0.02
    returns[:, 1] = 0.01  # constant: undefined, so 0
    out = recent_performance(returns, 3)
    assert out[0] == pytest.approx(0.02 / 0.0192353840616713 * math.sqrt(3))
    assert out[1] == 0.0 and out.shape == (8,)
    assert recent_performance(np.zeros((0, 8)), 3).tolist() == [0.0] * 8
    spike = np.zeros((40, 8))
    spike[-1, 2] = 1.0  # one gain far above the window's variability: t = 1 / 0.158 = 6.3, clipped
    assert recent_performance(spike, 1)[2] == 5.0


def test_clip_features_makes_undefined_neutral_and_bounds_the_rest() -> None:
    assert clip_features(np.array([np.nan, np.inf, -7.0, 0.3])).tolist() == [0.0, 0.0, -5.0, 0.3]


@pytest.mark.parametrize("action, expected", [
    ([2, 0, 0, 0, 0, 0, 0, 2], [0.5, 0, 0, 0, 0, 0, 0, 0.5]),
    ([np.nan, 1, -3, 0, 0, 0, 0, 1], [0, 0.5, 0, 0, 0, 0, 0, 0.5]),
    ([0] * 8, [0.125] * 8),
    ([np.inf] * 8, [0.125] * 8),
    ([-1] * 8, [0.125] * 8),
])
def test_any_action_becomes_weights_on_the_simplex(action: list[float], expected: list[float]) -> None:
    weights = sanitize_weights(np.array(action, dtype=np.float64))
    assert weights == pytest.approx(expected) and math.isclose(weights.sum(), 1.0)
