"""Helpers shared by the analytics tests: closed-trade rows of the history in the shape the trader writes."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

AS_OF = date(2024, 3, 31)
"""The last day of the windows the tests look at."""


def trade_at(closed: datetime, strategy: str, pnl_pct: float) -> dict[str, object]:
    """A long BTC/USDT trade of one unit at 100, closed at ``closed`` (opened two hours before) with ``pnl_pct``."""
    return {
        "closed_at": closed.isoformat(), "opened_at": (closed - timedelta(hours=2)).isoformat(),
        "symbol": "BTC/USDT", "strategy": strategy, "side": "long", "qty": 1.0, "entry_price": 100.0,
        "exit_price": 100.0 * (1 + pnl_pct), "pnl": 100.0 * pnl_pct, "pnl_pct": pnl_pct, "fees": 0.0,
        "equity_after": 10_000.0,
    }


def trade(day: date, strategy: str, pnl_pct: float, hour: int = 12) -> dict[str, object]:
    """:func:`trade_at` closed on ``day`` at ``hour`` UTC."""
    return trade_at(datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc), strategy, pnl_pct)
