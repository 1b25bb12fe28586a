"""Tests of observations built from a dictionary of raw values."""

from __future__ import annotations

import numpy as np
import pytest

from ai.trading.features import FEATURE_NAMES
from ai.trading.observation_dict import observation_from_dict
from core.errors import DataError


def test_observation_from_dict_scales_values_and_lists_defaults() -> None:
    built = observation_from_dict({"price_change_1m": 0.01, "rsi": 75, "regime": "TREND", "balance": 10_000,
                                   "equity": 11_000, "position_side": "short", "timestamp": 0, "foo": 1})
    vector = dict(zip(FEATURE_NAMES, built.vector, strict=True))
    assert vector["price_change_1"] == pytest.approx(1.0) and vector["rsi"] == pytest.approx(0.5)
    assert vector["regime_trend"] == 1.0 and vector["regime_range"] == 0.0
    assert vector["equity_ratio"] == pytest.approx(1.0) and vector["position_side"] == -1.0
    assert vector["time_of_day_cos"] == pytest.approx(1.0) and vector["day_of_week_sin"] == pytest.approx(
        np.sin(2 * np.pi * 3 / 7), abs=1e-6)  # 1970-01-01 was a Thursday
    assert vector["volume_ratio"] == 0.0  # its default 1 is its center
    assert "rsi" not in built.defaulted and "volume_ratio" in built.defaulted and built.ignored == ["foo"]
    with pytest.raises(DataError, match="`rsi` must be a number"):
        observation_from_dict({"rsi": "high"})
