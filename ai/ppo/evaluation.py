"""Evaluation of a trained policy: the returns of whole episodes, run side by side in batched forward passes."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np


def evaluate(
    predict: Callable[[np.ndarray], np.ndarray],
    make_env: Callable[[], gym.Env],
    n_episodes: int = 20,
    seed: int = 0,
) -> list[float]:
    """Returns of ``n_episodes`` episodes, run side by side (one environment each, seeds ``seed + i``).

    ``predict`` maps a batch of observations to a batch of actions, so each step is one batched forward pass.
    """
    envs = [make_env() for _ in range(n_episodes)]
    obs = np.stack([np.asarray(env.reset(seed=seed + i)[0], dtype=np.float32) for i, env in enumerate(envs)])
    returns = np.zeros(n_episodes, dtype=np.float64)
    active = np.ones(n_episodes, dtype=bool)
    while active.any():
        live = np.flatnonzero(active)
        actions = predict(obs[live])
        for action, i in zip(actions, live, strict=True):
            next_obs, reward, terminated, truncated, _ = envs[i].step(action)
            returns[i] += float(reward)
            obs[i] = next_obs
            if terminated or truncated:
                active[i] = False
    for env in envs:
        env.close()
    return list(returns.tolist())
