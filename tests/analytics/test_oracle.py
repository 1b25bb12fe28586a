"""The oracle allocation: the top expected strategies share the weight, returns after turnover, uplift share."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analytics.oracle import allocation_returns, oracle_weights, uplift_share


def test_oracle_weights_split_equally_over_the_top_expected_strategies() -> None:
    expected = np.array([[0.3, 0.1, 0.2, -0.1], [0.0, 0.0, 0.0, 0.0], [0.1, 0.2, 0.2, 0.0]])
    w = oracle_weights(expected, top=2)
    np.testing.assert_allclose(w[0], [0.5, 0, 0.5, 0])
    np.testing.assert_allclose(w[1], [0.25] * 4)  # nothing known: equal weights
    np.testing.assert_allclose(w[2], [0, 0.5, 0.5, 0])
    np.testing.assert_allclose(oracle_weights(expected[:1], top=1)[0], [1, 0, 0, 0])
    with pytest.raises(ValueError, match="top"):
        oracle_weights(expected, top=5)


def test_allocation_returns_charge_turnover_from_equal_weights() -> None:
    weights = np.array([[1.0, 0.0], [0.0, 1.0]])
    returns = np.array([[0.02, -0.01], [0.03, 0.01]])
    out = allocation_returns(weights, returns, turnover_cost=0.01)
    # First period: moved 0.5 + 0.5 = 1 away from (0.5, 0.5); second: moved 2.
    np.testing.assert_allclose(out, [0.02 - 0.01 * 1.0, 0.01 - 0.01 * 2.0])
    assert allocation_returns(weights, np.array([[-3.0, 0], [0, 0]]), 0.0)[0] == -1.0  # floored at -100 %


def test_uplift_share_is_the_recovered_part_of_the_oracles_gain() -> None:
    assert uplift_share(0.006, 0.002, 0.010) == pytest.approx(0.5)
    assert uplift_share(0.0, 0.002, 0.010) == pytest.approx(-0.25)
    assert math.isnan(uplift_share(0.01, 0.002, 0.002))  # no uplift to share
