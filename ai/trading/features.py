"""The 64 observation features of the trading PPO agent: 56 market features and 8 account features.

Market features are computed once for a whole candle frame, vectorized and causal (the value at candle ``k``
uses candles ``0..k`` only, so appending candles never changes a past value); account features describe the
agent's own simulated position and are computed at every step. Each feature is stored scaled,
``(raw - center) / scale``, clipped to ``[-10, 10]``; a raw value that is not defined yet (indicator warm-up)
takes the feature's default. The first 19 entries are the original design's features in its order.

| #  | name                   | raw value (at candle k)                                               | center | scale | default |
|----|------------------------|-----------------------------------------------------------------------|--------|-------|---------|
| 1  | price_change_1         | close / previous close - 1                                            | 0      | 0.01  | 0       |
| 2  | price_change_5         | close / close 5 candles back - 1                                      | 0      | 0.02  | 0       |
| 3  | price_change_15        | close / close 15 candles back - 1                                     | 0      | 0.04  | 0       |
| 4  | volatility             | std (ddof 1) of the last 24 log returns, per candle                   | 0      | 0.01  | 0.01    |
| 5  | rsi                    | Wilder RSI(14), 0..100                                                | 50     | 50    | 50      |
| 6  | macd                   | MACD line (EMA12 - EMA26) / close                                     | 0      | 0.01  | 0       |
| 7  | position_size          | absolute exposure, fraction of equity (account)                       | 0      | 1     | 0       |
| 8  | position_side          | -1 short, 0 flat, +1 long (account)                                   | 0      | 1     | 0       |
| 9  | equity_ratio           | equity / initial balance - 1 (account)                                | 0      | 0.1   | 0       |
| 10 | pnl_ratio              | open position's P&L since it opened / equity then (account)           | 0      | 0.01  | 0       |
| 11 | regime_trend           | 1 when the regime (market.regime) is TREND                                | 0      | 1     | 0       |
| 12 | regime_range           | 1 when the regime is RANGE                                            | 0      | 1     | 1       |
| 13 | regime_breakout        | 1 when the regime is BREAKOUT                                         | 0      | 1     | 0       |
| 14 | regime_mean_reversion  | 1 when the regime is MEAN_REVERSION                                   | 0      | 1     | 0       |
| 15 | trend_strength         | signed efficiency ratio over 20 candles, -1..1                        | 0      | 1     | 0       |
| 16 | volume_ratio           | volume / SMA20(volume)                                                | 1      | 1     | 1       |
| 17 | spread                 | (high - low) / close, the candle-range spread proxy                   | 0      | 0.01  | 0.005   |
| 18 | time_of_day_sin        | sin(2 pi x hour-of-day / 24) of the candle's open time (UTC)          | 0      | 1     | now     |
| 19 | time_of_day_cos        | cos(2 pi x hour-of-day / 24)                                          | 0      | 1     | now     |
| 20 | price_change_30        | close / close 30 candles back - 1                                     | 0      | 0.06  | 0       |
| 21 | price_change_60        | close / close 60 candles back - 1                                     | 0      | 0.1   | 0       |
| 22 | price_change_prev_1    | the previous candle's price_change_1                                  | 0      | 0.01  | 0       |
| 23 | price_change_prev_2    | price_change_1 two candles back                                       | 0      | 0.01  | 0       |
| 24 | ewma_volatility        | RiskMetrics EWMA volatility (span 24), per candle                     | 0      | 0.01  | 0.01    |
| 25 | volatility_ratio       | volatility over 12 log returns / volatility over 48                   | 1      | 0.5   | 1       |
| 26 | volatility_percentile  | rank (0..1] of the 24-candle volatility among its last 240 values     | 0.5    | 0.5   | 0.5     |
| 27 | atr_ratio              | Wilder ATR(14) / close                                                | 0      | 0.01  | 0.01    |
| 28 | adx                    | Wilder ADX(14), 0..100                                                | 25     | 25    | 25      |
| 29 | di_spread              | +DI(14) - -DI(14)                                                     | 0      | 25    | 0       |
| 30 | rsi_7                  | Wilder RSI(7)                                                         | 50     | 50    | 50      |
| 31 | rsi_28                 | Wilder RSI(28)                                                        | 50     | 50    | 50      |
| 32 | macd_signal            | MACD signal line (EMA9 of the line) / close                           | 0      | 0.01  | 0       |
| 33 | macd_histogram         | (MACD line - signal) / close                                          | 0      | 0.005 | 0       |
| 34 | bollinger_percent_b    | (close - lower band) / (upper - lower), bands 20 x 2 std              | 0.5    | 0.5   | 0.5     |
| 35 | bollinger_width        | (upper - lower) / middle band                                         | 0      | 0.05  | 0.04    |
| 36 | close_sma20            | close / SMA20(close) - 1                                              | 0      | 0.02  | 0       |
| 37 | close_sma50            | close / SMA50(close) - 1                                              | 0      | 0.04  | 0       |
| 38 | close_sma100           | close / SMA100(close) - 1                                             | 0      | 0.06  | 0       |
| 39 | sma20_sma50            | SMA20 / SMA50 - 1 (moving-average crossover state)                    | 0      | 0.02  | 0       |
| 40 | zscore_20              | (close - SMA20) / std20 (ddof 1)                                      | 0      | 1     | 0       |
| 41 | donchian_20            | (close - lowest low 20) / (highest high 20 - lowest low 20)           | 0.5    | 0.5   | 0.5     |
| 42 | donchian_55            | the same over 55 candles                                              | 0.5    | 0.5   | 0.5     |
| 43 | distance_high_50       | close / highest high of 50 candles - 1 (<= 0)                         | 0      | 0.05  | 0       |
| 44 | distance_low_50        | close / lowest low of 50 candles - 1 (>= 0)                           | 0      | 0.05  | 0       |
| 45 | candle_body            | (close - open) / open                                                 | 0      | 0.01  | 0       |
| 46 | upper_wick             | (high - max(open, close)) / close                                     | 0      | 0.005 | 0       |
| 47 | lower_wick             | (min(open, close) - low) / close                                      | 0      | 0.005 | 0       |
| 48 | volume_zscore_50       | (volume - mean50) / std50 of volume                                   | 0      | 1     | 0       |
| 49 | volume_trend           | SMA5(volume) / SMA20(volume)                                          | 1      | 0.5   | 1       |
| 50 | return_autocorr_30     | lag-1 autocorrelation of log returns over 30 candles                  | 0      | 1     | 0       |
| 51 | rsi_swing_30           | max - min of RSI(14) over 30 candles                                  | 0      | 50    | 0       |
| 52 | bollinger_squeeze      | 1 after a Bollinger-width squeeze (market.regime's breakout arming)       | 0      | 1     | 0       |
| 53 | bollinger_expansion    | Bollinger width / narrowest width of the 10 candles before            | 1      | 1     | 1       |
| 54 | day_of_week_sin        | sin(2 pi x weekday / 7), Monday = 0 (UTC)                             | 0      | 1     | now     |
| 55 | day_of_week_cos        | cos(2 pi x weekday / 7)                                               | 0      | 1     | now     |
| 56 | return_skew_30         | skewness of the last 30 log returns                                   | 0      | 1     | 0       |
| 57 | up_share_14            | share of the last 14 candles that closed higher                       | 0.5    | 0.5   | 0.5     |
| 58 | high_volatility        | 1 when volatility_percentile is above the reward's threshold          | 0      | 1     | 0       |
| 59 | money_flow_20          | sum(sign(return) x volume) / sum(volume) over 20 candles, -1..1       | 0      | 1     | 0       |
| 60 | efficiency_60          | signed efficiency ratio over 60 candles, -1..1                        | 0      | 1     | 0       |
| 61 | drawdown               | 1 - equity / equity peak (account)                                    | 0      | 0.1   | 0       |
| 62 | holding_candles        | candles the open position has been held (account)                     | 0      | 50    | 0       |
| 63 | exposure_change        | last decision's exposure change, fraction of equity (account)         | 0      | 0.1   | 0       |
| 64 | regime_alignment       | regime direction x exposure / max exposure, -1..1 (account)           | 0      | 1     | 0       |

The regime direction (used by ``regime_alignment`` and the reward) is +1/-1 for the side a regime favours:
TREND follows the sign of ``trend_strength``, BREAKOUT the side of the middle Bollinger band the close broke
to, MEAN_REVERSION fades the sign of ``zscore_20`` (expects a return to the mean); RANGE is 0.

Defaults marked ``now`` are taken from the current UTC time when an observation is built from a dictionary
without a ``timestamp`` or ``time_of_day`` (see :func:`observation_from_dict`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.errors import DataError
from market import indicators as ind
from market.regime import (
    BREAKOUT,
    MEAN_REVERSION,
    REGIMES,
    TREND,
    regime_table,
    trend_strength,
    volatility_percentile,
)

OBS_CLIP = 10.0
"""Scaled features are clipped to ``[-OBS_CLIP, OBS_CLIP]``."""
MS_PER_DAY = 86_400_000


@dataclass(frozen=True)
class FeatureSpec:
    """One observation feature: its name, what it is, and how the raw value is scaled."""

    name: str
    description: str
    center: float = 0.0
    scale: float = 1.0
    default: float = 0.0
    account: bool = False


def _f(name: str, description: str, center: float = 0.0, scale: float = 1.0, default: float | None = None,
       account: bool = False) -> FeatureSpec:
    return FeatureSpec(name, description, center, scale, center if default is None else default, account)


FEATURES: tuple[FeatureSpec, ...] = (
    _f("price_change_1", "close / previous close - 1", 0, 0.01),
    _f("price_change_5", "close / close 5 candles back - 1", 0, 0.02),
    _f("price_change_15", "close / close 15 candles back - 1", 0, 0.04),
    _f("volatility", "std of the last 24 log returns", 0, 0.01, 0.01),
    _f("rsi", "Wilder RSI(14)", 50, 50),
    _f("macd", "MACD line / close", 0, 0.01),
    _f("position_size", "absolute exposure, fraction of equity", 0, 1, account=True),
    _f("position_side", "-1 short, 0 flat, +1 long", 0, 1, account=True),
    _f("equity_ratio", "equity / initial balance - 1", 0, 0.1, account=True),
    _f("pnl_ratio", "open position's P&L / equity when it opened", 0, 0.01, account=True),
    _f("regime_trend", "regime is TREND", 0, 1),
    _f("regime_range", "regime is RANGE", 0, 1, 1),
    _f("regime_breakout", "regime is BREAKOUT", 0, 1),
    _f("regime_mean_reversion", "regime is MEAN_REVERSION", 0, 1),
    _f("trend_strength", "signed efficiency ratio over 20 candles", 0, 1),
    _f("volume_ratio", "volume / SMA20(volume)", 1, 1),
    _f("spread", "(high - low) / close", 0, 0.01, 0.005),
    _f("time_of_day_sin", "sin of the hour of day", 0, 1),
    _f("time_of_day_cos", "cos of the hour of day", 0, 1, 1),
    _f("price_change_30", "close / close 30 candles back - 1", 0, 0.06),
    _f("price_change_60", "close / close 60 candles back - 1", 0, 0.1),
    _f("price_change_prev_1", "previous candle's price change", 0, 0.01),
    _f("price_change_prev_2", "price change two candles back", 0, 0.01),
    _f("ewma_volatility", "EWMA volatility (span 24)", 0, 0.01, 0.01),
    _f("volatility_ratio", "volatility 12 / volatility 48", 1, 0.5),
    _f("volatility_percentile", "rank of the 24-candle volatility among 240", 0.5, 0.5),
    _f("atr_ratio", "ATR(14) / close", 0, 0.01, 0.01),
    _f("adx", "ADX(14)", 25, 25),
    _f("di_spread", "+DI - -DI", 0, 25),
    _f("rsi_7", "Wilder RSI(7)", 50, 50),
    _f("rsi_28", "Wilder RSI(28)", 50, 50),
    _f("macd_signal", "MACD signal / close", 0, 0.01),
    _f("macd_histogram", "MACD histogram / close", 0, 0.005),
    _f("bollinger_percent_b", "Bollinger %b (20, 2)", 0.5, 0.5),
    _f("bollinger_width", "Bollinger width / middle", 0, 0.05, 0.04),
    _f("close_sma20", "close / SMA20 - 1", 0, 0.02),
    _f("close_sma50", "close / SMA50 - 1", 0, 0.04),
    _f("close_sma100", "close / SMA100 - 1", 0, 0.06),
    _f("sma20_sma50", "SMA20 / SMA50 - 1", 0, 0.02),
    _f("zscore_20", "z-score of the close over 20", 0, 1),
    _f("donchian_20", "position in the 20-candle high-low channel", 0.5, 0.5),
    _f("donchian_55", "position in the 55-candle high-low channel", 0.5, 0.5),
    _f("distance_high_50", "close / 50-candle high - 1", 0, 0.05),
    _f("distance_low_50", "close / 50-candle low - 1", 0, 0.05),
    _f("candle_body", "(close - open) / open", 0, 0.01),
    _f("upper_wick", "(high - max(open, close)) / close", 0, 0.005),
    _f("lower_wick", "(min(open, close) - low) / close", 0, 0.005),
    _f("volume_zscore_50", "z-score of the volume over 50", 0, 1),
    _f("volume_trend", "SMA5(volume) / SMA20(volume)", 1, 0.5),
    _f("return_autocorr_30", "lag-1 autocorrelation of returns over 30", 0, 1),
    _f("rsi_swing_30", "RSI max - min over 30", 0, 50),
    _f("bollinger_squeeze", "recent Bollinger squeeze", 0, 1),
    _f("bollinger_expansion", "width / narrowest recent width", 1, 1),
    _f("day_of_week_sin", "sin of the weekday", 0, 1),
    _f("day_of_week_cos", "cos of the weekday", 0, 1, 1),
    _f("return_skew_30", "skewness of 30 log returns", 0, 1),
    _f("up_share_14", "share of up candles over 14", 0.5, 0.5),
    _f("high_volatility", "volatility percentile above the threshold", 0, 1),
    _f("money_flow_20", "volume-weighted direction over 20", 0, 1),
    _f("efficiency_60", "signed efficiency ratio over 60 candles", 0, 1),
    _f("drawdown", "1 - equity / equity peak", 0, 0.1, account=True),
    _f("holding_candles", "candles the position has been held", 0, 50, account=True),
    _f("exposure_change", "last exposure change", 0, 0.1, account=True),
    _f("regime_alignment", "regime direction x exposure / max exposure", 0, 1, account=True),
)
"""Every feature in observation order."""

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
N_FEATURES = len(FEATURES)
MARKET_FEATURES: tuple[FeatureSpec, ...] = tuple(f for f in FEATURES if not f.account)
ACCOUNT_FEATURES: tuple[FeatureSpec, ...] = tuple(f for f in FEATURES if f.account)
MARKET_INDEX = np.array([i for i, f in enumerate(FEATURES) if not f.account])
"""Observation positions of the market features, in :data:`MARKET_FEATURES` order."""
ACCOUNT_INDEX = np.array([i for i, f in enumerate(FEATURES) if f.account])
"""Observation positions of the account features, in :data:`ACCOUNT_FEATURES` order."""
TIME_FEATURES = ("time_of_day_sin", "time_of_day_cos", "day_of_week_sin", "day_of_week_cos")

ALIASES: dict[str, str] = {
    "price_change_1m": "price_change_1",
    "price_change_5m": "price_change_5",
    "price_change_15m": "price_change_15",
}
"""Keys of the original observation dictionary that name a feature differently."""


@dataclass(frozen=True)
class MarketFeatures:
    """Market features of a candle frame, computed once: scaled values and what the reward needs."""

    timestamps: np.ndarray
    """Open times (int64 ms), one per candle."""
    closes: np.ndarray
    """Closes (float64)."""
    values: np.ndarray
    """Scaled market features, ``(n, len(MARKET_FEATURES))`` float32."""
    high_volatility: np.ndarray
    """True where volatility_percentile is above the threshold (the reward's position penalty applies)."""
    direction: np.ndarray
    """Regime direction in {-1, 0, +1} (see the module docstring)."""
    regimes: np.ndarray
    """Regime label per candle (object array of :data:`market.regime.REGIMES`)."""
    segment: np.ndarray | None = None
    """Segment number per candle when the features join separate stretches of candles (None: one stretch);
    an episode never crosses from one segment to the next."""

    def __len__(self) -> int:
        return len(self.timestamps)


def concat_features(parts: list[MarketFeatures]) -> MarketFeatures:
    """Features of separate stretches of candles (each computed on its own), joined with segment numbers."""
    if not parts:
        raise DataError("no candle stretches to join")
    return MarketFeatures(
        timestamps=np.concatenate([p.timestamps for p in parts]),
        closes=np.concatenate([p.closes for p in parts]),
        values=np.concatenate([p.values for p in parts]),
        high_volatility=np.concatenate([p.high_volatility for p in parts]),
        direction=np.concatenate([p.direction for p in parts]),
        regimes=np.concatenate([p.regimes for p in parts]),
        segment=np.concatenate([np.full(len(p), i, dtype=np.int64) for i, p in enumerate(parts)]),
    )


def scale_raw(raw: np.ndarray, specs: tuple[FeatureSpec, ...]) -> np.ndarray:
    """``(raw - center) / scale`` per column, undefined values replaced by the default, clipped; float32."""
    values = np.array(raw, dtype=np.float64, copy=True)
    defaults = np.array([s.default for s in specs])
    bad = ~np.isfinite(values)
    if bad.any():
        values = np.where(bad, np.broadcast_to(defaults, values.shape), values)
    centers = np.array([s.center for s in specs])
    scales = np.array([s.scale for s in specs])
    return np.clip((values - centers) / scales, -OBS_CLIP, OBS_CLIP).astype(np.float32)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)


