"""Per-strategy daily returns from the closed-trade history: what the fallback sources and the performance
report measure strategies by.

Trades. :func:`load_strategy_trades` reads ``state/pnl_history.csv`` (through its contract) and keeps the
trades of the 8 strategies; rows of other books (``rl_v3_ppo``) are dropped and malformed rows are counted. A
one-shot command parses only the rows appended since its previous run (:func:`cache_history_reads`,
:mod:`core.contracts.pnl_history_cache`); a daemon keeps the history in memory (:func:`read_history_incrementally`).

Window. A series ends on ``as_of``, by default the UTC day of the newest trade in the history
(:func:`history_day`): the history's own clock, which is today for a trader running live and the simulated day
for a replay of past or synthetic candles (whose trades may be years old, and would all fall outside a window
ending today). With an empty history the window ends today.

Daily returns. A strategy's return on a day is the **sum** of ``pnl_pct`` of its trades closed that UTC day:
each trade's return is on its own notional, so the sum is the day's return of a sleeve that puts one notional
unit into every trade (a mean would hide how often a strategy trades). Days without a trade count as 0. The
series run from the later of the lookback start and the history's first trade, to ``as_of``; with the
``equity`` calendar, weekends are folded into the Friday before.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analytics.metrics import periods_per_year_for
from core.config import STRATEGIES, Config
from core.contracts.pnl_history import HistoryTail, history_path, read_history
from core.contracts.pnl_history_cache import read_history_cached

log = logging.getLogger(__name__)

AGGREGATION = "sum of pnl_pct of the strategy's trades closed that UTC day; days without trades count as 0"
"""How a day's return of a strategy is built, as the published documents state it."""


@dataclass(frozen=True)
class DailyReturns:
    """Per-strategy daily returns (rows: days, columns: the 8 strategies) and trades counted in them."""

    returns: pd.DataFrame
    trades: dict[str, int]
    window_start: date
    end: date
    skipped_rows: int = 0

    @property
    def days(self) -> int:
        return len(self.returns)

    def data_range(self) -> dict[str, Any]:
        first = self.returns.index[0].date().isoformat() if self.days else None
        return {"start": first, "end": self.end.isoformat(), "days": self.days,
                "trades": int(sum(self.trades.values()))}


def periods_per_year(cfg: Config) -> float:
    """Trading days a year of the configured calendar (crypto trades every day: 365; equity: 252)."""
    return periods_per_year_for("1d", cfg.market.calendar)


def today_utc() -> date:
    return datetime.now(timezone.utc).date()


_INCREMENTAL: dict[Path, tuple[HistoryTail, threading.Lock]] = {}
"""Histories this process reads incrementally (:func:`read_history_incrementally`), with a lock each: the
performance daemon's jobs run on two threads."""


def read_history_incrementally(cfg: Config) -> None:
    """From now on :func:`load_strategy_trades` of ``cfg``'s history parses only the rows appended since its
    previous call in this process (a daemon that reads the history for every report and fallback run)."""
    path = history_path(cfg)
    _INCREMENTAL.setdefault(path, (HistoryTail(path), threading.Lock()))


_CACHED: set[Path] = set()
"""Histories this process reads through the history cache (:func:`cache_history_reads`)."""


def cache_history_reads(cfg: Config) -> None:
    """From now on :func:`load_strategy_trades` of ``cfg``'s history restores the previous run's parse from
    ``state/cache`` and parses only the rows appended since, saving the state again (a one-shot command run over
    and over: ``rl_inference.py --update``, ``rl_performance.py --report``). Readers that must not write
    (the dashboard) never call it."""
    _CACHED.add(history_path(cfg))


def load_strategy_trades(cfg: Config) -> tuple[pd.DataFrame, int]:
    """Valid trades of the 8 strategies (other books dropped) and how many malformed rows were skipped."""
    path = history_path(cfg)
    kept = _INCREMENTAL.get(path)
    if kept is None:
        read = read_history_cached(path) if path in _CACHED else read_history(path)
        problems = read.problems
    else:
        with kept[1]:
            problems = kept[0].poll().problems  # only the rows not reported yet
            read = kept[0].as_read()
    for problem in problems:
        log.warning("skipped a trade row: %s", problem)
    trades = read.trades[read.trades["strategy"].isin(STRATEGIES)]
    return trades.reset_index(drop=True), read.skipped


