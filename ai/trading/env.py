"""``TradingEnv``: the trading environment of the PPO agent, one symbol's candles, six actions, 64 features.

``TradingEnv(candles, options=None, **changes)`` is a plain :class:`gymnasium.Env` (usable by any RL library);
:class:`ai.trading.vector_env.TradingVectorEnv` steps many of its episodes at once in numpy for training speed,
giving exactly the transitions of ``num_envs`` single environments reset with seeds ``seed + i``.

Options: a :class:`ai.trading.options.TradingEnvOptions` (the ``[trading_agent]`` section and the fee, see
:func:`ai.trading.options.options_from_config`), with keyword changes on top: any ``[trading_agent]`` key
(``warmup_candles``, ``initial_equity``, ``position_size``, ``max_exposure``, ``min_exposure``,
``bankrupt_fraction``, ``high_volatility_percentile``...), ``fee``, ``episode_length`` (None: up to the last
candle), ``start_index`` (a fixed first candle instead of a random one, for evaluation) and ``reward`` (a
:class:`ai.trading.options.RewardWeights` or a mapping of its fields). The actions and the accounting are
:mod:`ai.trading.account`, the episode core :mod:`ai.trading.single_episode` (plain floats, tens of times
faster for one episode); ``reference=True`` steps the vectorised :mod:`ai.trading.episodes` instead, which gives
bit-identical transitions (the tests compare the two).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from ai.trading.account import ACTION_NAMES, N_ACTIONS, Account
from ai.trading.episodes import Episodes, features_for, observation_space, scalar_info
from ai.trading.market_features import MarketFeatures
from ai.trading.options import TradingEnvOptions, env_options
from ai.trading.single_episode import SingleEpisode


class TradingEnv(gym.Env):
    """Trading one symbol on candles with exposure accounting.

    ## Action Space
    ``Discrete(6)``: 0 HOLD (keep the exposure), 1 LONG (add ``position_size`` of long exposure, by default
    the whole equity, up to ``max_exposure``; closes a short first), 2 SHORT (the mirror), 3 REDUCE (halve the
    exposure; below ``min_exposure`` it is closed), 4 CLOSE (flat), 5 EMERGENCY_FLATTEN (flat at once whatever
    the state; in multi-asset use every position). See :class:`Action`.

    ## Observation Space
    ``Box(-10, 10, (64,), float32)``: 56 market features of the current candle (precomputed for the whole frame,
    causal: only candles up to the current one are used) and 8 account features (position size and side,
    equity ratio, P&L ratio, drawdown, holding time, last exposure change, regime alignment), each scaled as
    the table of :mod:`ai.trading.features` documents.

    ## Rewards
    A decision at candle k's close sets the exposure ``p_k``; the step's return on equity is
    ``p_k * (close_{k+1} / close_k - 1) - fee * |p_k - p_{k-1}|`` (:func:`analytics.baselines.step_return`).
    The reward is ``pnl * return - drawdown * dd**2 - volatility_penalty * |p_k| * high_volatility
    + regime * alignment + survival`` (:func:`ai.trading.account.compute_reward`; weights in :class:`ai.trading.options.RewardWeights`).

    ## Starting State
    A flat account with ``initial_equity`` at a candle drawn uniformly (from ``self.np_random``) among those
    that leave a whole episode after the warm-up candles, or at ``start_index`` when it is given.

    ## Episode End
    Terminated when equity falls to ``bankrupt_fraction`` of the initial equity or below (wiped out);
    truncated after ``episode_length`` steps (or at the last candle when ``episode_length`` is None). The
    episode never runs past the data: its last step's outcome is the last candle's close.

    ## Info
    ``index`` and ``timestamp`` of the current candle, ``equity``, ``exposure``, ``step_return``, ``fee_paid``
    and ``drawdown`` (the step's; 0 after a reset).
    """

    metadata = {"render_modes": []}

    def __init__(self, candles: pd.DataFrame | None = None, *, features: MarketFeatures | None = None,
                 options: TradingEnvOptions | None = None, reference: bool = False, **changes: Any) -> None:
        self.options = env_options(options, **changes)
        self.features = features_for(candles, features, self.options)
        self.reference = reference
        self._core = Episodes(self.features, self.options, 1) if reference else None
        self._episode = SingleEpisode(self.features, self.options)
        self.action_space = gym.spaces.Discrete(N_ACTIONS)
        self.observation_space = observation_space()
        self._started = False

    @property
    def episode_steps(self) -> int:
        """Steps of one episode (the episode length capped by the candles there are)."""
        return self._episode.length

    @property
    def account(self) -> Account:
        """The episode's account (a one-row :class:`Account`; a copy on the fast path)."""
        if self._core is not None:
            return self._core.account
        e = self._episode
        return Account.from_row({"exposure": e.exposure, "equity": e.equity, "peak": e.peak,
                                 "open_equity": e.open_equity, "holding": e.holding,
                                 "exposure_change": e.exposure_change})

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if self._core is None:
            return self._episode.start(self.np_random)
        self._started = True
        self._core.start(0, self.np_random)
        return self._core.observations()[0], scalar_info(self._core.infos(), 0)

    def step(self, action: int | np.integer) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._core is None:
            return self._episode.step(action)  # checks the action and that an episode is running
        if not self._started:
            raise RuntimeError("call reset() before step()")
        chosen = int(action)
        if not 0 <= chosen < N_ACTIONS:
            raise ValueError(f"action {action!r} is not one of 0..{N_ACTIONS - 1} ({', '.join(ACTION_NAMES)})")
        outcome, terminated, truncated = self._core.step(np.array([chosen]))
        if terminated[0] or truncated[0]:
            self._started = False
        return (self._core.observations()[0], float(outcome.reward[0]), bool(terminated[0]), bool(truncated[0]),
                scalar_info(self._core.infos(outcome), 0))
