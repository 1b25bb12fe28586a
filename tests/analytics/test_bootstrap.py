"""The bootstrap interval of a Sharpe-ratio difference against an independent computation, its coverage on
series whose true difference is known, and its edge cases."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from analytics.bootstrap import block_indexes, difference_ci


def reference_ci(a: list[float], b: list[float], ppy: float, confidence: float, n_samples: int, block: int,
                 seed: int) -> tuple[float, float, float]:
    """The documented procedure written with plain Python loops: the same index draws, everything else apart."""
    n = len(a)
    blocks = math.ceil(n / block)
    starts = np.random.default_rng(seed).integers(0, n, size=(n_samples, blocks)).tolist()

    def sharpe(values: list[float]) -> float:
        if all(v == values[0] for v in values):
            return 0.0
        return statistics.fmean(values) / statistics.stdev(values) * math.sqrt(ppy)

    diffs = []
    for row in starts:
        idx = [(s + j) % n for s in row for j in range(block)][:n]
        diffs.append(sharpe([a[i] for i in idx]) - sharpe([b[i] for i in idx]))
    diffs.sort()

    def quantile(q: float) -> float:  # linear interpolation between order statistics
        pos = q * (len(diffs) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(diffs) - 1)
        return diffs[lo] + (diffs[hi] - diffs[lo]) * (pos - lo)

    return sharpe(a) - sharpe(b), quantile((1 - confidence) / 2), quantile((1 + confidence) / 2)


@pytest.mark.parametrize("block", [1, 5])
def test_the_interval_matches_an_independent_computation(block: int) -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(0.002, 0.01, 60).tolist()
    b = rng.normal(0.0, 0.01, 60).tolist()
    ci = difference_ci(a, b, 365.0, confidence=0.9, n_samples=300, block_length=block, seed=11)
    estimate, lower, upper = reference_ci(a, b, 365.0, 0.9, 300, block, 11)
    assert ci.estimate == pytest.approx(estimate, rel=1e-9)
    assert ci.lower == pytest.approx(lower, rel=1e-9) and ci.upper == pytest.approx(upper, rel=1e-9)
    assert ci.lower < ci.estimate < ci.upper and ci.periods == 60


def test_golden_value_of_a_tiny_case() -> None:
    # a = b + 0.01 everywhere with b not constant: resamples keep the pairing, so the mean-return difference is
    # exactly 0.01 in every resample and the interval collapses onto it.
    b = [0.01, -0.02, 0.03, 0.0]
    a = [x + 0.01 for x in b]
    ci = difference_ci(a, b, 1.0, metric="mean_return", n_samples=50)
    assert ci.estimate == pytest.approx(0.01) and ci.lower == pytest.approx(0.01) and ci.upper == pytest.approx(0.01)
    assert ci.positive


def test_the_interval_covers_the_true_difference_about_as_often_as_it_says() -> None:
    # Two independent normal series with per-period Sharpe 0.2 and 0: the true difference is 0.2 (ppy = 1).
    rng = np.random.default_rng(0)
    covered = 0
    trials = 120
    for t in range(trials):
        a = rng.normal(0.2, 1.0, 250)
        b = rng.normal(0.0, 1.0, 250)
        ci = difference_ci(a, b, 1.0, confidence=0.8, n_samples=400, seed=t)
        covered += ci.lower <= 0.2 <= ci.upper
    assert 0.68 <= covered / trials <= 0.92  # 80 % nominal; the binomial spread over 120 trials is about 4 %


def test_no_edge_is_not_positive_and_a_clear_edge_is() -> None:
    rng = np.random.default_rng(5)
    noise = rng.normal(0.0, 0.01, 500)
    same = difference_ci(noise, noise, 8760.0)
    assert same.estimate == 0.0 and same.lower == 0.0 == same.upper and not same.positive
    edge = difference_ci(noise + 0.002, rng.normal(0.0, 0.01, 500), 8760.0, block_length=24)
    assert edge.positive and edge.lower > 0


def test_edge_cases() -> None:
    flat = difference_ci([0.0] * 10, [0.01, -0.01] * 5, 1.0)  # a flat series has Sharpe 0
    assert flat.estimate == pytest.approx(0.0) and not flat.positive
    short = difference_ci([0.01], [0.02], 1.0)
    assert math.isnan(short.lower) and not short.positive and short.as_dict()["lower"] is None
    dropped = difference_ci([0.01, float("nan"), 0.02, 0.03], [0.0, 0.0, float("inf"), 0.01], 1.0)
    assert dropped.periods == 2
    with pytest.raises(ValueError, match="same length"):
        difference_ci([0.1, 0.2], [0.1], 1.0)
    with pytest.raises(ValueError, match="confidence"):
        difference_ci([0.1, 0.2], [0.1, 0.0], 1.0, confidence=1.0)
    with pytest.raises(ValueError, match="metric"):
        difference_ci([0.1, 0.2], [0.1, 0.0], 1.0, metric="sortino")
    # blocks longer than the series are cut to it; every row is a rotation of the series
    idx = block_indexes(4, 3, 10, seed=0)
    assert idx.shape == (3, 4) and all(sorted(row) == [0, 1, 2, 3] for row in idx.tolist())


def test_same_seed_same_interval() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 50), rng.normal(0, 1, 50)
    assert difference_ci(a, b, 1.0, seed=4) == difference_ci(a, b, 1.0, seed=4)
    assert difference_ci(a, b, 1.0, seed=4) != difference_ci(a, b, 1.0, seed=5)
