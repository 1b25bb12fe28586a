"""Bootstrap confidence interval of the difference of two strategies' Sharpe ratios (or mean returns).

Both series are per-period returns over the *same* periods (an agent and a baseline on one test window), so
they are resampled together (paired): one draw of period indexes serves both, which keeps the days when both
lost together and makes the interval of the difference much narrower than two separate intervals.

Resampling (documented so that anyone can redraw the same indexes): the circular block bootstrap of Politis
and Romano (1992) with blocks of ``block_length`` periods. For each of ``n_samples`` resamples,
``ceil(n / block_length)`` block starts are drawn with ``numpy.random.default_rng(seed).integers(0, n, size=
(n_samples, blocks))`` (one call for all resamples); each block takes ``block_length`` consecutive periods,
wrapping around the end, and the concatenation is cut to ``n`` periods. ``block_length = 1`` is the ordinary
(iid) bootstrap; longer blocks keep the autocorrelation of returns held by positions that last several periods.

Statistic: ``Sharpe(a) - Sharpe(b)``, each ``mean / std(ddof=1) * sqrt(periods_per_year)``, where a series
without variance (a strategy that stayed flat) has Sharpe 0: it took no risk and earned nothing per unit of
it. With ``metric="mean_return"`` the statistic is the difference of the mean per-period returns.

Interval: the percentile interval, ``lower`` and ``upper`` the ``(1 - confidence) / 2`` and
``(1 + confidence) / 2`` quantiles (numpy's linear interpolation) of the resampled differences. A gate that
asks for ``lower > 0`` is therefore a one-sided test at level ``(1 + confidence) / 2``.

Pairs where either value is not finite are dropped first. Fewer than 2 pairs leave everything undefined
(NaN), and such an interval never counts as positive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analytics.metrics import ReturnsLike

METRICS = ("sharpe", "mean_return")
"""The statistics whose difference can be bootstrapped."""


@dataclass(frozen=True)
class DifferenceCI:
    """The observed difference ``a - b`` of a statistic and its bootstrap percentile interval."""

    metric: str
    estimate: float
    lower: float
    upper: float
    confidence: float
    periods: int
    n_samples: int
    block_length: int

    @property
    def positive(self) -> bool:
        """True when the whole interval lies above 0 (``a`` beats ``b`` with the interval's confidence)."""
        return math.isfinite(self.lower) and self.lower > 0.0

    def as_dict(self) -> dict[str, float | int | str | bool | None]:
        """Plain data for JSON documents (NaN becomes None)."""
        def clean(value: float) -> float | None:
            return float(value) if math.isfinite(value) else None

        return {"metric": self.metric, "estimate": clean(self.estimate), "lower": clean(self.lower),
                "upper": clean(self.upper), "confidence": self.confidence, "periods": self.periods,
                "n_samples": self.n_samples, "block_length": self.block_length, "positive": self.positive}


def paired_finite(a: ReturnsLike, b: ReturnsLike) -> tuple[np.ndarray, np.ndarray]:
    """The two series as float arrays without the pairs where either value is NaN or infinite."""
    x = np.asarray(list(a) if not isinstance(a, np.ndarray) else a, dtype=np.float64).ravel()
    y = np.asarray(list(b) if not isinstance(b, np.ndarray) else b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired series must have the same length, got {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def block_indexes(n: int, n_samples: int, block_length: int, seed: int) -> np.ndarray:
    """``(n_samples, n)`` period indexes of the circular block bootstrap (see the module docstring)."""
    length = min(block_length, n)
    blocks = math.ceil(n / length)
    starts = np.random.default_rng(seed).integers(0, n, size=(n_samples, blocks))
    idx = (starts[:, :, None] + np.arange(length)[None, None, :]) % n
    return idx.reshape(n_samples, blocks * length)[:, :n]


def row_sharpe(samples: np.ndarray, periods_per_year: float) -> np.ndarray:
    """Sharpe ratio of each row (0 for a row without variance)."""
    mean = samples.mean(axis=1)
    std = samples.std(axis=1, ddof=1)
    flat = np.all(samples == samples[:, :1], axis=1)  # exact: a std of equal values can round to 1e-19
    safe = np.where(flat, 1.0, std)
    return np.where(flat, 0.0, mean / safe * math.sqrt(periods_per_year))


def statistic(samples: np.ndarray, metric: str, periods_per_year: float) -> np.ndarray:
    """The chosen statistic of each row of ``samples``."""
    if metric == "sharpe":
        return row_sharpe(samples, periods_per_year)
    return samples.mean(axis=1)


def difference_ci(a: ReturnsLike, b: ReturnsLike, periods_per_year: float, *, confidence: float = 0.9,
                  n_samples: int = 2000, block_length: int = 1, seed: int = 0, metric: str = "sharpe"
                  ) -> DifferenceCI:
    """Bootstrap percentile interval of ``statistic(a) - statistic(b)`` over paired periods (module docstring)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_samples < 1 or block_length < 1:
        raise ValueError(f"n_samples and block_length must be >= 1, got {n_samples} and {block_length}")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; use one of: {', '.join(METRICS)}")
    if not periods_per_year > 0:
        raise ValueError(f"periods_per_year must be > 0, got {periods_per_year}")
    x, y = paired_finite(a, b)
    n = int(x.size)
    if n < 2:
        return DifferenceCI(metric, math.nan, math.nan, math.nan, confidence, n, n_samples, block_length)
    observed = statistic(x[None, :], metric, periods_per_year) - statistic(y[None, :], metric, periods_per_year)
    idx = block_indexes(n, n_samples, block_length, seed)
    diffs = statistic(x[idx], metric, periods_per_year) - statistic(y[idx], metric, periods_per_year)
    lower, upper = np.quantile(diffs, [(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0])
    return DifferenceCI(metric, float(observed[0]), float(lower), float(upper), confidence, n, n_samples,
                        block_length)
