"""Scheduled jobs: the crontab's runs never overlap, and their next run times follow the configuration."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from core.config import REPO_ROOT, Config, load_config
from core.jobs import INHERITED_LOCK_ENV, JOBS, job_lock, lock_path, next_runs, try_lock

SCRIPT = REPO_ROOT / "scripts" / "rl_system.py"
HOLD_LOCK = """
import sys, time
from core.config import load_config
from core.jobs import try_lock
handle = try_lock(load_config(None), sys.argv[1] if len(sys.argv) > 1 else "inference")
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


def test_job_lock_is_taken_once_and_trusted_when_inherited(cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    with job_lock(cfg, "trainer") as held:
        assert held
        with job_lock(cfg, "trainer") as second:
            assert not second  # a second run by hand finds it taken
        monkeypatch.setenv(INHERITED_LOCK_ENV, "trainer")  # the process `run_job` started: it holds it already
        with job_lock(cfg, "trainer") as inherited:
            assert inherited
        with job_lock(cfg, "shadow_retrain") as other:
            assert other
    monkeypatch.delenv(INHERITED_LOCK_ENV)
    with job_lock(cfg, "trainer") as again:
        assert again  # released when the block ended


def test_a_training_by_hand_waits_for_none_and_refuses_while_another_trains(rl_home: Path) -> None:
    trainer = [sys.executable, str(REPO_ROOT / "ai" / "rl_trainer.py"), "--train", "--quiet"]
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, "trainer"], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        by_hand = subprocess.run(trainer, capture_output=True, text=True, timeout=120)
        assert by_hand.returncode == 3 and "another training holds" in by_hand.stderr, by_hand.stderr
    finally:
        holder.kill()
        holder.wait()
    # The crontab's run holds the lock and passes it on: its own --train must not refuse itself
    # (no trades yet: "not enough", exit 3 as documented, passed through by `job`).
    cron = _job("trainer")
    assert cron.returncode == 3 and "another training holds" not in cron.stderr + cron.stdout
    assert "not training" in cron.stderr + cron.stdout


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
