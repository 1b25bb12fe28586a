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
    opts = TradingEnvOptions()
    assert next_exposure(np.array([start]), np.array([int(action)]), opts)[0] == pytest.approx(expected)
