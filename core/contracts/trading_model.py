"""``state/rl_v3/ppo_model.pt``: the trading PPO's model in force, its backup and the single-training lock.

- ``state/rl_v3/ppo_model.pt`` the model in force: a weights-only checkpoint (tensors and plain data, loaded with
  ``torch.load(..., weights_only=True)``) whose ``extra`` metadata is a :class:`TradingModelMeta`;
- ``state/rl_v3/ppo_model.prev.pt`` the model it replaced, kept as a backup by :func:`install_checkpoint`;
- ``state/rl_v3/train.lock`` held (``fcntl``) by the one training that may run at a time.
- ``state/rl_v3/training_metrics.csv`` the learning curve of the latest training, one row per PPO update
  (columns: :data:`ai.ppo.metrics_log.METRICS_COLUMNS`), written as it runs.

The checkpoint itself is written by the PPO implementation; this module owns where it goes, the backup rule,
what its metadata holds and how that metadata is checked (:func:`validate_model_meta`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

from core.atomic import atomic_write_bytes
from core.config import Config

MODEL_DIR = "rl_v3"
"""Folder of the trading agent's durable files inside ``state/``."""
MODEL_NAME = "ppo_model.pt"
BACKUP_NAME = "ppo_model.prev.pt"
LOCK_NAME = "train.lock"
METRICS_NAME = "training_metrics.csv"
MODEL_DISPLAY = f"state/{MODEL_DIR}/{MODEL_NAME}"
"""How messages and help texts name the model in force (relative to the home folder)."""
MODEL_KIND = "rl_v3_trading_ppo"
"""``extra.kind`` of a trading PPO checkpoint (another PPO's checkpoint is refused)."""


class TrainRange(TypedDict):
    """A window of candles: open times of its first and last candle (ms and ISO-8601 UTC) and its length."""

    start: int
    end: int
    start_time: str
    end_time: str
    bars: int


class TradingModelMeta(TypedDict, total=False):
    """The ``extra`` metadata of a trading PPO checkpoint."""

    kind: str
    symbol: str
    timeframe: str
    data_source: str
    train_range: TrainRange
    features: list[str]
    actions: list[str]
    env_options: dict[str, Any]
    episodes: int
    episode_steps: int
    metrics: dict[str, Any]
    trained_at: str
    segments: int


def model_dir(cfg: Config) -> Path:
    """``state/rl_v3/`` of the configured home."""
    return cfg.state_dir / MODEL_DIR


def model_path(cfg: Config) -> Path:
    """``state/rl_v3/ppo_model.pt``: the model in force."""
    return model_dir(cfg) / MODEL_NAME


def backup_model_path(cfg: Config) -> Path:
    """``state/rl_v3/ppo_model.prev.pt``: the model the last install replaced."""
    return model_dir(cfg) / BACKUP_NAME


def lock_path(cfg: Config) -> Path:
    """``state/rl_v3/train.lock``: held by the training in progress."""
    return model_dir(cfg) / LOCK_NAME


def metrics_path(cfg: Config) -> Path:
    """``state/rl_v3/training_metrics.csv``: the per-update metrics of the latest training."""
    return model_dir(cfg) / METRICS_NAME


def install_checkpoint(cfg: Config, write: Callable[[Path], object]) -> Path:
    """Make a new model the one in force: the current one is copied to the backup first, then ``write(path)``
    writes the new checkpoint (atomically) at :func:`model_path`. Returns that path."""
    target = model_path(cfg)
    if target.exists():
        atomic_write_bytes(backup_model_path(cfg), target.read_bytes())
    write(target)
    return target


def validate_model_meta(meta: Mapping[str, Any], features: Sequence[str], n_actions: int) -> str | None:
    """Why a checkpoint's metadata (the whole PPO metadata, with ``extra``) is not a trading model for these
    ``features`` and ``n_actions``, or None when it is one."""
    extra = meta.get("extra", {})
    if not isinstance(extra, Mapping) or extra.get("kind") != MODEL_KIND:
        kind = extra.get("kind") if isinstance(extra, Mapping) else None
        return (f"not a trading PPO model (kind {kind!r}); train one with `python ai/shadow_ppo.py train`")
    action_spec = meta.get("action_spec", {})
    n = action_spec.get("n") if isinstance(action_spec, Mapping) else None
    if int(meta.get("obs_dim", -1)) != len(features) or n != n_actions \
            or list(extra.get("features", [])) != list(features):
        return (f"model built for other features or actions than this version's {len(features)} features and "
                f"{n_actions} actions; retrain it")
    return None
