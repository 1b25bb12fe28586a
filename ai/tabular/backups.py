"""Q-table backups: the daemon's scheduled (weekly) backup with its retention, a backup on demand, and restore.

The folders and their manifest belong to :mod:`core.contracts.qtables`; this module decides when a scheduled
backup is due (``qlearning.backup_cron``, UTC: the first cron time after the newest scheduled backup, or after
the daemon started when there is none) and restores a chosen backup: under the tables' locks, the current tables
are backed up first (``pre_restore_<time>``), each table of the backup is checked to load as its agent, and only
then are the tables replaced, atomically, one file each. An agent the backup does not hold keeps its table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ai.tabular.agent import PRODUCER
from ai.tabular.store import agents_locked, load_agent_file, new_agent
from core.atomic import atomic_write_bytes
from core.config import Config
from core.contracts.qtables import (
    AGENT_NAMES,
    BackupInfo,
    agent_path,
    backup_file,
    find_backup,
    list_backups,
    prune_backups,
    write_backup,
)
from core.schedule import cron_trigger

log = logging.getLogger(__name__)

SCHEDULED = "weekly"
"""The kind of the daemon's scheduled backups (the seed's ``backups/weekly_<date>/``)."""


def next_backup_due(cfg: Config, since: datetime) -> datetime | None:
    """The first ``qlearning.backup_cron`` time after the newest scheduled backup (else after ``since``); None
    when scheduled backups are off."""
    expression = cfg.qlearning.backup_cron
    if not expression:
        return None
    scheduled = [b for b in list_backups(cfg) if b.kind == SCHEDULED]
    after = max(scheduled[-1].created_at, since) if scheduled else since
    trigger = cron_trigger(expression, "qlearning.backup_cron")
    due: datetime | None = trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
    return due


def backup_if_due(cfg: Config, started: datetime, now: datetime | None = None) -> BackupInfo | None:
    """The scheduled backup when it is due (then the oldest beyond ``qlearning.backup_keep`` are removed)."""
    now = now or datetime.now(timezone.utc)
    due = next_backup_due(cfg, started)
    if due is None or due > now:
        return None
    with agents_locked(cfg):
        made = write_backup(cfg, SCHEDULED, now, PRODUCER)
    if made is None:
        return None
    removed = prune_backups(cfg, SCHEDULED, cfg.qlearning.backup_keep)
    log.info("backed up the Q-tables to %s%s", made.path,
             f"; removed {len(removed)} older backup(s)" if removed else "")
    return made


def backup_now(cfg: Config, now: datetime | None = None) -> BackupInfo | None:
    """A backup on demand (``manual_<time>``); None when there is no Q-table yet."""
    with agents_locked(cfg):
        return write_backup(cfg, "manual", now or datetime.now(timezone.utc), PRODUCER)


@dataclass(frozen=True)
class RestoreResult:
    """What :func:`restore_backup` did: the backup restored, the one made of the tables it replaced, the agents
    restored and those the backup did not hold (left as they were)."""

    restored_from: BackupInfo
    previous: BackupInfo | None
    agents: tuple[str, ...]
    kept: tuple[str, ...]


def restore_backup(cfg: Config, name: str, now: datetime | None = None) -> RestoreResult:
    """Replace the Q-tables with those of backup ``name``, after backing up the current ones.

    DataError (nothing changed) when the backup is unknown or one of its tables does not load as its agent.
    """
    backup = find_backup(cfg, name)
    agents = tuple(a for a in AGENT_NAMES if a in backup.agents)
    with agents_locked(cfg):
        contents = {a: backup_file(backup, a).read_bytes() for a in agents}
        for agent in agents:  # every table must load before any file is replaced
            load_agent_file(new_agent(cfg, agent), backup_file(backup, agent))
        previous = write_backup(cfg, "pre_restore", now or datetime.now(timezone.utc), PRODUCER)
        for agent in agents:
            path = agent_path(cfg, agent)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, contents[agent])
    log.info("restored the Q-tables of %s from %s", ", ".join(agents), backup.path)
    return RestoreResult(backup, previous, agents, tuple(a for a in AGENT_NAMES if a not in agents))
