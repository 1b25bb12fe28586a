"""Helpers shared by the tests of the trade history's contract: unique valid trades and their CSV lines."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from core.config import STRATEGIES
from core.contracts.pnl_history import COLUMNS

HEADER = ",".join(COLUMNS)
START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def trade(i: int, **overrides: Any) -> dict[str, Any]:
    """A valid closed trade; ``i`` makes it unique (equity_after = 10_000 + i, closed i hours after START)."""
    row: dict[str, Any] = {
        "closed_at": (START + timedelta(hours=i + 1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "opened_at": (START + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "symbol": "BTC/USDT",
        "strategy": STRATEGIES[i % len(STRATEGIES)],
        "side": "long" if i % 2 == 0 else "short",
        "qty": 0.5,
        "entry_price": 100.0,
        "exit_price": 101.0,
        "pnl": 0.5,
        "pnl_pct": 0.01,
        "fees": 0.05,
        "equity_after": 10_000.0 + i,
    }
    row.update(overrides)
    return row


def csv_line(row: dict[str, Any], columns: tuple[str, ...] = COLUMNS) -> str:
    return ",".join(str(row[c]) for c in columns)
