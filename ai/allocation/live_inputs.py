"""What the inference daemon keeps between two updates, so that one update costs the same at 1k or 100k trades.

- The model: read once (numpy forward pass, :mod:`ai.ppo.numpy_policy`, no torch) and again only when a model
  file changes (size, modification time or inode).
- The trades: read incrementally (:class:`core.contracts.pnl_history.HistoryTail`), keeping in memory only the
  periods a decision looks at (twice the model's ``window_periods`` and a margin) plus the oldest trade, which
  fixes where the period grid starts exactly as a full read would. The decision time is the trader's clock, which
  in a fast replay lags the newest trade by what the trader replays between two status writes: the first
  decision that finds its trades dropped widens what is kept by twice that lag (up to one more decision span),
  so the next ones are served from memory again. A decision time further back (a replay started again over an
  older history) reads the history in full for that update.
- The candles: loaded again only when a new candle may have closed (the current timeframe bucket changed) or a
  configured CSV candle file changed.

The inputs are those a full read gives (tested against :func:`ai.allocation.env.load_trades`); only the work
of getting them differs.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ai.allocation.agent import StrategyAgent, load_agent, with_feature_params
from ai.allocation.env import load_primary_candles, load_trades
from core.atomic import file_signature
from core.config import STRATEGIES, Config
from core.contracts.allocation_model import latest_path, previous_path
from core.contracts.pnl_history import HistoryTail, history_path
from core.timeframes import timeframe_to_ms

log = logging.getLogger(__name__)

MARGIN_PERIODS = 2
"""Periods kept beyond the two windows a decision replays, so a decision time a little after the newest trade
still finds every trade it needs in memory."""


def decision_span_ms(cfg: Config, agent: StrategyAgent) -> int:
    """How far back from its decision time a decision of ``agent`` may look (its feature settings)."""
    acfg = with_feature_params(cfg.strategy_agent, agent.feature_params)
    return (2 * acfg.window_periods + MARGIN_PERIODS) * timeframe_to_ms(acfg.rebalance_period)


def decision_window(cfg: Config, agent: StrategyAgent, trades: pd.DataFrame, t_ms: int) -> pd.DataFrame:
    """The trades (sorted by close) a decision at ``t_ms`` can use: those closed within
    :func:`decision_span_ms` before it, and the oldest one, which fixes where the period grid starts. The
    features of these equal those of all trades; the one-shot ``--update`` builds them from these only."""
    if trades.empty:
        return trades
    closed = trades["closed_at"]
    since = pd.Timestamp(t_ms - decision_span_ms(cfg, agent), unit="ms", tz="UTC")
    start = int(closed.searchsorted(since)) if closed.is_monotonic_increasing else None
    if start is None:
        keep = (closed >= since).to_numpy()
        keep[int(np.argmin(closed.to_numpy()))] = True
        return trades.loc[keep].reset_index(drop=True)
    return pd.concat([trades.iloc[:min(start, 1)], trades.iloc[max(start, 1):]], ignore_index=True)


FULL_READ_LOG_EVERY = 100
"""A run of full reads (a replay over an older history) is logged at its first and every this many updates."""


class LiveInputs:
    """The model, the recent trades and the candles of the inference daemon, refreshed only where they changed."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._agent: StrategyAgent | None = None
        self._agent_key: tuple[Any, ...] | None = None
        self._tail: HistoryTail | None = None
        self._first: pd.DataFrame | None = None
        self._candles: pd.DataFrame | None = None
        self._candle_key: tuple[Any, ...] | None = None
        self._lag_ms = 0
        """Kept on top of a decision's span: how far behind the newest trade decision times were seen."""
        self.full_reads = 0
        """Updates that had to read the whole history (a decision time before the trades kept in memory)."""

    def agent(self) -> StrategyAgent | None:
        """The model in force (see :func:`ai.allocation.agent.load_agent`), reloaded when a model file changed."""
        key = (file_signature(latest_path(self.cfg)), file_signature(previous_path(self.cfg)))
        if key != self._agent_key or self._agent is None:
            self._agent = load_agent(self.cfg, numpy_policy=True)
            self._agent_key = key
        return self._agent

    def candles(self) -> pd.DataFrame | None:
        """The primary symbol's candles, loaded again when a new candle may have closed or a CSV changed."""
        step = timeframe_to_ms(self.cfg.market.timeframe)
        csv_files = sorted(self.cfg.market.csv_paths.values())
        key = (int(time.time() * 1000) // step, tuple(file_signature(self._resolve(f)) for f in csv_files))
        if key != self._candle_key:
            self._candles = load_primary_candles(self.cfg)
            self._candle_key = key if self._candles is not None else None  # no candles: try again next time
        return self._candles

    def _resolve(self, name: str) -> Path:
        path = Path(name).expanduser()
        return path if path.is_absolute() else self.cfg.home / path

    def span_ms(self, agent: StrategyAgent) -> int:
        """How far back from the newest trade a decision of ``agent`` may look (its feature settings)."""
        return decision_span_ms(self.cfg, agent)

    def trades(self, agent: StrategyAgent) -> pd.DataFrame:
        """Valid trades of the 8 strategies a decision of ``agent`` can use: the recent ones and the oldest."""
        span = self.span_ms(agent) + self._lag_ms
        if self._tail is None or self._tail.keep_span is None or self._tail.keep_span < pd.Timedelta(milliseconds=span):
            self._tail = HistoryTail(history_path(self.cfg), keep_span=pd.Timedelta(milliseconds=span))
            self._first = None
        update = self._tail.poll()
        for problem in update.problems:
            log.warning("skipped a trade row: %s", problem)
        self._remember_first(update.new, update.reset)
        recent = self._tail.trades
        recent = recent[recent["strategy"].isin(STRATEGIES)]
        if self._first is not None and (recent.empty or self._first["closed_at"].iloc[0] < recent["closed_at"].iloc[0]):
            recent = pd.concat([self._first, recent], ignore_index=True)
        return recent.reset_index(drop=True)

    def _remember_first(self, new: pd.DataFrame, reset: bool) -> None:
        ours = new[new["strategy"].isin(STRATEGIES)]
        if reset:
            self._first = None
        if ours.empty:
            return
        candidate = ours.iloc[[0]]
        if self._first is None or candidate["closed_at"].iloc[0] < self._first["closed_at"].iloc[0]:
            self._first = candidate.reset_index(drop=True)

    def covers(self, agent: StrategyAgent, t_ms: int) -> bool:
        """True when the trades in memory hold every trade a decision at ``t_ms`` can use."""
        dropped = self._tail.dropped_before if self._tail is not None else None
        if dropped is None:
            return True
        return t_ms - self.span_ms(agent) + MARGIN_PERIODS * self._period_ms(agent) >= dropped.value // 1_000_000

    def _period_ms(self, agent: StrategyAgent) -> int:
        return timeframe_to_ms(with_feature_params(self.cfg.strategy_agent, agent.feature_params).rebalance_period)

    def all_trades(self, agent: StrategyAgent, t_ms: int) -> pd.DataFrame:
        """Every valid trade of the 8 strategies (a full read, for a decision time ``t_ms`` before the kept
        trades); when the decision time lags the newest trade by less than a decision span, what is kept from
        the next update on grows to cover twice that lag."""
        self.full_reads += 1
        lag_ms = self._newest_ms() - t_ms
        span, period = self.span_ms(agent), self._period_ms(agent)
        wanted = -(-2 * lag_ms // period) * period  # whole periods, so a slightly longer lag still fits
        if self._lag_ms < wanted <= span:
            self._lag_ms = wanted
            log.info("the decision time lags the newest trade by %.1f periods: keeping %d more periods of trades "
                     "in memory (this update reads the whole history)", lag_ms / period, wanted // period)
        elif self.full_reads == 1 or self.full_reads % FULL_READ_LOG_EVERY == 0:
            log.info("the decision time lies before the trades kept in memory: reading the whole history "
                     "(%d such updates so far)", self.full_reads)
        return load_trades(self.cfg)

    def _newest_ms(self) -> int:
        trades = self._tail.trades if self._tail is not None else None
        if trades is None or trades.empty:
            return 0
        return int(trades["closed_at"].iloc[-1].value // 1_000_000)
