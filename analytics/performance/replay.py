"""Replaying the strategies' daily returns under the weights each portfolio had in force.

Per-strategy daily returns are those of :mod:`analytics.returns` (the sum of ``pnl_pct`` of a strategy's trades
closed that UTC day, 0 on days without trades), from the first trade to the report day. A portfolio's return on
day d is ``sum_i w_i(d) r_i(d)``:

* ``allocated``: ``w(d)`` is the time-weighted mean over day d of the weights in force according to the weight
  history (:mod:`analytics.performance.tracking`); before the first record equal weights are assumed.
* ``equal_weight``: 1/8 each.
* ``portfolio_optimizer`` and ``strategy_lab``: recomputed every ``performance.rebalance_days`` days (the first
  on the first day of the history) with their configured settings, from the trades closed *before* the
  rebalance day only (``as_of`` = the day before), so there is no look-ahead; equal weights while a source would
  publish nothing (not enough history). The weights are those of the sources' own ``compute_weights`` (a test
  holds them equal): the replay runs their steps on the trades read once, instead of re-reading the history file
  at every rebalance, which would take minutes on a year of trades, and takes the recomputations whose inputs
  did not change since the previous report from :mod:`analytics.performance.rebalance_memo`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from analytics import portfolio_optimizer as po
from analytics import strategy_lab as lab
from analytics.performance.rebalance_memo import RebalanceMemo
from analytics.performance.tracking import WeightHistory, time_weighted_mean
from analytics.returns import daily_strategy_returns, load_strategy_trades
from analytics.weight_source import InsufficientHistoryError
from core.config import STRATEGIES, Config

ALLOCATED = "allocated"
EQUAL = "equal_weight"
OPTIMIZER = "portfolio_optimizer"
LAB = "strategy_lab"
PORTFOLIOS: tuple[str, ...] = (ALLOCATED, EQUAL, OPTIMIZER, LAB)
EQUAL_VECTOR = np.full(len(STRATEGIES), 1.0 / len(STRATEGIES))
"""1/8 for each strategy, in the order of :data:`core.config.STRATEGIES`."""

WeightsAsOf = Callable[[date], dict[str, float] | None]


def epoch_seconds(days: pd.DatetimeIndex) -> np.ndarray:
    """Each day's start as UTC epoch seconds."""
    return days.to_numpy().astype("datetime64[s]").astype(np.int64).astype(float)


def day_bounds(days: pd.DatetimeIndex, calendar: str) -> np.ndarray:
    """Start of every day of ``days`` plus the end of the last one (UTC epoch seconds).

    With the equity calendar a Friday runs to Monday, as the weekend's trades are folded into the Friday.
    """
    step = pd.offsets.BDay(1) if calendar == "equity" else pd.Timedelta(days=1)
    return np.append(epoch_seconds(days), epoch_seconds(pd.DatetimeIndex([days[-1] + step])))


def optimizer_weights_as_of(cfg: Config, trades: pd.DataFrame, as_of: date) -> dict[str, float] | None:
    """The portfolio optimizer's weights from the trades closed up to ``as_of``; None when it would publish none."""
    try:
        weights: dict[str, float] = po.payload_from_trades(cfg, trades, as_of)["weights"]
    except InsufficientHistoryError:
        return None
    return weights


def lab_weights_as_of(cfg: Config, trades: pd.DataFrame, as_of: date) -> dict[str, float] | None:
    """The strategy lab's weights from the trades closed up to ``as_of``; None when it would publish none."""
    try:
        weights: dict[str, float] = lab.payload_from_trades(cfg, trades, as_of)["weights"]
    except InsufficientHistoryError:
        return None
    return weights


@dataclass(frozen=True)
class RebalancedWeights:
    """Daily weights (n x 8) of a periodically recomputed source and how many recomputations had no weights."""

    weights: np.ndarray
    rebalances: int
    without_weights: int
    first_with_weights: str | None


