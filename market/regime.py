"""Market regime per candle: TREND, RANGE, BREAKOUT or MEAN_REVERSION, with no look-ahead.

The rules, checked in this order on every candle (the first that holds wins):

1. **BREAKOUT**: a volatility squeeze, then expansion, with the price leaving the bands. The Bollinger width
   ((upper - lower) / middle) ranked against its own last ``squeeze_lookback`` values is at or below
   ``squeeze_quantile`` on at least one of the ``squeeze_memory`` candles *before* this one (the squeeze);
   the width now is at least ``expansion_ratio`` times the narrowest width of those candles (the
   expansion); and this candle closes outside the Bollinger bands. A quiet market that suddenly moves is
   the textbook breakout; a quiet market wobbling at its band edges is not.
2. **TREND**: ``ADX >= adx_trend`` (directional movement is strong) and ``|trend_strength| >= trend_min``
   (the close actually travelled in one direction; see :func:`trend_strength`).
3. **MEAN_REVERSION**: ``ADX < adx_range`` (no directional strength; by default the trend threshold
   itself) and the market oscillates: either the RSI swung over at least ``rsi_swing`` points (max - min)
   in the last ``oscillation_window`` candles (slow swings between oversold and overbought), or the lag-1
   autocorrelation of log returns over that window is at or below ``autocorr_max`` (each move tends to undo
   the previous one; fast swings that the RSI smooths away).
4. **RANGE**: everything else, including the warm-up candles where an indicator is not yet defined.

Every input is a causal indicator from :mod:`market.indicators` or a trailing rolling window, so the label at
candle ``i`` depends on candles ``0..i`` only. :func:`trend_strength` and :func:`volatility_regime` are also
used on their own as features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from market import indicators as ind

TREND = "TREND"
RANGE = "RANGE"
BREAKOUT = "BREAKOUT"
MEAN_REVERSION = "MEAN_REVERSION"
REGIMES: tuple[str, ...] = (TREND, RANGE, BREAKOUT, MEAN_REVERSION)
"""The regime labels, in the order of :func:`regime_one_hot`'s columns."""

VOL_LOW, VOL_NORMAL, VOL_HIGH = -1.0, 0.0, 1.0


@dataclass(frozen=True)
class RegimeParams:
    """Thresholds and windows of the regime rules (see the module docstring)."""

    adx_period: int = 14
    """Period of the ADX (Wilder)."""
    adx_trend: float = 25.0
    """ADX at or above which a market can be trending."""
    adx_range: float = 25.0
    """ADX below which a market has no direction (mean reversion is possible)."""
    trend_period: int = 20
    """Window of :func:`trend_strength`."""
    trend_min: float = 0.3
    """Absolute trend strength needed for TREND (0..1)."""
    bb_period: int = 20
    """Bollinger band period."""
    bb_std: float = 2.0
    """Bollinger band width in standard deviations."""
    squeeze_lookback: int = 120
    """Candles the Bollinger width is ranked against."""
    squeeze_quantile: float = 0.2
    """Rank (0..1) at or below which the width counts as a squeeze."""
    squeeze_memory: int = 10
    """A squeeze on one of this many previous candles arms a breakout."""
    expansion_ratio: float = 1.5
    """Width now over the narrowest width of the squeeze memory needed for a breakout."""
    rsi_period: int = 14
    """RSI period (Wilder)."""
    oscillation_window: int = 30
    """Window of the RSI swing and of the return autocorrelation."""
    rsi_swing: float = 40.0
    """RSI max - min over the window at or above which the market oscillates."""
    autocorr_max: float = -0.2
    """Lag-1 return autocorrelation at or below which moves tend to reverse."""


def trend_strength(close: ind.Values, period: int = 20) -> ind.Values:
    """Signed efficiency ratio in [-1, 1]: net move over the summed absolute moves of the last ``period``.

    ``(close[i] - close[i-period]) / sum(|close[j] - close[j-1]|, j = i-period+1..i)``: +1 is a straight
    climb, -1 a straight fall, near 0 a market that went nowhere. 0 for a flat window; NaN in the warm-up
    (the first ``period`` candles).
    """
    ind.check_period(period)
    arr = ind.as_array(close)
    out = np.full(arr.shape, np.nan)
    if len(arr) > period:
        net = arr[period:] - arr[:-period]
        path = pd.Series(np.abs(np.diff(arr))).rolling(period, min_periods=period).sum().to_numpy()[period - 1 :]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[period:] = np.where(path > 0, net / np.where(path > 0, path, 1.0), 0.0)
    return ind.wrap_like(np.clip(out, -1.0, 1.0), close, f"trend_strength_{period}")


def volatility_percentile(close: ind.Values, window: int = 24, lookback: int = 240) -> ind.Values:
    """Rank (0..1] of the current realized volatility among its last ``lookback`` values (itself included)."""
    ind.check_period(lookback, "lookback")
    vol = ind.as_array(ind.realized_volatility(ind.as_array(close), window))
    ranks = pd.Series(vol).rolling(lookback, min_periods=lookback).rank(pct=True).to_numpy()
    return ind.wrap_like(ranks, close, "volatility_percentile")


