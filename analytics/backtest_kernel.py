"""A one-pass numba kernel of the baseline backtest (the optional ``fast`` extra).

:func:`one_pass` walks an exposure series once and returns what :func:`analytics.baselines.strategy_metrics`
needs besides the Sharpe ratio: the step returns, the total return, the deepest drawdown and the trades'
count, wins and summed returns. It repeats the numpy path's arithmetic (step returns, compounded equity,
running peak with the starting 1 included) in the same order, so those values are the same floats; trade
returns follow the trade definition of :mod:`analytics.baselines` step by step. :func:`load` returns None when
numba is not installed, and the numpy path is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def load() -> Callable[..., Any] | None:
    """The compiled kernel, or None without numba."""
    try:
        from numba import njit
    except ImportError:
        return None
    return njit(cache=True, error_model="numpy")(_one_pass)


def _one_pass(p: np.ndarray, growth: np.ndarray, fee: float, returns: np.ndarray
              ) -> tuple[bool, float, float, int, int, float]:
    """Fill ``returns``; (all finite, total return, max drawdown, trades, winning trades, sum of trade returns)."""
    equity, peak, deepest = 1.0, 1.0, 0.0
    finite = True
    trades, wins, total = 0, 0, 0.0
    side, growth_t, previous = 0.0, 1.0, 0.0
    for k in range(p.size):
        r = p[k] * growth[k] - fee * abs(p[k] - previous)
        returns[k] = r
        finite = finite and np.isfinite(r)
        equity = equity * (1.0 + r)
        high = equity if equity > 1.0 else 1.0
        peak = peak if peak > high else high
        drawdown = equity / peak - 1.0
        deepest = drawdown if drawdown < deepest else deepest
        current = 1.0 if p[k] > 0.0 else -1.0 if p[k] < 0.0 else 0.0
        if side != 0.0 and current != side:  # the trade closes: exit fee on its last exposure
            ret = growth_t * (1.0 - fee * abs(previous)) - 1.0
            trades, wins, total, side = trades + 1, wins + (ret > 0.0), total + ret, 0.0
        if current != 0.0:
            if side == 0.0:
                side, growth_t, turnover = current, 1.0, abs(p[k])
            else:
                turnover = abs(p[k] - previous)
            growth_t *= 1.0 + p[k] * growth[k] - fee * turnover
        previous = p[k]
    if side != 0.0:  # still open at the end: no exit fee
        ret = growth_t - 1.0
        trades, wins, total = trades + 1, wins + (ret > 0.0), total + ret
    return finite, equity - 1.0, deepest, trades, wins, total
