"""Rollout storage of PPO over vectorized environments.

The buffer is preallocated numpy storage of shape ``(n_steps, num_envs, ...)``, filled one vector step at a
time, turned into flattened tensors on the training device once per update, and served as shuffled
minibatches (:class:`RolloutBatch`, Stable-Baselines3 style).

Episode ends are kept apart: ``terminated`` means the episode really ended (the future is worth 0);
``truncated`` means it was cut short (a time limit, the end of the data), so its last step bootstraps with the
value of the final observation, which the vector environment reports separately because it has already
reset that environment. The advantages are computed by :func:`ai.ppo.losses.compute_gae`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch

from ai.ppo.losses import compute_gae


class BufferNotFullError(RuntimeError):
    """``get()`` was called before the buffer held a complete rollout."""


class RolloutBatch(NamedTuple):
    """One minibatch of the PPO update, flattened over steps and environments."""

    observations: torch.Tensor
    actions: torch.Tensor
    old_values: torch.Tensor
    old_log_probs: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor


class RolloutBuffer:
    """Fixed-size storage of ``n_steps`` vector steps of ``num_envs`` environments."""

    def __init__(
        self,
        n_steps: int,
        num_envs: int,
        obs_dim: int,
        action_shape: tuple[int, ...],
        action_dtype: np.dtype | type = np.int64,
    ) -> None:
        if n_steps < 1 or num_envs < 1:
            raise ValueError(f"n_steps and num_envs must be >= 1, got {n_steps} and {num_envs}")
        self.n_steps = n_steps
        self.num_envs = num_envs
        shape = (n_steps, num_envs)
        self.observations = np.zeros((*shape, obs_dim), dtype=np.float32)
        self.actions = np.zeros((*shape, *action_shape), dtype=action_dtype)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=bool)
        self.truncated = np.zeros(shape, dtype=bool)
        self.values = np.zeros(shape, dtype=np.float32)
        self.log_probs = np.zeros(shape, dtype=np.float32)
        self.final_values = np.zeros(shape, dtype=np.float32)
        self.advantages = np.zeros(shape, dtype=np.float32)
        self.returns = np.zeros(shape, dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        """Start a new rollout (storage is reused, not reallocated)."""
        self.pos = 0
        self._advantages_ready = False
        self._tensors: RolloutBatch | None = None
        self._tensors_device: torch.device | None = None

    @property
    def size(self) -> int:
        """Transitions the full buffer holds."""
        return self.n_steps * self.num_envs

    @property
    def full(self) -> bool:
        return self.pos == self.n_steps

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        values: np.ndarray,
        log_probs: np.ndarray,
        final_values: np.ndarray | None = None,
    ) -> None:
        """Store one vector step; ``final_values`` are the values of final observations where truncated."""
        if self.full:
            raise BufferError(f"rollout buffer is full ({self.n_steps} steps); call reset() before adding more")
        t = self.pos
        self.observations[t] = obs
        self.actions[t] = actions
        self.rewards[t] = rewards
        self.terminated[t] = terminated
        self.truncated[t] = truncated
        self.values[t] = values
        self.log_probs[t] = log_probs
        self.final_values[t] = 0.0 if final_values is None else final_values
        self.pos += 1
        self._advantages_ready = False
        self._tensors = None

    def compute_returns_and_advantages(self, last_values: np.ndarray, gamma: float, gae_lambda: float) -> None:
        """GAE over the full rollout; ``last_values`` are the values of the observations after its last step."""
        self._require_full("compute_returns_and_advantages()")
        advantages, returns = compute_gae(
            self.rewards, self.values, self.terminated, self.truncated, self.final_values,
            last_values, gamma, gae_lambda,
        )
        self.advantages[:] = advantages
        self.returns[:] = returns
        self._advantages_ready = True
        self._tensors = None

    def get(
        self, batch_size: int | None, rng: np.random.Generator, device: torch.device | str = "cpu"
    ) -> Iterator[RolloutBatch]:
        """Shuffled minibatches of ``batch_size`` transitions (all of them when None) covering the rollout once.

        Raises :class:`BufferNotFullError` at the call itself (not at the first ``next()``) when the buffer is
        not full, and ``RuntimeError`` when the advantages have not been computed.
        """
        self._require_full("get()")
        if not self._advantages_ready:
            raise RuntimeError("advantages are not computed; call compute_returns_and_advantages() before get()")
        step = self.size if batch_size is None else batch_size
        if step < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return self._minibatches(self._flat_tensors(torch.device(device)), step, rng)

    def _minibatches(self, tensors: RolloutBatch, step: int, rng: np.random.Generator) -> Iterator[RolloutBatch]:
        # A generator of its own, so get() checks its preconditions when called rather than when first iterated.
        order = torch.from_numpy(rng.permutation(self.size)).to(tensors.observations.device)
        for start in range(0, self.size, step):
            index = order[start:start + step]
            yield RolloutBatch(*(field[index] for field in tensors))

    def _require_full(self, what: str) -> None:
        # PPO's advantages need every step of the rollout; a partial buffer would silently mix zeros in.
        if not self.full:
            raise BufferNotFullError(
                f"rollout buffer holds {self.pos} of {self.n_steps} steps per environment; {what} needs a full "
                f"buffer: keep collecting until buffer.full is True (GAE needs the complete rollout)"
            )

    def _flat_tensors(self, device: torch.device) -> RolloutBatch:
        # Compared as requested: torch.device("cuda") differs from the tensors' own "cuda:0".
        if self._tensors is None or self._tensors_device != device:
            size = self.size

            def flat(array: np.ndarray) -> torch.Tensor:
                return torch.as_tensor(array.reshape(size, *array.shape[2:]), device=device)

            self._tensors = RolloutBatch(
                flat(self.observations), flat(self.actions), flat(self.values), flat(self.log_probs),
                flat(self.advantages), flat(self.returns),
            )
            self._tensors_device = device
        return self._tensors
