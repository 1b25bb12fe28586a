"""Tests of :mod:`ai.ppo.buffer`: a partial rollout is refused, minibatches cover every transition once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ai.ppo.buffer import BufferNotFullError, RolloutBuffer


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
