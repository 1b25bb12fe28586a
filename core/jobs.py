"""The scheduled jobs, runnable from the system crontab without two runs of one job ever overlapping.

Each job is a one-shot command of a daemon (the trainer's ``--train``, the inference's ``--update``, ...). A run
holds ``runtime/locks/job-<name>.lock`` (``flock``, released by the kernel when the process ends, even on
SIGKILL) for as long as the job runs; a second run that finds the lock taken exits 0 at once. The same work
started by hand (``rl_trainer.py --train``) takes the same lock (:func:`job_lock`), so it never overlaps a
crontab run or the daemon either.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from core.config import REPO_ROOT, Config
from core.locks import open_lock_file
from core.schedule import cron_trigger


@dataclass(frozen=True)
class Job:
    """A scheduled job: ``python -m <module> <args...>`` on the cron expression ``cron(cfg)`` (UTC)."""

    name: str
    module: str
    args: tuple[str, ...]
    cron_key: str
    cron: Callable[[Config], str]


def _every_minutes(seconds: float) -> str:
    """A cron line for an interval in seconds (at least a minute: cron's resolution)."""
    minutes = max(1, round(seconds / 60))
    return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *" if minutes < 60 else f"0 */{minutes // 60} * * *"


JOBS: tuple[Job, ...] = (
    Job("trainer", "ai.allocation.trainer", ("--train", "--quiet"), "strategy_agent.retrain_cron",
        lambda cfg: cfg.strategy_agent.retrain_cron),
    Job("shadow_retrain", "ai.trading.cli", ("train", "--quiet"), "trading_agent.retrain_cron",
        lambda cfg: cfg.trading_agent.retrain_cron),
    Job("performance_report", "analytics.performance.daemon", ("--report",), "performance.report_cron",
        lambda cfg: cfg.performance.report_cron),
    Job("inference", "ai.allocation.inference", ("--update",), "strategy_agent.inference_interval_s",
        lambda cfg: _every_minutes(cfg.strategy_agent.inference_interval_s)),
)
"""Every job a crontab may run (``python scripts/rl_system.py job NAME``)."""


def job_named(name: str) -> Job | None:
    return next((job for job in JOBS if job.name == name), None)


def lock_path(cfg: Config, name: str) -> Path:
    return cfg.runtime_dir / "locks" / f"job-{name}.lock"


def try_lock(cfg: Config, name: str) -> IO[str] | None:
    """The open, locked lock file of job ``name``, or None when another run holds it. Keep it open while the
    job runs; closing it (or the process ending) releases the lock. The daemon that runs the same work takes
    it too (the trainer's training), so a crontab run and the daemon never overlap."""
    handle = open_lock_file(lock_path(cfg, name))  # OSError when it can be neither created nor opened
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


INHERITED_LOCK_ENV = "RL_SYSTEM_JOB_LOCK"
"""Set by :func:`run_job` to the job's name for the job's process, which inherits the lock already held."""


@contextmanager
def job_lock(cfg: Config, name: str) -> Iterator[bool]:
    """Hold job ``name``'s lock while the block runs; yields False (without running anything) when another run
    holds it. A process started by :func:`run_job` already holds it through the inherited descriptor (a second
    ``flock`` on a new descriptor would wait for itself); a lock that cannot be created at all (read-only
    ``runtime/``) cannot be taken by any other run either, so the block runs."""
    if os.environ.get(INHERITED_LOCK_ENV) == name:
        yield True
        return
    try:
        handle = try_lock(cfg, name)
    except OSError:
        yield True
        return
    if handle is None:
        yield False
        return
    with handle:
        yield True


def run_job(cfg: Config, job: Job, config_file: str | None) -> int | None:
    """Run ``job`` under its lock and return its exit code, or None at once when another run holds the lock.

    The lock's descriptor is inherited by the job's process, so the lock is held until the job itself ends,
    even if this wrapper is killed first.
    """
    handle = try_lock(cfg, job.name)
    if handle is None:
        return None
    with handle:
        cmd = [sys.executable, "-m", job.module, *(["--config", config_file] if config_file else []), *job.args]
        env = os.environ.copy()
        env["RL_SYSTEM_HOME"] = str(cfg.home)  # the job runs from the repository root, like the daemons
        env[INHERITED_LOCK_ENV] = job.name
        return subprocess.run(cmd, cwd=REPO_ROOT, env=env, pass_fds=(handle.fileno(),)).returncode


def next_runs(cfg: Config, now: datetime | None = None) -> list[dict[str, str]]:
    """Each job's cron expression and next run time (ISO-8601 UTC) after ``now``."""
    now = now or datetime.now(timezone.utc)
    rows = []
    for job in JOBS:
        expression = job.cron(cfg)
        fire = cron_trigger(expression, job.cron_key).get_next_fire_time(None, now)
        rows.append({"name": job.name, "cron": expression, "key": job.cron_key,
                     "next_run": fire.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if fire else "-"})
    return rows
