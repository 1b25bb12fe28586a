"""The gappy history fixture shared by the performance tests."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest

from core.config import Config
from core.contracts.pnl_history import append_trades
from tests.analytics.performance.support import (
    FIRST_DAY,
    N_DAYS,
    W_A,
    W_B,
    at,
    expected_daily,
    record,
    synthetic_trades,
    write_history_records,
)


@pytest.fixture
def history(cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    rows = synthetic_trades(seed=7)
    append_trades(cfg.state_dir / "pnl_history.csv", rows)
    # Weights in force: equal (untracked) for days 0-9, A from day 10, B from the middle of day 20.
    write_history_records(cfg, [
        "not json at all",
        record(at(FIRST_DAY + timedelta(days=10)), W_A, "rl"),
        json.dumps({"at": "2024-03-20T00:00:00Z", "weights": {"turtle_trading": 1.0}, "source": "rl"}),
        record(at(FIRST_DAY + timedelta(days=20), 12.0), W_B, "portfolio_optimizer"),
    ])
    return expected_daily(rows, FIRST_DAY, N_DAYS)
