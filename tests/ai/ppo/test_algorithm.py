"""Tests of :mod:`ai.ppo.algorithm`: rollouts (truncation bootstraps), determinism, short learning runs, the
update's early stop and the settings check at construction."""

from __future__ import annotations

import dataclasses
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from ai.ppo import PPO, make_vec_env
from ai.ppo.algorithm import clip_gradients
from core.config import PPOConfig, config_from_dict
from core.errors import ConfigError
from tests.ai.ppo.support import SMALL, ContextBandit, Counter, vector

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


@pytest.mark.parametrize("max_norm", [0.5, 1e9])
def test_clip_gradients_equals_torch_clip_grad_norm(max_norm: float) -> None:
    torch.manual_seed(0)
    ours = [torch.nn.Parameter(torch.randn(shape)) for shape in ((64, 4), (64,), (2, 64), (2,))]
    reference = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    for a, b in zip(ours, reference, strict=True):
        a.grad = torch.randn_like(a) * 3
        b.grad = a.grad.clone()
    total = clip_gradients(ours, max_norm)
    assert torch.equal(total, torch.nn.utils.clip_grad_norm_(reference, max_norm))
    for a, b in zip(ours, reference, strict=True):
        assert a.grad is not None and b.grad is not None and torch.equal(a.grad, b.grad)
    assert (total > max_norm) == (max_norm == 0.5)  # one case clips, the other leaves the gradients alone
