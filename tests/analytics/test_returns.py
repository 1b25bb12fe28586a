"""Per-strategy daily returns from the trade history: sums of a day's trades, empty days as zero, the equity
calendar's weekends folded into Friday."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from analytics import returns
from core.config import STRATEGIES, Config, replace_section
from core.contracts.pnl_history import append_trades, history_path
from core.contracts.pnl_history_cache import cache_path
from tests.analytics.support import AS_OF, trade


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


def test_incremental_reads_give_what_full_reads_give(cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(returns, "_INCREMENTAL", {})
    path = history_path(cfg)
    returns.read_history_incrementally(cfg)
    tail = returns._INCREMENTAL[path][0]
    for day in range(5, -1, -1):
        append_trades(path, [trade(AS_OF - timedelta(days=day), STRATEGIES[day], -0.01 * day),
                             {**trade(AS_OF, "rl_v3_ppo", 0.02), "equity_after": 9_000.0 + day}])
        kept = returns.load_strategy_trades(cfg)
        assert tail.trades_read == 2 * (6 - day)  # every call parsed the two new rows only
        with monkeypatch.context() as full_reads:
            full_reads.setattr(returns, "_INCREMENTAL", {})
            full = returns.load_strategy_trades(cfg)
        assert kept[0].equals(full[0]) and kept[1] == full[1] and len(kept[0]) == 6 - day


@pytest.mark.parametrize("calendar", ["crypto", "equity"])
def test_windows_of_sorted_trades_equal_those_of_the_same_trades_unsorted(cfg: Config, calendar: str) -> None:
    rows = [trade(AS_OF - timedelta(days=(i * 37) % 90), STRATEGIES[i % 8], ((i * 13) % 21 - 10) / 1000.0,
                  hour=i % 24) for i in range(400)]
    append_trades(history_path(cfg), rows)
    trades, _ = returns.load_strategy_trades(cfg)  # sorted by close: windows are found by binary search
    shuffled = trades.sample(frac=1.0, random_state=1)  # unsorted: every trade is filtered
    for lookback, as_of in ((1, AS_OF), (7, AS_OF - timedelta(days=3)), (30, AS_OF - timedelta(days=50)),
                            (200, AS_OF), (5, AS_OF - timedelta(days=200)), (10, AS_OF + timedelta(days=30))):
        fast = returns.daily_strategy_returns(trades, lookback, as_of, calendar)
        slow = returns.daily_strategy_returns(shuffled, lookback, as_of, calendar)
        assert fast.returns.equals(slow.returns), (lookback, as_of)
        assert fast.trades == slow.trades


def test_a_one_shot_command_reads_through_the_history_cache(cfg: Config) -> None:
    append_trades(history_path(cfg), [trade(AS_OF - timedelta(days=i), STRATEGIES[i % 8], 0.001 * i) for i in range(30)])
    plain = returns.load_strategy_trades(cfg)
    assert not cache_path(history_path(cfg)).exists()  # readers that must not write (the dashboard) leave none
    returns.cache_history_reads(cfg)
    cached = returns.load_strategy_trades(cfg)
    assert cache_path(history_path(cfg)).exists()
    assert cached[0].equals(plain[0]) and cached[1] == plain[1]
