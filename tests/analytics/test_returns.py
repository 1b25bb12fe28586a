"""Per-strategy daily returns from the trade history: sums of a day's trades, empty days as zero, the equity
calendar's weekends folded into Friday."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from analytics import returns
from core.config import STRATEGIES, Config, replace_section
from core.contracts.pnl_history import append_trades

AS_OF = date(2024, 3, 31)


def trade(day: date, strategy: str, pnl_pct: float, hour: int = 12) -> dict[str, object]:
    closed = datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc)
    return {
        "closed_at": closed.isoformat(), "opened_at": (closed - timedelta(hours=2)).isoformat(),
        "symbol": "BTC/USDT", "strategy": strategy, "side": "long", "qty": 1.0, "entry_price": 100.0,
        "exit_price": 100.0 * (1 + pnl_pct), "pnl": 100.0 * pnl_pct, "pnl_pct": pnl_pct, "fees": 0.0,
        "equity_after": 10_000.0,
    }


def test_daily_returns_sum_the_trades_of_a_day_and_fill_empty_days_with_zero(cfg: Config) -> None:
    append_trades(cfg.state_dir / "pnl_history.csv", [
        trade(AS_OF - timedelta(days=2), STRATEGIES[0], 0.01, hour=1),
        trade(AS_OF - timedelta(days=2), STRATEGIES[0], 0.02, hour=23),
        trade(AS_OF, STRATEGIES[0], -0.005),
    ])
    daily = returns.load_daily_returns(cfg, lookback_days=10, as_of=AS_OF)
    assert daily.returns[STRATEGIES[0]].tolist() == pytest.approx([0.03, 0.0, -0.005])
    assert daily.returns[STRATEGIES[1]].tolist() == [0.0, 0.0, 0.0]
    assert daily.trades[STRATEGIES[0]] == 3


def test_equity_calendar_folds_weekend_trades_into_friday(cfg: Config) -> None:
    cfg = replace_section(cfg, "market", calendar="equity")
    saturday, friday, monday = date(2024, 3, 30), date(2024, 3, 29), date(2024, 4, 1)
    append_trades(cfg.state_dir / "pnl_history.csv", [
        trade(friday, STRATEGIES[0], 0.01), trade(saturday, STRATEGIES[0], 0.02), trade(monday, STRATEGIES[0], 0.04),
    ])
    daily = returns.load_daily_returns(cfg, lookback_days=10, as_of=monday)
    assert [d.date() for d in daily.returns.index] == [friday, monday]
    assert daily.returns[STRATEGIES[0]].tolist() == pytest.approx([0.03, 0.04])
