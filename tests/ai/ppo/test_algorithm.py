"""Tests of the PPO implementation: GAE and the loss against hand-computed values, the rollout buffer, the
heads, determinism, checkpoints, short learning runs and the command lines."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import ai.ppo.algorithm as ppo_module
from ai.ppo.algorithm import (
    PPO,
    CheckpointError,
    load_policy,
    main,
    make_vec_env,
    normalize_advantages,
    ppo_loss,
)
from ai.ppo.buffer import BufferNotFullError, RolloutBuffer, compute_gae
from ai.ppo.networks import ActionSpec, ActorCritic
from core.config import PPOConfig, config_from_dict
from core.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
SMALL = PPOConfig(n_steps=32, batch_size=32, n_epochs=2, hidden_sizes=[16, 16], seed=3, device="cpu")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Small networks run fastest on one thread (and the command lines set it); restore it for other tests."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
# GAE
# --------------------------------------------------------------------------------------------------------

def test_gae_matches_hand_computed_terminated_and_truncated_episodes() -> None:
    # gamma = lambda = 0.5, so gamma * lambda = 0.25. Columns are two environments, rows four steps.
    # env 0: terminated at t=1, truncated at t=3 with V(final obs) = 10; its last value (100) must be ignored.
    #   t3: 1 + 0.5*10 - 4 = 2                      -> A = 2
    #   t2: 1 + 0.5*V(t3)=2  - 2 = 1                -> A = 1 + 0.25*2 = 1.5
    #   t1: 1 + 0 (terminated) - 4 = -3             -> A = -3 (episode end stops the recursion)
    #   t0: 1 + 0.5*V(t1)=2  - 2 = 1                -> A = 1 + 0.25*(-3) = 0.25
    # env 1: truncated at t=1 with V(final obs) = 8, then runs past the rollout with V(next obs) = 6.
    #   t3: 1 + 0.5*6 - 2 = 2                       -> A = 2
    #   t2: 0 + 0.5*2 - 4 = -3                      -> A = -3 + 0.25*2 = -2.5
    #   t1: 2 + 0.5*8 - 2 = 4                       -> A = 4
    #   t0: 0 + 0.5*2 - 1 = 0                       -> A = 0 + 0.25*4 = 1
    rewards = np.array([[1, 0], [1, 2], [1, 0], [1, 1]], dtype=np.float32)
    values = np.array([[2, 1], [4, 2], [2, 4], [4, 2]], dtype=np.float32)
    terminated = np.array([[0, 0], [1, 0], [0, 0], [0, 0]], dtype=bool)
    truncated = np.array([[0, 0], [0, 1], [0, 0], [1, 0]], dtype=bool)
    final_values = np.array([[0, 0], [0, 8], [0, 0], [10, 0]], dtype=np.float32)
    last_values = np.array([100, 6], dtype=np.float32)

    advantages, returns = compute_gae(rewards, values, terminated, truncated, final_values, last_values, 0.5, 0.5)

    np.testing.assert_allclose(advantages, [[0.25, 1], [-3, 4], [1.5, -2.5], [2, 2]])
    np.testing.assert_allclose(returns, [[2.25, 2], [1, 6], [3.5, 1.5], [6, 4]])


def test_gae_terminated_wins_over_truncated() -> None:
    # Both flags set: the future is worth 0, the final value (5) is not used: A = 1 - 3 = -2.
    advantages, _ = compute_gae(np.array([[1.0]]), np.array([[3.0]]), np.array([[True]]), np.array([[True]]),
                                np.array([[5.0]]), np.array([9.0]), 0.9, 0.9)
    assert advantages[0, 0] == pytest.approx(-2.0)


def test_gae_with_lambda_one_is_discounted_return_minus_value() -> None:
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(6, 1))
    values = rng.normal(size=(6, 1))
    terminated = np.zeros((6, 1), dtype=bool)
    terminated[-1] = True
    _, returns = compute_gae(rewards, values, terminated, np.zeros_like(terminated), np.zeros((6, 1)),
                             np.zeros(1), 0.9, 1.0)
    expected = [sum(0.9 ** k * rewards[t + k, 0] for k in range(6 - t)) for t in range(6)]
    np.testing.assert_allclose(returns[:, 0], expected, rtol=1e-12)


# --------------------------------------------------------------------------------------------------------
# The loss
# --------------------------------------------------------------------------------------------------------

def test_ppo_loss_matches_hand_computed_case() -> None:
    # ratios 1.5, 0.5, 1.1 with advantages 1, -2, 3 and clip 0.2:
    #   min(1.5*1, 1.2*1) = 1.2; min(0.5*-2, 0.8*-2) = -1.6; min(3.3, 3.3) = 3.3 -> policy loss -(2.9)/3
    # values 1, 2, 0 against returns 2, 2, 1 with old values 0, 2, 0.2 and value clip 0.5:
    #   clipped values 0.5, 2, 0 -> per-sample max(1, 2.25), max(0, 0), max(1, 1) -> value loss 3.25/3
    old = torch.zeros(3)
    new = torch.log(torch.tensor([1.5, 0.5, 1.1]))
    loss = ppo_loss(
        log_probs=new, old_log_probs=old, advantages=torch.tensor([1.0, -2.0, 3.0]),
        values=torch.tensor([1.0, 2.0, 0.0]), old_values=torch.tensor([0.0, 2.0, 0.2]),
        returns=torch.tensor([2.0, 2.0, 1.0]), entropy=torch.tensor([0.5, 0.6, 0.7]),
        clip_range=0.2, clip_range_vf=0.5, ent_coef=0.01, vf_coef=0.5,
    )
    policy = -2.9 / 3
    value = 3.25 / 3
    assert loss.policy_loss.item() == pytest.approx(policy, rel=1e-6)
    assert loss.value_loss.item() == pytest.approx(value, rel=1e-6)
    assert loss.entropy.item() == pytest.approx(0.6, rel=1e-6)
    assert loss.total.item() == pytest.approx(policy + 0.5 * value - 0.01 * 0.6, rel=1e-6)
    kl = ((0.5 - math.log(1.5)) + (-0.5 - math.log(0.5)) + (0.1 - math.log(1.1))) / 3
    assert loss.approx_kl.item() == pytest.approx(kl, rel=1e-5)
    assert loss.clip_fraction.item() == pytest.approx(2 / 3)


def test_ppo_loss_without_value_clip_is_plain_mse_and_policy_gradient_flows() -> None:
    log_probs = torch.zeros(2, requires_grad=True)
    loss = ppo_loss(log_probs, torch.zeros(2), torch.tensor([1.0, -1.0]), torch.tensor([0.0, 3.0]),
                    torch.tensor([5.0, 5.0]), torch.tensor([1.0, 1.0]), torch.zeros(2),
                    clip_range=0.2, clip_range_vf=0.0, ent_coef=0.0, vf_coef=1.0)
    assert loss.value_loss.item() == pytest.approx((1 + 4) / 2)
    loss.total.backward()
    # d/dlogp of -mean(r * A) at r = 1 is -A / n
    np.testing.assert_allclose(log_probs.grad.numpy(), [-0.5, 0.5])


def test_normalize_advantages() -> None:
    np.testing.assert_allclose(normalize_advantages(torch.tensor([1.0, 2.0, 3.0])).numpy(), [-1, 0, 1], atol=1e-6)
    assert normalize_advantages(torch.tensor([4.0])).item() == 0.0


# --------------------------------------------------------------------------------------------------------
# Rollout buffer
# --------------------------------------------------------------------------------------------------------

def _fill(buffer: RolloutBuffer, steps: int) -> None:
    for t in range(steps):
        obs = np.full((buffer.num_envs, 2), t, dtype=np.float32) + np.arange(buffer.num_envs)[:, None] * 100
        zeros = np.zeros(buffer.num_envs)
        buffer.add(obs, np.zeros(buffer.num_envs, dtype=np.int64), zeros + 1, zeros.astype(bool),
                   zeros.astype(bool), zeros, zeros)


def test_get_on_partial_buffer_raises_clear_error() -> None:
    buffer = RolloutBuffer(n_steps=4, num_envs=2, obs_dim=2, action_shape=())
    _fill(buffer, 2)
    with pytest.raises(BufferNotFullError, match=r"holds 2 of 4 steps.*buffer\.full"):
        buffer.get(2, np.random.default_rng(0))  # the call itself refuses, before any iteration
    with pytest.raises(BufferNotFullError):
        buffer.compute_returns_and_advantages(np.zeros(2), 0.99, 0.95)


def test_get_before_advantages_and_add_to_full_buffer_are_errors() -> None:
    buffer = RolloutBuffer(n_steps=2, num_envs=1, obs_dim=2, action_shape=())
    _fill(buffer, 2)
    with pytest.raises(RuntimeError, match="compute_returns_and_advantages"):
        buffer.get(1, np.random.default_rng(0))
    with pytest.raises(BufferError, match="full"):
        _fill(buffer, 1)


def test_minibatches_cover_every_transition_once() -> None:
    buffer = RolloutBuffer(n_steps=5, num_envs=3, obs_dim=2, action_shape=())
    _fill(buffer, 5)
    buffer.compute_returns_and_advantages(np.zeros(3), 0.99, 0.95)
    batches = list(buffer.get(4, np.random.default_rng(1)))
    assert [len(b.observations) for b in batches] == [4, 4, 4, 3]
    seen = sorted(float(x) for b in batches for x in b.observations[:, 0])
    assert seen == sorted(float(t + 100 * e) for t in range(5) for e in range(3))
    assert all(isinstance(b.advantages, torch.Tensor) for b in batches)


# --------------------------------------------------------------------------------------------------------
# Heads
# --------------------------------------------------------------------------------------------------------

def _dirichlet_log_pdf(alpha: np.ndarray, x: np.ndarray) -> float:
    return (math.lgamma(alpha.sum()) - sum(math.lgamma(a) for a in alpha)
            + sum((a - 1) * math.log(v) for a, v in zip(alpha, x, strict=True)))


def test_simplex_head_gives_valid_weights_and_finite_log_probs() -> None:
    torch.manual_seed(0)
    policy = ActorCritic(34, ActionSpec("simplex", 8), PPOConfig(hidden_sizes=[32, 32]))
    with torch.no_grad():
        policy.policy_head.weight.mul_(300.0)  # extreme concentrations, near-degenerate weights
    obs = torch.randn(512, 34) * 10
    with torch.no_grad():
        weights, log_probs, values = policy.act(obs)
        assert weights.shape == (512, 8) and values.shape == (512,)
        assert torch.all(weights >= 0)
        torch.testing.assert_close(weights.sum(-1), torch.ones(512), atol=1e-5, rtol=0)
        assert torch.isfinite(log_probs).all()
        edge = torch.zeros(512, 8)
        edge[:, 0] = 1.0  # a vertex of the simplex: zero weights must still score finitely
        edge_log_probs, entropy, _ = policy.evaluate_actions(obs, edge)
        assert torch.isfinite(edge_log_probs).all() and torch.isfinite(entropy).all()
    rows = policy.predict(obs[:4].numpy(), deterministic=False)
    assert rows.dtype == np.float64 and np.all(rows >= 0)
    np.testing.assert_allclose(rows.sum(-1), 1.0, atol=1e-12)


def test_simplex_log_prob_is_the_dirichlet_density_and_deterministic_is_the_mean() -> None:
    torch.manual_seed(1)
    policy = ActorCritic(5, ActionSpec("simplex", 3), PPOConfig(hidden_sizes=[8]))
    obs = torch.randn(1, 5)
    with torch.no_grad():
        raw, _ = policy(obs)
        alpha = (1.0 + torch.log1p(torch.exp(raw[0]))).double().numpy()  # floor 1 + softplus
        action = torch.tensor([[0.2, 0.3, 0.5]])
        log_prob, _, _ = policy.evaluate_actions(obs, action)
    assert log_prob.item() == pytest.approx(_dirichlet_log_pdf(alpha, np.array([0.2, 0.3, 0.5])), rel=1e-4)
    np.testing.assert_allclose(policy.predict(obs[0].numpy()), alpha / alpha.sum(), rtol=1e-5)


def test_categorical_head_log_probs_and_entropy() -> None:
    torch.manual_seed(2)
    policy = ActorCritic(64, ActionSpec("discrete", 6), PPOConfig(hidden_sizes=[16]))
    obs = torch.randn(3, 64)
    with torch.no_grad():
        logits, _ = policy(obs)
        log_probs, entropy, _ = policy.evaluate_actions(obs, torch.tensor([0, 3, 5]))
    p = np.exp(logits.double().numpy())
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(log_probs.numpy(), np.log(p[[0, 1, 2], [0, 3, 5]]), rtol=1e-5)
    np.testing.assert_allclose(entropy.numpy(), -(p * np.log(p)).sum(-1), rtol=1e-5)
    assert policy.predict(obs.numpy()).tolist() == np.argmax(p, -1).tolist()


@pytest.mark.parametrize("shared", [False, True])
def test_networks_are_orthogonally_initialized_with_separate_or_shared_bodies(shared: bool) -> None:
    torch.manual_seed(0)
    policy = ActorCritic(10, ActionSpec("discrete", 4), PPOConfig(hidden_sizes=[32, 32], shared_trunk=shared))
    bodies = [policy.trunk] if shared else [policy.actor_body, policy.critic_body]
    assert hasattr(policy, "trunk") == shared and hasattr(policy, "actor_body") != shared
    hidden = [layer for body in bodies for layer in body if isinstance(layer, torch.nn.Linear)]
    assert len(hidden) == 2 * len(bodies)
    for layer, gain in [*((h, math.sqrt(2.0)) for h in hidden), (policy.policy_head, 0.01), (policy.value_head, 1.0)]:
        w = layer.weight.detach().double()
        rows, cols = w.shape
        # Orthogonal with gain g: the shorter side's Gram matrix is g^2 times the identity; biases start at 0.
        gram = w @ w.T if rows <= cols else w.T @ w
        torch.testing.assert_close(gram, gain ** 2 * torch.eye(min(rows, cols), dtype=torch.float64),
                                   atol=1e-5 * max(gain ** 2, 1.0), rtol=0)
        assert torch.count_nonzero(layer.bias) == 0
    shared_params = sum(p.numel() for p in policy.parameters())
    separate = ActorCritic(10, ActionSpec("discrete", 4), PPOConfig(hidden_sizes=[32, 32], shared_trunk=not shared))
    assert (shared_params < sum(p.numel() for p in separate.parameters())) == shared


def test_action_spec_from_spaces() -> None:
    assert ActionSpec.from_space(gym.spaces.Discrete(6)) == ActionSpec("discrete", 6)
    assert ActionSpec.from_space(gym.spaces.Box(0, 1, (8,))) == ActionSpec("simplex", 8)
    with pytest.raises(ValueError, match="unsupported action space"):
        ActionSpec.from_space(gym.spaces.Box(-1, 1, (2,)))


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
# Checkpoints
# --------------------------------------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path: Path) -> None:
    agent = PPO(vector(ContextBandit, 2, simplex=True), SMALL)
    agent.learn(64)
    path = tmp_path / "models" / "ppo_model.pt"
    agent.save(path, extra_meta={"strategies": ["a", "b", "c"], "note": "weekly"})

    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"state_dict", "optimizer", "meta"}
    assert json.loads(json.dumps(raw["meta"])) == raw["meta"]  # plain data only
    assert raw["meta"]["extra"] == {"strategies": ["a", "b", "c"], "note": "weekly"}

    fresh = PPO(vector(ContextBandit, 2, simplex=True), dataclasses.replace(SMALL, seed=99))
    meta = fresh.load(path)
    assert meta["num_timesteps"] == 64 and fresh.num_timesteps == 64
    for (name, a), b in zip(agent.policy.state_dict().items(), fresh.policy.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    state_a, state_b = agent.optimizer.state_dict()["state"], fresh.optimizer.state_dict()["state"]
    assert all(torch.equal(state_a[k]["exp_avg"], state_b[k]["exp_avg"]) for k in state_a)
    obs = np.eye(3, dtype=np.float32)
    np.testing.assert_array_equal(agent.predict(obs), fresh.predict(obs))

    policy, meta2 = load_policy(path)
    np.testing.assert_array_equal(policy.predict(obs), agent.predict(obs))
    assert meta2["action_spec"] == {"kind": "simplex", "n": 3}

    no_env = PPO(None, SMALL, obs_dim=3, action_spec=ActionSpec("simplex", 3))
    no_env.load(path)
    np.testing.assert_array_equal(no_env.predict(obs), agent.predict(obs))
    wider = PPO(None, dataclasses.replace(SMALL, hidden_sizes=[32]), obs_dim=3, action_spec=ActionSpec("simplex", 3))
    with pytest.raises(CheckpointError, match="hidden_sizes=\\[16, 16\\]"):
        wider.load(path)


def test_save_refuses_non_plain_metadata_and_keeps_old_file(tmp_path: Path, monkeypatch) -> None:
    agent = PPO(vector(ContextBandit, 1), SMALL)
    folder = tmp_path / "models"
    path = folder / "ppo.pt"
    agent.save(path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="plain JSON.*meta.extra.when"):
        agent.save(path, extra_meta={"when": object()})
    with pytest.raises(ValueError, match="meta.extra.score is a float64"):
        agent.save(path, extra_meta={"score": np.float64(1.0)})

    def torn_save(obj, fh, *args, **kwargs):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ppo_module.torch, "save", torn_save)
    with pytest.raises(OSError, match="disk full"):
        agent.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["ppo.pt"]  # no temporary file left behind


def test_load_refuses_wrong_shapes_pickled_code_and_missing_files(tmp_path: Path) -> None:
    discrete = PPO(vector(ContextBandit, 1), SMALL)
    path = tmp_path / "ppo.pt"
    discrete.save(path)
    simplex = PPO(vector(ContextBandit, 1, simplex=True), SMALL)
    with pytest.raises(CheckpointError, match="obs_dim=2 and discrete\\(2\\)"):
        simplex.load(path)

    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "meta": {"format": "ppo_checkpoint"}, "code": ContextBandit}, evil)
    with pytest.raises(CheckpointError, match="weights-only"):
        discrete.load(evil)
    with pytest.raises(CheckpointError, match="not found"):
        discrete.load(tmp_path / "missing.pt")


# --------------------------------------------------------------------------------------------------------
# Configuration and command lines
# --------------------------------------------------------------------------------------------------------

def test_ppo_config_defaults_and_toml_override() -> None:
    defaults = PPOConfig()
    assert (defaults.learning_rate, defaults.gamma, defaults.gae_lambda, defaults.clip_range,
            defaults.ent_coef, defaults.n_epochs, defaults.batch_size, defaults.n_steps) == \
        (3e-4, 0.99, 0.95, 0.2, 0.01, 10, 64, 2048)
    cfg = config_from_dict({"ppo": {"n_epochs": 4, "hidden_sizes": [32, 32]}})
    assert cfg.ppo.n_epochs == 4 and cfg.ppo.hidden_sizes == [32, 32]
    with pytest.raises(ConfigError, match="ppo.n_epoch"):
        config_from_dict({"ppo": {"n_epoch": 4}})
    with pytest.raises(ConfigError, match="ppo.gamma must be within"):
        PPO(vector(ContextBandit, 1), dataclasses.replace(SMALL, gamma=1.5))


def test_validation_entry_point_prints_one_json_line(capsys) -> None:
    code = main(["--env", "CartPole-v1", "--total-steps", "256", "--num-envs", "2", "--seed", "1",
                 "--set", "n_steps=64", "--eval-episodes", "3", "--json"])
    out = capsys.readouterr()
    assert code == 0
    lines = out.out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["total_steps"] == 256 and result["eval_episodes"] == 3 and result["num_envs"] == 2
    assert result["eval_return"] >= 8 and result["steps_per_s"] > 0 and result["wall_s"] > 0
    assert out.err == ""  # --json: no progress bar


@pytest.mark.parametrize("argv, message", [
    (["--set", "n_epoch=4"], "unknown key `ppo.n_epoch`"),
    (["--set", "n_epochs"], "expected KEY=VALUE"),
    (["--env", "NoSuchEnv-v0"], "NoSuchEnv"),
])
def test_validation_entry_point_bad_input_is_one_line_error(capsys, argv: list[str], message: str) -> None:
    assert main([*argv, "--total-steps", "64", "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_validation_entry_point_refuses_an_unusable_save_path_before_training(tmp_path: Path, capsys,
                                                                              monkeypatch) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setattr(PPO, "learn", lambda *_a, **_k: pytest.fail("trained before checking --save"))
    assert main(["--save", str(blocker / "ppo.pt"), "--total-steps", "64", "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"--save {blocker / 'ppo.pt'}" in err and len(err.splitlines()) == 1


def _load_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_ppo", REPO / "scripts" / "bench_ppo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_without_stable_baselines3_says_how_to_install(monkeypatch, capsys) -> None:
    bench = _load_bench()
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)  # makes the import fail
    assert bench.main(["--total-steps", "64"]) == 2
    assert ".venv/bin/pip install stable-baselines3" in capsys.readouterr().err


def test_bench_sb3_settings_mirror_the_config() -> None:
    bench = _load_bench()
    cfg = PPOConfig(learning_rate=1e-3, n_steps=32, batch_size=256, clip_range_vf=0.0, hidden_sizes=[64, 64])
    kwargs = bench.sb3_kwargs(cfg)
    assert kwargs["learning_rate"](0.5) == pytest.approx(5e-4)
    assert kwargs["clip_range_vf"] is None and kwargs["target_kl"] is None
    assert (kwargs["n_steps"], kwargs["batch_size"], kwargs["n_epochs"]) == (32, 256, 10)
    assert kwargs["policy_kwargs"]["net_arch"] == {"pi": [64, 64], "vf": [64, 64]}
