"""Baseline strategies and the step accounting every strategy of the trading benchmark shares.

The accounting (the trading environment uses the same function, :func:`step_return`): a decision at candle
k's close sets the exposure ``p_k``, a signed fraction of equity (negative for short). The step's return on
equity is::

    r_k = p_k * (close_{k+1} / close_k - 1) - fee * |p_k - p_{k-1}|

so the exposure is held at a constant fraction of equity from one close to the next and every change of
exposure pays ``fee`` on the notional traded. A window of ``m + 1`` closes gives ``m`` decisions and ``m``
returns; it starts flat (``p_{-1} = 0``) and the position still open at its end is not closed (no exit fee).

Trades of an exposure series: a trade is a maximal run of consecutive decisions with non-zero exposure of one
sign. Its return compounds, over its steps, ``p_k * (close_{k+1} / close_k - 1)`` minus the fee on the
exposure it added or removed at that step (its entry and resizes), then its exit fee ``fee * |last p|`` when it
is closed inside the window (a sign flip closes one trade and opens the next: the exit part of the fee goes to
the old trade, the entry part to the new one). A trade still open at the end of the window has no exit fee.
``n_trades`` counts the runs, ``win_rate`` is the share of trades with a return > 0
(:func:`analytics.metrics.win_rate`) and ``avg_return`` is the mean trade return.

Baselines on a test window ``[start, stop)`` of a longer close series (decisions at candles ``start..stop-2``):

- Buy & Hold: exposure 1 at every decision.
- MA crossover: +1 while the fast SMA of closes is above the slow one, -1 while below, 0 while they are equal
  or either is undefined. The SMAs use every close up to the candle, those before the window included; they
  are computed from cumulative sums (:func:`moving_average`), so a million candles take milliseconds.
- Random: uniform random actions stepped through the trading environment (see :func:`env_exposures`),
  averaged over several seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.backtest_kernel import load as load_kernel
from analytics.metrics import drawdown_of_equity, equity_curve, sharpe_ratio, win_rate

_KERNELS: list[Callable[..., Any] | None] = []


def _kernel() -> Callable[..., Any] | None:
    """The one-pass numba kernel of :mod:`analytics.backtest_kernel` (None without numba: the numpy path),
    loaded at the first backtest, so importing this module does not import numba."""
    if not _KERNELS:
        _KERNELS.append(load_kernel())
    return _KERNELS[0]

METRIC_KEYS: tuple[str, ...] = ("total_return", "sharpe_ratio", "max_drawdown", "win_rate", "avg_return", "n_trades")
"""The metrics reported for every strategy of the benchmark, in order."""


# ------------------------------------------------------------------------------------------------ accounting


def step_return(prev_exposure: Any, exposure: Any, close_now: Any, close_next: Any, fee: float) -> Any:
    """``exposure * (close_next / close_now - 1) - fee * |exposure - prev_exposure|`` (scalars or arrays)."""
    return exposure * (close_next / close_now - 1.0) - fee * np.abs(exposure - prev_exposure)


def exposure_returns(closes: Sequence[float] | np.ndarray, exposures: Sequence[float] | np.ndarray,
                     fee: float, initial_exposure: float = 0.0) -> np.ndarray:
    """Step returns of ``exposures`` (``m`` decisions) over ``closes`` (``m + 1`` closes), starting from
    ``initial_exposure`` (flat by default)."""
    c, p = _series(closes, exposures)
    return _returns(p, _growth(c), fee, initial_exposure)


def _series(closes: Sequence[float] | np.ndarray, exposures: Sequence[float] | np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(closes, dtype=np.float64)
    p = np.asarray(exposures, dtype=np.float64)
    if c.shape != (p.size + 1,):
        raise ValueError(f"{p.size} exposures need {p.size + 1} closes, got {c.size}")
    return c, p


def _growth(c: np.ndarray) -> np.ndarray:
    """``close_{k+1} / close_k - 1`` of every decision."""
    growth = c[1:] / c[:-1]
    growth -= 1.0
    return growth


def _returns(p: np.ndarray, growth: np.ndarray, fee: float, initial_exposure: float = 0.0) -> np.ndarray:
    """:func:`step_return` of every decision, in place on few temporaries (the same operations, so the same
    values)."""
    turnover = np.empty_like(p)
    turnover[:1] = p[:1] - initial_exposure
    np.subtract(p[1:], p[:-1], out=turnover[1:])
    np.abs(turnover, out=turnover)
    turnover *= fee
    out = p * growth
    out -= turnover
    return out


def equity_from_returns(returns: Sequence[float] | np.ndarray, start: float = 1.0) -> np.ndarray:
    """Equity after each step and the starting value first (``len(returns) + 1`` points)."""
    r = np.asarray(returns, dtype=np.float64)
    return start * np.concatenate([[1.0], np.cumprod(1.0 + r)])


# ---------------------------------------------------------------------------------------------------- trades


@dataclass(frozen=True)
class Trade:
    """One run of same-sign exposure: decisions ``first..last`` (positions in the series), its side and return."""

    first: int
    last: int
    side: int
    ret: float
    closed: bool


def trade_returns(closes: Sequence[float] | np.ndarray, exposures: Sequence[float] | np.ndarray,
                  fee: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first decision, return, closed flag) of every trade of an exposure series, vectorized.

    Each step of a trade contributes the factor ``1 + p_k * (close_{k+1} / close_k - 1) - fee * turnover_k``
    (the turnover is ``|p_k|`` at the trade's first step, ``|p_k - p_{k-1}|`` after); a trade's return is the
    product of its factors, times ``1 - fee * |last p|`` when it is closed inside the window, minus 1.
    """
    c, p = _series(closes, exposures)
    return _trade_returns(p, _growth(c), fee)


