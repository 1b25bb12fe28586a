"""Tests of :mod:`ai.ppo.algorithm`: rollouts (truncation bootstraps), determinism, short learning runs, the
update's early stop and the settings check at construction."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from ai.ppo import PPO, make_vec_env
from core.config import PPOConfig, config_from_dict
from core.errors import ConfigError

SMALL = PPOConfig(n_steps=32, batch_size=32, n_epochs=2, hidden_sizes=[16, 16], seed=3, device="cpu")


# --------------------------------------------------------------------------------------------------------
# Tiny environments
# --------------------------------------------------------------------------------------------------------

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
    """The observation is the step count; episodes are truncated after 3 steps (never terminated).

    Action Space: Discrete(2), ignored. Observation Space: Box(0, 10, (1,)), the steps taken.
    Rewards: 1 per step. Episode End: truncated at 3 steps.
    """

    observation_space = gym.spaces.Box(0.0, 10.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.count = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        self.count += 1
        return np.array([float(self.count)], dtype=np.float32), 1.0, False, self.count >= 3, {}


def vector(env_cls: type[gym.Env], num_envs: int, **kwargs: Any) -> gym.vector.VectorEnv:
    return gym.vector.SyncVectorEnv([lambda: env_cls(**kwargs) for _ in range(num_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


# --------------------------------------------------------------------------------------------------------
# Rollouts, determinism, learning
# --------------------------------------------------------------------------------------------------------

def test_truncation_bootstraps_with_value_of_final_observation() -> None:
    agent = PPO(vector(Counter, 2), dataclasses.replace(SMALL, n_steps=6))
    agent._reset_envs()
    buffer = agent._rollout_buffer()
    agent._collect_rollout(buffer)
    with torch.no_grad():
        v_final = agent.policy.value(torch.tensor([[3.0]])).item()
    # Steps 2 and 5 of each environment end in truncation (count reaches 3); the final observation [3] is
    # gone from the returned observations (the env already reset to [0]), yet its value is what bootstraps.
    assert buffer.truncated[:, 0].tolist() == [False, False, True, False, False, True]
    np.testing.assert_allclose(buffer.final_values[[2, 5]], v_final, rtol=1e-5)  # float32: batched vs single forward
    assert np.all(buffer.final_values[[0, 1, 3, 4]] == 0)
    assert buffer.observations[:, 0, 0].tolist() == [0, 1, 2, 0, 1, 2]
    expected = buffer.rewards[2] + SMALL.gamma * v_final - buffer.values[2]
    np.testing.assert_allclose(buffer.advantages[2], expected, rtol=1e-5)


def test_next_step_autoreset_vector_env_is_refused() -> None:
    envs = gym.vector.SyncVectorEnv([Counter], autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
    with pytest.raises(ValueError, match="SAME_STEP"):
        PPO(envs, SMALL)


def _params(agent: PPO) -> list[torch.Tensor]:
    return [p.detach().clone() for p in agent.policy.parameters()]


@pytest.mark.parametrize("kind", ["discrete", "simplex"])
def test_same_seed_gives_identical_parameters(kind: str) -> None:
    def train(seed: int) -> list[torch.Tensor]:
        env = make_vec_env("CartPole-v1", 2) if kind == "discrete" else vector(ContextBandit, 2, simplex=True)
        agent = PPO(env, dataclasses.replace(SMALL, seed=seed))
        agent.learn(128)
        return _params(agent)

    first, second, other = train(5), train(5), train(6)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


def test_learns_contextual_bandit_quickly() -> None:
    cfg = PPOConfig(n_steps=64, batch_size=64, n_epochs=4, learning_rate=3e-3, hidden_sizes=[32], ent_coef=0.0,
                    gamma=0.0, seed=1, device="cpu")
    agent = PPO(vector(ContextBandit, 4), cfg)
    agent.learn(2048)
    with torch.no_grad():
        logits, _ = agent.policy(torch.eye(2))
    p_correct = torch.softmax(logits, -1).diagonal()
    assert torch.all(p_correct > 0.9), p_correct  # random: 0.5
    assert np.mean(list(agent.episode_returns)[-50:]) > 0.85


def test_learns_simplex_weights_quickly() -> None:
    cfg = PPOConfig(n_steps=64, batch_size=64, n_epochs=4, learning_rate=1e-2, hidden_sizes=[32], ent_coef=0.0,
                    gamma=0.0, seed=1, device="cpu")
    agent = PPO(vector(ContextBandit, 4, simplex=True), cfg)
    agent.learn(4096)
    weights = agent.predict(np.eye(3, dtype=np.float32))
    assert np.all(weights.diagonal() > 0.7), weights  # random: 1/3 on the right arm


def test_callback_sees_stats_and_can_stop() -> None:
    seen = []
    agent = PPO(make_vec_env("CartPole-v1", 2), SMALL)
    agent.learn(64 * 10, callback=lambda stats: seen.append(stats) or len(seen) < 2)
    assert [s.update for s in seen] == [1, 2]
    assert agent.num_timesteps == 128
    assert seen[0].learning_rate == pytest.approx(SMALL.learning_rate)
    assert seen[1].learning_rate < seen[0].learning_rate  # annealed
    assert seen[0].minibatches == SMALL.n_epochs * 2 and math.isfinite(seen[0].approx_kl)


def test_target_kl_stops_the_update_early() -> None:
    cfg = dataclasses.replace(SMALL, target_kl=1e-9, learning_rate=1e-2, n_epochs=10)
    stats = []
    PPO(make_vec_env("CartPole-v1", 2), cfg).learn(64, callback=stats.append)
    assert stats[0].minibatches < 10 * 2 and stats[0].epochs < 10

# --------------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------------

def test_ppo_config_defaults_and_toml_override() -> None:
    defaults = PPOConfig()
    assert (defaults.learning_rate, defaults.gamma, defaults.gae_lambda, defaults.clip_range,
            defaults.ent_coef, defaults.n_epochs, defaults.batch_size, defaults.n_steps) == \
        (3e-4, 0.99, 0.95, 0.2, 0.01, 10, 64, 2048)
    cfg = config_from_dict({"strategy_agent": {"ppo": {"n_epochs": 4, "hidden_sizes": [32, 32]}}})
    assert cfg.strategy_agent.ppo.n_epochs == 4 and cfg.strategy_agent.ppo.hidden_sizes == [32, 32]
    with pytest.raises(ConfigError, match="strategy_agent.ppo.n_epoch"):
        config_from_dict({"strategy_agent": {"ppo": {"n_epoch": 4}}})
    with pytest.raises(ConfigError, match=r"ppo\.gamma = 1\.5: must be within"):
        PPO(vector(ContextBandit, 1), dataclasses.replace(SMALL, gamma=1.5))
