"""The strategy-weight agent: a PPO policy with a Dirichlet head over the 8 strategy weights, its checkpoints.

    agent = load_agent(cfg)                       # the latest checkpoint, None when none exists
    weights = agent.weights(observation)          # {strategy: weight}, deterministic (the Dirichlet mean)

Its files (the model folder of :mod:`core.contracts.allocation_model`): the latest checkpoint in use, the
previous one as a backup, a candidate waiting for validation, and ``config.json`` describing the latest model
for people and tools (the checkpoint's own metadata holds the same and is what loading relies on).

Checkpoints are written by :meth:`ai.ppo.PPO.save` (tensors and plain data, atomically) and read with
``torch.load(..., weights_only=True)``, or for the inference daemon (``load_agent(cfg, numpy_policy=True)``:
no torch) by :func:`ai.ppo.numpy_policy.read_checkpoint_arrays`, which refuses the same: no code is ever
unpickled. Promotion copies the latest checkpoint to the
backup atomically, then renames the candidate over the latest one, so whenever a process is killed the
latest checkpoint is a complete one (the old or the new one).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ai.allocation.features import FEATURE_NAMES, N_FEATURES, N_STRATEGIES
from ai.ppo import CheckpointError
from ai.ppo.numpy_policy import NumpyPolicy, read_checkpoint_arrays
from core.atomic import atomic_write_bytes, fsync_dir
from core.config import STRATEGIES, Config, StrategyAgentConfig
from core.contracts.allocation_model import (
    PREVIOUS_NAME,
    ModelConfig,
    candidate_path,
    latest_path,
    model_config_version,
    previous_path,
    write_model_config,
)
from core.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from ai.ppo import PPO, ActorCritic

log = logging.getLogger(__name__)

MODEL_KIND = "strategy_weights"
"""``meta.extra.kind`` of a strategy-weight checkpoint (the trading agent's checkpoints say otherwise)."""
FEATURE_PARAMS: tuple[str, ...] = (
    "rebalance_period", "window_periods", "recent_periods", "market_window_candles", "sharpe_scale", "pnl_scale", "drawdown_scale",
)
"""Config fields the features depend on: inference uses the values the model was trained with."""


def feature_params(acfg: StrategyAgentConfig) -> dict[str, Any]:
    """The feature-defining fields of the agent's config, as plain data."""
    return {name: getattr(acfg, name) for name in FEATURE_PARAMS}


def with_feature_params(acfg: StrategyAgentConfig, params: dict[str, Any]) -> StrategyAgentConfig:
    """``acfg`` with the feature-defining fields a model was trained with (unknown keys are ignored)."""
    known = {k: v for k, v in params.items() if k in FEATURE_PARAMS}
    try:
        return dataclasses.replace(acfg, **known)
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"checkpoint feature parameters {known} are not usable: {exc}") from exc


# ---------------------------------------------------------------------------------------------- the agent


@dataclass
class StrategyAgent:
    """A loaded policy and its metadata; turns states into strategy weights."""

    policy: ActorCritic | NumpyPolicy
    """The torch network (training, validation) or its numpy forward pass (the inference daemon: no torch)."""
    meta: dict[str, Any]
    path: Path

    @property
    def extra(self) -> dict[str, Any]:
        return self.meta.get("extra", {})

    @property
    def model_version(self) -> int:
        return int(self.extra.get("model_version", 0))

    @property
    def training_data(self) -> dict[str, Any]:
        return dict(self.extra.get("training_data", {}))

    @property
    def feature_params(self) -> dict[str, Any]:
        return dict(self.extra.get("feature_params", {}))

    def weights_array(self, observation: np.ndarray) -> np.ndarray:
        """Deterministic weights (the Dirichlet mean) for one observation ``(42,)`` or a batch ``(n, 42)``."""
        return self.policy.predict(np.asarray(observation, dtype=np.float32), deterministic=True)

    def weights(self, observation: np.ndarray) -> dict[str, float]:
        """``{strategy: weight}`` for one observation; non-negative, summing to 1."""
        return {name: float(w) for name, w in zip(STRATEGIES, self.weights_array(observation), strict=True)}


def check_meta(meta: dict[str, Any], path: Path) -> None:
    """Refuse a checkpoint that is not a strategy-weight model over these 42 features and 8 strategies."""
    extra = meta.get("extra", {})
    if not isinstance(extra, dict) or extra.get("kind") != MODEL_KIND:
        raise CheckpointError(f"{path}: not a strategy-weight model (meta.extra.kind is "
                              f"{extra.get('kind') if isinstance(extra, dict) else None!r}); retrain with "
                              "`python ai/rl_trainer.py --train`")
    if list(extra.get("features", [])) != list(FEATURE_NAMES) or int(meta.get("obs_dim", -1)) != N_FEATURES:
        raise CheckpointError(f"{path}: trained on other features than the current {N_FEATURES}; retrain the model")
    if list(extra.get("strategies", [])) != list(STRATEGIES):
        raise CheckpointError(f"{path}: trained for other strategies ({extra.get('strategies')}); retrain the model")
    action = meta.get("action_spec", {})
    if action.get("kind") != "simplex" or int(action.get("n", -1)) != N_STRATEGIES:
        raise CheckpointError(f"{path}: action head is {action}, expected simplex weights over {N_STRATEGIES}")


def nonfinite_parameter(module: torch.nn.Module) -> str | None:
    """Name of the first parameter or buffer holding NaN or infinity, or None when all are finite."""
    import torch

    for name, tensor in module.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def nonfinite_array(arrays: dict[str, Any]) -> str | None:
    """Name of the first floating-point array of a checkpoint's state dict holding NaN or infinity, or None."""
    for name, array in arrays.items():
        if isinstance(array, np.ndarray) and array.dtype.kind == "f" and not bool(np.isfinite(array).all()):
            return name
    return None


