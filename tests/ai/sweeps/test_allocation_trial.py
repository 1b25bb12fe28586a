"""Tests of :mod:`ai.sweeps.allocation_trial`: each symbol of a sweep trains on its own candles."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ai.sweeps.allocation_trial import allocation_data
from core.contracts.pnl_history import append_trades, history_path
from market.sources import load_candles
from tests.ai.allocation.support import planted_trades
from tests.ai.sweeps.support import tiny_config, write_tiny


def test_every_synthetic_symbol_keeps_its_own_candles_as_the_primary_market(tmp_path: Path) -> None:
    cfg = tiny_config(write_tiny(tmp_path))
    append_trades(history_path(cfg), planted_trades(0.0, days=30))
    btc, eth = (allocation_data(cfg, symbol) for symbol in ("BTC/USDT", "ETH/USDT"))
    own = load_candles(cfg, ["BTC/USDT", "ETH/USDT"])
    assert not own["BTC/USDT"]["close"].equals(own["ETH/USDT"]["close"])  # two different paths to tell apart
    assert btc.n_train == eth.n_train and btc.trades == eth.trades  # the same trades ...
    assert not np.array_equal(btc.history.base, eth.history.base)  # ... over each symbol's own market
