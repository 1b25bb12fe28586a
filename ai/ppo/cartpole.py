"""CartPole-v1 as one array program: the validation environment of ``python -m ai.ppo`` without per-copy calls.

A :class:`gymnasium.vector.SyncVectorEnv` of ``gym.make("CartPole-v1")`` copies steps each copy through four
wrappers and a Python-level physics step, which costs more than the policy's forward pass. This vector steps
every copy with a handful of numpy operations and gives the *same transitions*: the physics is Gymnasium's
``CartPoleEnv.step`` written over arrays in the same operation order, copy ``i`` draws its starts from its own
generator seeded ``seed + i`` (as ``SyncVectorEnv.reset(seed=seed)`` seeds it), episodes end at the same
thresholds and at the 500-step time limit, and an ending copy resets in the same step with its final
observation in ``infos["final_obs"]`` (``AutoresetMode.SAME_STEP``, what PPO needs).

Gymnasium's own ``CartPoleVectorEnv`` is not used: it resets in the step *after* an episode ends (a dummy
transition per episode that PPO would have to skip) and draws every copy's starts from one shared generator,
so its episodes differ from the ``SyncVectorEnv`` ones for the same seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.utils import seeding
from gymnasium.vector.utils import batch_space

ENV_ID = "CartPole-v1"
MAX_EPISODE_STEPS = 500
"""CartPole-v1's registered time limit."""
START_BOUND = 0.05
"""Starts are uniform in [-0.05, 0.05] on each of the four state variables, as ``CartPoleEnv.reset``."""


class CartPoleVector(gym.vector.VectorEnv[np.ndarray, np.ndarray, np.ndarray]):
    """``num_envs`` CartPole-v1 copies stepped together; transitions equal those of the ``SyncVectorEnv`` path."""

    metadata: dict[str, Any] = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, num_envs: int) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        single = CartPoleEnv()  # constants and spaces come from Gymnasium's own environment
        self.num_envs = num_envs
        self.single_observation_space = single.observation_space
        self.single_action_space = single.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._physics = single
        self.spec = gym.spec(ENV_ID)
        self._generators = [seeding.np_random(None)[0] for _ in range(num_envs)]
        self._state = np.zeros((num_envs, 4), dtype=np.float64)
        self._elapsed = np.zeros(num_envs, dtype=np.int64)
        self._started = False

    def reset(self, *, seed: int | Sequence[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start every copy; an int ``seed`` seeds copy ``i`` with ``seed + i`` (``SyncVectorEnv``'s rule)."""
        if options:
            raise ValueError(f"{ENV_ID} vector takes no reset options, got {sorted(options)}")
        seeds = _per_copy_seeds(seed, self.num_envs)
        for i, copy_seed in enumerate(seeds):
            if copy_seed is not None:
                self._generators[i] = seeding.np_random(copy_seed)[0]
            self._state[i] = self._start(i)
        self._elapsed[:] = 0
        self._started = True
        return self._state.astype(np.float32), {}

    def _start(self, i: int) -> np.ndarray:
        return self._generators[i].uniform(low=-START_BOUND, high=START_BOUND, size=(4,))

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One step of every copy; copies whose episode ends are reset before returning."""
        if not self._started:
            raise RuntimeError(f"{ENV_ID} vector: call reset() before step()")
        actions = np.asarray(actions)
        pushes_right = actions == 1
        if actions.shape != (self.num_envs,) or not (pushes_right | (actions == 0)).all():
            raise ValueError(f"{ENV_ID} vector expects {self.num_envs} actions in {{0, 1}}, got {actions!r}")
        state = self._advance(pushes_right)
        p = self._physics
        x, theta = state[:, 0], state[:, 2]
        terminated = (x < -p.x_threshold) | (x > p.x_threshold) | (theta < -p.theta_threshold_radians) \
            | (theta > p.theta_threshold_radians)
        self._elapsed += 1
        truncated = self._elapsed >= MAX_EPISODE_STEPS
        self._state = state
        observations = state.astype(np.float32)
        infos: dict[str, Any] = {}
        done = terminated | truncated
        if done.any():
            infos = self._autoreset(done, observations)
        return observations, np.ones(self.num_envs), terminated, truncated, infos

    def _advance(self, pushes_right: np.ndarray) -> np.ndarray:
        # CartPoleEnv.step's Euler update, operation for operation, so every float rounds the same way.
        p = self._physics
        x, x_dot, theta, theta_dot = self._state.T
        force = np.where(pushes_right, p.force_mag, -p.force_mag)
        costheta = np.cos(theta)
        sintheta = np.sin(theta)
        temp = (force + p.polemass_length * np.square(theta_dot) * sintheta) / p.total_mass
        thetaacc = (p.gravity * sintheta - costheta * temp) / (
            p.length * (4.0 / 3.0 - p.masspole * np.square(costheta) / p.total_mass)
        )
        xacc = temp - p.polemass_length * thetaacc * costheta / p.total_mass
        return np.stack((x + p.tau * x_dot, x_dot + p.tau * xacc, theta + p.tau * theta_dot,
                         theta_dot + p.tau * thetaacc), axis=1)

    def _autoreset(self, done: np.ndarray, observations: np.ndarray) -> dict[str, Any]:
        final = np.full(self.num_envs, None, dtype=object)
        for i in np.flatnonzero(done).tolist():
            final[i] = observations[i].copy()
            self._state[i] = self._start(i)
            self._elapsed[i] = 0
            observations[i] = self._state[i].astype(np.float32)
        return {"final_obs": final, "_final_obs": done.copy()}


def _per_copy_seeds(seed: int | Sequence[int | None] | None, num_envs: int) -> list[int | None]:
    if seed is None:
        return [None] * num_envs
    if isinstance(seed, int):
        return [seed + i for i in range(num_envs)]
    seeds = list(seed)
    if len(seeds) != num_envs:
        raise ValueError(f"{ENV_ID} vector: {len(seeds)} seeds for {num_envs} copies")
    return seeds
