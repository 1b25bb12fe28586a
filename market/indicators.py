"""Technical indicators as vectorized, causal functions.

Every function takes price series as a ``pandas.Series`` or a 1-D numpy array and returns values of the same
length: a ``Series`` on the input's index when the (first) input is a ``Series``, else a float64 array.

No look-ahead: the value at position ``i`` depends on inputs ``0..i`` only, so appending future candles never
changes a past value. Positions without enough history (the warm-up) are NaN. Leading NaNs of an input are
skipped before the warm-up starts, so indicators can be chained (an EMA of a MACD line, say). Inputs are
expected to be gap-free after that; candle files are validated upstream.

Conventions, written down because the textbooks differ:

* ``ema``: smoothing ``alpha = 2 / (period + 1)``, seeded with the simple mean of the first ``period`` values
  (TA-Lib's convention), first value at index ``period - 1``.
* Wilder smoothing (``rsi``, ``atr``, ``adx``): ``alpha = 1 / period``, seeded with the simple mean of the
  first ``period`` values.
* ``true_range`` at index 0 is NaN (no previous close), so ``atr`` starts at index ``period``.
* ``rsi`` starts at index ``period`` (it needs ``period`` price changes); it is 100 when there were no losses
  and 50 when prices did not move at all.
* ``bollinger_bands`` use the population standard deviation (ddof=0), as Bollinger defined them.
* ``realized_volatility`` is the sample standard deviation (ddof=1) of log returns; ``ewma_volatility`` the
  square root of an EMA of squared log returns (zero mean assumed, as RiskMetrics does).
"""

from __future__ import annotations

from typing import NamedTuple, TypeVar

import numpy as np
import pandas as pd

from core.errors import DataError
from market.frames import COLUMNS

Values = TypeVar("Values", pd.Series, np.ndarray)

CANDLE_COLUMNS: tuple[str, ...] = COLUMNS
"""Columns of a candle frame (timestamp in int64 milliseconds UTC, ascending): the candle module's own."""


class MACD(NamedTuple):
    """MACD line (fast EMA minus slow EMA), its signal line (EMA of the line) and the histogram (line - signal)."""

    line: pd.Series | np.ndarray
    signal: pd.Series | np.ndarray
    histogram: pd.Series | np.ndarray


class BollingerBands(NamedTuple):
    """Middle band (SMA), upper/lower bands (middle +- k std), ``width`` = (upper - lower) / middle and
    ``percent_b`` = (close - lower) / (upper - lower) (NaN when the bands have zero width)."""

    middle: pd.Series | np.ndarray
    upper: pd.Series | np.ndarray
    lower: pd.Series | np.ndarray
    width: pd.Series | np.ndarray
    percent_b: pd.Series | np.ndarray


class DirectionalMovement(NamedTuple):
    """Wilder's +DI and -DI (0..100) and the ADX (0..100) built on them."""

    plus_di: pd.Series | np.ndarray
    minus_di: pd.Series | np.ndarray
    adx: pd.Series | np.ndarray


def check_candle_frame(frame: pd.DataFrame, name: str) -> None:
    """Raise :class:`DataError` naming ``name`` when ``frame`` lacks a candle column or is out of order."""
    missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{name}: candle column(s) {', '.join(missing)} missing; expected columns: {', '.join(CANDLE_COLUMNS)}"
        )
    ts = frame["timestamp"].to_numpy()
    if len(ts) > 1 and not bool(np.all(np.diff(ts) > 0)):
        raise DataError(f"{name}: timestamps must be strictly ascending and unique; sort and de-duplicate the candles")


# ------------------------------------------------------------------------------------- helpers shared by ai/


def as_array(values: pd.Series | np.ndarray) -> np.ndarray:
    """The values as a 1-D float64 numpy array (ValueError for any other shape)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D series, got an array of shape {arr.shape}")
    return arr


def wrap_like(result: np.ndarray, template: pd.Series | np.ndarray, name: str) -> pd.Series | np.ndarray:
    """Return ``result`` as a Series on the template's index when the template is a Series."""
    if isinstance(template, pd.Series):
        return pd.Series(result, index=template.index, name=name)
    return result


