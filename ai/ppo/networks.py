"""Actor-critic networks of the PPO implementation, with a categorical head and a simplex-weight head.

Two kinds of action are served:

- ``discrete``: one of ``n`` actions (the trading agent's HOLD/LONG/SHORT/REDUCE/CLOSE/FLATTEN), scored by a
  categorical distribution over logits.
- ``simplex``: ``n`` non-negative weights summing to 1 (the strategy-weight agent's 8 allocations), scored by a
  Dirichlet distribution.

Why Dirichlet rather than logistic-normal for the weights: the Dirichlet's support is exactly the simplex, so
the weight vector the environment receives is itself the action that PPO scores. Its log-density and entropy
are closed form. A logistic-normal policy samples a Gaussian and maps it through a softmax: scoring the
weights then needs the additive log-ratio change of variables (one dimension fewer than the weights, plus the
log-Jacobian), and its entropy has no closed form, so the entropy bonus would be a Monte-Carlo estimate or the
entropy of the latent Gaussian rather than of the weights. The Dirichlet's concentrations are
``min_concentration + softplus(output)``; with the default floor of 1 the density is bounded and unimodal, so
log-probabilities of weights at the simplex edges stay finite and PPO's probability ratios stay well behaved,
while a near-zero weight is still reachable (large concentrations elsewhere push its mean towards 0).
The deterministic action is the Dirichlet mean ``alpha / sum(alpha)``, defined for every concentration.

All layers use orthogonal initialization (gain sqrt(2) in hidden layers, 0.01 on the policy output so the
initial policy is near uniform, 1 on the value output), as in CleanRL and Stable-Baselines3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Dirichlet

from core.config import PPOConfig

ActionKind = Literal["discrete", "simplex"]
ACTION_KINDS: tuple[str, ...] = ("discrete", "simplex")
SIMPLEX_EPS = 1e-6
"""Smallest weight a sampled simplex action keeps, so its log-probability is finite under any later policy."""

_ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


@dataclass(frozen=True)
class ActionSpec:
    """What the policy outputs: ``discrete`` (one of ``n`` actions) or ``simplex`` (``n`` weights summing to 1)."""

    kind: ActionKind
    n: int

    def __post_init__(self) -> None:
        if self.kind not in ACTION_KINDS:
            raise ValueError(f"action kind {self.kind!r} is not supported; use one of {', '.join(ACTION_KINDS)}")
        minimum = 2 if self.kind == "simplex" else 1
        if self.n < minimum:
            raise ValueError(f"a {self.kind} action needs n >= {minimum}, got {self.n}")

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one action: ``()`` for a discrete index, ``(n,)`` for weights."""
        return () if self.kind == "discrete" else (self.n,)

    @property
    def is_discrete(self) -> bool:
        return self.kind == "discrete"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for checkpoint metadata."""
        return {"kind": self.kind, "n": self.n}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActionSpec:
        return cls(kind=data["kind"], n=int(data["n"]))

    @classmethod
    def from_space(cls, space: gym.Space[Any]) -> ActionSpec:
        """``Discrete(n)`` is a discrete action; a 1-D ``Box`` inside [0, 1] is read as weights on the simplex."""
        if isinstance(space, gym.spaces.Discrete):
            if int(space.start) != 0:
                raise ValueError(f"Discrete action space must start at 0, got start={space.start}")
            return cls("discrete", int(space.n))
        if isinstance(space, gym.spaces.Box) and len(space.shape) == 1 and space.shape[0] >= 2 \
                and np.all(space.low >= 0.0) and np.all(space.high <= 1.0):
            return cls("simplex", int(space.shape[0]))
        raise ValueError(
            f"unsupported action space {space}; PPO supports Discrete(n) and simplex weights given as "
            "Box(0, 1, (n,)) (or pass action_spec explicitly)"
        )


def observation_dim(space: gym.Space[Any]) -> int:
    """Length of a flat observation vector; anything but a 1-D ``Box`` is refused with the reason."""
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        return int(space.shape[0])
    raise ValueError(f"unsupported observation space {space}; PPO expects a 1-D Box (a feature vector)")


def layer_init(layer: nn.Linear, gain: float) -> nn.Linear:
    """Orthogonal weights with ``gain`` and zero biases."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def mlp(in_dim: int, hidden_sizes: list[int], activation: str) -> tuple[nn.Sequential, int]:
    """Hidden layers with orthogonal init; returns the stack and its output width."""
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation {activation!r} is not supported; use one of {', '.join(_ACTIVATIONS)}")
    layers: list[nn.Module] = []
    width = in_dim
    for size in hidden_sizes:
        layers += [layer_init(nn.Linear(width, size), math.sqrt(2.0)), _ACTIVATIONS[activation]()]
        width = size
    return nn.Sequential(*layers), width


