"""The pure mathematics of a PPO update: Generalized Advantage Estimation, the clipped loss, and their helpers.

Plain functions of arrays and tensors, with no state and no environment, so each is tested against values
computed by hand (as Stable-Baselines3's test_gae.py does). :mod:`ai.ppo.buffer` runs GAE over a rollout;
:mod:`ai.ppo.algorithm` minimizes :func:`ppo_loss`.

Episode ends are kept apart: ``terminated`` means the episode really ended (the future is worth 0);
``truncated`` means it was cut short (a time limit, the end of the data), so its last step bootstraps with the
value of the final observation.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch


def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    final_values: np.ndarray,
    last_values: np.ndarray,
    gamma: float,
    gae_lambda: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and returns (``advantages + values``) of a rollout, arrays of shape ``(n_steps, num_envs)``.

    For step ``t`` the next state's value is ``0`` when the episode terminated at ``t``, ``final_values[t]``
    (the value of the final observation) when it was truncated at ``t``, ``values[t + 1]`` otherwise, and
    ``last_values`` (the value of the observation after the rollout) for the last step. Any episode end stops
    the advantage recursion: ``A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}`` with
    ``delta_t = r_t + gamma * V_next - V(s_t)``. Terminated wins when both flags are set.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    terminated = np.asarray(terminated, dtype=bool)
    truncated = np.asarray(truncated, dtype=bool)
    final_values = np.asarray(final_values, dtype=np.float64)
    next_values = np.empty_like(values)
    next_values[:-1] = values[1:]
    next_values[-1] = np.asarray(last_values, dtype=np.float64)
    next_values = np.where(truncated, final_values, next_values)
    next_values = np.where(terminated, 0.0, next_values)
    deltas = rewards + gamma * next_values - values
    continues = gamma * gae_lambda * (~(terminated | truncated))
    advantages = np.empty_like(values)
    running = np.zeros(values.shape[1:], dtype=np.float64)
    for t in range(values.shape[0] - 1, -1, -1):
        running = deltas[t] + continues[t] * running
        advantages[t] = running
    return advantages, advantages + values


class PPOLoss(NamedTuple):
    """The total loss to minimize and its parts (``approx_kl`` and ``clip_fraction`` carry no gradient)."""

    total: torch.Tensor
    policy_loss: torch.Tensor
    value_loss: torch.Tensor
    entropy: torch.Tensor
    approx_kl: torch.Tensor
    clip_fraction: torch.Tensor


def normalize_advantages(advantages: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Zero mean and unit (sample) standard deviation; a single advantage is only centred."""
    centred = advantages - advantages.mean()
    if advantages.numel() < 2:
        return centred
    return centred / (advantages.std() + eps)


def ppo_loss(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    entropy: torch.Tensor,
    clip_range: float,
    clip_range_vf: float,
    ent_coef: float,
    vf_coef: float,
) -> PPOLoss:
    """PPO's loss: clipped surrogate + ``vf_coef`` x value loss - ``ent_coef`` x entropy.

    policy_loss = -mean(min(r * A, clip(r, 1 - eps, 1 + eps) * A)), with r = exp(log_probs - old_log_probs).
    value_loss = mean((returns - values)^2), or with ``clip_range_vf > 0`` the mean of the larger of that
    squared error and the one of ``old_values + clip(values - old_values, -c, c)`` (PPO2 style).
    approx_kl = mean((r - 1) - log r), an unbiased, non-negative estimate of KL(old || new).
    """
    log_ratio = log_probs - old_log_probs
    ratio = log_ratio.exp()
    surrogate = ratio * advantages
    clipped_surrogate = ratio.clamp(1.0 - clip_range, 1.0 + clip_range) * advantages
    policy_loss = -torch.min(surrogate, clipped_surrogate).mean()
    squared_error = (returns - values) ** 2
    if clip_range_vf > 0:
        clipped_values = old_values + (values - old_values).clamp(-clip_range_vf, clip_range_vf)
        squared_error = torch.max(squared_error, (returns - clipped_values) ** 2)
    value_loss = squared_error.mean()
    mean_entropy = entropy.mean()
    total = policy_loss + vf_coef * value_loss - ent_coef * mean_entropy
    with torch.no_grad():
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        clip_fraction = ((ratio - 1.0).abs() > clip_range).float().mean()
    return PPOLoss(total, policy_loss, value_loss, mean_entropy, approx_kl, clip_fraction)


def explained_variance(predictions: np.ndarray, targets: np.ndarray) -> float:
    """1 - Var(targets - predictions) / Var(targets): 1 is perfect, 0 no better than the mean; NaN if flat."""
    variance = float(np.var(targets))
    return math.nan if variance == 0 else 1.0 - float(np.var(targets - predictions)) / variance
