"""Fixtures of the strategy-weight agent's tests, over the helpers of support.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.config import Config
from tests.ai.allocation import support

TradeRows = Callable[..., list[dict[str, Any]]]
WriteTrades = Callable[..., None]
Fast = Callable[..., Config]


@pytest.fixture
def trade_rows() -> TradeRows:
    """``trade_rows(n, seed=0, start=2024-01-02, days=30)``: ``n`` random trades of the 8 strategies."""
    return support.trade_rows


@pytest.fixture
def write_trades() -> WriteTrades:
    """``write_trades(cfg, n, seed=0, start=..., days=30)``: append ``n`` random trades to the history."""
    return support.write_trades


@pytest.fixture
def fast() -> Fast:
    """``fast(cfg, **changes)``: ``cfg`` with a strategy agent that trains in seconds (performance gate off)."""
    return support.fast


@pytest.fixture
def planted_trades() -> Callable[..., list[dict[str, Any]]]:
    """``planted_trades(edge, days=120, seed=0)``: two trades a day per strategy, N(0, 1 %), except
    turtle_trading whose mean is ``edge`` (0: a history without any edge)."""
    return support.planted_trades