def volatility_regime(
    close: ind.Values, window: int = 24, lookback: int = 240, low: float = 1 / 3, high: float = 2 / 3
) -> ind.Values:
    """-1 (low), 0 (normal) or +1 (high) volatility by :func:`volatility_percentile`; NaN in the warm-up.

    Low is a percentile at or below ``low``, high one above ``high``.
    """
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"volatility thresholds must satisfy 0 <= low < high <= 1, got low={low}, high={high}")
    pct = ind.as_array(volatility_percentile(close, window, lookback))
    out = np.where(pct <= low, VOL_LOW, np.where(pct > high, VOL_HIGH, VOL_NORMAL))
    out = np.where(np.isnan(pct), np.nan, out)
    return ind.wrap_like(out, close, "volatility_regime")


def regime_table(frame: pd.DataFrame, params: RegimeParams | None = None) -> pd.DataFrame:
    """The regime label per candle together with the inputs of the rules (index of ``frame``).

    Columns: ``adx, plus_di, minus_di, trend_strength, bb_width, squeeze, expansion, outside_bands,
    rsi_swing, autocorr, regime``.
    """
    p = params or RegimeParams()
    ind.check_candle_frame(frame, "regime input")
    high = frame["high"].to_numpy(np.float64)
    low = frame["low"].to_numpy(np.float64)
    close = frame["close"].to_numpy(np.float64)
    dm = ind.directional_movement(high, low, close, p.adx_period)
    bands = ind.bollinger_bands(close, p.bb_period, p.bb_std)
    width = np.asarray(bands.width)
    table = pd.DataFrame(
        {
            "adx": dm.adx,
            "plus_di": dm.plus_di,
            "minus_di": dm.minus_di,
            "trend_strength": trend_strength(close, p.trend_period),
            "bb_width": width,
            "squeeze": _recent_squeeze(width, p),
            "expansion": _expansion(width, p.squeeze_memory),
            "outside_bands": (close > bands.upper) | (close < bands.lower),
            "rsi_swing": _rolling_range(np.asarray(ind.rsi(close, p.rsi_period)), p.oscillation_window),
            "autocorr": _lag1_autocorr(close, p.oscillation_window),
        },
        index=frame.index,
    )
    table["regime"] = _apply_rules(table, p)
    return table


def classify_regime(frame: pd.DataFrame, params: RegimeParams | None = None) -> pd.Series:
    """The regime label (one of :data:`REGIMES`) of every candle of ``frame``; see the module docstring."""
    return regime_table(frame, params)["regime"]


def regime_one_hot(labels: pd.Series | np.ndarray | list[str]) -> np.ndarray:
    """``(n, 4)`` float array, one column per label of :data:`REGIMES`, in that order."""
    arr = np.asarray(labels, dtype=object)
    columns: list[np.ndarray] = [(arr == name).astype(np.float64) for name in REGIMES]
    return np.stack(columns, axis=1).reshape(len(arr), len(REGIMES))


def _recent_squeeze(width: np.ndarray, p: RegimeParams) -> np.ndarray:
    """True where a squeeze happened on one of the ``squeeze_memory`` candles before this one."""
    ranks = pd.Series(width).rolling(p.squeeze_lookback, min_periods=p.squeeze_lookback).rank(pct=True)
    squeezed = (ranks <= p.squeeze_quantile).astype(np.float64)
    recent = squeezed.shift(1).rolling(p.squeeze_memory, min_periods=1).max()
    armed: np.ndarray = recent.fillna(0.0).to_numpy() > 0
    return armed


def _expansion(width: np.ndarray, memory: int) -> np.ndarray:
    """Width now over the narrowest width of the ``memory`` candles before this one."""
    narrowest = pd.Series(width).shift(1).rolling(memory, min_periods=1).min().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio: np.ndarray = width / narrowest
    return ratio


def _rolling_range(values: np.ndarray, window: int) -> np.ndarray:
    roll = pd.Series(values).rolling(window, min_periods=window)
    spread: np.ndarray = (roll.max() - roll.min()).to_numpy()
    return spread


def _lag1_autocorr(close: np.ndarray, window: int) -> np.ndarray:
    """Rolling correlation of each log return with the one before it, over the last ``window`` pairs."""
    rets = pd.Series(ind.as_array(ind.log_returns(close)))
    with np.errstate(divide="ignore", invalid="ignore"):
        autocorr: np.ndarray = rets.rolling(window, min_periods=window).corr(rets.shift(1)).to_numpy()
    return autocorr


def _apply_rules(t: pd.DataFrame, p: RegimeParams) -> np.ndarray:
    # NaN comparisons are False, so warm-up candles fall through to RANGE.
    breakout = (
        t["squeeze"].to_numpy() & t["outside_bands"].to_numpy() & (t["expansion"].to_numpy() >= p.expansion_ratio)
    )
    adx_values = t["adx"].to_numpy()
    trend = (adx_values >= p.adx_trend) & (np.abs(t["trend_strength"].to_numpy()) >= p.trend_min)
    oscillating = (t["rsi_swing"].to_numpy() >= p.rsi_swing) | (t["autocorr"].to_numpy() <= p.autocorr_max)
    mean_reversion = (adx_values < p.adx_range) & oscillating
    return np.select([breakout, trend, mean_reversion], [BREAKOUT, TREND, MEAN_REVERSION], default=RANGE).astype(
        object
    )
