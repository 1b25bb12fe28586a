"""``TradingVectorEnv``: many trading episodes over one candle frame, stepped together in numpy (training speed)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium.utils import seeding
from gymnasium.vector.utils import batch_space

from ai.trading.account import N_ACTIONS
from ai.trading.episodes import Episodes, features_for, observation_space, scalar_info
from ai.trading.market_features import MarketFeatures
from ai.trading.options import TradingEnvOptions, env_options


class TradingVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` trading episodes stepped together in numpy over one candle frame (shared features).

    Same transitions as ``num_envs`` :class:`TradingEnv` objects reset with seeds ``seed + i`` (or the given
    list) and reset again, without a seed, as soon as they end: autoreset happens in the same step, the final
    observation and info of an ended episode are in ``infos["final_obs"]`` and ``infos["final_info"]``
    (Gymnasium's ``AutoresetMode.SAME_STEP``, which :mod:`ai.ppo.algorithm` needs).

    ``steps_taken`` (transitions over all episodes), ``episodes_completed``, ``episode_returns`` (the last 100)
    and an optional ``on_episode_end(count, ret, length)`` hook report progress, for progress displays.
    """

    metadata = {"render_modes": [], "autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self, candles: pd.DataFrame | None = None, num_envs: int = 4, *,
                 features: MarketFeatures | None = None, options: TradingEnvOptions | None = None,
                 **changes: Any) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.options = env_options(options, **changes)
        self.features = features_for(candles, features, self.options)
        self.num_envs = num_envs
        self._core = Episodes(self.features, self.options, num_envs)
        self.single_action_space = gym.spaces.Discrete(N_ACTIONS)
        self.single_observation_space = observation_space()
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._rngs: list[np.random.Generator] | None = None
        self._running_return = np.zeros(num_envs)
        self._running_length = np.zeros(num_envs, dtype=np.int64)
        self.steps_taken = 0
        self.episodes_completed = 0
        self.episode_returns: deque[float] = deque(maxlen=100)
        self.on_episode_end: Callable[[int, float, int], None] | None = None

    @property
    def episode_steps(self) -> int:
        return self._core.length

    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        seeds = _seed_list(seed, self.num_envs)
        if self._rngs is None or seed is not None:
            self._rngs = _generators(seeds, self._rngs)
        for i in range(self.num_envs):
            self._core.start(i, self._rngs[i])
        self._running_return[:] = 0.0
        self._running_length[:] = 0
        return self._core.observations(), _vector_infos(self._core.infos())

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._rngs is None:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)
        outcome, terminated, truncated = self._core.step(actions)
        self.steps_taken += self.num_envs
        observations = self._core.observations()
        infos = _vector_infos(self._core.infos(outcome))
        ended = np.flatnonzero(terminated | truncated)
        if ended.size:
            infos = self._autoreset(ended, observations, infos, outcome.reward)
        else:
            self._track(outcome.reward, ended)
        return observations, outcome.reward.astype(np.float64), terminated, truncated, infos

    def _autoreset(self, ended: np.ndarray, observations: np.ndarray, infos: dict[str, Any],
                   rewards: np.ndarray) -> dict[str, Any]:
        """Reset ended episodes in place; their step results go to final_obs / final_info (SAME_STEP)."""
        assert self._rngs is not None
        final: dict[str, Any] = {}
        for i in ended:
            final = self._add_info(final, {"final_obs": observations[i].copy(),
                                           "final_info": {k: v for k, v in scalar_info(infos, i).items()
                                                          if not k.startswith("_")}}, int(i))
            self._core.start(int(i), self._rngs[i])
        self._track(rewards, ended)
        fresh = self._core.infos()
        observations[ended] = self._core.observations()[ended]
        for key, values in fresh.items():
            infos[key][ended] = values[ended]
        infos.update(final)
        return infos

    def _track(self, rewards: np.ndarray, ended: np.ndarray) -> None:
        self._running_return += rewards
        self._running_length += 1
        for i in ended:
            self.episodes_completed += 1
            self.episode_returns.append(float(self._running_return[i]))
            if self.on_episode_end is not None:
                self.on_episode_end(self.episodes_completed, float(self._running_return[i]),
                                    int(self._running_length[i]))
            self._running_return[i] = 0.0
            self._running_length[i] = 0


def _seed_list(seed: int | Sequence[int | None] | None, n: int) -> list[int | None]:
    if seed is None:
        return [None] * n
    if isinstance(seed, (int, np.integer)):
        return [int(seed) + i for i in range(n)]
    seeds = list(seed)
    if len(seeds) != n:
        raise ValueError(f"expected {n} seeds, got {len(seeds)}")
    return seeds


def _generators(seeds: list[int | None], current: list[np.random.Generator] | None
                ) -> list[np.random.Generator]:
    """A generator per environment: a new one where a seed is given (or none exists yet), else the current one."""
    rngs = []
    for i, s in enumerate(seeds):
        kept = current[i] if current is not None else None
        rngs.append(kept if s is None and kept is not None else seeding.np_random(s)[0])
    return rngs


def _vector_infos(infos: dict[str, np.ndarray]) -> dict[str, Any]:
    # Gymnasium's vector info layout: every key is present for every environment, with an all-True mask.
    out: dict[str, Any] = {}
    for key, values in infos.items():
        out[key] = np.array(values, dtype=np.int64 if values.dtype.kind in "iu" else np.float64)
        out[f"_{key}"] = np.ones(len(values), dtype=bool)
    return out
