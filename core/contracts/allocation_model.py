"""``state/rl_model/``: the strategy-weight agent's model folder, and its ``config.json``.

Files of the folder (paths below; the checkpoints' own format is :mod:`ai.ppo.checkpoints`):

- ``checkpoint_latest.pt``: the model in use; ``checkpoint_previous.pt``: the one it replaced (a backup);
  ``checkpoint_candidate.pt``: a freshly trained model waiting for validation (promoted or left aside).
- ``config.json``: what the latest model is (features, hyperparameters, model version, training data range),
  for people and tools; the checkpoint's own metadata holds the same and is what loading relies on.
- ``training_metrics.csv``: the learning curve of the latest training, one row per PPO update (columns:
  ``ai.ppo.metrics_log.METRICS_COLUMNS``), written as it runs.

Writer: the trainer (:func:`write_model_config`, after each promotion). Readers: the trainer (the model
version when no checkpoint is usable), the inference daemon (watches the latest checkpoint's name) and the
status command, through :func:`read_model_config` / :func:`model_config_version`. Reading is tolerant: a
missing, unparsable or invalid ``config.json`` is "no information" with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

from core.atomic import SCHEMA_VERSION, ReadResult, publish_json, read_json
from core.config import Config

MODEL_DIR_NAME = "rl_model"
"""Folder of the strategy-weight agent's model inside ``state/``."""
LATEST_NAME = "checkpoint_latest.pt"
PREVIOUS_NAME = "checkpoint_previous.pt"
CANDIDATE_NAME = "checkpoint_candidate.pt"
CONFIG_NAME = "config.json"
METRICS_NAME = "training_metrics.csv"
CONFIG_SCHEMA_VERSION = SCHEMA_VERSION
PRODUCER = "rl_trainer"


def model_dir(cfg: Config) -> Path:
    """``state/rl_model/``."""
    return cfg.state_dir / MODEL_DIR_NAME


def latest_path(cfg: Config) -> Path:
    """The checkpoint in use."""
    return model_dir(cfg) / LATEST_NAME


def previous_path(cfg: Config) -> Path:
    """The backup: the checkpoint the latest one replaced."""
    return model_dir(cfg) / PREVIOUS_NAME


def candidate_path(cfg: Config) -> Path:
    """A trained checkpoint waiting for validation, or left aside after a rejection."""
    return model_dir(cfg) / CANDIDATE_NAME


def metrics_path(cfg: Config) -> Path:
    """``state/rl_model/training_metrics.csv``: the per-update metrics of the latest training."""
    return model_dir(cfg) / METRICS_NAME


def config_path(cfg: Config) -> Path:
    """``state/rl_model/config.json``."""
    return model_dir(cfg) / CONFIG_NAME


class ModelConfig(TypedDict):
    """The payload of ``config.json`` (inside the published envelope)."""

    model_version: int
    checkpoint: str
    saved_at: str | None
    features: list[str]
    n_features: int
    strategies: list[str]
    action: str
    feature_params: dict[str, Any]
    agent_config: dict[str, Any]
    hyperparameters: dict[str, Any]
    training_data: dict[str, Any]
    training: dict[str, Any]
    """How the latest model was trained: ``episodes``, ``total_steps``, ``seed``, ``trained_at``."""
    num_timesteps: int | None
    torch_version: str | None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_model_config(doc: Mapping[str, Any]) -> str | None:
    """Why ``doc`` is not a usable ``config.json``, or None. Only the keys it holds are checked."""
    if "model_version" in doc and not (_is_int(doc["model_version"]) and doc["model_version"] >= 0):
        return f"`model_version` must be a non-negative integer, got {doc['model_version']!r}"
    for key in ("features", "strategies"):
        if key in doc and not (isinstance(doc[key], list) and all(isinstance(v, str) for v in doc[key])):
            return f"`{key}` must be a list of names"
    return None


def write_model_config(cfg: Config, payload: ModelConfig) -> Path:
    """Publish ``config.json`` atomically in the envelope; returns its path."""
    path = config_path(cfg)
    publish_json(path, PRODUCER, dict(payload))
    return path


def read_model_config(cfg: Config) -> ReadResult:
    """Read ``config.json`` without raising: ``absent``, ``invalid`` (with the reason) or ``ok``."""
    return read_json(config_path(cfg), validate=validate_model_config)


def model_config_version(cfg: Config) -> int | None:
    """The model version ``config.json`` records, or None when it is absent, unusable or says none."""
    result = read_model_config(cfg)
    version = result.data.get("model_version") if result.ok and result.data is not None else None
    return version if _is_int(version) else None
