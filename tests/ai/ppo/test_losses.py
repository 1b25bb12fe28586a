"""Tests of :mod:`ai.ppo.losses`: GAE and the clipped PPO loss against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ai.ppo.losses import compute_gae, explained_variance, normalize_advantages, ppo_loss


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


def test_explained_variance_hand_computed() -> None:
    targets = np.array([1.0, 2.0, 3.0, 4.0])
    # residuals 0, 0, 1, -1: Var = 0.5 against Var(targets) = 1.25 -> 1 - 0.4 = 0.6
    assert explained_variance(np.array([1.0, 2.0, 2.0, 5.0]), targets) == pytest.approx(0.6)
    assert explained_variance(targets, targets) == 1.0
    assert math.isnan(explained_variance(targets, np.ones(4)))
