"""Tests of :mod:`ai.ppo.vec_env`: vectors reset in the ending step and keep the final observation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from ai.ppo.vec_env import as_vector_env, final_observations, make_vec_env, sync_vector_env
from tests.ai.ppo.support import Counter


class Steps(Counter):
    """:class:`Counter` truncated after 2 steps, with no reward."""

    limit = 2
    reward = 0.0


def test_a_single_environment_becomes_a_same_step_vector_with_final_observations() -> None:
    envs = as_vector_env(Steps())
    assert envs.num_envs == 1
    envs.reset(seed=0)
    envs.step(np.array([0]))
    obs, _, _, truncated, infos = envs.step(np.array([0]))
    assert truncated.tolist() == [True] and obs.tolist() == [[0.0]]  # already reset
    assert final_observations(infos, np.array([0])).tolist() == [[2.0]]


def test_next_step_vector_is_refused_and_same_step_kept() -> None:
    same = sync_vector_env([Steps, Steps])
    assert as_vector_env(same) is same
    with pytest.raises(ValueError, match="SAME_STEP"):
        as_vector_env(gym.vector.SyncVectorEnv([Steps], autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP))
    with pytest.raises(TypeError, match="gymnasium Env or VectorEnv"):
        as_vector_env("CartPole-v1")  # type: ignore[arg-type]


def test_make_vec_env_and_missing_final_observation() -> None:
    envs = make_vec_env("CartPole-v1", 3)
    assert envs.num_envs == 3
    envs.close()
    with pytest.raises(RuntimeError, match="final observation"):
        final_observations({}, np.array([0]))
