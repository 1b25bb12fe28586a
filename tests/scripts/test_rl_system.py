"""The start/stop/status commands run real daemon processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from core.config import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "rl_system.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                          env=os.environ.copy())


def _wait_for(predicate, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_start_status_stop_round_trip(rl_home: Path) -> None:
    started = _run("start", "--only", "weights_bridge")
    assert started.returncode == 0, started.stderr
    assert "started" in started.stdout
    pid_file = rl_home / "runtime" / "pids" / "weights_bridge.pid"
    pid = int(pid_file.read_text())
    try:
        allocations = rl_home / "runtime" / "allocations_override.json"
        assert _wait_for(allocations.exists), (rl_home / "runtime" / "logs" / "weights_bridge.out").read_text()
        again = _run("start", "--only", "weights_bridge")
        assert "already running" in again.stdout
        assert int(pid_file.read_text()) == pid
        status = json.loads(_run("status", "--json").stdout)
        row = next(r for r in status if r["name"] == "weights_bridge")
        assert row["running"] is True and row["pid"] == pid
    finally:
        stopped = _run("stop", "--only", "weights_bridge")
    assert "stopped" in stopped.stdout
    assert not pid_file.exists()
    assert _wait_for(lambda: not Path(f"/proc/{pid}").exists() or "Z" in _proc_state(pid), timeout=5)
    status = json.loads(_run("status", "--json").stdout)
    assert all(not r["running"] for r in status)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2]
    except (FileNotFoundError, IndexError):
        return "Z"


def test_unknown_daemon_is_a_clear_error() -> None:
    result = _run("start", "--only", "no_such_daemon")
    assert result.returncode == 2
    assert "unknown daemon 'no_such_daemon'" in result.stderr
    assert "weights_bridge" in result.stderr


def test_bad_config_key_names_key_and_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[market]\nsymbolz = ['BTC/USDT']\n")
    result = _run("--config", str(bad), "status")
    assert result.returncode == 2
    assert "market.symbolz" in result.stderr and str(bad) in result.stderr
