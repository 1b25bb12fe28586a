"""The regime-aware oracle allocation: the upper reference an allocation agent is measured against.

The oracle knows each period's expected strategy returns (on a planted history, the edges the generator put
there; see :mod:`market.planted_history`) and puts equal weight on the strategies expected to earn the most in
that period. It knows nothing of the noise, so it is what a perfect regime detector with a perfect model of
the strategies could do, not a hindsight pick of the realized winners.

Its *uplift* is its return over equal weights'; an agent's share of that uplift says how much of the knowable
edge it recovered: ``(agent - equal) / (oracle - equal)``.
"""

from __future__ import annotations

import numpy as np

UPLIFT_EPSILON = 1e-9
"""An oracle uplift at or below this per period is none (rounding), so no share of it is defined."""


def oracle_weights(expected: np.ndarray, top: int = 4, tolerance: float = 1e-12) -> np.ndarray:
    """``(n, s)`` weights: equal over each period's ``top`` strategies of highest expected return.

    Strategies tied with the ``top``-th one (within ``tolerance``) share the weight too; a period whose
    expected returns are all equal (no edge known) gets equal weights.
    """
    e = np.asarray(expected, dtype=np.float64)
    if e.ndim != 2 or e.shape[1] == 0:
        raise ValueError(f"expected returns must be a (periods, strategies) array, got shape {e.shape}")
    if not 1 <= top <= e.shape[1]:
        raise ValueError(f"top must be between 1 and {e.shape[1]}, got {top}")
    threshold = -np.sort(-e, axis=1)[:, top - 1:top]
    chosen = (e >= threshold - tolerance).astype(np.float64)
    weights: np.ndarray = chosen / chosen.sum(axis=1, keepdims=True)
    return weights


def allocation_returns(weights: np.ndarray, returns: np.ndarray, turnover_cost: float,
                       initial: np.ndarray | None = None) -> np.ndarray:
    """Per-period return of holding ``weights[k]`` over ``returns[k]``, less ``turnover_cost`` per unit of
    weight moved (from ``initial``, equal weights by default, before the first period); floored at -100 %."""
    w = np.asarray(weights, dtype=np.float64)
    r = np.asarray(returns, dtype=np.float64)
    if w.shape != r.shape:
        raise ValueError(f"weights {w.shape} and returns {r.shape} must have the same shape")
    start = np.full(w.shape[1], 1.0 / w.shape[1]) if initial is None else np.asarray(initial, dtype=np.float64)
    previous = np.vstack([start[None, :], w[:-1]])
    turnover = np.abs(w - previous).sum(axis=1)
    out: np.ndarray = np.maximum((w * r).sum(axis=1) - turnover_cost * turnover, -1.0)
    return out


def uplift_share(agent: float, equal: float, oracle: float) -> float:
    """``(agent - equal) / (oracle - equal)``: the share of the oracle's uplift recovered (NaN without uplift)."""
    gap = oracle - equal
    if not gap > UPLIFT_EPSILON:
        return float("nan")
    return (agent - equal) / gap
