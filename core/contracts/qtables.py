"""The Q-table files of the tabular agents: ``state/qlearning/meta_agent.json`` and ``sizing_agent.json``.

Backups (``state/qlearning/backups/<kind>_<time>/``: copies of the tables and a ``backup.json`` manifest) are
made, listed, pruned and found here too; :mod:`ai.tabular.backups` decides when and restores them.

The Q-learning daemon (:mod:`ai.tabular`) and the tuning command write them (under a ``<file>.lock`` held by
the caller), the monitor reads them; all of them find the files here, and nobody else names them. A file is
compact JSON written atomically: the envelope (:mod:`core.atomic`), the hyperparameters in force, the tuning
overrides and their history, epsilon, the counters, running reward and TD-error statistics, the learning
progress and the table ``{state_key: {"visits": n, "q": {action: [q_value, updates]}}}``.

Loading is tolerant of a missing file (no table yet: None) and strict about a present one that cannot be
used: a :class:`~core.errors.DataError` naming the file and the fix, so a corrupt table is never silently
replaced by a fresh one.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypedDict, cast

from core.atomic import (
    SCHEMA_VERSION,
    Envelope,
    atomic_write_bytes,
    atomic_write_text,
    envelope,
    fsync_dir,
    load_json_file,
    parse_iso,
)
from core.config import Config
from core.errors import DataError

AGENT_NAMES: tuple[str, ...] = ("meta", "sizing")
"""The tabular agents, one file each: the strategy (meta) agent and the position-sizing agent."""
QTABLE_DIR_NAME = "qlearning"
"""Folder of the Q-tables inside ``state/``."""
QTABLE_SCHEMA_VERSION = SCHEMA_VERSION
"""``schema_version`` of a Q-table file (the envelope's, unchanged since the files were introduced)."""


class Hyperparameters(TypedDict):
    alpha: float
    gamma: float
    epsilon_decay: float
    epsilon_min: float


class RewardStats(TypedDict):
    """Running count, mean and sum of squared deviations of the rewards learned from."""

    n: int
    mean: float
    m2: float


class StateEntry(TypedDict):
    """One state: its visits and ``{action: [q_value, updates]}`` (actions as strings, JSON keys)."""

    visits: int
    q: dict[str, list[float]]


class QTablePayload(TypedDict):
    """The content of a Q-table file (without the envelope)."""

    agent: str
    n_actions: int
    default_action: int
    hyperparameters: Hyperparameters
    overrides: dict[str, float]
    epsilon: float
    updates: int
    q_updates: int
    reward_stats: RewardStats
    td_error_ema: float | None
    progress: dict[str, Any]
    tuning_history: list[dict[str, Any]]
    table: dict[str, StateEntry]


class QTableDocument(QTablePayload, Envelope):
    """A Q-table file as written: the envelope and the payload."""


def agent_dir(cfg: Config) -> Path:
    """``state/qlearning/`` of the configured home."""
    return cfg.state_dir / QTABLE_DIR_NAME


def agent_path(cfg: Config, name: str) -> Path:
    """``state/qlearning/<name>_agent.json``; ValueError for a name outside :data:`AGENT_NAMES`."""
    return agent_dir(cfg) / agent_path_name(name)


def qtable_document(producer: str, payload: QTablePayload) -> QTableDocument:
    """``payload`` inside the envelope, ready for :func:`write_qtable`."""
    return cast(QTableDocument, envelope(producer, dict(payload), schema_version=QTABLE_SCHEMA_VERSION))


def read_qtable(path: Path) -> dict[str, Any] | None:
    """The file as a mapping; None when absent; :class:`DataError` naming the file when unreadable.

    Only the JSON is checked here; the agent that loads it checks the fields (see ``QAgent.load_document``).
    """
    try:
        doc = load_json_file(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the Q-table ({exc}); fix its permissions or move it aside") from exc
    except ValueError as exc:
        raise DataError(f"{path}: {exc}; move it aside to start the agent afresh") from exc
    if not isinstance(doc, dict):
        raise DataError(f"{path}: expected a JSON object; move it aside to start the agent afresh")
    problem = validate_qtable(doc)
    if problem:
        raise DataError(f"{path}: {problem}; fix it, restore a backup or move it aside to start afresh")
    return doc


def validate_qtable(doc: dict[str, Any]) -> str | None:
    """Why the numbers of a Q-table document cannot be used, or None (the agent checks the table's entries).

    Checked here, at load, so a NaN epsilon or an infinite counter is refused before it reaches learning or
    tuning advice, and a ``table`` of the wrong type is never taken for an empty table.
    """
    if "table" in doc and not isinstance(doc["table"], dict):
        return f"`table` must be an object {{state: entry}}, got {type(doc['table']).__name__}"
    for key in ("updates", "q_updates"):
        if key in doc and not _is_count(doc[key]):
            return f"`{key}` must be an integer >= 0, got {doc[key]!r}"
    if "epsilon" in doc and not _in_unit(doc["epsilon"]):
        return f"`epsilon` must be a number in [0, 1], got {doc['epsilon']!r}"
    for section in ("hyperparameters", "overrides"):
        values = doc.get(section, {})
        if not isinstance(values, dict):
            return f"`{section}` must be an object, got {type(values).__name__}"
        bad = [k for k, v in values.items() if not _in_unit(v)]
        if bad:
            return f"`{section}.{bad[0]}` must be a number in [0, 1], got {values[bad[0]]!r}"
    stats = doc.get("reward_stats", {})
    if not isinstance(stats, dict):
        return f"`reward_stats` must be an object, got {type(stats).__name__}"
    bad = [k for k, v in stats.items() if not (_is_count(v) if k == "n" else _is_finite(v))]
    if bad:
        return f"`reward_stats.{bad[0]}` must be a finite number, got {stats[bad[0]]!r}"
    ema = doc.get("td_error_ema")
    if ema is not None and not _is_finite(ema):
        return f"`td_error_ema` must be a finite number or null, got {ema!r}"
    return None


def _is_finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _in_unit(value: Any) -> bool:
    return _is_finite(value) and 0.0 <= value <= 1.0


def write_qtable(path: Path, doc: QTableDocument) -> int:
    """Write ``doc`` atomically as compact JSON (NaN refused with ValueError); returns the file size in bytes."""
    text = json.dumps(doc, allow_nan=False, separators=(",", ":"))
    atomic_write_text(path, text + "\n")
    return os.path.getsize(path)


# --------------------------------------------------------------------------------------------- backups

BACKUP_DIR_NAME = "backups"
"""Folder of the Q-table backups inside ``state/qlearning/``: one folder per backup, ``<kind>_<UTC time>``."""
BACKUP_MANIFEST = "backup.json"
"""The manifest inside a backup folder: when and why it was made and the files it holds."""
BACKUP_KINDS: tuple[str, ...] = ("weekly", "manual", "pre_restore")
"""Why a backup was made: the daemon's schedule, a user's command, or the tables replaced by a restore."""


@dataclass(frozen=True)
class BackupInfo:
    """One complete backup folder (one with a readable manifest)."""

    path: Path
    kind: str
    created_at: datetime
    agents: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.path.name


def backup_root(cfg: Config) -> Path:
    """``state/qlearning/backups/`` of the configured home."""
    return agent_dir(cfg) / BACKUP_DIR_NAME


def backup_name(kind: str, at: datetime) -> str:
    """``weekly_2024-01-07`` for the weekly backup (the seed's name), ``<kind>_<YYYY-MM-DDTHHMMSSZ>`` else."""
    if kind not in BACKUP_KINDS:
        raise ValueError(f"unknown backup kind {kind!r}; kinds: {', '.join(BACKUP_KINDS)}")
    at = at.astimezone(timezone.utc)
    return f"weekly_{at:%Y-%m-%d}" if kind == "weekly" else f"{kind}_{at:%Y-%m-%dT%H%M%SZ}"


def write_backup(cfg: Config, kind: str, at: datetime, producer: str) -> BackupInfo | None:
    """Copy every present Q-table into a new backup folder, atomically; None when there is no table to back up.

    The files and the manifest are written and fsynced in a hidden temporary folder that is then renamed into
    place, so a backup folder is either complete or absent. Callers hold the tables' locks. A folder of the
    same name (a second weekly backup the same day) is replaced only after the new one is complete.
    """
    sources = {name: agent_path(cfg, name) for name in AGENT_NAMES if agent_path(cfg, name).exists()}
    if not sources:
        return None
    root = backup_root(cfg)
    root.mkdir(parents=True, exist_ok=True)
    final = root / backup_name(kind, at)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        for path in sources.values():
            atomic_write_bytes(staging / path.name, path.read_bytes())
        manifest = envelope(producer, {"kind": kind, "created_at": at.astimezone(timezone.utc).isoformat(),
                                       "agents": sorted(sources), "files": [p.name for p in sources.values()]})
        atomic_write_text(staging / BACKUP_MANIFEST, json.dumps(manifest, indent=2) + "\n")
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BackupInfo(final, kind, at.astimezone(timezone.utc), tuple(sorted(sources)))


def list_backups(cfg: Config) -> list[BackupInfo]:
    """The complete backups, oldest first (folders without a readable manifest are left out)."""
    root = backup_root(cfg)
    found = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            doc = json.loads((folder / BACKUP_MANIFEST).read_text(encoding="utf-8"))
            found.append(BackupInfo(folder, str(doc["kind"]), parse_iso(str(doc["created_at"])),
                                    tuple(str(a) for a in doc["agents"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(found, key=lambda b: (b.created_at, b.name))


def prune_backups(cfg: Config, kind: str, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` backups of ``kind``; returns the folders removed."""
    same = [b for b in list_backups(cfg) if b.kind == kind]
    removed = [b.path for b in same[: max(0, len(same) - keep)]]
    for path in removed:
        shutil.rmtree(path)
    return removed


def find_backup(cfg: Config, name: str) -> BackupInfo:
    """The backup called ``name`` (a folder name as :func:`list_backups` shows it); DataError naming the choices."""
    backups = list_backups(cfg)
    for backup in backups:
        if backup.name == name:
            return backup
    known = ", ".join(b.name for b in backups) or "none yet"
    raise DataError(f"no Q-table backup `{name}` in {backup_root(cfg)}; backups: {known}")


def backup_file(backup: BackupInfo, name: str) -> Path:
    """The copy of agent ``name``'s Q-table inside ``backup``."""
    return backup.path / agent_path_name(name)


def agent_path_name(name: str) -> str:
    """The file name of agent ``name``'s Q-table (``<name>_agent.json``)."""
    if name not in AGENT_NAMES:
        raise ValueError(f"unknown agent {name!r}; agents: {', '.join(AGENT_NAMES)}")
    return f"{name}_agent.json"