def check_period(period: int, name: str = "period") -> None:
    """ValueError naming ``name`` unless ``period`` is a positive integer."""
    if isinstance(period, bool) or not isinstance(period, (int, np.integer)) or period < 1:
        raise ValueError(f"{name} must be a positive integer, got {period!r}")


def _first_valid(arr: np.ndarray) -> int:
    """Index of the first non-NaN value, or ``len(arr)`` when there is none."""
    valid = ~np.isnan(arr)
    return int(np.argmax(valid)) if valid.any() else len(arr)


def _seeded_smoothing(arr: np.ndarray, period: int, alpha: float) -> np.ndarray:
    """Exponential smoothing seeded with the mean of the first ``period`` valid values.

    ``out[s] = mean(arr[f:s+1])`` with ``s = f + period - 1`` (``f`` the first valid index), then
    ``out[i] = out[i-1] + alpha * (arr[i] - out[i-1])``. pandas' ``ewm(adjust=False)`` runs the recursion in
    compiled code, left to right, so the result is causal and fast.
    """
    out = np.full(arr.shape, np.nan)
    seed_end = _first_valid(arr) + period - 1
    if seed_end >= len(arr):
        return out
    tail = arr[seed_end:].copy()
    tail[0] = arr[seed_end - period + 1 : seed_end + 1].mean()
    out[seed_end:] = pd.Series(tail).ewm(alpha=alpha, adjust=False).mean().to_numpy()
    return out


def _rolling(arr: np.ndarray, window: int) -> pd.core.window.Rolling:
    return pd.Series(arr).rolling(window, min_periods=window)


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 (without warnings)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)


# ------------------------------------------------------------------------------------------------ indicators


