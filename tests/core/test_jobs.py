"""Scheduled jobs: the crontab's runs never overlap, and their next run times follow the configuration."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from core.config import REPO_ROOT, Config, load_config
from core.jobs import JOBS, lock_path, next_runs, try_lock

SCRIPT = REPO_ROOT / "scripts" / "rl_system.py"
HOLD_LOCK = """
import sys, time
from core.config import load_config
from core.jobs import try_lock
handle = try_lock(load_config(None), "inference")
print("locked" if handle else "busy", flush=True)
time.sleep(60)
"""


def _job(name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "job", name], capture_output=True, text=True, timeout=60)


def test_a_second_run_of_a_job_exits_at_once_while_the_first_runs(rl_home: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        second = _job("inference")
        assert second.returncode == 0 and "inference: already running" in second.stdout, second.stderr
        assert not (rl_home / "runtime" / "rl_strategy_weights.json").exists()
    finally:
        holder.kill()
        holder.wait()
    # The lock dies with its holder, even killed: the next run does the job (no model yet: exit 3, as documented)
    third = _job("inference")
    assert third.returncode == 3, third.stdout + third.stderr
    assert "already running" not in third.stdout


def test_the_lock_is_one_per_job(cfg: Config) -> None:
    first = try_lock(cfg, "trainer")
    assert first is not None
    try:
        assert try_lock(cfg, "trainer") is None  # even within one process: flock is per open file
        other = try_lock(cfg, "inference")
        assert other is not None
        other.close()
    finally:
        first.close()
    again = try_lock(cfg, "trainer")
    assert again is not None and lock_path(cfg, "trainer").exists()
    again.close()


def test_next_runs_follow_the_configured_cron_lines(rl_home: Path, tmp_path: Path) -> None:
    config = tmp_path / "jobs.toml"
    config.write_text('[strategy_agent]\nretrain_cron = "30 2 * * 1"\ninference_interval_s = 600\n')
    saturday = datetime(2026, 11, 28, 19, 21, tzinfo=timezone.utc)
    rows = {row["name"]: row for row in next_runs(load_config(str(config)), now=saturday)}
    assert set(rows) == {job.name for job in JOBS}
    assert rows["trainer"]["next_run"] == "2026-11-30T02:30:00Z"  # Monday, weekday 1 as crontab reads it
    assert rows["shadow_retrain"]["next_run"] == "2026-12-01T03:00:00Z"  # monthly default
    assert rows["performance_report"]["next_run"] == "2026-11-28T20:05:00Z"
    assert rows["inference"]["cron"] == "*/10 * * * *" and rows["inference"]["next_run"] == "2026-11-28T19:30:00Z"