def _trading_days(days: pd.Series | pd.DatetimeIndex, calendar: str) -> Any:
    # Equity markets close at weekends: a weekend close counts on the Friday before (monotone, so no trade
    # inside the window can land before the window's own first trading day).
    if calendar != "equity":
        return days
    if isinstance(days, pd.DatetimeIndex):
        return days - pd.to_timedelta(np.clip(days.day_of_week - 4, 0, None), unit="D")
    return days - pd.to_timedelta((days.dt.day_of_week - 4).clip(lower=0), unit="D")


def history_day(trades: pd.DataFrame) -> date:
    """The UTC day of the newest trade (the history's clock, see the module docstring); today when empty."""
    if trades.empty:
        return today_utc()
    return trades["closed_at"].max().tz_convert("UTC").date()


def daily_strategy_returns(trades: pd.DataFrame, lookback_days: int, as_of: date | None = None,
                           calendar: str = "crypto") -> DailyReturns:
    """Daily returns of each strategy over the ``lookback_days`` calendar days ending ``as_of``.

    ``as_of`` defaults to :func:`history_day`. See the module docstring for the aggregation rule. An empty
    history gives an empty frame.
    """
    end = as_of or history_day(trades)
    window_start = end - timedelta(days=lookback_days - 1)
    empty = DailyReturns(pd.DataFrame(columns=list(STRATEGIES), dtype=float), {s: 0 for s in STRATEGIES},
                         window_start, end)
    if trades.empty:
        return empty
    first_day = trades["closed_at"].min().tz_convert("UTC").tz_localize(None).normalize()
    trades = _closed_within(trades, window_start, end)
    day = trades["closed_at"].dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    inside = trades[(day >= pd.Timestamp(window_start)) & (day <= pd.Timestamp(end))]
    if inside.empty:
        return empty
    bounds = _trading_days(pd.DatetimeIndex([pd.Timestamp(window_start), pd.Timestamp(end), first_day]), calendar)
    start = max(bounds[0], bounds[2])
    index = pd.date_range(start, bounds[1], freq="B" if calendar == "equity" else "D")
    inside_day = _trading_days(day[inside.index], calendar)
    sums = inside.assign(day=inside_day).groupby(["day", "strategy"])["pnl_pct"].sum().unstack(fill_value=0.0)
    returns = sums.reindex(index=index, columns=list(STRATEGIES), fill_value=0.0).astype(float)
    counts = inside["strategy"].value_counts()
    return DailyReturns(returns, {s: int(counts.get(s, 0)) for s in STRATEGIES}, window_start, end)


def _closed_within(trades: pd.DataFrame, first: date, last: date) -> pd.DataFrame:
    """The trades closed on the UTC days ``first`` to ``last``, found by binary search when they are sorted by
    close (a history read is), so a replay's many short windows over a long history do not each scan every
    trade; unsorted trades are returned as they are (the caller filters them)."""
    closed = trades["closed_at"]
    if not closed.is_monotonic_increasing:
        return trades
    lo = int(closed.searchsorted(pd.Timestamp(first, tz="UTC")))
    hi = int(closed.searchsorted(pd.Timestamp(last, tz="UTC") + pd.Timedelta(days=1)))
    return trades.iloc[lo:hi]


def load_daily_returns(cfg: Config, lookback_days: int, as_of: date | None = None) -> DailyReturns:
    """:func:`daily_strategy_returns` of ``state/pnl_history.csv`` with the configured calendar."""
    trades, skipped = load_strategy_trades(cfg)
    daily = daily_strategy_returns(trades, lookback_days, as_of, cfg.market.calendar)
    return DailyReturns(daily.returns, daily.trades, daily.window_start, daily.end, skipped)
