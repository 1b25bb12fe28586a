"""``TradingVectorEnv``: many trading episodes over one candle frame, stepped together (training speed).

The episodes are stepped in place by :class:`ai.trading.vector_core.VectorEpisodes`: its numba kernel when numba
is installed (the ``fast`` extra), else its numpy kernel; ``kernel="numba"`` or ``"numpy"`` chooses one, and
``reference=True`` steps the vectorised reference core :class:`ai.trading.episodes.Episodes` instead. All three
give bit-identical transitions (the tests compare them).
"""

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
from ai.trading.kernel_layout import (
    DRAWDOWN,
    EQUITY,
    EXPOSURE,
    FEE_PAID,
    INFO_EQUITY,
    INFO_EXPOSURE,
    INFO_INDEX,
    INFO_TIMESTAMP,
    LENGTH,
    RETURN,
    REWARD,
    STEP_RETURN,
)
from ai.trading.market_features import MarketFeatures
from ai.trading.options import TradingEnvOptions, env_options
from ai.trading.vector_core import VectorEpisodes

KERNELS = ("auto", "numba", "numpy")
INFO_KEYS = ("index", "timestamp", "equity", "exposure", "step_return", "fee_paid", "drawdown")
"""The info values of every step (see :class:`ai.trading.env.TradingEnv`)."""


def numba_available() -> bool:
    """True when numba can be imported (the ``fast`` extra), so ``kernel="auto"`` uses the numba kernel."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


class TradingVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` trading episodes stepped together over one candle frame (shared features).

    Same transitions as ``num_envs`` :class:`TradingEnv` objects reset with seeds ``seed + i`` (or the given
    list) and reset again, without a seed, as soon as they end: autoreset happens in the same step, the final
    observation and info of an ended episode are in ``infos["final_obs"]`` and ``infos["final_info"]``
    (Gymnasium's ``AutoresetMode.SAME_STEP``, which :mod:`ai.ppo.algorithm` needs).

    ``steps_taken`` (transitions over all episodes), ``episodes_completed``, ``episode_returns`` (the last 100)
    and an optional ``on_episode_end(count, ret, length)`` hook report progress, for progress displays.
    ``kernel`` (``"auto"``, ``"numba"``, ``"numpy"``) and ``reference`` choose the core (see the module docstring).
    """

    metadata = {"render_modes": [], "autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self, candles: pd.DataFrame | None = None, num_envs: int = 4, *,
                 features: MarketFeatures | None = None, options: TradingEnvOptions | None = None,
                 kernel: str = "auto", reference: bool = False, **changes: Any) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
        self.options = env_options(options, **changes)
        self.features = features_for(candles, features, self.options)
        self.num_envs = num_envs
        self.reference = reference
        self._core = Episodes(self.features, self.options, num_envs)  # the reference core (and episode bounds)
        self.kernel = "reference" if reference else kernel if kernel != "auto" else (
            "numba" if numba_available() else "numpy")
        self._fast = None if reference else VectorEpisodes(self.features, self.options, num_envs, self.kernel)
        self._everyone = np.arange(num_envs, dtype=np.int64)
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
        self._running_return[:] = 0.0
        self._running_length[:] = 0
        if self._fast is not None:
            self._fast.start(self._everyone, self._rngs)
            return self._fast.observations(self._everyone), self._fresh_infos()
        for i in range(self.num_envs):
            self._core.start(i, self._rngs[i])
        return self._core.observations(), _vector_infos(self._core.infos())

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._rngs is None:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)
        if self._fast is not None:
            return self._fast_step(actions)
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

    def _fast_step(self, actions: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """The step on the fast core: the same results, infos and autoreset as the reference path."""
        assert self._fast is not None and self._rngs is not None
        core = self._fast
        result, n_ended = core.step(actions)
        self.steps_taken += self.num_envs
        floats, ints = result.floats, result.ints
        mask = np.ones(self.num_envs, dtype=bool)  # every key is present for every episode
        infos: dict[str, Any] = {
            "index": ints[INFO_INDEX], "_index": mask, "timestamp": ints[INFO_TIMESTAMP], "_timestamp": mask,
            "equity": floats[INFO_EQUITY], "_equity": mask, "exposure": floats[INFO_EXPOSURE], "_exposure": mask,
            "step_return": floats[STEP_RETURN], "_step_return": mask, "fee_paid": floats[FEE_PAID],
            "_fee_paid": mask, "drawdown": floats[DRAWDOWN], "_drawdown": mask}
        terminated, truncated = result.flags
        observations = result.observations
        if n_ended:
            ended = np.flatnonzero(terminated | truncated)
            infos.update(_final_infos(ended, observations, infos, self.num_envs))
            self._report_ends(ended, core.running)
            core.start(ended, self._rngs)
            observations[ended] = core.observations(ended)
            fresh = self._fresh_infos(ended)
            for key in INFO_KEYS:
                infos[key][ended] = fresh[key]
        return observations, floats[REWARD], terminated, truncated, infos

    def _report_ends(self, ended: np.ndarray, running: np.ndarray) -> None:
        for i in ended.tolist():
            self.episodes_completed += 1
            self.episode_returns.append(float(running[RETURN, i]))
            if self.on_episode_end is not None:
                self.on_episode_end(self.episodes_completed, float(running[RETURN, i]), int(running[LENGTH, i]))

    def _fresh_infos(self, ids: np.ndarray | None = None) -> dict[str, Any]:
        """Infos right after a reset (all episodes, or the values of ``ids`` only)."""
        assert self._fast is not None
        core = self._fast
        ids = self._everyone if ids is None else ids
        zeros = np.zeros(ids.size)
        infos: dict[str, Any] = {"index": core.index[ids], "timestamp": core.timestamps[core.index[ids]],
                                 "equity": core.state[EQUITY, ids], "exposure": core.state[EXPOSURE, ids],
                                 "step_return": zeros, "fee_paid": zeros.copy(), "drawdown": zeros.copy()}
        mask = np.ones(ids.size, dtype=bool)
        for key in INFO_KEYS:
            infos[f"_{key}"] = mask
        return infos

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


def _final_infos(ended: np.ndarray, observations: np.ndarray, infos: dict[str, Any], n: int) -> dict[str, Any]:
    """``final_obs`` / ``final_info`` of the ended episodes in the layout Gymnasium's ``_add_info`` builds."""
    final_obs = np.full(n, None, dtype=object)
    for i in ended.tolist():
        final_obs[i] = observations[i].copy()
    present = np.zeros(n, dtype=bool)
    present[ended] = True
    final_info: dict[str, Any] = {}
    for key in INFO_KEYS:
        values = np.zeros(n, dtype=infos[key].dtype)
        values[ended] = infos[key][ended]
        final_info[key], final_info[f"_{key}"] = values, present.copy()
    return {"final_obs": final_obs, "_final_obs": present, "final_info": final_info, "_final_info": present.copy()}


def _vector_infos(infos: dict[str, np.ndarray]) -> dict[str, Any]:
    # Gymnasium's vector info layout: every key is present for every environment, with an all-True mask.
    out: dict[str, Any] = {}
    for key, values in infos.items():
        out[key] = np.array(values, dtype=np.int64 if values.dtype.kind in "iu" else np.float64)
        out[f"_{key}"] = np.ones(len(values), dtype=bool)
    return out
