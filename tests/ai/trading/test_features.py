"""Tests of the observation layout: the documented table, the order of FEATURE_NAMES and the assembly of
observations from market and account rows."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import ai.trading.features as tf
from ai.trading.env import TradingEnv
from ai.trading.features import (
    ACCOUNT_FEATURES,
    FEATURE_NAMES,
    FEATURES,
    MARKET_FEATURES,
    N_FEATURES,
    assemble,
    scale_raw,
)


def test_the_documented_table_lists_every_feature_in_order() -> None:
    rows = re.findall(r"^\| (\d+)\s+\| (\w+)\s+\|", tf.__doc__, flags=re.MULTILINE)
    assert [(int(i), name) for i, name in rows] == list(enumerate(FEATURE_NAMES, start=1))
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) == 64
    seed_features = ["price_change_1", "price_change_5", "price_change_15", "volatility", "rsi", "macd",
                     "position_size", "position_side", "equity_ratio", "pnl_ratio", "regime_trend", "regime_range",
                     "regime_breakout", "regime_mean_reversion", "trend_strength", "volume_ratio", "spread",
                     "time_of_day_sin", "time_of_day_cos"]
    assert list(FEATURE_NAMES[:19]) == seed_features


def test_no_feature_is_constant_padding(candles: pd.DataFrame) -> None:
    # Every candle after the warm-up, so each of the market's regimes shows up at least once.
    env = TradingEnv(candles, start_index=60, episode_length=None)
    env.reset(seed=1)
    rows = [env.step(int(a))[0] for a in np.random.default_rng(0).integers(6, size=env.episode_steps)]
    assert np.all(np.ptp(np.array(rows), axis=0) > 0)


def test_the_observation_layout_is_feature_names() -> None:
    assert FEATURE_NAMES == tuple(spec.name for spec in FEATURES) and N_FEATURES == 64
    assert len(MARKET_FEATURES) == 56 and len(ACCOUNT_FEATURES) == 8
    market = np.arange(56, dtype=np.float32)[None, :] / 10.0
    account = np.array([[0.3, -1.0, 0.05, 0.002, 0.01, 25.0, -0.1, 0.5]])
    obs = assemble(market, account)
    assert obs.shape == (1, 64) and obs.dtype == np.float32
    by_name = dict(zip(FEATURE_NAMES, obs[0], strict=True))
    for i, spec in enumerate(MARKET_FEATURES):
        assert by_name[spec.name] == pytest.approx(market[0, i])
    scaled = scale_raw(account, ACCOUNT_FEATURES)[0]
    for i, spec in enumerate(ACCOUNT_FEATURES):
        assert by_name[spec.name] == pytest.approx(scaled[i])
    assert by_name["position_size"] == pytest.approx(0.3) and by_name["holding_candles"] == pytest.approx(0.5)
    assert [FEATURE_NAMES.index(s.name) for s in ACCOUNT_FEATURES] == [6, 7, 8, 9, 60, 61, 62, 63]


def test_scaling_clips_and_replaces_undefined_values_by_defaults() -> None:
    specs = (tf.FeatureSpec("a", "", center=1.0, scale=0.5, default=2.0), tf.FeatureSpec("b", "", scale=0.01))
    out = scale_raw(np.array([[np.nan, 1.0], [1.5, -np.inf]]), specs)
    assert out.tolist() == [[2.0, 10.0], [1.0, 0.0]]
