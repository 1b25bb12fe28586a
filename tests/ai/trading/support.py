"""Helpers shared by the trading environment tests: bit-level comparison of transitions and candle sets."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from ai.trading.market_features import MarketFeatures, compute_market_features
from market.synthetic import generate_market

# Option sets that exercise every branch: wipe-outs (terminated), window ends (truncated), exposures above 1
# (clipped account features), REDUCE closing small positions, every reward term with a non-zero weight.
OPTION_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "short_costly": {"episode_length": 25, "position_size": 0.5, "fee": 0.01, "bankrupt_fraction": 0.9},
    "leveraged": {"episode_length": 60, "position_size": 1.0, "max_exposure": 3.0, "min_exposure": 0.6,
                  "fee": 0.0005, "bankrupt_fraction": 0.97,
                  "reward": {"pnl": 120.0, "drawdown": 40.0, "volatility_penalty": 0.7, "regime": 0.3,
                             "survival": 0.01}},
}


def assert_same(mine: Any, reference: Any, where: str = "") -> None:
    """Equal to the last bit: same types, dtypes, shapes and bytes (so -0.0 differs from 0.0), same keys."""
    assert type(mine) is type(reference), f"{where}: {type(mine).__name__} vs {type(reference).__name__}"
    if isinstance(mine, np.ndarray):
        assert (mine.dtype, mine.shape) == (reference.dtype, reference.shape), where
        if mine.dtype == object:
            for i, (a, b) in enumerate(zip(mine, reference, strict=True)):
                assert_same(a, b, f"{where}[{i}]")
        else:
            assert mine.tobytes() == reference.tobytes(), f"{where}: {mine} vs {reference}"
    elif isinstance(mine, dict):
        assert set(mine) == set(reference), f"{where}: keys {sorted(mine)} vs {sorted(reference)}"
        for key in mine:
            assert_same(mine[key], reference[key], f"{where}.{key}")
    elif isinstance(mine, tuple):
        assert len(mine) == len(reference), where
        for i, (a, b) in enumerate(zip(mine, reference, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(mine, float):
        assert np.float64(mine).tobytes() == np.float64(reference).tobytes(), f"{where}: {mine!r} vs {reference!r}"
    else:
        assert mine == reference, f"{where}: {mine!r} vs {reference!r}"


def real_features() -> MarketFeatures:
    """Market features of real EURUSD hourly candles (6225, 2017), those bundled with gym-anytrading."""
    pytest.importorskip("gym_anytrading", reason="the real candles ship with gym-anytrading (the bench extra)")
    from ai.trading.speed import eurusd_hourly

    return compute_market_features(eurusd_hourly())


def synthetic_features(n: int = 1500, seed: int = 3) -> MarketFeatures:
    """Market features of synthetic hourly candles with a crash at two thirds (a fall that wipes out leverage)."""
    frame = generate_market(["BTC/USDT"], n_candles=n, seed=seed).candles["BTC/USDT"].reset_index(drop=True)
    crash = np.ones(n)
    crash[2 * n // 3:] = 0.55
    for column in ("open", "high", "low", "close"):
        frame[column] = frame[column].to_numpy() * crash
    return compute_market_features(pd.DataFrame(frame))
