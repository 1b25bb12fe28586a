"""Validation of a trained candidate: which policy outputs are not usable weight vectors."""

from __future__ import annotations

import numpy as np

from ai.allocation.validation import weights_problem


def test_weights_problem_spots_every_invalid_vector() -> None:
    assert weights_problem(np.full(8, 0.125)) is None
    assert "NaN" in weights_problem(np.array([np.nan] + [1 / 7] * 7))
    assert "negative" in weights_problem(np.array([-0.1, 0.3] + [0.8 / 6] * 6))
    assert "sum to" in weights_problem(np.full(8, 0.1))
