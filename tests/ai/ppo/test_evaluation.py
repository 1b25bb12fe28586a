"""Tests of :mod:`ai.ppo.evaluation`: returns of whole episodes, one seed per episode, batched predictions."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from ai.ppo.evaluation import evaluate


class Countdown(gym.Env):
    """Episodes of ``seed % 3 + 1`` steps, reward 1 per step, or 2 for action 1.

    Action Space: Discrete(2). Observation Space: Box(0, 10, (1,)), the steps left.
    Rewards: 1 for action 0, 2 for action 1. Episode End: terminated when no steps are left.
    """

    observation_space = gym.spaces.Box(0.0, 10.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.left = (seed or 0) % 3 + 1
        return np.array([float(self.left)], dtype=np.float32), {}

    def step(self, action):
        self.left -= 1
        return np.array([float(self.left)], dtype=np.float32), 1.0 + int(action), self.left == 0, False, {}


def test_returns_of_each_episode_with_its_own_seed() -> None:
    batches: list[int] = []

    def predict(obs: np.ndarray) -> np.ndarray:
        batches.append(len(obs))
        return np.ones(len(obs), dtype=np.int64)

    # seeds 3, 4, 5 give episodes of 1, 2 and 3 steps, each step worth 2
    assert evaluate(predict, Countdown, n_episodes=3, seed=3) == [2.0, 4.0, 6.0]
    assert batches == [3, 2, 1]  # finished episodes leave the batch
