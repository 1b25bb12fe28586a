"""What the strategy-weight agent trains on: the 8 strategies' trades and the candles on one grid of
rebalancing periods, split into a training slice and a held-out end.

Only trades of the 8 strategies count (another book's trades share the history file). Too little data is a
:class:`NotEnoughDataError` that says what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from ai.allocation.env import history_from_frames, load_primary_candles, load_trades
from ai.allocation.features import StrategyHistory, to_ms
from core.config import Config
from core.contracts.pnl_history import history_path
from core.errors import DataError

MIN_TRAIN_PERIODS = 2
"""Rebalancing periods the training slice needs at least (an episode has one step or more)."""


class NotEnoughDataError(DataError):
    """Too few trades or rebalancing periods to train on; the message says what is missing."""


@dataclass(frozen=True)
class TrainingData:
    """The history on one grid, split into a training slice and the held-out end."""

    history: StrategyHistory
    n_train: int
    trades: int

    @property
    def holdout(self) -> tuple[int, int]:
        return self.n_train, self.history.n_periods

    def data_range(self) -> dict[str, Any]:
        return {**self.history.data_range(), "train_periods": self.n_train,
                "holdout_periods": self.history.n_periods - self.n_train}


def count_trades(cfg: Config) -> int:
    """Valid trades of the 8 strategies in the closed-trade history."""
    return len(load_trades(cfg))


def split_periods(n_periods: int, holdout_fraction: float) -> int:
    """Periods of the training slice: all but the last ``holdout_fraction`` (at least one held out)."""
    return n_periods - max(1, int(round(n_periods * holdout_fraction)))


def min_periods_to_train(holdout_fraction: float) -> int:
    """The fewest periods whose split leaves :data:`MIN_TRAIN_PERIODS` to train on (the held-out share is rounded,
    so with a large ``holdout_fraction`` one more period can be needed than the training minimum plus one)."""
    n = MIN_TRAIN_PERIODS + 1
    while split_periods(n, holdout_fraction) < MIN_TRAIN_PERIODS:
        n += 1
    return n


def prepare_training_data(cfg: Config, as_of_ms: int | None = None,
                          candles: pd.DataFrame | None = None) -> TrainingData:
    """Trades and candles as a split history; :class:`NotEnoughDataError` when there is too little.

    ``as_of_ms``: only trades closed at or before it (the trader's clock: in a replay the history may hold
    trades of a later time, which a model deciding at the clock must not have seen). ``candles``: the primary
    symbol's candles when the caller has them already (default: loaded from the configured source).
    """
    acfg = cfg.strategy_agent
    if not history_path(cfg).is_file():
        raise NotEnoughDataError(
            f"{history_path(cfg)} not found: no closed trades yet; run the paper trader until at least "
            f"{acfg.min_trades} trades of the 8 strategies have closed (`strategy_agent.min_trades`)")
    trades = load_trades(cfg)
    if as_of_ms is not None:
        trades = trades[to_ms(pd.DatetimeIndex(trades["closed_at"])) <= as_of_ms]
    if len(trades) < acfg.min_trades:
        raise NotEnoughDataError(
            f"{history_path(cfg)} holds {len(trades)} closed trade(s) of the 8 strategies; at least "
            f"{acfg.min_trades} are needed before training (`strategy_agent.min_trades`)")
    history = history_from_frames(cfg, trades, candles if candles is not None else load_primary_candles(cfg))
    n_train = split_periods(history.n_periods, acfg.holdout_fraction)
    if n_train < MIN_TRAIN_PERIODS:
        raise NotEnoughDataError(
            f"the trades span {history.n_periods} rebalancing period(s) of {acfg.rebalance_period}; at least "
            f"{min_periods_to_train(acfg.holdout_fraction)} are needed (training plus a held-out part); wait for more history or "
            "shorten `strategy_agent.rebalance_period`")
    return TrainingData(history, n_train, len(trades))
