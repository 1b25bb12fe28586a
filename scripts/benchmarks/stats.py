"""Medians, percentiles and timing loops of the benchmark (plain Python, hand-checkable)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence


def median(values: Sequence[float]) -> float:
    """The middle value (the mean of the two middle ones for an even count); ValueError when empty."""
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between the closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ratio(ours: float | None, peer: float | None, higher_is_better: bool) -> float | None:
    """How many times better ours is than the peer: ours/peer for rates, peer/ours for times; None when either
    figure is missing or zero."""
    if ours is None or peer is None or ours <= 0 or peer <= 0:
        return None
    return ours / peer if higher_is_better else peer / ours


def rate_per_s(work: Callable[[], int], repeats: int) -> tuple[float, list[float]]:
    """Median of ``repeats`` runs of ``work`` (which returns how many units it did) in units per second."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        units = work()
        rates.append(units / max(time.perf_counter() - started, 1e-9))
    return median(rates), rates


def call_latencies(call: Callable[[], object], calls: int, warmup: int = 10) -> list[float]:
    """Seconds of each of ``calls`` calls of ``call`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    out = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        out.append(time.perf_counter() - started)
    return out
