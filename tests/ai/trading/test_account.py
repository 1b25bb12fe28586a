"""Tests of the trading actions' exposure arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from ai.trading.account import Action, next_exposure
from ai.trading.options import TradingEnvOptions


@pytest.mark.parametrize(("start", "action", "expected"), [
    (0.0, Action.HOLD, 0.0), (0.3, Action.HOLD, 0.3),
    (0.0, Action.LONG, 0.1), (0.2, Action.LONG, 0.3), (0.95, Action.LONG, 1.0), (-0.3, Action.LONG, 0.1),
    (0.0, Action.SHORT, -0.1), (-0.95, Action.SHORT, -1.0), (0.4, Action.SHORT, -0.1),
    (0.3, Action.REDUCE, 0.15), (-0.5, Action.REDUCE, -0.25), (0.015, Action.REDUCE, 0.0),
    (0.7, Action.CLOSE, 0.0), (-0.7, Action.EMERGENCY_FLATTEN, 0.0),
])
def test_each_action_sets_the_documented_exposure(start: float, action: Action, expected: float) -> None:
    opts = TradingEnvOptions().with_changes(position_size=0.1)  # the seed's 10 % steps
    assert next_exposure(np.array([start]), np.array([int(action)]), opts)[0] == pytest.approx(expected)


@pytest.mark.parametrize(("start", "action", "expected"), [
    (0.0, Action.LONG, 1.0), (-1.0, Action.LONG, 1.0), (0.5, Action.LONG, 1.0), (1.0, Action.SHORT, -1.0),
    (1.0, Action.REDUCE, 0.5), (1.0, Action.HOLD, 1.0), (-1.0, Action.CLOSE, 0.0),
])
def test_by_default_one_decision_reaches_a_full_position(start: float, action: Action, expected: float) -> None:
    opts = TradingEnvOptions()
    assert opts.position_size == opts.max_exposure == 1.0
    assert next_exposure(np.array([start]), np.array([int(action)]), opts)[0] == pytest.approx(expected)
