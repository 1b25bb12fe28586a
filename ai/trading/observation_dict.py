"""An observation of the trading agent built from a dictionary of raw values (the ``predict --obs`` input)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ai.trading.features import ALIASES, FEATURE_NAMES, FEATURES, TIME_FEATURES, scale_raw
from ai.trading.market_features import time_features
from core.errors import DataError
from market.regime import REGIMES


@dataclass(frozen=True)
class DictObservation:
    """An observation built from a dictionary, with the keys that took defaults and those not understood."""

    vector: np.ndarray
    defaulted: list[str]
    ignored: list[str]


_SIDES = {"long": 1.0, "buy": 1.0, "short": -1.0, "sell": -1.0, "flat": 0.0, "none": 0.0}
_SPECIAL_KEYS = ("regime", "balance", "equity", "timestamp", "time_of_day", "side")


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"observation key `{key}` must be a number, got {type(value).__name__} {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise DataError(f"observation key `{key}` must be finite, got {value!r}")
    return number


def _regime_values(value: Any) -> dict[str, float]:
    label = str(value).strip().upper().replace(" ", "_").replace("-", "_")
    if label not in REGIMES:
        raise DataError(f"observation key `regime` = {value!r} is not one of {', '.join(REGIMES)}")
    return {f"regime_{name.lower()}": float(name == label) for name in REGIMES}


def _side_value(value: Any) -> float:
    if isinstance(value, str):
        key = value.strip().lower()
        if key not in _SIDES:
            raise DataError(f"observation key `position_side` = {value!r}: use long, short or flat (or +1, -1, 0)")
        return _SIDES[key]
    return float(np.sign(_number("position_side", value)))


def _time_values(data: Mapping[str, Any], now_ms: int) -> tuple[dict[str, float], list[str]]:
    """Time features from ``timestamp`` (ms), else ``time_of_day`` (hours) and now; returns the defaulted ones."""
    if "timestamp" in data:
        ts = int(_number("timestamp", data["timestamp"]))
        return {k: float(v[0]) for k, v in time_features(np.array([ts])).items()}, []
    values = {k: float(v[0]) for k, v in time_features(np.array([now_ms])).items()}
    defaulted = ["day_of_week_sin", "day_of_week_cos"]
    if "time_of_day" in data:
        angle = 2 * np.pi * (_number("time_of_day", data["time_of_day"]) % 24.0) / 24.0
        values["time_of_day_sin"], values["time_of_day_cos"] = float(np.sin(angle)), float(np.cos(angle))
    else:
        defaulted += ["time_of_day_sin", "time_of_day_cos"]
    return values, defaulted


def observation_from_dict(data: Mapping[str, Any], now_ms: int | None = None) -> DictObservation:
    """The 64-feature observation of a dictionary of raw values (the original ``predict`` input).

    Keys are feature names in raw units (see the table) or the original aliases ``price_change_1m``,
    ``price_change_5m``, ``price_change_15m``. Special keys: ``regime`` (TREND, RANGE, BREAKOUT or
    MEAN_REVERSION) sets the one-hot; ``equity`` with ``balance`` gives ``equity_ratio = equity / balance - 1``;
    ``position_side`` (or ``side``) accepts long/short/flat or a signed number; ``timestamp`` (ms) or
    ``time_of_day`` (hours, 0..24) set the time features, which otherwise come from ``now_ms`` (default: the
    current time). Every feature left unset takes its default and is listed in ``defaulted``; keys that are not
    understood are listed in ``ignored``. A non-numeric value is a :class:`DataError` naming the key.
    """
    now = int(time.time() * 1000) if now_ms is None else int(now_ms)
    values: dict[str, float] = {}
    ignored: list[str] = []
    for key, value in data.items():
        name = ALIASES.get(key, key)
        if name == "position_side":
            values[name] = _side_value(value)
        elif name in FEATURE_NAMES and name not in TIME_FEATURES:
            values[name] = _number(key, value)
        elif key not in _SPECIAL_KEYS:
            ignored.append(key)
    if "regime" in data:
        values.update(_regime_values(data["regime"]))
    if "side" in data and "position_side" not in values:
        values["position_side"] = _side_value(data["side"])
    if "position_size" in values:
        values["position_size"] = abs(values["position_size"])
    if "equity_ratio" not in values and "equity" in data and "balance" in data:
        balance = _number("balance", data["balance"])
        if balance <= 0:
            raise DataError(f"observation key `balance` must be > 0, got {data['balance']!r}")
        values["equity_ratio"] = _number("equity", data["equity"]) / balance - 1.0
    times, time_defaulted = _time_values(data, now)
    values.update(times)
    defaulted = [spec.name for spec in FEATURES if spec.name not in values or spec.name in time_defaulted]
    raw = np.array([values.get(spec.name, spec.default) for spec in FEATURES], dtype=np.float64)
    return DictObservation(scale_raw(raw[None, :], FEATURES)[0], defaulted, ignored)
