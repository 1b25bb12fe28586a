"""Performance metrics: small pure functions over a per-period return series.

``returns`` is a numpy array, a list or a pandas Series of simple per-period returns (0.01 = +1 %).

Conventions, the same in every function:

* Non-finite entries (NaN, +-inf) are dropped before anything is computed: a missing period is skipped, not
  counted as a zero return.
* Empty or all-NaN input gives NaN, never an exception. So does any statistic that needs more data than
  there is (a standard deviation of one value) or that would divide by zero (see each function).
* The equity curve compounds the returns from a starting value of 1; drawdowns are measured against the
  running peak of that curve with the starting 1 included, so a first-period loss is already a drawdown.
* Annualization multiplies a per-period mean by ``periods_per_year`` and a per-period standard deviation by
  ``sqrt(periods_per_year)``; see :func:`periods_per_year_for`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd

from core.config import CALENDARS

ReturnsLike: TypeAlias = np.ndarray | pd.Series | Sequence[float] | Iterable[float]

SECONDS_PER_UNIT: dict[str, int] = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
CRYPTO_SECONDS_PER_YEAR = 365 * 86_400
EQUITY_DAYS_PER_YEAR = 252
EQUITY_HOURS_PER_DAY = 6.5
_TIMEFRAME = re.compile(r"^(\d+)([smhdwMy])$")


def clean_returns(returns: ReturnsLike) -> np.ndarray:
    """The finite values of ``returns`` as a float64 array (NaN and +-inf dropped); a view of the input when
    it is already a finite float64 array, so callers must not write into it."""
    arr = np.asarray(list(returns) if not isinstance(returns, (np.ndarray, pd.Series)) else returns, dtype=np.float64)
    arr = arr.ravel()
    finite = np.isfinite(arr)
    return arr if finite.all() else arr[finite]  # no copy of an all-finite series (a million returns: ms)


def total_return(returns: ReturnsLike) -> float:
    """Compounded return: ``prod(1 + r) - 1``. NaN for empty input."""
    r = clean_returns(returns)
    if r.size == 0:
        return math.nan
    return float(np.prod(1.0 + r) - 1.0)


def cagr(returns: ReturnsLike, periods_per_year: float) -> float:
    """Compound annual growth rate: ``(1 + total_return) ** (periods_per_year / n) - 1``.

    -1.0 when the equity was wiped out (total return <= -100 %); NaN for empty input.
    """
    r = clean_returns(returns)
    if r.size == 0:
        return math.nan
    growth = float(np.prod(1.0 + r))
    if growth <= 0.0:
        return -1.0
    return float(growth ** (periods_per_year / r.size) - 1.0)


def annual_volatility(returns: ReturnsLike, periods_per_year: float) -> float:
    """Sample standard deviation (ddof=1) of the returns times ``sqrt(periods_per_year)``; NaN below 2 values."""
    r = clean_returns(returns)
    if r.size < 2:
        return math.nan
    return float(np.std(r, ddof=1) * math.sqrt(periods_per_year))


def per_period_rate(annual_rate: float, periods_per_year: float) -> float:
    """The per-period rate that compounds to ``annual_rate`` over a year: ``(1 + rate) ** (1 / ppy) - 1``."""
    return float((1.0 + annual_rate) ** (1.0 / periods_per_year) - 1.0)


def sharpe_ratio(returns: ReturnsLike, periods_per_year: float, risk_free: float = 0.0) -> float:
    """Annualized Sharpe ratio: ``mean(r - rf) / std(r, ddof=1) * sqrt(periods_per_year)``.

    ``risk_free`` is an annual rate, converted to a per-period rate by compounding
    (:func:`per_period_rate`). NaN below 2 values and when all returns are equal (zero variance: the ratio
    is undefined, not infinite).
    """
    r = clean_returns(returns)
    if r.size < 2 or _is_constant(r):
        return math.nan
    excess = r - per_period_rate(risk_free, periods_per_year)
    return float(np.mean(excess) / np.std(r, ddof=1) * math.sqrt(periods_per_year))


def downside_deviation(returns: ReturnsLike, target: float = 0.0) -> float:
    """Per-period downside deviation: ``sqrt(mean(min(r - target, 0) ** 2))`` over *all* periods.

    This is Sortino and Price's target semideviation: periods above the target count as zero shortfall (they
    stay in the denominator ``n``), rather than being dropped. NaN for empty input.
    """
    r = clean_returns(returns)
    if r.size == 0:
        return math.nan
    shortfall = np.minimum(r - target, 0.0)
    return float(np.sqrt(np.mean(shortfall**2)))


def sortino_ratio(returns: ReturnsLike, periods_per_year: float, risk_free: float = 0.0) -> float:
    """Annualized Sortino ratio: ``mean(r - rf) / downside_deviation(r, rf) * sqrt(periods_per_year)``.

    The target is the per-period risk-free rate (0 by default); see :func:`downside_deviation` for the
    definition used. NaN below 2 values and when no period fell below the target (zero downside deviation).
    """
    r = clean_returns(returns)
    if r.size < 2:
        return math.nan
    target = per_period_rate(risk_free, periods_per_year)
    dd = downside_deviation(r, target)
    if dd == 0.0:
        return math.nan
    return float(np.mean(r - target) / dd * math.sqrt(periods_per_year))


def equity_curve(returns: ReturnsLike, start: float = 1.0) -> np.ndarray:
    """Equity after each period, compounding from ``start``: ``start * cumprod(1 + r)`` (same length as the
    cleaned returns; the starting value itself is not included)."""
    equity = np.add(clean_returns(returns), 1.0)
    np.cumprod(equity, out=equity)  # in place: one array for a million periods instead of three
    if start != 1.0:
        equity *= start
    return equity


def drawdown_series(returns: ReturnsLike) -> np.ndarray:
    """Drawdown after each period: ``equity / running_peak - 1`` (<= 0), the starting equity 1 being the
    first peak."""
    return drawdown_of_equity(equity_curve(returns))


def drawdown_of_equity(equity: np.ndarray) -> np.ndarray:
    """:func:`drawdown_series` of an :func:`equity_curve` already computed."""
    if equity.size == 0:
        return equity
    drawdown = np.maximum(equity, 1.0)
    np.maximum.accumulate(drawdown, out=drawdown)  # the running peak, then the drawdown, in one array
    np.divide(equity, drawdown, out=drawdown)
    drawdown -= 1.0
    return drawdown


def max_drawdown(returns: ReturnsLike) -> float:
    """Deepest drawdown of the compounded equity curve, as a negative fraction (-0.08 = 8 % below the peak).

    0.0 when the equity never fell below a previous peak; NaN for empty input.
    """
    dd = drawdown_series(returns)
    if dd.size == 0:
        return math.nan
    return float(min(dd.min(), 0.0))


def calmar_ratio(returns: ReturnsLike, periods_per_year: float) -> float:
    """:func:`cagr` over the absolute :func:`max_drawdown`. NaN for empty input or without any drawdown."""
    mdd = max_drawdown(returns)
    if math.isnan(mdd) or mdd == 0.0:
        return math.nan
    return float(cagr(returns, periods_per_year) / abs(mdd))


def win_rate(trade_pnls: ReturnsLike) -> float:
    """Share of closed trades with ``pnl > 0`` (a break-even trade is not a win); NaN without trades."""
    pnl = clean_returns(trade_pnls)
    if pnl.size == 0:
        return math.nan
    return float(np.count_nonzero(pnl > 0) / pnl.size)


def periods_per_year_for(timeframe: str, calendar: str = "crypto") -> float:
    """How many candles of ``timeframe`` (ccxt notation: 1m, 5m, 1h, 4h, 1d, 1w, 1M, ...) make a year.

    ``crypto`` trades 24/7 for 365 days: 1h -> 8760, 1d -> 365, 1w -> 52.14. ``equity`` has 252 sessions of
    6.5 hours: 1d -> 252, 1h -> 1638, 1w -> 52; intraday candles count trading hours only. 1M is 12 and 1y is
    1 in both. ValueError for an unknown timeframe or calendar.
    """
    if calendar not in CALENDARS:
        raise ValueError(f"unknown calendar {calendar!r}; use one of: {', '.join(CALENDARS)}")
    match = _TIMEFRAME.match(timeframe.strip()) if isinstance(timeframe, str) else None
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"unknown timeframe {timeframe!r}; use ccxt notation such as 1m, 15m, 1h, 4h, 1d, 1w, 1M")
    count, unit = int(match.group(1)), match.group(2)
    if unit == "M":
        return 12.0 / count
    if unit == "y":
        return 1.0 / count
    seconds = count * SECONDS_PER_UNIT[unit]
    if calendar == "crypto":
        return CRYPTO_SECONDS_PER_YEAR / seconds
    if unit == "w":
        return 52.0 / count
    if unit == "d":
        return EQUITY_DAYS_PER_YEAR / count
    return EQUITY_DAYS_PER_YEAR * EQUITY_HOURS_PER_DAY * 3600 / seconds


def summarize(
    returns: ReturnsLike, periods_per_year: float, trade_pnls: ReturnsLike | None = None
) -> dict[str, float]:
    """The metrics above in one dict (what reports print); ``win_rate`` only when trades are given."""
    r = clean_returns(returns)
    summary = {
        "periods": float(r.size),
        "total_return": total_return(r),
        "cagr": cagr(r, periods_per_year),
        "annual_volatility": annual_volatility(r, periods_per_year),
        "sharpe_ratio": sharpe_ratio(r, periods_per_year),
        "sortino_ratio": sortino_ratio(r, periods_per_year),
        "max_drawdown": max_drawdown(r),
        "calmar_ratio": calmar_ratio(r, periods_per_year),
    }
    if trade_pnls is not None:
        summary["win_rate"] = win_rate(trade_pnls)
    return summary


def _is_constant(r: np.ndarray) -> bool:
    # Exact equality: np.std of identical values can come out as 1e-19 rather than 0 after the mean's rounding.
    return bool(np.all(r == r[0]))