def _change(close: np.ndarray, periods: int) -> np.ndarray:
    return _ratio(close, np.asarray(ind.shift(close, periods))) - 1.0


def _channel_position(close: np.ndarray, high: np.ndarray, low: np.ndarray, period: int) -> np.ndarray:
    upper, lower = (np.asarray(x) for x in ind.donchian_channel(high, low, period))
    width = upper - lower
    position = _ratio(close - lower, width)
    return np.where(width == 0, 0.5, position)  # a flat channel: the close sits in its middle


def time_features(timestamps_ms: np.ndarray) -> dict[str, np.ndarray]:
    """Hour of day and weekday (Monday = 0, UTC) as sine/cosine pairs."""
    ts = np.asarray(timestamps_ms, dtype=np.int64)
    hour_angle = 2 * np.pi * (ts % MS_PER_DAY) / MS_PER_DAY
    weekday = ((ts // MS_PER_DAY) + 3) % 7  # 1970-01-01 was a Thursday
    day_angle = 2 * np.pi * weekday / 7
    return {"time_of_day_sin": np.sin(hour_angle), "time_of_day_cos": np.cos(hour_angle),
            "day_of_week_sin": np.sin(day_angle), "day_of_week_cos": np.cos(day_angle)}


def regime_direction(regimes: np.ndarray, trend: np.ndarray, close: np.ndarray, middle: np.ndarray,
                     zscore: np.ndarray) -> np.ndarray:
    """+1/-1 for the side each candle's regime favours, 0 for RANGE or when undefined."""
    sign_trend = np.sign(np.nan_to_num(trend))
    sign_break = np.sign(np.nan_to_num(close - middle))
    sign_fade = -np.sign(np.nan_to_num(zscore))
    return np.select([regimes == TREND, regimes == BREAKOUT, regimes == MEAN_REVERSION],
                     [sign_trend, sign_break, sign_fade], default=0.0).astype(np.float64)


def raw_market_features(candles: pd.DataFrame, high_volatility_percentile: float = 0.8) -> pd.DataFrame:
    """Unscaled market features, one column per entry of :data:`MARKET_FEATURES` (NaN in warm-ups), plus
    the helper columns ``_direction`` and ``_regime``."""
    ind.check_candle_frame(candles, "trading features input")
    o, h, lo, c, v = (candles[col].to_numpy(np.float64) for col in ("open", "high", "low", "close", "volume"))
    ts = candles["timestamp"].to_numpy(np.int64)
    table = regime_table(candles.reset_index(drop=True))
    regimes = table["regime"].to_numpy(dtype=object)
    log_ret = np.asarray(ind.log_returns(c))
    ret1 = _change(c, 1)
    vol24 = np.asarray(ind.realized_volatility(c, 24))
    line, signal, hist = (np.asarray(x) for x in ind.macd(c))
    bands = ind.bollinger_bands(c, 20, 2.0)
    dm = ind.directional_movement(h, lo, c, 14)
    vol_pct = np.asarray(volatility_percentile(c, 24, 240))
    sma20, sma50, sma100 = (np.asarray(ind.sma(c, p)) for p in (20, 50, 100))
    volume_sma20 = np.asarray(ind.sma(v, 20))
    zscore20 = np.asarray(ind.rolling_zscore(c, 20))
    up = np.where(np.isnan(ret1), np.nan, (ret1 > 0).astype(np.float64))
    flow = np.nan_to_num(np.sign(ret1)) * v
    raw: dict[str, np.ndarray] = {
        "price_change_1": ret1,
        "price_change_5": _change(c, 5),
        "price_change_15": _change(c, 15),
        "volatility": vol24,
        "rsi": np.asarray(ind.rsi(c, 14)),
        "macd": _ratio(line, c),
        **{f"regime_{name.lower()}": (regimes == name).astype(np.float64) for name in REGIMES},
        "trend_strength": table["trend_strength"].to_numpy(np.float64),
        "volume_ratio": _ratio(v, volume_sma20),
        "spread": _ratio(h - lo, c),
        **time_features(ts),
        "price_change_30": _change(c, 30),
        "price_change_60": _change(c, 60),
        "price_change_prev_1": np.asarray(ind.shift(ret1, 1)),
        "price_change_prev_2": np.asarray(ind.shift(ret1, 2)),
        "ewma_volatility": np.asarray(ind.ewma_volatility(c, 24)),
        "volatility_ratio": _ratio(np.asarray(ind.realized_volatility(c, 12)), np.asarray(ind.realized_volatility(c, 48))),
        "volatility_percentile": vol_pct,
        "atr_ratio": _ratio(np.asarray(ind.atr(h, lo, c, 14)), c),
        "adx": np.asarray(dm.adx),
        "di_spread": np.asarray(dm.plus_di) - np.asarray(dm.minus_di),
        "rsi_7": np.asarray(ind.rsi(c, 7)),
        "rsi_28": np.asarray(ind.rsi(c, 28)),
        "macd_signal": _ratio(signal, c),
        "macd_histogram": _ratio(hist, c),
        "bollinger_percent_b": np.asarray(bands.percent_b),
        "bollinger_width": np.asarray(bands.width),
        "close_sma20": _ratio(c, sma20) - 1.0,
        "close_sma50": _ratio(c, sma50) - 1.0,
        "close_sma100": _ratio(c, sma100) - 1.0,
        "sma20_sma50": _ratio(sma20, sma50) - 1.0,
        "zscore_20": zscore20,
        "donchian_20": _channel_position(c, h, lo, 20),
        "donchian_55": _channel_position(c, h, lo, 55),
        "distance_high_50": _ratio(c, np.asarray(ind.donchian_channel(h, lo, 50)[0])) - 1.0,
        "distance_low_50": _ratio(c, np.asarray(ind.donchian_channel(h, lo, 50)[1])) - 1.0,
        "candle_body": _ratio(c - o, o),
        "upper_wick": _ratio(h - np.maximum(o, c), c),
        "lower_wick": _ratio(np.minimum(o, c) - lo, c),
        "volume_zscore_50": np.asarray(ind.rolling_zscore(v, 50)),
        "volume_trend": _ratio(np.asarray(ind.sma(v, 5)), volume_sma20),
        "return_autocorr_30": table["autocorr"].to_numpy(np.float64),
        "rsi_swing_30": table["rsi_swing"].to_numpy(np.float64),
        "bollinger_squeeze": table["squeeze"].to_numpy(np.float64),
        "bollinger_expansion": table["expansion"].to_numpy(np.float64),
        "return_skew_30": pd.Series(log_ret).rolling(30, min_periods=30).skew().to_numpy(),
        "up_share_14": pd.Series(up).rolling(14, min_periods=14).mean().to_numpy(),
        "high_volatility": np.where(np.isnan(vol_pct), np.nan, (vol_pct > high_volatility_percentile) * 1.0),
        "money_flow_20": _ratio(pd.Series(flow).rolling(20, min_periods=20).sum().to_numpy(),
                                pd.Series(v).rolling(20, min_periods=20).sum().to_numpy()),
        "efficiency_60": np.asarray(trend_strength(c, 60)),
    }
    frame = pd.DataFrame({spec.name: raw[spec.name] for spec in MARKET_FEATURES}, index=candles.index)
    frame["_direction"] = regime_direction(regimes, raw["trend_strength"], c, np.asarray(bands.middle), zscore20)
    frame["_regime"] = regimes
    return frame


def compute_market_features(candles: pd.DataFrame, high_volatility_percentile: float = 0.8) -> MarketFeatures:
    """All market features of a candle frame, scaled, in one vectorized pass (see the module docstring)."""
    if len(candles) < 2:
        raise DataError(f"trading features need at least 2 candles, got {len(candles)}")
    raw = raw_market_features(candles, high_volatility_percentile)
    names = [spec.name for spec in MARKET_FEATURES]
    return MarketFeatures(
        timestamps=candles["timestamp"].to_numpy(np.int64),
        closes=candles["close"].to_numpy(np.float64),
        values=scale_raw(raw[names].to_numpy(np.float64), MARKET_FEATURES),
        high_volatility=raw["high_volatility"].fillna(0.0).to_numpy() > 0,
        direction=raw["_direction"].to_numpy(np.float64),
        regimes=raw["_regime"].to_numpy(dtype=object),
    )


def account_raw(
    exposure: np.ndarray, equity: np.ndarray, initial_equity: float, open_equity: np.ndarray, peak: np.ndarray,
    holding: np.ndarray, exposure_change: np.ndarray, direction: np.ndarray, max_exposure: float,
) -> np.ndarray:
    """Unscaled account features, ``(n, 8)`` in :data:`ACCOUNT_FEATURES` order."""
    exposure = np.asarray(exposure, dtype=np.float64)
    in_position = exposure != 0
    pnl = np.where(in_position, _ratio(np.asarray(equity, np.float64), np.asarray(open_equity, np.float64)) - 1.0, 0.0)
    drawdown = 1.0 - _ratio(np.asarray(equity, np.float64), np.asarray(peak, np.float64))
    columns = {
        "position_size": np.abs(exposure),
        "position_side": np.sign(exposure),
        "equity_ratio": np.asarray(equity, np.float64) / initial_equity - 1.0,
        "pnl_ratio": pnl,
        "drawdown": np.nan_to_num(drawdown, nan=0.0),
        "holding_candles": np.asarray(holding, np.float64),
        "exposure_change": np.asarray(exposure_change, np.float64),
        "regime_alignment": np.asarray(direction, np.float64) * exposure / max_exposure,
    }
    return np.stack([columns[spec.name] for spec in ACCOUNT_FEATURES], axis=-1)


def assemble(market: np.ndarray, account: np.ndarray) -> np.ndarray:
    """Observations ``(n, 64)`` from scaled market rows ``(n, 56)`` and raw account rows ``(n, 8)``."""
    obs = np.empty((market.shape[0], N_FEATURES), dtype=np.float32)
    obs[:, MARKET_INDEX] = market
    obs[:, ACCOUNT_INDEX] = scale_raw(account, ACCOUNT_FEATURES)
    return obs


# ------------------------------------------------------------------------------------ observation from a dict


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
