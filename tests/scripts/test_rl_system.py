"""The start/stop/status commands run real daemon processes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.config import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "rl_system.py"


def _run(*args: str, cwd: Path | None = None, home: str | None = None) -> subprocess.CompletedProcess[str]:
    env = os.environ.copy()
    if home is not None:
        env["RL_SYSTEM_HOME"] = home
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                          env=env, cwd=cwd)


def _wait_for(predicate, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_start_status_stop_round_trip(rl_home: Path) -> None:
    # A home relative to the caller's folder: the daemon, which runs from the repository root, must use it too.
    here, home = rl_home.parent, rl_home.name
    started = _run("start", "--only", "weights_bridge", cwd=here, home=home)
    assert started.returncode == 0, started.stderr
    assert "started" in started.stdout
    pid_file = rl_home / "runtime" / "pids" / "weights_bridge.pid"
    pid = int(pid_file.read_text())
    try:
        # start returns once the daemon has published its first heartbeat
        assert json.loads((rl_home / "runtime" / "heartbeats" / "weights_bridge.json").read_text())["pid"] == pid
        allocations = rl_home / "runtime" / "allocations_override.json"
        assert _wait_for(allocations.exists), (rl_home / "runtime" / "logs" / "weights_bridge.out").read_text()
        again = _run("start", "--only", "weights_bridge", cwd=here, home=home)
        assert "already running" in again.stdout
        assert int(pid_file.read_text()) == pid
        status = json.loads(_run("status", "--json").stdout)
        row = next(r for r in status["daemons"] if r["name"] == "weights_bridge")
        assert row["running"] is True and row["pid"] == pid and row["heartbeat_stale"] is False
        assert status["loop"]["allocation_source"] == "equal"  # nothing else publishes weights here
        assert status["loop"]["trader"] is None and status["loop"]["strategy_model_version"] is None
    finally:
        stopped = _run("stop", "--only", "weights_bridge", cwd=here, home=home)
    assert "stopped" in stopped.stdout
    assert not pid_file.exists()
    assert _wait_for(lambda: not Path(f"/proc/{pid}").exists() or "Z" in _proc_state(pid), timeout=5)
    status = json.loads(_run("status", "--json").stdout)
    assert all(not r["running"] for r in status["daemons"])


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


def test_a_stale_pid_file_never_stops_a_stranger(rl_home: Path) -> None:
    # After a crash and a reboot the pid in the file may belong to any other process.
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        pid_file = rl_home / "runtime" / "pids" / "qlearning.pid"
        pid_file.parent.mkdir(parents=True)
        pid_file.write_text(f"{stranger.pid}\n")
        status = json.loads(_run("status", "--json").stdout)
        assert next(r for r in status["daemons"] if r["name"] == "qlearning")["running"] is False
        stopped = _run("stop", "--only", "qlearning")
        assert stopped.stdout.split() == ["qlearning", "not", "running"]
        assert stranger.poll() is None  # still alive: no signal was sent
        assert not pid_file.exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_a_daemon_that_dies_at_once_is_reported(rl_home: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("rl_system_under_test", SCRIPT)
    rl_system = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "rl_system_under_test", rl_system)  # dataclasses look their module up
    spec.loader.exec_module(rl_system)  # type: ignore[union-attr]
    broken = rl_system.DaemonSpec("broken", "core.no_such_daemon", (), "a daemon whose module is missing")
    monkeypatch.setattr(rl_system, "DAEMONS", (broken,))

    assert rl_system.main(["start", "--only", "broken"]) == 1
    err = capsys.readouterr().err
    assert "error: broken exited at once (exit code 1): " in err and "No module named core.no_such_daemon" in err
    assert str(rl_home / "runtime" / "logs" / "broken.out") in err
    assert not (rl_home / "runtime" / "pids" / "broken.pid").exists()


def test_names_line_up_in_every_listing(rl_home: Path) -> None:
    lines = _run("status").stdout.splitlines()[:-2]  # the last lines sum up the loop, supervisor and jobs
    assert len(lines) == 8 and len({line.index(" stopped") for line in lines}) == 1


@pytest.mark.parametrize("order", ["before", "after"])
def test_status_script_takes_config_like_start_and_stop(tmp_path: Path, order: str) -> None:
    home = tmp_path / "configured_home"
    beat = home / "runtime" / "heartbeats" / "weights_bridge.json"
    beat.parent.mkdir(parents=True)
    beat.write_text(json.dumps({"generated_at": "2024-01-02T03:04:05Z", "state": "running"}))
    config = tmp_path / "rl.toml"
    config.write_text(f'[paths]\nhome = "{home}"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("RL_SYSTEM_HOME", "RL_SYSTEM_CONFIG")}
    args = ["--config", str(config), "--json"] if order == "before" else ["--json", "--config", str(config)]
    result = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "status_rl_system.sh"), *args],
                            capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    row = next(r for r in json.loads(result.stdout)["daemons"] if r["name"] == "weights_bridge")
    assert row["heartbeat_at"] == "2024-01-02T03:04:05Z"  # read from the configured home, not the default one
    bad = tmp_path / "bad.toml"
    bad.write_text("[paths]\nhomme = 'x'\n")
    refused = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "status_rl_system.sh"), "--config", str(bad)],
                             capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert refused.returncode == 2 and "paths.homme" in refused.stderr


def _beat_pid(home: Path, name: str) -> int | None:
    try:
        return int(json.loads((home / "runtime" / "heartbeats" / f"{name}.json").read_text())["pid"])
    except (FileNotFoundError, ValueError, KeyError):
        return None


def _row(name: str) -> dict:  # type: ignore[type-arg]
    return next(r for r in json.loads(_run("status", "--json").stdout)["daemons"] if r["name"] == name)


def test_a_killed_daemon_is_restarted_and_a_crash_loop_given_up(rl_home: Path, tmp_path: Path) -> None:
    config = tmp_path / "rl.toml"
    config.write_text("[bridge]\nrecheck_interval_s = 1.0\n")
    backoff = ("--restart-delay", "0.5", "--max-restarts", "2", "--restart-window", "60")
    started = _run("--config", str(config), "start", "--only", "weights_bridge", *backoff)
    assert started.returncode == 0, started.stderr
    pid_file = rl_home / "runtime" / "pids" / "weights_bridge.pid"
    first = int(pid_file.read_text())
    try:
        os.kill(first, 9)
        # back within its backoff (0.5 s) plus its start-up: a new pid, and a heartbeat from that pid
        assert _wait_for(lambda: (pid := running(pid_file)) not in (None, first) and _beat_pid(rl_home, "weights_bridge")
                         == pid, timeout=15)
        row = _row("weights_bridge")
        assert row["running"] and row["restarts"] == 1 and row["last_exit"] == "-9 (SIGKILL)"
        assert row["supervisor_state"] == "running"
        # Now every restart fails at once (a bad key): after --max-restarts restarts the supervisor gives up.
        config.write_text("[bridge]\nrecheck_intervall_s = 1.0\n")
        os.kill(int(pid_file.read_text()), 9)
        assert _wait_for(lambda: _row("weights_bridge")["supervisor_state"] == "given up", timeout=20)
        row = _row("weights_bridge")
        assert not row["running"] and row["restarts"] == 2 and row["last_exit"] == "2"
        assert "bridge.recheck_intervall_s" in row["last_error"]
        text = _run("status").stdout
        assert "supervisor: given up, restarts 2, last exit 2: " in text and "supervisor: not running" in text
    finally:
        _run("stop")


def running(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() and _proc_state(pid) != "Z" else None


def test_a_stopped_daemon_is_not_restarted(rl_home: Path) -> None:
    assert _run("start", "--only", "weights_bridge", "--restart-delay", "0.2").returncode == 0
    pid = int((rl_home / "runtime" / "pids" / "weights_bridge.pid").read_text())
    assert "supervisor: running" in _run("status").stdout
    stopped = _run("stop", "--only", "weights_bridge")
    assert "stopped" in stopped.stdout and "killed" not in stopped.stdout
    time.sleep(1.0)  # five restart delays: a supervisor that missed the stop would have restarted it
    assert not _row("weights_bridge")["running"]
    assert _wait_for(lambda: "supervisor: not running" in _run("status").stdout, timeout=5)
    assert not Path(f"/proc/{pid}").exists() or _proc_state(pid) == "Z"


def test_foreground_supervisor_stops_everything_on_sigterm(rl_home: Path) -> None:
    # How systemd runs it (deploy/rl-system.service): Type=simple, SIGTERM to stop.
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "start", "--foreground", "--only", "weights_bridge"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert _wait_for(lambda: _beat_pid(rl_home, "weights_bridge") is not None, timeout=20)
        pid = _beat_pid(rl_home, "weights_bridge")
        proc.send_signal(15)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert "weights_bridge" in out and "stopped" in out
    assert pid is not None and (not Path(f"/proc/{pid}").exists() or _proc_state(pid) == "Z")


def test_status_recognises_the_readme_command_line(rl_home: Path) -> None:
    daemon = subprocess.Popen([sys.executable, "ai/qlearning.py", "--loop"], cwd=REPO_ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait_for(lambda: _beat_pid(rl_home, "qlearning") == daemon.pid, timeout=30)
        row = _row("qlearning")
        assert row["running"] and row["pid"] == daemon.pid
        assert _run("stop", "--only", "qlearning").stdout.split() == ["qlearning", "stopped"]
        assert daemon.wait(timeout=10) == 0
    finally:
        daemon.kill()