def _trade_returns(p: np.ndarray, growth: np.ndarray, fee: float, step_returns: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`trade_returns` given the closes' growth (and the series' own step returns when known)."""
    side = np.sign(p)
    changes = np.flatnonzero(side[1:] != side[:-1])
    changes += 1
    changes = np.concatenate(([0], changes))  # where a side starts (the first decision starts one)
    starts_trade = side[changes] != 0
    first = changes[starts_trade]
    if first.size == 0:
        return first, np.empty(0), np.empty(0, dtype=bool)
    # A step's factor is 1 + its step return, except at a trade's first step, which pays the fee on its own
    # exposure only (a flip's exit part belongs to the trade before), and at a trade's exit to flat, which
    # belongs to no trade (the exit fee is applied to the trade below).
    factors = np.add(_returns(p, growth, fee) if step_returns is None else step_returns, 1.0)
    factors[first] = 1.0 + p[first] * growth[first] - fee * np.abs(p[first])
    factors[changes[~starts_trade]] = 1.0
    # a trade ends at the step before the next change of side (or at the window's last decision)
    ends = np.append(changes, p.size)[np.flatnonzero(starts_trade) + 1] - 1
    product = np.multiply.reduceat(factors, first)  # each segment runs to the next start over factors of 1
    closed = ends < p.size - 1
    product[closed] *= 1.0 - fee * np.abs(p[ends[closed]])
    return first, product - 1.0, closed


def trades_from_exposures(closes: Sequence[float] | np.ndarray, exposures: Sequence[float] | np.ndarray,
                          fee: float) -> list[Trade]:
    """The trades of an exposure series (see the module docstring for the definition)."""
    p = np.asarray(exposures, dtype=np.float64)
    first, returns, closed = trade_returns(closes, p, fee)
    changes = np.append(np.flatnonzero(np.diff(np.sign(p)) != 0) + 1, p.size)
    last = changes[np.searchsorted(changes, first, side="right")] - 1
    return [Trade(int(f), int(e), int(np.sign(p[f])), float(r), bool(c))
            for f, e, r, c in zip(first, last, returns, closed, strict=True)]


def strategy_metrics(closes: Sequence[float] | np.ndarray, exposures: Sequence[float] | np.ndarray, fee: float,
                     periods_per_year: float, returns: Sequence[float] | np.ndarray | None = None) -> dict[str, float]:
    """The benchmark metrics of one exposure series (returns computed with :func:`exposure_returns` unless given).

    Undefined values (a Sharpe ratio of constant returns, a win rate without trades) are NaN.
    """
    c, p = _series(closes, exposures)
    return _metrics(p, _growth(c), fee, periods_per_year, returns)


def _metrics(p: np.ndarray, growth: np.ndarray, fee: float, periods_per_year: float,
             returns: Sequence[float] | np.ndarray | None = None) -> dict[str, float]:
    kernel = _kernel() if returns is None else None
    if kernel is not None:
        own = np.empty(p.size)
        finite, total, deepest, trades, wins, summed = kernel(p, growth, float(fee), own)
        if finite and p.size:  # else the numpy path, which drops undefined returns
            return {"total_return": float(total), "sharpe_ratio": sharpe_ratio(own, periods_per_year),
                    "max_drawdown": float(deepest), "win_rate": wins / trades if trades else math.nan,
                    "avg_return": summed / trades if trades else math.nan, "n_trades": float(trades)}
    own = _returns(p, growth, fee)
    r = own if returns is None else np.asarray(returns, dtype=np.float64)
    _, trade_rets, _ = _trade_returns(p, growth, fee, own)
    equity = equity_curve(r)  # shared by the total return (its last value) and the drawdowns
    return {
        "total_return": float(equity[-1] - 1.0) if equity.size else math.nan,
        "sharpe_ratio": sharpe_ratio(r, periods_per_year),
        "max_drawdown": float(min(drawdown_of_equity(equity).min(), 0.0)) if equity.size else math.nan,
        "win_rate": win_rate(trade_rets),
        "avg_return": float(np.mean(trade_rets)) if trade_rets.size else math.nan,
        "n_trades": float(trade_rets.size),
    }


def baseline_backtest(closes: Sequence[float] | np.ndarray, fee: float, periods_per_year: float, fast: int = 10,
                      slow: int = 20) -> dict[str, dict[str, float]]:
    """Buy & Hold and the MA crossover (``fast``/``slow``) deciding at every close but the last, with the
    metrics of :func:`strategy_metrics`: ``{"buy_and_hold": {...}, "ma_crossover": {...}}``.

    All numpy, no Python loop over candles: a million candles take tens of milliseconds.
    """
    c = np.asarray(closes, dtype=np.float64)
    if c.size < 2:
        raise ValueError(f"a backtest needs at least 2 closes, got {c.size}")
    decisions = c.size - 1
    growth = _growth(c)  # shared by both strategies
    return {"buy_and_hold": _metrics(buy_and_hold_exposures(decisions), growth, fee, periods_per_year),
            "ma_crossover": _metrics(ma_crossover_exposures(c, 0, decisions, fast, slow), growth, fee,
                                     periods_per_year)}


def mean_metrics(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    """Each metric averaged over runs, ignoring the runs where it is undefined (NaN when it is for all)."""
    out: dict[str, float] = {}
    for key in METRIC_KEYS:
        values = np.array([run[key] for run in runs], dtype=np.float64)
        finite = values[np.isfinite(values)]
        out[key] = float(finite.mean()) if finite.size else math.nan
    return out


# ------------------------------------------------------------------------------------------------ baselines


def buy_and_hold_exposures(decisions: int) -> np.ndarray:
    """Exposure 1 at every decision."""
    return np.ones(decisions, dtype=np.float64)


def ma_crossover_exposures(closes: Sequence[float] | np.ndarray, start: int, stop: int, fast: int = 10,
                           slow: int = 20) -> np.ndarray:
    """Exposures at the decisions ``start..stop-1`` of the close series: sign(SMA_fast - SMA_slow), 0 if undefined.

    The SMAs are computed on the whole series up to each candle, so closes before ``start`` warm them up.
    """
    if not 1 <= fast < slow:
        raise ValueError(f"MA crossover needs 1 <= fast < slow, got fast={fast}, slow={slow}")
    c = np.asarray(closes, dtype=np.float64)
    if not 0 <= start <= stop <= c.size:
        raise ValueError(f"decision range {start}..{stop} is outside the {c.size} closes")
    out = np.zeros(stop - start)
    defined = max(start, slow - 1)  # the slow SMA needs slow closes; before that the exposure stays 0
    if stop <= defined:
        return out
    sums, _ = _anchored_sums(c[:stop])
    # sign(SMA_fast - SMA_slow) over the candles defined..stop-1; the anchor cancels in the difference
    difference = _window_sums(sums, fast, defined)
    difference /= fast
    slow_mean = _window_sums(sums, slow, defined)
    slow_mean /= slow
    difference -= slow_mean
    np.sign(difference, out=out[defined - start:])
    if not np.isfinite(sums[-1]):  # a NaN or infinite close: undefined averages give exposure 0
        np.nan_to_num(out, copy=False, nan=0.0)
    return out


def _window_sums(sums: np.ndarray, period: int, first: int) -> np.ndarray:
    """Sums of the ``period`` values ending at each candle from ``first`` (>= period - 1) on."""
    window = np.empty(sums.size - first)
    if first == period - 1:
        window[0] = sums[first]
        np.subtract(sums[first + 1:], sums[first + 1 - period:-period], out=window[1:])
    else:
        np.subtract(sums[first:], sums[first - period:sums.size - period], out=window)
    return window


def moving_average(values: Sequence[float] | np.ndarray, period: int) -> np.ndarray:
    """Mean of the last ``period`` values (NaN for the first ``period - 1``), from cumulative sums: O(n) whatever
    the period, without a rolling window object.

    The sums are taken of the values minus the first one (the window means of a flat series are then exact,
    and the rounding error stays that of the moves rather than of the level).
    """
    if period < 1:
        raise ValueError(f"a moving average needs a period >= 1, got {period}")
    v = np.asarray(values, dtype=np.float64)
    out = np.full(v.size, np.nan)
    if v.size >= period:
        sums, anchor = _anchored_sums(v)
        out[period - 1:] = _window_means(sums, period, anchor)
    return out


def _anchored_sums(v: np.ndarray) -> tuple[np.ndarray, float]:
    """Cumulative sums of ``v - v[0]`` and ``v[0]``."""
    anchor = float(v[0])
    sums = np.subtract(v, anchor)
    np.cumsum(sums, out=sums)
    return sums, anchor


def _window_means(sums: np.ndarray, period: int, anchor: float) -> np.ndarray:
    """The means of every full window of ``period`` values (from candle ``period - 1`` on)."""
    window = sums[period - 1:].copy()
    window[1:] -= sums[:-period]
    window /= period
    window += anchor
    return window


def env_exposures(env: Any, choose_action: Callable[[np.ndarray], int], seed: int | None = None,
                  steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exposures and step returns of one episode of a trading environment driven by ``choose_action(obs)``.

    The environment reports ``info["exposure"]`` and ``info["step_return"]`` after every step (as
    :class:`ai.trading.env.TradingEnv` does). When the episode terminates early (equity wiped out), the
    remaining ``steps`` are flat with zero return.
    """
    obs, _ = env.reset(seed=seed)
    exposures: list[float] = []
    returns: list[float] = []
    while True:
        obs, _, terminated, truncated, info = env.step(choose_action(obs))
        exposures.append(float(info["exposure"]))
        returns.append(float(info["step_return"]))
        if terminated or truncated:
            break
    if steps is not None and len(exposures) < steps:
        missing = steps - len(exposures)
        exposures += [0.0] * missing
        returns += [0.0] * missing
    return np.array(exposures), np.array(returns)


def random_action_chooser(n_actions: int, seed: int) -> Callable[[np.ndarray], int]:
    """A policy choosing uniformly among ``n_actions`` with its own seeded generator."""
    rng = np.random.default_rng(seed)
    return lambda _obs: int(rng.integers(n_actions))
