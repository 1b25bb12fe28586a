"""Tests of :mod:`ai.ppo.cartpole`: the array CartPole gives the transitions of Gymnasium's CartPole copies."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from ai.ppo.algorithm import PPO
from ai.ppo.cartpole import MAX_EPISODE_STEPS, CartPoleVector
from ai.ppo.vec_env import as_vector_env, make_vec_env, sync_vector_env
from core.config import PPOConfig


def gymnasium_copies(num_envs: int) -> gym.vector.VectorEnv:
    return sync_vector_env([lambda: gym.make("CartPole-v1") for _ in range(num_envs)])


def balancing_actions(obs: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """A linear state feedback that balances the pole (episodes then run into the time limit), with a share
    ``noise`` of random pushes."""
    balance = (obs @ np.array([1.0, 1.5, 18.0, 3.0]) > 0).astype(np.int64)
    return np.where(rng.random(len(obs)) < noise, rng.integers(0, 2, len(obs)), balance)


@pytest.mark.parametrize("noise", [1.0, 0.2])
def test_steps_equal_gymnasium_cartpole_copies_through_terminations_and_time_limits(noise: float) -> None:
    ours, reference = CartPoleVector(5), gymnasium_copies(5)
    obs, _ = ours.reset(seed=11)
    expected, _ = reference.reset(seed=11)
    np.testing.assert_array_equal(obs, expected)
    rng = np.random.default_rng(3)
    ends = {"terminated": 0, "truncated": 0}
    for _ in range(2_000 if noise < 1 else 600):
        actions = balancing_actions(obs, rng, noise)
        step, reference_step = ours.step(actions), reference.step(actions)
        for got, want in zip(step[:4], reference_step[:4], strict=True):
            np.testing.assert_array_equal(got, want)
        assert step[0].dtype == np.float32 and step[2].dtype == bool
        done = np.flatnonzero(step[2] | step[3])
        for i in done:
            np.testing.assert_array_equal(step[4]["final_obs"][i], reference_step[4]["final_obs"][i])
        ends["terminated"] += int(step[2].sum())
        ends["truncated"] += int(step[3].sum())
        obs = step[0]
    assert ends["terminated"] > 0
    if noise < 1:
        assert ends["truncated"] > 0  # the balancing run reaches the 500-step limit


def test_time_limit_truncates_at_500_steps_and_reports_the_final_observation() -> None:
    envs = CartPoleVector(1)
    obs, _ = envs.reset(seed=0)
    rng = np.random.default_rng(0)
    for t in range(1, MAX_EPISODE_STEPS + 1):
        previous = obs
        obs, reward, terminated, truncated, infos = envs.step(balancing_actions(obs, rng, noise=0.0))
        assert reward.tolist() == [1.0] and not terminated[0]
        assert bool(truncated[0]) == (t == MAX_EPISODE_STEPS)
    assert not np.array_equal(infos["final_obs"][0], previous)  # the final observation, not the last input
    assert np.all(np.abs(obs) <= 0.05)  # the next episode's start


def test_make_vec_env_serves_plain_cartpole_from_the_array_vector_only() -> None:
    fast = make_vec_env("CartPole-v1", 3)
    assert isinstance(fast, CartPoleVector) and as_vector_env(fast) is fast
    assert fast.single_observation_space == gym.make("CartPole-v1").observation_space
    assert not isinstance(make_vec_env("CartPole-v1", 3, sutton_barto_reward=True), CartPoleVector)
    assert not isinstance(make_vec_env("Acrobot-v1", 2), CartPoleVector)


def test_bad_actions_and_stepping_before_reset_are_refused() -> None:
    envs = CartPoleVector(2)
    with pytest.raises(RuntimeError, match="reset"):
        envs.step(np.array([0, 1]))
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="2 actions"):
        envs.step(np.array([0, 2]))
    with pytest.raises(ValueError, match="2 actions"):
        envs.step(np.array([1]))
    with pytest.raises(ValueError, match="3 seeds for 2 copies"):
        envs.reset(seed=[1, 2, 3])


def test_ppo_learns_the_same_weights_on_either_vector() -> None:
    cfg = dataclasses.replace(PPOConfig(), seed=4, n_steps=32, batch_size=64, n_epochs=2, device="cpu")
    agents = [PPO(env, cfg).learn(4 * 32 * 4) for env in (CartPoleVector(4), gymnasium_copies(4))]
    for ours, reference in zip(agents[0].policy.state_dict().values(), agents[1].policy.state_dict().values(),
                               strict=True):
        assert torch.equal(ours, reference)
    assert list(agents[0].episode_returns) == list(agents[1].episode_returns)
