"""``state/rl_training_log.json``: one record per training of the strategy-weight agent.

The document is ``{"records": [...]}`` in the published envelope, oldest first, the newest
``strategy_agent.training_log_max_records`` kept.

Writer: the trainer, through :func:`append_training_record` (read-modify-write under a lock on
``rl_training_log.json.lock``, published atomically). A log that exists but cannot be read is moved aside as
``rl_training_log.json.unreadable-<time>`` rather than overwritten, so what it still holds can be recovered.
A promotion is announced first: its record is appended with ``"promoted": false, "promotion_pending": true``,
the model is promoted, and :func:`replace_training_record` completes the record; a pending record whose
completion a kill prevented is settled by the trainer's next start from the model in place. So a promoted model
always has its record.

Readers: the trainer (:func:`read_training_records`: the last completed training, the versions used) and the
performance report (:func:`read_training_log`: the latest records with a status and reason; any list of
objects under one of :data:`TRAINING_LIST_KEYS` or a top-level list is accepted, and non-finite numbers become
None so the report stays valid JSON).
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Literal, TypedDict, cast

from core.atomic import SCHEMA_VERSION, publish_json, read_json, utc_now_iso
from core.config import Config
from core.locks import locked

log = logging.getLogger(__name__)

TRAINING_LOG_NAME = "rl_training_log.json"
"""File name of the log inside ``state/``."""
TRAINING_LOG_SCHEMA_VERSION = SCHEMA_VERSION
PRODUCER = "rl_trainer"
TRAINING_LIST_KEYS: tuple[str, ...] = ("records", "history", "runs", "trainings", "sessions", "entries", "log")
"""Keys under which the tolerant reader accepts the list of records (the writer uses ``records``)."""


class TrainingLosses(TypedDict):
    """The PPO losses of the last update of a training (None where not finite)."""

    policy: float | None
    value: float | None
    entropy: float | None
    approx_kl: float | None


class TrainingRecord(TypedDict, total=False):
    """One training. Every record has the keys up to ``reason``; ``holdout`` only when the training completed,
    ``candidate`` only when a completed candidate was not promoted."""

    started_at: str
    finished_at: str
    trigger: str
    model_version: int
    data_range: dict[str, Any]
    trades: int
    episodes: int
    total_steps: int
    updates: int
    mean_episode_reward: float | None
    mean_step_reward: float | None
    losses: TrainingLosses | None
    train_duration_s: float
    completed: bool
    promoted: bool
    reason: str
    holdout: dict[str, Any]
    candidate: str
    duration_s: float
    promotion_pending: bool


class TrainingLogView(TypedDict, total=False):
    """What :func:`read_training_log` found: a status, the reason when not ``ok``, the latest records."""

    status: Literal["ok", "absent", "invalid"]
    reason: str
    total_records: int
    records: list[dict[str, Any]]
    skipped: int


def training_log_path(cfg: Config) -> Path:
    """``state/rl_training_log.json`` of the configured home."""
    return cfg.state_dir / TRAINING_LOG_NAME


# ------------------------------------------------------------------------------------------ the writer's side


def read_training_records(cfg: Config) -> list[TrainingRecord]:
    """The records of the log, oldest first; a missing or unreadable log is empty (logged as a warning)."""
    result = read_json(training_log_path(cfg))
    if not result.ok or result.data is None:
        if result.status != "absent":
            log.warning("training log unusable, starting a new one: %s", result.reason)
        return []
    records = result.data.get("records")
    # Records are taken as written: readers look keys up with .get, so an older record's missing key is fine.
    return [cast(TrainingRecord, r) for r in records if isinstance(r, dict)] if isinstance(records, list) else []


def append_training_record(cfg: Config, record: TrainingRecord, max_records: int | None = None) -> Path:
    """Add ``record`` to the log (atomically, under a lock), keeping the newest ``max_records`` records
    (default ``strategy_agent.training_log_max_records``)."""
    keep = cfg.strategy_agent.training_log_max_records if max_records is None else max_records
    path = training_log_path(cfg)
    with locked(path):
        _set_aside_if_unreadable(path)
        records = [*read_training_records(cfg), record]
        publish_json(path, PRODUCER, {"records": records[-keep:]})
    return path


def replace_training_record(cfg: Config, record: TrainingRecord) -> bool:
    """Put ``record`` in place of the newest pending record of its ``model_version`` (atomically, under the
    lock); False when there is none. Used to complete a promotion the log announced as pending."""
    path = training_log_path(cfg)
    with locked(path):
        records = read_training_records(cfg)
        for i in range(len(records) - 1, -1, -1):
            if records[i].get("promotion_pending") and records[i].get("model_version") == record.get("model_version"):
                records[i] = record
                publish_json(path, PRODUCER, {"records": records})
                return True
    return False


def _set_aside_if_unreadable(path: Path) -> None:
    result = read_json(path)
    if result.status in ("ok", "absent") and (result.data is None or isinstance(result.data.get("records"), list)):
        return
    aside = path.with_name(f"{path.name}.unreadable-{utc_now_iso().replace(':', '')}")
    os.replace(path, aside)
    log.warning("training log %s unusable (%s); moved to %s, starting a new one", path,
                result.reason or "no `records` list", aside.name)


# ------------------------------------------------------------------------------------------ the report's side


def finite_only(value: Any) -> Any:
    """``value`` with every non-finite number replaced by None (records of other writers may hold NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite_only(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_only(v) for v in value]
    return value


def read_training_log(cfg: Config, limit: int) -> TrainingLogView:
    """The latest ``limit`` records of the log, read tolerantly (status and reason instead of raising)."""
    path = training_log_path(cfg)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"status": "absent", "reason": f"{path.name}: file not found (no training has run yet)",
                "total_records": 0, "records": []}
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return {"status": "invalid", "reason": f"{path.name}: unreadable or not valid JSON ({exc})",
                "total_records": 0, "records": []}
    records = _record_list(doc)
    if records is None:
        return {"status": "invalid", "total_records": 0, "records": [],
                "reason": f"{path.name}: expected a list of records (top level or under one of: "
                          f"{', '.join(TRAINING_LIST_KEYS)})"}
    usable = [finite_only(r) for r in records if isinstance(r, dict)]
    view: TrainingLogView = {"status": "ok", "total_records": len(usable), "records": usable[-limit:]}
    if len(usable) < len(records):
        view["skipped"] = len(records) - len(usable)
    return view


def _record_list(doc: Any) -> list[Any] | None:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        for key in TRAINING_LIST_KEYS:
            if isinstance(doc.get(key), list):
                return list(doc[key])
    return None