def replay_rebalanced(days: pd.DatetimeIndex, every_days: int, weights_as_of: WeightsAsOf) -> RebalancedWeights:
    """Recompute the weights on the first day and then every ``every_days`` days, each time from the data up to
    the day before (equal weights when there are none); each set holds until the next recomputation."""
    rows = np.empty((len(days), len(STRATEGIES)))
    current, last = EQUAL_VECTOR, None
    rebalances = without = 0
    first_with: str | None = None
    for i, day in enumerate(days):
        if last is None or (day - last).days >= every_days:
            weights = weights_as_of((day - pd.Timedelta(days=1)).date())
            rebalances += 1
            if weights is None:
                without += 1
                current = EQUAL_VECTOR
            else:
                current = np.array([weights[s] for s in STRATEGIES])
                first_with = first_with or day.date().isoformat()
            last = day
        rows[i] = current
    return RebalancedWeights(rows, rebalances, without, first_with)


@dataclass(frozen=True)
class Replay:
    """Daily per-strategy returns and trade counts, and each portfolio's daily weights, over the whole history."""

    days: pd.DatetimeIndex
    returns: np.ndarray
    """(days x 8) daily returns per strategy."""
    counts: np.ndarray
    """(days x 8) trades closed per strategy and day."""
    weights: dict[str, np.ndarray]
    """Per portfolio, (days x 8) weights in force each day."""
    baselines: dict[str, RebalancedWeights] = field(default_factory=dict)
    trades: int = 0
    skipped_rows: int = 0

    @property
    def size(self) -> int:
        return len(self.days)

    def portfolio_returns(self, name: str) -> np.ndarray:
        return (self.returns * self.weights[name]).sum(axis=1)

    def active_days(self, name: str) -> np.ndarray:
        """Days on which a strategy with a positive weight closed a trade."""
        return ((self.counts * (self.weights[name] > 0)).sum(axis=1)) > 0


def build_replay(cfg: Config, as_of: date, history: WeightHistory,
                 loaded: tuple[pd.DataFrame, int] | None = None) -> Replay:
    """Daily returns of the 8 strategies from the first trade to ``as_of`` and the portfolios' daily weights.

    ``loaded`` is the (trades, skipped rows) of :func:`analytics.returns.load_strategy_trades` when the caller
    has read them already.
    """
    trades, skipped = loaded if loaded is not None else load_strategy_trades(cfg)
    calendar = cfg.market.calendar
    first_day = trades["closed_at"].min().tz_convert("UTC").date() if not trades.empty else as_of
    lookback = max((as_of - first_day).days + 1, 1)
    daily = daily_strategy_returns(trades, lookback, as_of, calendar)
    # The same aggregation with every pnl_pct set to 1 counts the trades of each strategy and day.
    counts = daily_strategy_returns(trades.assign(pnl_pct=1.0), lookback, as_of, calendar)
    days = pd.DatetimeIndex(daily.returns.index)
    if daily.days == 0:
        empty = np.empty((0, len(STRATEGIES)))
        return Replay(days, empty, empty, {name: empty for name in PORTFOLIOS}, trades=0, skipped_rows=skipped)
    every = cfg.performance.rebalance_days
    memo = RebalanceMemo(cfg, trades)  # the recomputations of the previous report that still hold
    optimizer = replay_rebalanced(days, every, memo.weights_as_of(
        OPTIMIZER, repr(cfg.portfolio_optimizer), cfg.portfolio_optimizer.lookback_days,
        lambda d: optimizer_weights_as_of(cfg, trades, d)))
    lab_w = replay_rebalanced(days, every, memo.weights_as_of(
        LAB, repr(cfg.strategy_lab), cfg.strategy_lab.window_days, lambda d: lab_weights_as_of(cfg, trades, d)))
    memo.save()
    weights = {
        ALLOCATED: time_weighted_mean(history.times, history.weights, EQUAL_VECTOR, day_bounds(days, calendar)),
        EQUAL: np.tile(EQUAL_VECTOR, (len(days), 1)),
        OPTIMIZER: optimizer.weights,
        LAB: lab_w.weights,
    }
    return Replay(days, daily.returns.to_numpy(dtype=float), counts.returns.to_numpy(dtype=float), weights,
                  {OPTIMIZER: optimizer, LAB: lab_w}, int(sum(daily.trades.values())), skipped)
