"""The PPO hyperparameters (``[strategy_agent.ppo]``, ``[trading_agent.ppo]``), checked when loaded."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.config.checks import one_of, require
from core.config.names import ACTIVATIONS, DEVICES


@dataclass(frozen=True)
class PPOConfig:
    """Hyperparameters of the one PPO implementation (``ai/ppo/``), shared by both PPO agents.

    ``[strategy_agent.ppo]`` and ``[trading_agent.ppo]`` set it; every value is checked at load, so a setting PPO
    cannot train with stops the command naming its key instead of failing at the first training."""

    learning_rate: float = 3e-4
    """Adam step size at the start of each ``learn()`` call."""
    anneal_lr: bool = True
    """Decay the step size linearly towards 0 over each ``learn()`` call (CleanRL's ``anneal_lr``)."""
    adam_eps: float = 1e-5
    """Adam epsilon (1e-5 as in CleanRL and Stable-Baselines3's PPO, not torch's 1e-8)."""
    gamma: float = 0.99
    """Discount factor of future rewards."""
    gae_lambda: float = 0.95
    """GAE lambda: 0 is one-step TD advantages, 1 is Monte Carlo returns minus the value baseline."""
    clip_range: float = 0.2
    """PPO clip epsilon of the probability ratio in the surrogate objective."""
    clip_range_vf: float = 0.0
    """Clip of the value prediction around its rollout-time value (PPO2 style, max of clipped and unclipped
    squared errors); 0 disables value clipping."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus (subtracted from the loss, so it rewards exploration)."""
    vf_coef: float = 0.5
    """Weight of the value loss (mean squared error against the GAE returns) in the total loss."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip of every optimizer step; 0 disables it."""
    n_epochs: int = 10
    """Passes over the rollout buffer per update."""
    batch_size: int = 64
    """Minibatch size of one gradient step (the last minibatch of an epoch may be smaller)."""
    n_steps: int = 2048
    """Steps collected per environment before each update; the rollout buffer holds ``n_steps`` x number of
    environments transitions (the original buffer_size of 2048 with one environment)."""
    normalize_advantage: bool = True
    """Normalize advantages to zero mean and unit variance within each minibatch."""
    target_kl: float = 0.0
    """Stop an update's remaining epochs once a minibatch's approximate KL divergence from the rollout policy
    exceeds this; 0 disables the early stop."""
    hidden_sizes: list[int] = field(default_factory=lambda: [128, 128])
    """Hidden layer widths of the actor and of the critic MLPs."""
    activation: str = "tanh"
    """Hidden activation: ``tanh`` or ``relu``."""
    shared_trunk: bool = False
    """One hidden trunk feeding both heads instead of separate actor and critic networks."""
    simplex_min_concentration: float = 1.0
    """Lower bound of every Dirichlet concentration of the simplex-weight head; 1 keeps the density bounded
    (unimodal, finite log-probs at the simplex edges)."""
    seed: int = 0
    """Seed of torch, numpy and the environments: one seed, identical parameters after training."""
    device: str = "auto"
    """``auto`` (CUDA when present, else CPU), ``cpu`` or ``cuda``."""
    threads: int = 0
    """torch intra-op threads (``torch.set_num_threads``); 0 keeps torch's default."""
    tensorboard: bool = False
    """Also write each training's curve as TensorBoard event files (``tensorboard/<time>/`` beside the model; needs
    the ``tensorboard`` extra); the CSV ``training_metrics.csv`` is written either way."""

    def __post_init__(self) -> None:
        positive = ("learning_rate", "adam_eps", "clip_range", "n_epochs", "batch_size", "n_steps",
                    "simplex_min_concentration")
        non_negative = ("clip_range_vf", "ent_coef", "vf_coef", "max_grad_norm", "target_kl", "threads")
        require("ppo", self, (
            *((name, getattr(self, name) > 0, "> 0") for name in positive),
            *((name, getattr(self, name) >= 0, ">= 0") for name in non_negative),
            ("gamma", 0.0 <= self.gamma <= 1.0, "within [0, 1], e.g. 0.99"),
            ("gae_lambda", 0.0 <= self.gae_lambda <= 1.0, "within [0, 1], e.g. 0.95"),
            ("hidden_sizes", bool(self.hidden_sizes) and all(size >= 1 for size in self.hidden_sizes),
             "a non-empty list of positive layer widths, e.g. [64, 64]"),
            ("activation", self.activation in ACTIVATIONS, one_of(ACTIVATIONS)),
            ("device", self.device in DEVICES or re.fullmatch(r"cuda:[0-9]+", self.device) is not None,
             f"{one_of(DEVICES)} or cuda:N"),
        ))
