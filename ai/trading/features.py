"""The 64 observation features of the trading PPO agent: 56 market features and 8 account features.

This module owns the observation layout: the table below (names, scaling, defaults), scaling and the
assembly of observations; :mod:`ai.trading.market_features` computes the market features and
:mod:`ai.trading.observation_dict` builds an observation from a dictionary.

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
without a ``timestamp`` or ``time_of_day`` (see :func:`ai.trading.observation_dict.observation_from_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OBS_CLIP = 10.0
"""Scaled features are clipped to ``[-OBS_CLIP, OBS_CLIP]``."""


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


def safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` where ``den`` is not 0, NaN (undefined, so the feature's default) where it is."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)


def account_raw(
    exposure: np.ndarray, equity: np.ndarray, initial_equity: float, open_equity: np.ndarray, peak: np.ndarray,
    holding: np.ndarray, exposure_change: np.ndarray, direction: np.ndarray, max_exposure: float,
) -> np.ndarray:
    """Unscaled account features, ``(n, 8)`` in :data:`ACCOUNT_FEATURES` order."""
    exposure = np.asarray(exposure, dtype=np.float64)
    in_position = exposure != 0
    pnl = np.where(in_position, safe_ratio(np.asarray(equity, np.float64), np.asarray(open_equity, np.float64)) - 1.0, 0.0)
    drawdown = 1.0 - safe_ratio(np.asarray(equity, np.float64), np.asarray(peak, np.float64))
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

