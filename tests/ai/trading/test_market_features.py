"""Tests of the trading market features: no look-ahead, and golden values computed independently with numpy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ai.trading.features import MARKET_FEATURES
from ai.trading.market_features import compute_market_features, raw_market_features

HOUR = 3_600_000


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    """60 hourly candles with a drift, a wave and varying volume (no randomness)."""
    k = np.arange(60, dtype=np.float64)
    close = 100.0 * (1.0 + 0.002 * k + 0.01 * np.sin(k / 3.0))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * (1.0 + 0.001 * (1.0 + (k % 4)))
    low = np.minimum(open_, close) * (1.0 - 0.001 * (1.0 + (k % 3)))
    volume = 10.0 + (k % 7) * 2.0 + k / 10.0
    timestamps = 1_704_067_200_000 + np.arange(60, dtype=np.int64) * HOUR  # 2024-01-01 00:00 UTC, a Monday
    return pd.DataFrame({"timestamp": timestamps, "open": open_, "high": high, "low": low, "close": close,
                         "volume": volume})


def test_market_features_are_causal(candles: pd.DataFrame) -> None:
    full = compute_market_features(candles)
    for k in (150, 320, 699):
        prefix = compute_market_features(candles.iloc[:k + 1])
        assert np.allclose(prefix.values[k], full.values[k], atol=1e-5)
        assert prefix.direction[k] == full.direction[k] and prefix.high_volatility[k] == full.high_volatility[k]


def test_features_up_to_t_do_not_change_when_the_data_after_t_is_cut_or_changed(candles: pd.DataFrame) -> None:
    full = compute_market_features(candles)
    t = 400
    cut = compute_market_features(candles.iloc[:t + 1])
    assert np.allclose(cut.values, full.values[:t + 1], atol=1e-5)
    assert np.array_equal(cut.direction, full.direction[:t + 1])
    assert np.array_equal(cut.high_volatility, full.high_volatility[:t + 1])
    changed = candles.copy()
    later = changed.index > t
    changed.loc[later, ["open", "high", "low", "close"]] *= 3.0  # a crash-and-spike future
    changed.loc[later, "volume"] *= 10.0
    other = compute_market_features(changed)
    assert np.allclose(other.values[:t + 1], full.values[:t + 1], atol=1e-5)
    assert np.array_equal(other.regimes[:t + 1], full.regimes[:t + 1])


def test_golden_values_match_an_independent_numpy_computation(small: pd.DataFrame) -> None:
    raw = raw_market_features(small)
    c, o, h, lo, v = (small[col].to_numpy() for col in ("close", "open", "high", "low", "volume"))
    for k in (25, 40, 59):
        window = c[k - 19:k + 1]
        assert raw["price_change_1"].iloc[k] == pytest.approx(c[k] / c[k - 1] - 1, rel=1e-12)
        assert raw["price_change_5"].iloc[k] == pytest.approx(c[k] / c[k - 5] - 1, rel=1e-12)
        assert raw["spread"].iloc[k] == pytest.approx((h[k] - lo[k]) / c[k], rel=1e-12)
        assert raw["candle_body"].iloc[k] == pytest.approx((c[k] - o[k]) / o[k], rel=1e-12)
        assert raw["close_sma20"].iloc[k] == pytest.approx(c[k] / window.mean() - 1, rel=1e-9)
        assert raw["zscore_20"].iloc[k] == pytest.approx((c[k] - window.mean()) / window.std(ddof=1), rel=1e-9)
        assert raw["volume_ratio"].iloc[k] == pytest.approx(v[k] / v[k - 19:k + 1].mean(), rel=1e-9)
        upper, lower = h[k - 19:k + 1].max(), lo[k - 19:k + 1].min()
        assert raw["donchian_20"].iloc[k] == pytest.approx((c[k] - lower) / (upper - lower), rel=1e-9)
        hour = (k % 24) * 2 * np.pi / 24
        assert raw["time_of_day_sin"].iloc[k] == pytest.approx(np.sin(hour), abs=1e-12)
        assert raw["day_of_week_cos"].iloc[k] == pytest.approx(np.cos(2 * np.pi * (k // 24) / 7), abs=1e-12)
    assert np.isnan(raw["price_change_5"].iloc[4]) and np.isnan(raw["close_sma20"].iloc[18])  # warm-ups


def test_scaled_values_follow_the_table_and_undefined_values_take_their_default(small: pd.DataFrame) -> None:
    features = compute_market_features(small)
    names = [spec.name for spec in MARKET_FEATURES]
    c = small["close"].to_numpy()
    col = names.index("price_change_1")
    assert features.values[30, col] == pytest.approx((c[30] / c[29] - 1) / 0.01, rel=1e-6)
    col = names.index("close_sma20")
    assert features.values[0:19, col] == pytest.approx(np.zeros(19))  # default 0 at center 0 during the warm-up
    col = names.index("volatility")
    assert features.values[0, col] == pytest.approx((0.01 - 0.0) / 0.01)  # default 0.01, scale 0.01
    assert features.values.dtype == np.float32 and np.all(np.abs(features.values) <= 10.0)