def load_checkpoint(path: str | os.PathLike[str], numpy_policy: bool = False) -> StrategyAgent:
    """Load one checkpoint file (weights only) and check it is a usable strategy-weight model.

    ``numpy_policy`` gives the agent the numpy forward pass (:mod:`ai.ppo.numpy_policy`) instead of the torch
    network: the same weights, read without importing torch.
    """
    file = Path(path)
    if numpy_policy:
        return _load_numpy_checkpoint(file)
    from ai.ppo import load_policy

    policy, meta = load_policy(file, device="cpu")
    check_meta(meta, file)
    bad = nonfinite_parameter(policy)
    if bad is not None:
        raise CheckpointError(f"{file}: parameter `{bad}` holds NaN or infinity; retrain the model")
    return StrategyAgent(policy, meta, file)


def _load_numpy_checkpoint(file: Path) -> StrategyAgent:
    payload = read_checkpoint_arrays(file)
    meta = payload["meta"]
    check_meta(meta, file)
    bad = nonfinite_array(payload["state_dict"])
    if bad is not None:
        raise CheckpointError(f"{file}: parameter `{bad}` holds NaN or infinity; retrain the model")
    try:
        policy = NumpyPolicy.from_state_dict(payload["state_dict"], meta)
    except CheckpointError as exc:
        raise CheckpointError(f"{file}: {exc}") from exc
    return StrategyAgent(policy, meta, file)


def load_agent(cfg: Config, numpy_policy: bool = False) -> StrategyAgent | None:
    """The latest model, else the backup when the latest is unusable; None when there is no model at all.

    Raises :class:`CheckpointError` when model files exist but none of them can be used.
    """
    problems = []
    for path in (latest_path(cfg), previous_path(cfg)):
        if not path.exists():
            continue
        try:
            agent = load_checkpoint(path, numpy_policy)
        except CheckpointError as exc:
            problems.append(str(exc))
            log.warning("unusable model: %s", exc)
            continue
        if path.name == PREVIOUS_NAME:
            log.warning("using the backup model %s (model version %d)", path, agent.model_version)
        return agent
    if problems:
        raise CheckpointError("; ".join(problems))
    return None


# ---------------------------------------------------------------------------------------------- saving


def current_model_version(cfg: Config) -> int:
    """Version of the latest model, read from its checkpoint (0 without a usable one)."""
    try:
        agent = load_agent(cfg)
    except CheckpointError:
        return _config_json_version(cfg)
    return agent.model_version if agent is not None else _config_json_version(cfg)


def _config_json_version(cfg: Config) -> int:
    version = model_config_version(cfg)
    return version if version is not None else 0


def checkpoint_extra(acfg: StrategyAgentConfig, model_version: int, training_data: dict[str, Any],
                     **more: Any) -> dict[str, Any]:
    """The plain-data metadata a strategy-weight checkpoint carries (beside PPO's own)."""
    agent_config = {k: v for k, v in dataclasses.asdict(acfg).items() if k != "ppo"}
    return {
        "kind": MODEL_KIND,
        "model_version": int(model_version),
        "features": list(FEATURE_NAMES),
        "strategies": list(STRATEGIES),
        "feature_params": feature_params(acfg),
        "agent_config": agent_config,
        "training_data": training_data,
        **more,
    }


def save_candidate(ppo: PPO, cfg: Config, extra: dict[str, Any]) -> Path:
    """Write the trained model as the candidate checkpoint (atomically); the latest model is untouched."""
    return ppo.save(candidate_path(cfg), extra_meta=extra)


def promote_candidate(cfg: Config) -> Path:
    """Make the candidate the latest model, keeping the replaced one as the previous (backup) checkpoint.

    Order matters for crash safety: the backup is written atomically first, then the candidate is renamed
    over the latest one (one atomic step), then the folder's ``config.json`` is refreshed from the new model.
    """
    candidate, latest = candidate_path(cfg), latest_path(cfg)
    if not candidate.is_file():
        raise CheckpointError(f"{candidate}: no candidate checkpoint to promote")
    if latest.is_file():
        atomic_write_bytes(previous_path(cfg), latest.read_bytes())
    os.replace(candidate, latest)
    fsync_dir(latest.parent)
    agent = load_checkpoint(latest)
    write_config_json(cfg, agent)
    return latest


def write_config_json(cfg: Config, agent: StrategyAgent) -> Path:
    """The model folder's ``config.json``: features, hyperparameters, model version, training data range."""
    extra = agent.extra
    payload: ModelConfig = {
        "model_version": agent.model_version,
        "checkpoint": latest_path(cfg).name,
        "saved_at": agent.meta.get("saved_at"),
        "features": list(FEATURE_NAMES),
        "n_features": N_FEATURES,
        "strategies": list(STRATEGIES),
        "action": "Dirichlet over the 8 weights; deterministic weights are its mean",
        "feature_params": extra.get("feature_params", {}),
        "agent_config": extra.get("agent_config", {}),
        "hyperparameters": agent.meta.get("ppo_config", {}),
        "training_data": extra.get("training_data", {}),
        "training": {k: extra[k] for k in ("episodes", "total_steps", "seed", "trained_at") if k in extra},
        "num_timesteps": agent.meta.get("num_timesteps"),
        "torch_version": agent.meta.get("torch_version"),
    }
    return write_model_config(cfg, payload)


def finite_or_none(value: float) -> float | None:
    """A float for JSON documents: None instead of NaN or infinity."""
    return float(value) if value is not None and math.isfinite(value) else None
