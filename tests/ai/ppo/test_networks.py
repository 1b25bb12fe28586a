"""Tests of :mod:`ai.ppo.networks`: the categorical and Dirichlet heads, initialization, action specs."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from ai.ppo.networks import ActionSpec, ActorCritic
from core.config import PPOConfig


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
