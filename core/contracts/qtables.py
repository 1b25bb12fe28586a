"""The Q-table files of the tabular agents: ``state/qlearning/meta_agent.json`` and ``sizing_agent.json``.

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
import os
from pathlib import Path
from typing import Any, TypedDict, cast

from core.atomic import SCHEMA_VERSION, Envelope, atomic_write_text, envelope
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
    if name not in AGENT_NAMES:
        raise ValueError(f"unknown agent {name!r}; agents: {', '.join(AGENT_NAMES)}")
    return agent_dir(cfg) / f"{name}_agent.json"


def qtable_document(producer: str, payload: QTablePayload) -> QTableDocument:
    """``payload`` inside the envelope, ready for :func:`write_qtable`."""
    return cast(QTableDocument, envelope(producer, dict(payload), schema_version=QTABLE_SCHEMA_VERSION))


def read_qtable(path: Path) -> dict[str, Any] | None:
    """The file as a mapping; None when absent; :class:`DataError` naming the file when unreadable.

    Only the JSON is checked here; the agent that loads it checks the fields (see ``QAgent.load_document``).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the Q-table ({exc}); fix its permissions or move it aside") from exc
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); move it aside to start the agent afresh") from exc
    if not isinstance(doc, dict):
        raise DataError(f"{path}: expected a JSON object; move it aside to start the agent afresh")
    return doc


def write_qtable(path: Path, doc: QTableDocument) -> int:
    """Write ``doc`` atomically as compact JSON (NaN refused with ValueError); returns the file size in bytes."""
    text = json.dumps(doc, allow_nan=False, separators=(",", ":"))
    atomic_write_text(path, text + "\n")
    return os.path.getsize(path)
