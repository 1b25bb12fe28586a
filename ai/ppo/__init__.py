"""The one PPO of the suite, shared by the strategy-weight agent and the trading agent.

Modules: :mod:`~ai.ppo.losses` (GAE and the clipped loss, pure functions), :mod:`~ai.ppo.buffer` (rollout
storage), :mod:`~ai.ppo.networks` (actor-critic with categorical or Dirichlet head), :mod:`~ai.ppo.algorithm`
(rollouts and updates), :mod:`~ai.ppo.checkpoints` (weights-only files), :mod:`~ai.ppo.metrics_log` (the per-update CSV), :mod:`~ai.ppo.evaluation`,
:mod:`~ai.ppo.vec_env`, :mod:`~ai.ppo.runtime` (device, seeding) and :mod:`~ai.ppo.cli`
(``python -m ai.ppo``). Other packages import the public API from here.
"""

from ai.ppo.algorithm import PPO, Callback, Pulse, PulseHook, UpdateStats
from ai.ppo.checkpoints import CheckpointError, check_compatible, load_policy, read_checkpoint
from ai.ppo.cli import ENV_PRESETS, build_config, parse_overrides
from ai.ppo.evaluation import evaluate
from ai.ppo.losses import PPOLoss, compute_gae, explained_variance, normalize_advantages, ppo_loss
from ai.ppo.metrics_log import METRICS_COLUMNS, MetricsLog
from ai.ppo.networks import ActionSpec, ActorCritic
from ai.ppo.runtime import resolve_device, seed_everything
from ai.ppo.vec_env import as_vector_env, make_vec_env, sync_vector_env

__all__ = [
    "ENV_PRESETS",
    "METRICS_COLUMNS",
    "PPO",
    "ActionSpec",
    "ActorCritic",
    "Callback",
    "CheckpointError",
    "MetricsLog",
    "PPOLoss",
    "Pulse",
    "PulseHook",
    "UpdateStats",
    "as_vector_env",
    "build_config",
    "check_compatible",
    "compute_gae",
    "evaluate",
    "explained_variance",
    "load_policy",
    "make_vec_env",
    "normalize_advantages",
    "parse_overrides",
    "ppo_loss",
    "read_checkpoint",
    "resolve_device",
    "seed_everything",
    "sync_vector_env",
]
