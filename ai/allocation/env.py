"""The strategy-weight environment: each step allocates the 8 strategies for one rebalancing period.

The state is the 42 features of :mod:`ai.allocation.features` (market, portfolio, strategy performance,
regime, recent strategy performance), computed from the trade history and the primary symbol's candles up to the decision time only. The
portfolio being steered is the *sleeve*: the 8 strategies weighted by the agent, each earning what the
strategy itself earned in the period (the sum of its trades' ``pnl_pct``, which is independent of the
allocation the trader actually used), less turnover costs.

    history = load_strategy_history(cfg)                  # from state/pnl_history.csv and the candles
    env = StrategyWeightEnv(history, cfg.strategy_agent)  # a gymnasium.Env; check_env passes

Reward, per step ``k`` with weights ``w_k`` (the action, normalized), strategy returns ``R_k`` and the
sleeve's last ``L`` period returns ``r`` (this one included; before the episode the sleeve held equal weights):

    r_k      = w_k . R_k - turnover_cost * sum(|w_k - w_{k-1}|)
    sharpe   = clip(sharpe_ratio(r, periods_per_year) / sharpe_scale, -5, 5)      (0 while undefined)
    pnl      = clip(r_k / pnl_scale, -5, 5)
    drawdown = clip(-drawdown_series(r)[-1] / drawdown_scale, 0, 5)               (below the window's peak)
    reward   = w_sharpe * sharpe + w_pnl * pnl - w_drawdown * drawdown              (weights from the config)

The default weights are 0 / 1 / 0: the reward is the period's return after costs. The rolling Sharpe ratio is
mostly the result of earlier decisions, and on planted histories (``scripts/bench_learning.py --agent
allocation``) the seed's 0.6 / 0.3 / 0.1 learned markedly slower.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium import spaces

from ai.allocation.features import (
    EQUAL_WEIGHTS,
    FEATURE_CLIP,
    N_FEATURES,
    N_STRATEGIES,
    PORTFOLIO,
    StrategyHistory,
    TradeArrays,
    build_history,
    ms_to_iso,
    portfolio_features,
    sanitize_weights,
    to_ms,
    window,
)
from analytics.metrics import drawdown_series, sharpe_ratio
from analytics.returns import load_strategy_trades
from core.config import STRATEGIES, Config, StrategyAgentConfig
from core.errors import DataError, RetryableError
from market.sources import load_candles

log = logging.getLogger(__name__)

RUIN_EQUITY = 1e-9
"""Sleeve equity (from 1) at or below which the episode terminates: nothing is left to allocate."""


@dataclass(frozen=True)
class RewardParts:
    """The reward's components (already scaled and clipped) and their weighted sum."""

    sharpe: float
    pnl: float
    drawdown_penalty: float
    reward: float


def reward_parts(sleeve_returns: Sequence[float], acfg: StrategyAgentConfig, periods_per_year: float) -> RewardParts:
    """The reward of the step whose return is the last of ``sleeve_returns`` (the sleeve's last L returns)."""
    r = np.asarray(sleeve_returns, dtype=np.float64)
    sharpe = sharpe_ratio(r, periods_per_year)
    sharpe_part = 0.0 if math.isnan(sharpe) else float(np.clip(sharpe / acfg.sharpe_scale, -FEATURE_CLIP, FEATURE_CLIP))
    pnl_part = float(np.clip(r[-1] / acfg.pnl_scale, -FEATURE_CLIP, FEATURE_CLIP))
    below_peak = -float(drawdown_series(r)[-1])
    penalty = float(np.clip(below_peak / acfg.drawdown_scale, 0.0, FEATURE_CLIP))
    reward = (acfg.reward_sharpe_weight * sharpe_part + acfg.reward_pnl_weight * pnl_part
              - acfg.reward_drawdown_weight * penalty)
    return RewardParts(sharpe_part, pnl_part, penalty, float(reward))


def sleeve_return(weights: np.ndarray, previous: np.ndarray, strategy_returns: np.ndarray,
                  turnover_cost: float) -> tuple[float, float, float]:
    """(net return, gross return, turnover) of one period; a loss is floored at -100 %."""
    turnover = float(np.abs(weights - previous).sum())
    gross = float(weights @ strategy_returns)
    return max(gross - turnover_cost * turnover, -1.0), gross, turnover