class ActorCritic(nn.Module):
    """Policy and value networks: separate MLPs (default) or one shared trunk with two linear heads.

    ``act`` samples actions for rollouts, ``evaluate_actions`` scores stored actions for the PPO update,
    ``predict`` is the numpy entry point of inference daemons.
    """

    def __init__(self, obs_dim: int, action_spec: ActionSpec, cfg: PPOConfig) -> None:
        super().__init__()
        if obs_dim < 1:
            raise ValueError(f"obs_dim must be >= 1, got {obs_dim}")
        self.obs_dim = obs_dim
        self.action_spec = action_spec
        self.shared_trunk = cfg.shared_trunk
        self.min_concentration = cfg.simplex_min_concentration
        hidden = list(cfg.hidden_sizes)
        if self.shared_trunk:
            self.trunk, width = mlp(obs_dim, hidden, cfg.activation)
        else:
            self.actor_body, width = mlp(obs_dim, hidden, cfg.activation)
            self.critic_body, _ = mlp(obs_dim, hidden, cfg.activation)
        self.policy_head = layer_init(nn.Linear(width, action_spec.n), 0.01)
        self.value_head = layer_init(nn.Linear(width, 1), 1.0)

    @property
    def device(self) -> torch.device:
        return self.value_head.weight.device

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw policy outputs (logits or pre-softplus concentrations) and values of shape ``(batch,)``."""
        if self.shared_trunk:
            features = _run_mlp(self.trunk, obs)
            return _run_linear(self.policy_head, features), _run_linear(self.value_head, features).squeeze(-1)
        return (_run_linear(self.policy_head, _run_mlp(self.actor_body, obs)),
                _run_linear(self.value_head, _run_mlp(self.critic_body, obs)).squeeze(-1))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """State values, shape ``(batch,)``."""
        body = self.trunk if self.shared_trunk else self.critic_body
        return _run_linear(self.value_head, _run_mlp(body, obs)).squeeze(-1)

    def concentrations(self, raw: torch.Tensor) -> torch.Tensor:
        """Dirichlet concentrations from raw outputs: a floor plus softplus keeps them positive and bounded below."""
        return self.min_concentration + F.softplus(raw)

    def act(self, obs: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Actions, their log-probabilities and the state values for a batch of observations."""
        raw, values = self(obs)
        if self.action_spec.is_discrete:
            log_probs_all = torch.log_softmax(raw, dim=-1)
            if deterministic:
                actions = log_probs_all.argmax(dim=-1)
            else:
                actions = torch.multinomial(log_probs_all.exp(), 1).squeeze(-1)
            return actions, log_probs_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1), values
        alpha = self.concentrations(raw)
        dist = Dirichlet(alpha, validate_args=False)
        weights = alpha / alpha.sum(-1, keepdim=True) if deterministic else dist.sample()
        weights = project_to_simplex(weights)
        return weights, dist.log_prob(weights.clamp_min(SIMPLEX_EPS)), values

    def evaluate_actions(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-probabilities and entropies of ``actions`` under the current policy, and the state values."""
        raw, values = self(obs)
        if self.action_spec.is_discrete:
            log_probs_all = torch.log_softmax(raw, dim=-1)
            log_probs = log_probs_all.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
            entropy = -(log_probs_all.exp() * log_probs_all).sum(-1)
            return log_probs, entropy, values
        dist = Dirichlet(self.concentrations(raw), validate_args=False)
        return dist.log_prob(actions.clamp_min(SIMPLEX_EPS)), dist.entropy(), values

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions for one observation ``(obs_dim,)`` or a batch ``(batch, obs_dim)``.

        Discrete actions come back as int64 indices; simplex weights as float64 rows renormalized to sum to 1
        in double precision (the weight-file contract asks for 1e-9).
        """
        array = np.asarray(obs, dtype=np.float32)
        single = array.ndim == 1
        if array.shape[-1] != self.obs_dim or array.ndim not in (1, 2):
            raise ValueError(f"observation shape {array.shape} does not fit obs_dim={self.obs_dim}")
        with torch.inference_mode():
            tensor = torch.as_tensor(array, device=self.device)
            actions, _, _ = self.act(tensor.unsqueeze(0) if single else tensor, deterministic=deterministic)
        result = actions.cpu().numpy()
        if self.action_spec.is_discrete:
            result = result.astype(np.int64)
        else:
            result = result.astype(np.float64)
            result = result / result.sum(-1, keepdims=True)
        return result[0] if single else result


def _run_linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    # F.linear on the layer's own parameters: nn.Linear.forward's op without the module call machinery,
    # which costs more than the matrix product itself at the rollout's batch of a few observations.
    return F.linear(x, layer.weight, layer.bias)


def _run_mlp(body: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``body(x)`` with the same operations (``F.linear``, ``torch.tanh``, ``F.relu``), called directly."""
    for layer in body:
        if isinstance(layer, nn.Linear):
            x = F.linear(x, layer.weight, layer.bias)
        elif isinstance(layer, nn.Tanh):
            x = torch.tanh(x)
        elif isinstance(layer, nn.ReLU):
            x = F.relu(x)
        else:
            x = layer(x)
    return x


def project_to_simplex(weights: torch.Tensor) -> torch.Tensor:
    """Weights floored at ``SIMPLEX_EPS`` and renormalized: a float32 sample can underflow to an exact 0."""
    floored = weights.clamp_min(SIMPLEX_EPS)
    return floored / floored.sum(-1, keepdim=True)
