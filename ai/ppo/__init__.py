"""The one PPO of the suite, shared by the strategy-weight agent and the trading agent.

Modules: :mod:`~ai.ppo.losses` (GAE and the clipped loss, pure functions), :mod:`~ai.ppo.buffer` (rollout
storage), :mod:`~ai.ppo.networks` (actor-critic with categorical or Dirichlet head), :mod:`~ai.ppo.algorithm`
(rollouts and updates), :mod:`~ai.ppo.checkpoints` (weights-only files), :mod:`~ai.ppo.metrics_log` (the per-update CSV), :mod:`~ai.ppo.evaluation`,
:mod:`~ai.ppo.vec_env`, :mod:`~ai.ppo.runtime` (device, seeding) and :mod:`~ai.ppo.cli`
(``python -m ai.ppo``). Other packages import the public API from here.
"""

from typing import TYPE_CHECKING, Any

from ai.ppo.errors import CheckpointError

if TYPE_CHECKING:
    from ai.ppo.algorithm import PPO, Callback, Pulse, PulseHook, UpdateStats
    from ai.ppo.checkpoints import check_compatible, load_policy, read_checkpoint
    from ai.ppo.cli import ENV_PRESETS, build_config, parse_overrides
    from ai.ppo.evaluation import evaluate
    from ai.ppo.losses import PPOLoss, compute_gae, explained_variance, normalize_advantages, ppo_loss
    from ai.ppo.metrics_log import METRICS_COLUMNS, TENSORBOARD_INSTALL, MetricsLog, tensorboard_run_dir
    from ai.ppo.networks import ActionSpec, ActorCritic
    from ai.ppo.runtime import resolve_device, seed_everything
    from ai.ppo.vec_env import as_vector_env, make_vec_env, sync_vector_env

# Imported on first use: most of the package needs torch (half a gigabyte), which daemons that only predict
# with ai.ppo.numpy_policy never load.
_LAZY: dict[str, str] = {
    **dict.fromkeys(("PPO", "Callback", "Pulse", "PulseHook", "UpdateStats"), "ai.ppo.algorithm"),
    **dict.fromkeys(("check_compatible", "load_policy", "read_checkpoint"), "ai.ppo.checkpoints"),
    **dict.fromkeys(("ENV_PRESETS", "build_config", "parse_overrides"), "ai.ppo.cli"),
    "evaluate": "ai.ppo.evaluation",
    **dict.fromkeys(("PPOLoss", "compute_gae", "explained_variance", "normalize_advantages", "ppo_loss"),
                    "ai.ppo.losses"),
    **dict.fromkeys(("METRICS_COLUMNS", "TENSORBOARD_INSTALL", "MetricsLog", "tensorboard_run_dir"),
                    "ai.ppo.metrics_log"),
    **dict.fromkeys(("ActionSpec", "ActorCritic"), "ai.ppo.networks"),
    **dict.fromkeys(("resolve_device", "seed_everything"), "ai.ppo.runtime"),
    **dict.fromkeys(("as_vector_env", "make_vec_env", "sync_vector_env"), "ai.ppo.vec_env"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'ai.ppo' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


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
    "TENSORBOARD_INSTALL",
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
    "tensorboard_run_dir",
]
