"""Shared by the PPO tests: tiny Gymnasium environments with known answers, a small PPO setting, and the
vector environment the PPO needs (same-step autoreset)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from core.config import PPOConfig

SMALL = PPOConfig(n_steps=32, batch_size=32, n_epochs=2, hidden_sizes=[16, 16], seed=3, device="cpu")


class ContextBandit(gym.Env):
    """One-step episodes: the observation is a one-hot context, the reward is 1 for the matching arm.

    Action Space: Discrete(2) (``simplex=False``) or weights Box(0, 1, (3,)) (``simplex=True``).
    Observation Space: Box(0, 1, (n,)), the one-hot context.
    Rewards: 1 for the matching arm, or the weight put on the matching arm.
    Episode End: terminated after one step.
    """

    def __init__(self, simplex: bool = False) -> None:
        self.n = 3 if simplex else 2
        self.simplex = simplex
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.n,), np.float32)
        self.action_space = gym.spaces.Box(0.0, 1.0, (self.n,), np.float32) if simplex else gym.spaces.Discrete(2)
        self.context = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.context = int(self.np_random.integers(self.n))
        return np.eye(self.n, dtype=np.float32)[self.context], {}

    def step(self, action):
        reward = float(action[self.context]) if self.simplex else float(int(action) == self.context)
        return np.zeros(self.n, dtype=np.float32), reward, True, False, {}


class Counter(gym.Env):
    """The observation is the step count; episodes are truncated after ``limit`` steps (never terminated).

    Action Space: Discrete(2), ignored. Observation Space: Box(0, 10, (1,)), the steps taken.
    Rewards: ``reward`` per step (1). Episode End: truncated at ``limit`` steps (3).
    """

    observation_space = gym.spaces.Box(0.0, 10.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)
    limit = 3
    reward = 1.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.count = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        self.count += 1
        return np.array([float(self.count)], dtype=np.float32), self.reward, False, self.count >= self.limit, {}


def vector(env_cls: type[gym.Env], num_envs: int, **kwargs: Any) -> gym.vector.VectorEnv:
    return gym.vector.SyncVectorEnv([lambda: env_cls(**kwargs) for _ in range(num_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
