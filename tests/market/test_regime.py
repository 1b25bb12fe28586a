"""Regime labels on hand-built markets, the documented rules re-checked row by row, and no look-ahead."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from market import regime as rg
from market.indicators import realized_volatility


def candles(close: np.ndarray, wick: float = 0.001) -> pd.DataFrame:
    """A candle frame around a close path: open at the previous close, wicks of ``wick`` beyond the body."""
    close = np.asarray(close, dtype=float)
    open_ = np.r_[close[0], close[:-1]]
    return pd.DataFrame({
        "timestamp": np.arange(len(close), dtype=np.int64) * 3_600_000,
        "open": open_,
        "high": np.maximum(open_, close) * (1 + wick),
        "low": np.minimum(open_, close) * (1 - wick),
        "close": close,
        "volume": np.ones(len(close)),
    })


def random_walk(n: int, seed: int, drift: float = 0.0, vol: float = 0.01) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100 * np.exp(np.cumsum(drift + vol * rng.standard_normal(n)))


# ------------------------------------------------------------------------------------------ trend_strength


def test_trend_strength_golden_values():
    # window of 4 changes: +1 -1 +1 +1, net +2 over a path of 4 -> 0.5
    ts = rg.trend_strength(np.array([1.0, 2.0, 1.0, 2.0, 3.0]), 4)
    assert np.isnan(ts[:4]).all() and ts[4] == pytest.approx(0.5)
    assert rg.trend_strength(np.arange(1.0, 31.0), 10)[10:] == pytest.approx(np.ones(20))
    assert rg.trend_strength(np.arange(30.0, 0.0, -1.0), 10)[10:] == pytest.approx(-np.ones(20))
    zigzag = np.tile([10.0, 11.0], 15)
    assert rg.trend_strength(zigzag, 10)[10:] == pytest.approx(np.zeros(20))
    assert rg.trend_strength(np.full(30, 7.0), 10)[10:] == pytest.approx(np.zeros(20))


def test_trend_strength_matches_a_loop():
    close = random_walk(200, seed=3)
    n = 15
    expected = [math.nan] * n + [
        (close[i] - close[i - n]) / sum(abs(close[j] - close[j - 1]) for j in range(i - n + 1, i + 1))
        for i in range(n, len(close))
    ]
    np.testing.assert_allclose(rg.trend_strength(close, n), expected, rtol=1e-9, equal_nan=True)


# --------------------------------------------------------------------------------------- volatility regime


def test_volatility_percentile_matches_a_loop():
    close = random_walk(400, seed=5)
    window, lookback = 10, 50
    vol = realized_volatility(close, window)
    expected = [
        math.nan if i < window + lookback - 1 else float(np.sum(vol[i - lookback + 1 : i + 1] <= vol[i]) / lookback)
        for i in range(len(close))
    ]
    np.testing.assert_allclose(rg.volatility_percentile(close, window, lookback), expected, equal_nan=True)


def test_volatility_regime_low_then_high():
    rng = np.random.default_rng(11)
    shocks = np.r_[0.01 * rng.standard_normal(300), 0.002 * rng.standard_normal(100), 0.05 * rng.standard_normal(60)]
    close = 100 * np.exp(np.cumsum(shocks))
    regime = rg.volatility_regime(close, window=20, lookback=200)
    assert np.isnan(regime[:219]).all()
    assert (regime[380:400] == rg.VOL_LOW).all()  # the quiet stretch is the calmest of the look-back
    assert (regime[430:] == rg.VOL_HIGH).all()  # the wild one the most volatile
    assert set(np.unique(regime[~np.isnan(regime)])) <= {-1.0, 0.0, 1.0}
    with pytest.raises(ValueError, match="low < high"):
        rg.volatility_regime(close, low=0.7, high=0.3)


# --------------------------------------------------------------------------------------------- labels


def test_steady_uptrend_is_trend():
    close = random_walk(300, seed=1, drift=0.004, vol=0.004)
    labels = rg.classify_regime(candles(close))
    assert (labels.iloc[150:] == rg.TREND).mean() > 0.9


def test_warmup_is_range_and_labels_are_known():
    labels = rg.classify_regime(candles(random_walk(500, seed=2)))
    assert (labels.iloc[:27] == rg.RANGE).all()  # the ADX (14) is undefined before index 27
    assert set(labels) <= set(rg.REGIMES)


def test_quiet_market_that_jumps_is_breakout():
    rng = np.random.default_rng(4)
    wild = 100 * np.exp(np.cumsum(0.02 * rng.standard_normal(150)))
    # a small sine wobble never closes outside its own 2-sigma bands (its peak is 1.41 sigma)
    quiet = wild[-1] * (1 + 0.001 * np.sin(np.arange(60) * 2 * np.pi / 10))
    close = np.r_[wild, quiet, quiet[-1] * 1.05]
    table = rg.regime_table(candles(close))
    last = table.iloc[-1]
    assert last["squeeze"] and last["outside_bands"] and last["expansion"] >= 1.5
    assert last["regime"] == rg.BREAKOUT
    assert (table["regime"].iloc[-40:-1] != rg.BREAKOUT).all()
    # the same jump without the squeeze before it (still wild) is not a breakout
    table = rg.regime_table(candles(np.r_[wild, wild[-1] * 1.05]))
    assert table["regime"].iloc[-1] != rg.BREAKOUT


def ar1_close(phi: float, n: int, seed: int) -> np.ndarray:
    """Prices whose log returns follow r[i] = phi * r[i-1] + noise."""
    noise = 0.01 * np.random.default_rng(seed).standard_normal(n)
    r = np.zeros(n)
    for i in range(1, n):
        r[i] = phi * r[i - 1] + noise[i]
    return 100 * np.exp(np.cumsum(r))


def test_returns_that_undo_each_other_are_mean_reversion():
    reverting = rg.regime_table(candles(ar1_close(-0.5, 1000, seed=8))).iloc[100:]
    walk = rg.regime_table(candles(ar1_close(0.0, 1000, seed=8))).iloc[100:]
    assert reverting["autocorr"].median() < -0.35
    shares = reverting["regime"].value_counts(normalize=True)
    assert shares.idxmax() == rg.MEAN_REVERSION and shares[rg.MEAN_REVERSION] > 0.4
    assert (walk["regime"] == rg.MEAN_REVERSION).mean() < 0.2


def test_labels_follow_the_documented_rules_row_by_row():
    rng = np.random.default_rng(9)
    drift = np.repeat(rng.choice([-0.003, 0.0, 0.003], 15), 100)
    vol = np.repeat(rng.choice([0.003, 0.01, 0.02], 15), 100)
    close = 100 * np.exp(np.cumsum(drift + vol * rng.standard_normal(1500)))
    p = rg.RegimeParams()
    table = rg.regime_table(candles(close), p)
    seen = set()
    for row in table.itertuples():
        if row.squeeze and row.outside_bands and row.expansion >= p.expansion_ratio:
            expected = rg.BREAKOUT
        elif row.adx >= p.adx_trend and abs(row.trend_strength) >= p.trend_min:
            expected = rg.TREND
        elif row.adx < p.adx_range and (row.rsi_swing >= p.rsi_swing or row.autocorr <= p.autocorr_max):
            expected = rg.MEAN_REVERSION
        else:
            expected = rg.RANGE
        assert row.regime == expected, row
        seen.add(expected)
    assert seen == set(rg.REGIMES)  # the synthetic market visits every regime


def test_regime_one_hot():
    one_hot = rg.regime_one_hot(["RANGE", "TREND", "MEAN_REVERSION", "BREAKOUT"])
    np.testing.assert_array_equal(one_hot, [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]])
    assert rg.regime_one_hot([]).shape == (0, 4)


def test_no_look_ahead_in_labels_and_helpers():
    close = random_walk(700, seed=12, drift=0.0005, vol=0.012)
    frame = candles(close)
    full = rg.regime_table(frame)
    full_vol = rg.volatility_regime(close, 20, 100)
    full_ts = rg.trend_strength(close, 20)
    for cut in (50, 233, 480, 699):
        part = rg.regime_table(frame.iloc[:cut])
        pd.testing.assert_frame_equal(part, full.iloc[:cut])
        np.testing.assert_array_equal(rg.volatility_regime(close[:cut], 20, 100), full_vol[:cut])
        np.testing.assert_array_equal(rg.trend_strength(close[:cut], 20), full_ts[:cut])


def test_series_index_is_kept():
    frame = candles(random_walk(100, seed=1))
    frame.index = pd.RangeIndex(1000, 1100)
    assert rg.classify_regime(frame).index.equals(frame.index)
    assert rg.trend_strength(frame["close"], 10).index.equals(frame.index)