class StrategyWeightEnv(gym.Env[np.ndarray, np.ndarray]):
    """Allocate 8 trading strategies, one rebalancing period at a time, over a window of the trade history.

    ## Action Space
    ``Box(0, 1, (8,), float32)``: one weight per strategy, in the order of ``core.config.STRATEGIES``. The
    weights are used on the simplex: NaN and negative entries become 0 and the vector is divided by its sum
    (an all-zero action means equal weights), so any action is valid.

    ## Observation Space
    ``Box(-5, 5, (42,), float32)``: the features of :mod:`ai.allocation.features` at the decision time (its
    module docstring has the table): market (8), portfolio (6), strategy Sharpe and drawdown (16), regime (4), recent strategy performance (8).
    Always finite; only data up to the decision time is used.

    ## Rewards
    ``w_sharpe * sharpe + w_pnl * pnl - w_drawdown * drawdown_penalty`` (0 / 1 / 0 by default) over the
    sleeve's returns after turnover costs; see :func:`reward_parts` and the module docstring.

    ## Starting State
    A window of ``episode_length`` periods (fewer when the history is shorter) starts at a random period
    drawn with ``self.np_random``, preferring starts with a full look-back window behind them. Before the start
    the sleeve held equal weights. ``reset(options={"start": k, "length": n})`` picks the window instead.

    ## Episode End
    *Truncated* when the window's last period has been stepped (the data of the episode ends).
    *Terminated* when the sleeve's equity is ruined (a period return of -100 %).

    ## Arguments
    ``history``: a :class:`~ai.allocation.features.StrategyHistory`; ``acfg``: the ``strategy_agent`` config;
    ``periods``: ``(first, end)`` period indexes episodes may use (the training or the held-out slice).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, history: StrategyHistory, acfg: StrategyAgentConfig,
                 periods: tuple[int, int] | None = None) -> None:
        super().__init__()
        first, end = periods if periods is not None else (0, history.n_periods)
        if not 0 <= first < end <= history.n_periods:
            raise ValueError(f"periods {periods} must satisfy 0 <= first < end <= {history.n_periods}")
        self.history = history
        self.acfg = acfg
        self.first, self.end = int(first), int(end)
        self.action_space = spaces.Box(0.0, 1.0, (N_STRATEGIES,), np.float32)
        self.observation_space = spaces.Box(-FEATURE_CLIP, FEATURE_CLIP, (N_FEATURES,), np.float32)
        self._k = self.first
        self._stop = self.end
        self._weights = EQUAL_WEIGHTS.copy()
        self._sleeve: deque[float] = deque(maxlen=acfg.window_periods)
        self._equity = 1.0

    # -- episode window ---------------------------------------------------------------------------------

    @property
    def max_length(self) -> int:
        """Length of a random episode: ``episode_length`` periods, or all the periods there are."""
        return min(self.acfg.episode_length, self.end - self.first)

    def _window(self, options: dict[str, Any] | None) -> tuple[int, int]:
        if options and "start" in options:
            start = int(options["start"])
            length = int(options.get("length", self.end - start))
            if not (self.first <= start and length >= 1 and start + length <= self.end):
                raise ValueError(f"episode start {start} and length {length} must lie within periods "
                                 f"[{self.first}, {self.end})")
            return start, length
        length = self.max_length
        latest = self.end - length
        # Starts with a full look-back window behind them see real history rather than the zero padding.
        earliest = max(self.first, min(self.acfg.window_periods, latest))
        return int(self.np_random.integers(earliest, latest + 1)), length

    # -- gymnasium API ----------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        start, length = self._window(options)
        self._k, self._stop = start, start + length
        self._weights = EQUAL_WEIGHTS.copy()
        before = window(self.history.returns, start, self.acfg.window_periods)
        self._sleeve = deque((float(r) for r in before @ EQUAL_WEIGHTS), maxlen=self.acfg.window_periods)
        self._equity = 1.0
        return self._observation(), {"period": start, "time": self._time(start)}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._k >= self._stop:
            raise RuntimeError("step() called after the episode ended; call reset() first")
        weights = sanitize_weights(action)
        net, gross, turnover = sleeve_return(weights, self._weights, self.history.returns[self._k],
                                             self.acfg.turnover_cost)
        self._sleeve.append(net)
        self._equity *= 1.0 + net
        parts = reward_parts(self._sleeve, self.acfg, self.history.periods_per_year)
        self._weights = weights
        self._k += 1
        terminated = self._equity <= RUIN_EQUITY
        truncated = not terminated and self._k >= self._stop
        info = {
            "period": self._k - 1, "time": self._time(self._k), "portfolio_return": net, "gross_return": gross,
            "turnover": turnover, "equity": self._equity, "sharpe": parts.sharpe, "pnl": parts.pnl,
            "drawdown_penalty": parts.drawdown_penalty,
        }
        return self._observation(), parts.reward, terminated, truncated, info

    # -- state ------------------------------------------------------------------------------------------

    @property
    def weights(self) -> np.ndarray:
        """The weights currently held (equal at the start of an episode)."""
        return self._weights.copy()

    @property
    def period(self) -> int:
        """Index of the current decision boundary."""
        return self._k

    def _observation(self) -> np.ndarray:
        obs = self.history.base[self._k].copy()
        obs[PORTFOLIO] = portfolio_features(self._sleeve, self._weights, self.history.traded(self._k), self.acfg)
        return obs.astype(np.float32)

    def _time(self, k: int) -> str:
        return ms_to_iso(int(self.history.grid.boundaries[k]))


# ---------------------------------------------------------------------------------------------- loading


def primary_symbol(cfg: Config) -> str:
    """The symbol whose candles give the market and regime features (the first of ``market.symbols``)."""
    if not cfg.market.symbols:
        raise ValueError("market.symbols is empty; list at least one BASE/QUOTE symbol")
    return cfg.market.symbols[0]


def history_from_frames(cfg: Config, trades: pd.DataFrame, candles: pd.DataFrame | None,
                        end: pd.Timestamp | int | None = None, max_periods: int | None = None,
                        acfg: StrategyAgentConfig | None = None,
                        last_boundaries: int | None = None) -> StrategyHistory:
    """A :class:`StrategyHistory` from a trade frame and the primary symbol's candles.

    ``end`` (default: the last trade's close) anchors the grid; data after it is ignored. ``last_boundaries``:
    see :func:`ai.allocation.features.build_history`.
    """
    arrays = TradeArrays.from_frame(trades)
    if end is None:
        if len(arrays) == 0:
            raise ValueError("no trades of the 8 strategies: nothing to build a history from")
        end_ms = int(arrays.closed_ms[-1])
    elif isinstance(end, pd.Timestamp):
        end_ms = int(to_ms(pd.DatetimeIndex([end]))[0])
    else:
        end_ms = int(end)
    return build_history(arrays, candles, acfg or cfg.strategy_agent, cfg.market.timeframe, cfg.market.calendar,
                         end_ms, max_periods, last_boundaries)


def weights_dict(weights: np.ndarray) -> dict[str, float]:
    """A weight vector as ``{strategy: weight}`` in the order of ``core.config.STRATEGIES``."""
    return {name: float(w) for name, w in zip(STRATEGIES, weights, strict=True)}


def load_trades(cfg: Config) -> pd.DataFrame:
    """Valid closed trades of the 8 strategies from ``state/pnl_history.csv`` (malformed rows logged, skipped)."""
    trades, _skipped = load_strategy_trades(cfg)
    return trades


def load_primary_candles(cfg: Config) -> pd.DataFrame | None:
    """The primary symbol's candles, or None (logged) when the source cannot give any right now.

    Without candles the candle features are 0, so an unreachable exchange degrades the state, not the daemon.
    A bad configuration still stops the command (:class:`~core.errors.ConfigError`).
    """
    symbol = primary_symbol(cfg)
    try:
        return load_candles(cfg, [symbol])[symbol]
    except (RetryableError, DataError) as exc:
        log.warning("no candles for %s (%s); the market and regime features will be 0", symbol, exc)
        return None