def log_returns(close: Values) -> Values:
    """``log(close[i] / close[i-1])``; index 0 is NaN."""
    arr = as_array(close)
    out = np.full(arr.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[1:] = np.log(arr[1:] / arr[:-1])
    return wrap_like(out, close, "log_return")


def sma(values: Values, period: int) -> Values:
    """Simple moving average of the last ``period`` values; the first ``period - 1`` are NaN."""
    check_period(period)
    out = _rolling(as_array(values), period).mean().to_numpy()
    return wrap_like(out, values, f"sma_{period}")


def ema(values: Values, period: int) -> Values:
    """Exponential moving average (``alpha = 2 / (period + 1)``) seeded with the SMA of the first ``period``."""
    check_period(period)
    out = _seeded_smoothing(as_array(values), period, 2.0 / (period + 1))
    return wrap_like(out, values, f"ema_{period}")


def wilder_smoothing(values: Values, period: int) -> Values:
    """Wilder's running average (``alpha = 1 / period``) seeded with the SMA of the first ``period`` values."""
    check_period(period)
    out = _seeded_smoothing(as_array(values), period, 1.0 / period)
    return wrap_like(out, values, f"wilder_{period}")


def rsi(close: Values, period: int = 14) -> Values:
    """Wilder's Relative Strength Index (0..100); the first ``period`` values are NaN."""
    check_period(period)
    arr = as_array(close)
    delta = np.full(arr.shape, np.nan)
    delta[1:] = np.diff(arr)
    avg_gain = _seeded_smoothing(np.where(np.isnan(delta), np.nan, np.maximum(delta, 0.0)), period, 1.0 / period)
    avg_loss = _seeded_smoothing(np.where(np.isnan(delta), np.nan, np.maximum(-delta, 0.0)), period, 1.0 / period)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    # Divisions by a zero average loss: no losses at all is 100, no movement at all is neutral 50.
    out = np.where((avg_loss == 0) & (avg_gain > 0), 100.0, out)
    out = np.where((avg_loss == 0) & (avg_gain == 0), 50.0, out)
    return wrap_like(out, close, f"rsi_{period}")


def macd(close: Values, fast: int = 12, slow: int = 26, signal: int = 9) -> MACD:
    """MACD with EMAs of ``fast`` and ``slow`` periods and a ``signal``-period EMA of the line.

    The line starts at index ``slow - 1``, the signal and histogram at ``slow + signal - 2``.
    """
    for value, name in ((fast, "fast"), (slow, "slow"), (signal, "signal")):
        check_period(value, name)
    if fast >= slow:
        raise ValueError(f"macd fast period ({fast}) must be shorter than the slow period ({slow})")
    arr = as_array(close)
    line = _seeded_smoothing(arr, fast, 2.0 / (fast + 1)) - _seeded_smoothing(arr, slow, 2.0 / (slow + 1))
    sig = _seeded_smoothing(line, signal, 2.0 / (signal + 1))
    return MACD(wrap_like(line, close, "macd"), wrap_like(sig, close, "macd_signal"), wrap_like(line - sig, close, "macd_hist"))


def bollinger_bands(close: Values, period: int = 20, num_std: float = 2.0) -> BollingerBands:
    """Bollinger bands: SMA(period) +- ``num_std`` population standard deviations of the same window."""
    check_period(period)
    arr = as_array(close)
    roll = _rolling(arr, period)
    middle = roll.mean().to_numpy()
    std = roll.std(ddof=0).to_numpy()
    upper = middle + num_std * std
    lower = middle - num_std * std
    width = _safe_ratio(upper - lower, middle)
    percent_b = _safe_ratio(arr - lower, upper - lower)
    return BollingerBands(
        wrap_like(middle, close, "bb_middle"),
        wrap_like(upper, close, "bb_upper"),
        wrap_like(lower, close, "bb_lower"),
        wrap_like(width, close, "bb_width"),
        wrap_like(percent_b, close, "bb_percent_b"),
    )


def true_range(high: Values, low: Values, close: Values) -> Values:
    """``max(high - low, |high - prev close|, |low - prev close|)``; index 0 is NaN (no previous close)."""
    h, lo, c = as_array(high), as_array(low), as_array(close)
    out = np.full(h.shape, np.nan)
    prev = c[:-1]
    out[1:] = np.maximum.reduce([h[1:] - lo[1:], np.abs(h[1:] - prev), np.abs(lo[1:] - prev)])
    return wrap_like(out, high, "true_range")


def atr(high: Values, low: Values, close: Values, period: int = 14) -> Values:
    """Wilder's Average True Range; first value at index ``period``."""
    check_period(period)
    tr = as_array(true_range(high, low, close))
    return wrap_like(_seeded_smoothing(tr, period, 1.0 / period), high, f"atr_{period}")


def directional_movement(high: Values, low: Values, close: Values, period: int = 14) -> DirectionalMovement:
    """Wilder's +DI, -DI and ADX.

    ``up = high[i] - high[i-1]``, ``down = low[i-1] - low[i]``; ``+DM = up`` when ``up > down`` and
    ``up > 0`` else 0 (``-DM`` mirrored). +DM, -DM and the true range are Wilder-smoothed over ``period``;
    ``+DI = 100 * smoothed(+DM) / smoothed(TR)``; ``DX = 100 * |+DI - -DI| / (+DI + -DI)`` (0 when both are
    0); the ADX is the Wilder smoothing of DX. DI values start at index ``period``, the ADX at ``2 * period - 1``.
    """
    check_period(period)
    h, lo = as_array(high), as_array(low)
    up = np.full(h.shape, np.nan)
    down = np.full(h.shape, np.nan)
    up[1:] = h[1:] - h[:-1]
    down[1:] = lo[:-1] - lo[1:]
    plus_dm = np.where((up > down) & (up > 0), up, 0.0)
    minus_dm = np.where((down > up) & (down > 0), down, 0.0)
    plus_dm[0] = minus_dm[0] = np.nan
    alpha = 1.0 / period
    tr_s = _seeded_smoothing(as_array(true_range(high, low, close)), period, alpha)
    plus_di = 100.0 * _safe_ratio(_seeded_smoothing(plus_dm, period, alpha), tr_s)
    minus_di = 100.0 * _safe_ratio(_seeded_smoothing(minus_dm, period, alpha), tr_s)
    di_sum = plus_di + minus_di
    dx = np.where(di_sum == 0, 0.0, 100.0 * np.abs(plus_di - minus_di) / np.where(di_sum == 0, 1.0, di_sum))
    adx_values = _seeded_smoothing(dx, period, alpha)
    return DirectionalMovement(
        wrap_like(plus_di, high, "plus_di"), wrap_like(minus_di, high, "minus_di"), wrap_like(adx_values, high, "adx")
    )


def adx(high: Values, low: Values, close: Values, period: int = 14) -> Values:
    """Wilder's Average Directional Index (0..100); see :func:`directional_movement`."""
    return directional_movement(high, low, close, period).adx


def realized_volatility(close: Values, window: int = 24, periods_per_year: float | None = None) -> Values:
    """Rolling sample standard deviation (ddof=1) of log returns over ``window`` returns.

    Annualized by ``sqrt(periods_per_year)`` when that is given. The first value is at index ``window``.
    """
    check_period(window, "window")
    if window < 2:
        raise ValueError(f"window must be at least 2 to estimate a standard deviation, got {window}")
    rets = as_array(log_returns(as_array(close)))
    out = _rolling(rets, window).std(ddof=1).to_numpy()
    if periods_per_year is not None:
        out = out * np.sqrt(periods_per_year)
    return wrap_like(out, close, f"realized_vol_{window}")


def ewma_volatility(close: Values, span: int = 24) -> Values:
    """Exponentially weighted volatility: ``sqrt(ema(log_return ** 2, span))`` (RiskMetrics style).

    The mean squared log return is smoothed with ``alpha = 2 / (span + 1)`` and seeded with the mean of the
    first ``span`` squared returns, so the first value is at index ``span``. Unlike a rolling window it
    jumps at once on a shock and decays smoothly afterwards. Per candle, not annualized.
    """
    check_period(span, "span")
    rets = as_array(log_returns(as_array(close)))
    out = np.sqrt(_seeded_smoothing(rets**2, span, 2.0 / (span + 1)))
    return wrap_like(out, close, f"ewma_vol_{span}")


def donchian_channel(high: Values, low: Values, period: int = 20) -> tuple[Values, Values]:
    """Highest high and lowest low of the last ``period`` candles, the current one included.

    A breakout test compares a close with the channel of the candles *before* it: shift the channel by one.
    """
    check_period(period)
    upper = _rolling(as_array(high), period).max().to_numpy()
    lower = _rolling(as_array(low), period).min().to_numpy()
    return wrap_like(upper, high, f"donchian_high_{period}"), wrap_like(lower, high, f"donchian_low_{period}")


def rolling_zscore(values: Values, window: int) -> Values:
    """``(x[i] - mean) / std`` over the last ``window`` values (ddof=1); NaN when the window is flat."""
    check_period(window, "window")
    if window < 2:
        raise ValueError(f"window must be at least 2 for a z-score, got {window}")
    arr = as_array(values)
    roll = _rolling(arr, window)
    out = _safe_ratio(arr - roll.mean().to_numpy(), roll.std(ddof=1).to_numpy())
    return wrap_like(out, values, f"zscore_{window}")


def shift(values: Values, periods: int = 1) -> Values:
    """Values delayed by ``periods`` candles (NaN-filled at the start): the causal way to say "previous"."""
    if periods < 0:
        raise ValueError(f"shift periods must be >= 0 (a negative shift would look ahead), got {periods}")
    arr = as_array(values)
    out = np.full(arr.shape, np.nan)
    if periods < len(arr):
        out[periods:] = arr[: len(arr) - periods]
    return wrap_like(out, values, "shifted")
