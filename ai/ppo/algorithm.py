"""The one PPO implementation of the suite, shared by the strategy-weight agent and the trading agent.

Proximal Policy Optimization (clipped surrogate objective) with GAE over vectorized Gymnasium environments:
this module collects rollouts and runs the update; the mathematics is in :mod:`ai.ppo.losses`, the file format
in :mod:`ai.ppo.checkpoints`.

    ppo = PPO(env_or_vector_env, cfg.strategy_agent.ppo)  # Discrete(n) or simplex weights Box(0, 1, (n,))
    ppo.learn(total_steps=100_000, callback=None)  # callback(UpdateStats) -> False stops training
    ppo.learn(total_steps, pulse=show)  # pulse(Pulse) after every minibatch step, for live progress
    action = ppo.predict(obs, deterministic=True)
    ppo.save("model.pt", extra_meta={"features": 64})
    meta = ppo.load("model.pt")
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from ai.ppo.buffer import RolloutBuffer
from ai.ppo.checkpoints import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    check_compatible,
    load_optimizer_state,
    load_weights,
    read_checkpoint,
    write_checkpoint,
)
from ai.ppo.losses import explained_variance, normalize_advantages, ppo_loss
from ai.ppo.networks import ActionSpec, ActorCritic, observation_dim
from ai.ppo.runtime import resolve_device, seed_everything
from ai.ppo.vec_env import as_vector_env, final_observations
from core.atomic import utc_now_iso
from core.config import PPOConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpdateStats:
    """What one PPO update did; passed to the ``learn`` callback and logged."""

    update: int
    num_timesteps: int
    learning_rate: float
    policy_loss: float
    value_loss: float
    entropy: float
    approx_kl: float
    clip_fraction: float
    explained_variance: float
    epochs: int
    minibatches: int
    episodes: int
    mean_episode_return: float
    mean_episode_length: float

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


Callback = Callable[[UpdateStats], "bool | None"]


@dataclass(frozen=True)
class Pulse:
    """Where a training stands inside an update: sent after every minibatch step, so a progress display keeps
    moving while an update runs (an update of many epochs can take longer than a rollout)."""

    update: int
    """The update in progress, 1-based."""
    updates: int
    """Updates this ``learn`` call runs."""
    num_timesteps: int
    """Transitions collected so far."""
    step: int
    """Minibatch steps done in this update."""
    steps: int
    """Minibatch steps planned for this update (``n_epochs`` passes; the KL early stop may end it sooner)."""


PulseHook = Callable[[Pulse], None]


class PPO:
    """PPO over a Gymnasium environment or vector of environments.

    The action space decides the head: ``Discrete(n)`` is categorical, a 1-D ``Box`` inside [0, 1] is read
    as weights on the simplex (Dirichlet); ``action_spec`` overrides that reading. ``env`` may be None for a
    model that only predicts (after :meth:`load`), in which case ``obs_dim`` and ``action_spec`` are required.
    """

    def __init__(
        self,
        env: gym.Env | gym.vector.VectorEnv | None,
        cfg: PPOConfig | None = None,
        device: str | None = None,
        action_spec: ActionSpec | None = None,
        obs_dim: int | None = None,
    ) -> None:
        self.cfg = cfg if cfg is not None else PPOConfig()
        if self.cfg.threads > 0:
            torch.set_num_threads(self.cfg.threads)
        self.device = resolve_device(device or self.cfg.device)
        self.env = as_vector_env(env) if env is not None else None
        if self.env is not None:
            obs_dim = observation_dim(self.env.single_observation_space)
            action_spec = action_spec or ActionSpec.from_space(self.env.single_action_space)
        if obs_dim is None or action_spec is None:
            raise ValueError("without an environment PPO needs obs_dim and action_spec")
        self.obs_dim = obs_dim
        self.action_spec = action_spec
        seed_everything(self.cfg.seed)
        self.rng = np.random.default_rng(self.cfg.seed)
        self.policy = ActorCritic(obs_dim, action_spec, self.cfg).to(self.device)
        self.optimizer = _make_adam(self.policy, self.cfg)
        self._parameters = list(self.policy.parameters())  # walked once, not on every gradient clip
        self.num_timesteps = 0
        self.num_updates = 0
        self.episode_returns: deque[float] = deque(maxlen=100)
        self.episode_lengths: deque[int] = deque(maxlen=100)
        self._last_obs: np.ndarray | None = None
        self._buffer: RolloutBuffer | None = None

    @property
    def num_envs(self) -> int:
        return self.env.num_envs if self.env is not None else 0

    # -- training -----------------------------------------------------------------------------------------

    def learn(self, total_steps: int, callback: Callback | None = None, progress_bar: bool = False,
              pulse: PulseHook | None = None) -> PPO:
        """Collect at least ``total_steps`` transitions (over all environments), updating after each rollout.

        ``callback(stats)`` runs after every update; returning False stops training early. ``pulse(Pulse)``
        runs after every minibatch step of an update (keep it cheap, or throttle it). Calling ``learn`` again
        continues from the current environment state and weights.
        """
        if self.env is None:
            raise RuntimeError("this PPO has no environment; pass one to PPO(...) to train")
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        buffer = self._rollout_buffer()
        updates = math.ceil(total_steps / buffer.size)
        if self._last_obs is None:
            self._reset_envs()
        bar = _progress(updates * buffer.size, enabled=progress_bar)
        try:
            for update in range(updates):
                learning_rate = self._anneal(update, updates)
                self._collect_rollout(buffer)
                stats = self._train(buffer, learning_rate, _pulser(pulse, update + 1, updates, self))
                bar.update(buffer.size)
                bar.set_postfix(ret=f"{stats.mean_episode_return:.1f}", refresh=False)
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("update %d: %s", stats.update, stats.as_dict())
                if callback is not None and callback(stats) is False:
                    break
        finally:
            bar.close()
        return self

    def _rollout_buffer(self) -> RolloutBuffer:
        if self._buffer is None:
            dtype = np.int64 if self.action_spec.is_discrete else np.float32
            self._buffer = RolloutBuffer(self.cfg.n_steps, self.num_envs, self.obs_dim, self.action_spec.shape, dtype)
        return self._buffer

    def _reset_envs(self) -> None:
        assert self.env is not None
        obs, _ = self.env.reset(seed=self.cfg.seed)
        self._last_obs = np.array(obs, dtype=np.float32)
        self._running_return = np.zeros(self.num_envs, dtype=np.float64)
        self._running_length = np.zeros(self.num_envs, dtype=np.int64)

    def _anneal(self, update: int, updates: int) -> float:
        # CleanRL's schedule: full step size on the first update, lr / updates on the last.
        rate = self.cfg.learning_rate * (1.0 - update / updates) if self.cfg.anneal_lr else self.cfg.learning_rate
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        return rate

    def _obs_tensor(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(obs, dtype=torch.float32, device=self.device)

    def _collect_rollout(self, buffer: RolloutBuffer) -> None:
        """Fill the buffer with ``n_steps`` vector steps of the current policy (batched, no autograd)."""
        assert self.env is not None and self._last_obs is not None
        buffer.reset()
        self.policy.eval()
        obs = self._last_obs
        with torch.inference_mode():
            while not buffer.full:
                actions, log_probs, values = self.policy.act(self._obs_tensor(obs))
                actions_np = actions.cpu().numpy()
                next_obs, rewards, terminated, truncated, infos = self.env.step(actions_np)
                final_values = self._final_values(infos, terminated, truncated)
                buffer.add(obs, actions_np, rewards, terminated, truncated,
                           values.cpu().numpy(), log_probs.cpu().numpy(), final_values)
                self._track_episodes(rewards, terminated | truncated)
                obs = np.array(next_obs, dtype=np.float32)  # a copy: the vector env reuses its array
            last_values = self.policy.value(self._obs_tensor(obs)).cpu().numpy()
        buffer.compute_returns_and_advantages(last_values, self.cfg.gamma, self.cfg.gae_lambda)
        self._last_obs = obs
        self.num_timesteps += buffer.size

    def _final_values(self, infos: dict[str, Any], terminated: np.ndarray, truncated: np.ndarray) -> np.ndarray | None:
        # Only truncated (not terminated) steps bootstrap; their final observation was replaced by the reset one.
        cut = np.flatnonzero(truncated & ~terminated)
        if cut.size == 0:
            return None
        values = np.zeros(self.num_envs, dtype=np.float32)
        values[cut] = self.policy.value(self._obs_tensor(final_observations(infos, cut))).cpu().numpy()
        return values

    def _track_episodes(self, rewards: np.ndarray, done: np.ndarray) -> None:
        self._running_return += rewards
        self._running_length += 1
        if done.any():
            for i in np.flatnonzero(done):
                self.episode_returns.append(float(self._running_return[i]))
                self.episode_lengths.append(int(self._running_length[i]))
            self._running_return[done] = 0.0
            self._running_length[done] = 0

    def _train(self, buffer: RolloutBuffer, learning_rate: float,
               pulse: Callable[[int, int], None] | None = None) -> UpdateStats:
        """Several epochs of shuffled minibatch steps on the clipped objective, with the approx-KL early stop."""
        cfg = self.cfg
        planned = cfg.n_epochs * math.ceil(buffer.size / cfg.batch_size)
        self.policy.train()
        totals = torch.zeros(5, device=self.device)
        minibatches = epochs = 0
        stop = False
        for _ in range(cfg.n_epochs):
            for batch in buffer.get(cfg.batch_size, self.rng, self.device):
                log_probs, entropy, values = self.policy.evaluate_actions(batch.observations, batch.actions)
                advantages = normalize_advantages(batch.advantages) if cfg.normalize_advantage else batch.advantages
                loss = ppo_loss(log_probs, batch.old_log_probs, advantages, values, batch.old_values,
                                batch.returns, entropy, cfg.clip_range, cfg.clip_range_vf, cfg.ent_coef, cfg.vf_coef)
                if cfg.target_kl > 0 and float(loss.approx_kl) > cfg.target_kl:
                    stop = True  # this minibatch's step is skipped: the policy already moved far enough
                    break
                for parameter in self._parameters:  # zero_grad(set_to_none=True) without its profiler hooks
                    parameter.grad = None
                loss.total.backward()
                if cfg.max_grad_norm > 0:
                    clip_gradients(self._parameters, cfg.max_grad_norm)
                self.optimizer.step()
                totals += torch.stack([part.detach() for part in loss[1:]])
                minibatches += 1
                if pulse is not None:
                    pulse(minibatches, planned)
            epochs += 1
            if stop:
                break
        self.num_updates += 1
        means = (totals / max(minibatches, 1)).tolist()
        return UpdateStats(
            update=self.num_updates, num_timesteps=self.num_timesteps, learning_rate=learning_rate,
            policy_loss=means[0], value_loss=means[1], entropy=means[2], approx_kl=means[3],
            clip_fraction=means[4], explained_variance=explained_variance(buffer.values, buffer.returns),
            epochs=epochs, minibatches=minibatches, episodes=len(self.episode_returns),
            mean_episode_return=float(np.mean(self.episode_returns)) if self.episode_returns else math.nan,
            mean_episode_length=float(np.mean(self.episode_lengths)) if self.episode_lengths else math.nan,
        )

    # -- inference and persistence ------------------------------------------------------------------------

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Action(s) for one observation or a batch; see :meth:`ActorCritic.predict`."""
        return self.policy.predict(obs, deterministic=deterministic)

    def checkpoint_meta(self, extra_meta: dict[str, Any] | None = None) -> dict[str, Any]:
        """The plain-data description stored beside the weights."""
        return {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "obs_dim": self.obs_dim,
            "action_spec": self.action_spec.to_dict(),
            "ppo_config": dataclasses.asdict(self.cfg),
            "num_timesteps": self.num_timesteps,
            "num_updates": self.num_updates,
            "saved_at": utc_now_iso(),
            "torch_version": str(torch.__version__),  # a str subclass that weights-only loading refuses
            "extra": dict(extra_meta or {}),
        }

    def save(self, path: str | Path, extra_meta: dict[str, Any] | None = None) -> Path:
        """Write weights, optimizer state and metadata atomically; ``extra_meta`` must be plain JSON data."""
        return write_checkpoint(path, self.policy, self.optimizer, self.checkpoint_meta(extra_meta))

    def load(self, path: str | Path, load_optimizer: bool = True) -> dict[str, Any]:
        """Load weights (and optimizer state) saved by :meth:`save` into this agent; returns the metadata."""
        payload = read_checkpoint(path, self.device)
        meta = payload["meta"]
        check_compatible(meta, self.obs_dim, self.action_spec, path)
        load_weights(self.policy, payload["state_dict"], meta, path)
        if load_optimizer:
            load_optimizer_state(self.optimizer, payload, path)
        self.num_timesteps = int(meta.get("num_timesteps", 0))
        self.num_updates = int(meta.get("num_updates", 0))
        return meta


def _pulser(hook: PulseHook | None, update: int, updates: int, agent: PPO) -> Callable[[int, int], None] | None:
    if hook is None:
        return None
    return lambda step, steps: hook(Pulse(update, updates, agent.num_timesteps, step, steps))


def clip_gradients(parameters: list[nn.Parameter], max_norm: float) -> torch.Tensor:
    """``nn.utils.clip_grad_norm_(parameters, max_norm)``'s operations on CPU/CUDA tensors of one device, without
    its per-call grouping and wrapping (half of its time for a small network); returns the total norm."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    with torch.no_grad():
        total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)
        torch._foreach_mul_(grads, torch.clamp(max_norm / (total + 1e-6), max=1.0))
    return total


def _make_adam(policy: nn.Module, cfg: PPOConfig) -> torch.optim.Adam:
    # The fused kernel is ~20 % faster per step for small networks; older torch builds lack it on CPU.
    try:
        return torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate, eps=cfg.adam_eps, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate, eps=cfg.adam_eps)


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="step", file=sys.stderr, disable=not enabled, dynamic_ncols=True)
