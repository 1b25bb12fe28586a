"""Vector environments as PPO needs them: reset in the step that ends an episode, final observations kept.

PPO bootstraps a truncated episode with the value of its final observation; a vector environment that resets
in the *next* step would hide it. Everything PPO trains on passes through :func:`as_vector_env`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from ai.ppo.cartpole import ENV_ID as CARTPOLE_ID
from ai.ppo.cartpole import CartPoleVector


def as_vector_env(env: gym.Env | gym.vector.VectorEnv) -> gym.vector.VectorEnv:
    """A single environment becomes a one-environment vector; a vector must reset in the same step."""
    if isinstance(env, gym.vector.VectorEnv):
        mode = env.metadata.get("autoreset_mode")
        same_step = getattr(getattr(gym.vector, "AutoresetMode", None), "SAME_STEP", None)
        if mode is not None and mode != same_step:
            raise ValueError(
                f"vector environment resets with {mode}; PPO needs the final observation of the ending step: "
                "create it with autoreset_mode=gym.vector.AutoresetMode.SAME_STEP (see make_vec_env)"
            )
        return env
    if isinstance(env, gym.Env):
        return sync_vector_env([lambda: env])
    raise TypeError(f"expected a gymnasium Env or VectorEnv, got {type(env).__name__}")


def sync_vector_env(env_fns: Sequence[Callable[[], gym.Env]]) -> gym.vector.VectorEnv:
    """The environments made by ``env_fns``, stepped in one process and reset in the step that ends an episode
    (as PPO needs: the final observation of a truncated episode is still reported)."""
    # copy=False skips a deepcopy per step; PPO copies each returned observation before stepping again.
    if not hasattr(gym.vector, "AutoresetMode"):  # gymnasium 0.29 always resets in the same step
        return gym.vector.SyncVectorEnv(list(env_fns), copy=False)
    return gym.vector.SyncVectorEnv(list(env_fns), copy=False,
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def make_vec_env(env_id: str, num_envs: int, **kwargs: Any) -> gym.vector.VectorEnv:
    """``num_envs`` copies of a registered environment (``gym.make(env_id, **kwargs)``), stepped in one
    process, resetting in the same step as PPO needs.

    Plain ``CartPole-v1`` is the array-programmed :class:`ai.ppo.cartpole.CartPoleVector`, which gives the
    same transitions as the copies would, several times faster."""
    if env_id == CARTPOLE_ID and not kwargs:
        return CartPoleVector(num_envs)
    return sync_vector_env([lambda: gym.make(env_id, **kwargs) for _ in range(num_envs)])


def final_observations(infos: dict[str, Any], indices: np.ndarray) -> np.ndarray:
    """The final observations of the environments at ``indices`` (those whose episode just ended)."""
    # Gymnasium 1.x names it final_obs, 0.29 final_observation; both are object arrays, one entry per env.
    final = infos.get("final_obs", infos.get("final_observation"))
    if final is None:
        raise RuntimeError("vector environment reported a truncation without its final observation in infos")
    return np.stack([np.asarray(final[i], dtype=np.float32) for i in indices])
