"""Daemon plumbing: heartbeat with envelope, pid file, SIGTERM/SIGINT end the loop cleanly (in a real process)."""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import core.daemon as core_daemon
from core.atomic import parse_iso, read_json
from core.config import REPO_ROOT, Config, loaded_from, replace_section
from core.daemon import (
    DaemonContext,
    daemon_context,
    heartbeat_path,
    pid_path,
    read_heartbeat,
)
from core.logging_setup import log_effective_config

# A tiny daemon built on core.daemon. "idle" waits between beats; "busy" runs a step that lasts until the test
# creates a "go" file and checks the stop flag only between steps, so a SIGTERM mid-step must let it finish.
DAEMON_SCRIPT = textwrap.dedent('''
    import sys
    import time

    sys.path.insert(0, sys.argv[1])

    from core.atomic import atomic_write_text, publish_json
    from core.config import load_config
    from core.daemon import daemon_context
    from core.logging_setup import setup_logging


    def main() -> int:
        mode = sys.argv[2]
        cfg = load_config(None)
        setup_logging(cfg, "tiny", console=False)
        out = cfg.runtime_dir / "tiny"
        with daemon_context("tiny", cfg) as ctx:
            step = 0
            while not ctx.stop.is_set():
                step += 1
                if mode == "busy":
                    atomic_write_text(out / f"started-{step}", "")
                    while not (out / "go").exists():
                        time.sleep(0.01)
                    publish_json(out / "result.json", "tiny", {"step": step, "complete": True})
                ctx.beat(state="running", step=step)
                if mode == "idle":
                    ctx.wait(0.05)
        return 0


    sys.exit(main())
''')


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def heartbeat_state(cfg: Config) -> str | None:
    data = read_heartbeat(cfg, "tiny")
    return data.get("state") if data else None


@pytest.fixture
def daemon_script(tmp_path: Path) -> Path:
    script = tmp_path / "tiny_daemon.py"
    script.write_text(DAEMON_SCRIPT, encoding="utf-8")
    return script


def start_daemon(script: Path, mode: str) -> subprocess.Popen[bytes]:
    # The child inherits RL_SYSTEM_HOME and RL_SYSTEM_CONFIG from the test's environment.
    return subprocess.Popen([sys.executable, str(script), str(REPO_ROOT), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def stop_and_wait(proc: subprocess.Popen[bytes], sig: int) -> tuple[int, str]:
    """Send ``sig`` (0: none, already sent) and wait for the exit code and stderr."""
    if sig:
        proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, err.decode("utf-8", errors="replace")


# --- in-process ----------------------------------------------------------------------------------------------------


def test_beat_publishes_heartbeat_with_envelope(cfg: Config) -> None:
    ctx = DaemonContext(name="rl_inference", cfg=cfg, started_at=time.time() - 12.0)
    ctx.beat(state="running", last_model="m1")
    path = cfg.runtime_dir / "heartbeats" / "rl_inference.json"
    assert heartbeat_path(cfg, "rl_inference") == ctx.heartbeat_path == path
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert list(doc)[:3] == ["schema_version", "generated_at", "producer"]
    assert doc["schema_version"] == 1 and doc["producer"] == "rl_inference"
    assert abs((datetime.now(timezone.utc) - parse_iso(doc["generated_at"])).total_seconds()) < 5
    assert doc["pid"] == os.getpid()
    assert doc["uptime_s"] == pytest.approx(12.0, abs=2.0)
    assert (doc["state"], doc["last_model"]) == ("running", "m1")
    ctx.beat(state="idle")  # earlier status fields persist, newer ones replace them
    doc = read_json(path).data
    assert doc is not None and (doc["state"], doc["last_model"]) == ("idle", "m1")
    assert list(path.parent.iterdir()) == [path]  # written atomically: no temp file left


def test_read_heartbeat_absent_fresh_and_stale(cfg: Config) -> None:
    assert read_heartbeat(cfg, "nobody") is None
    DaemonContext(name="bridge", cfg=cfg).beat(state="running")
    assert read_heartbeat(cfg, "bridge", max_age_s=60)["state"] == "running"
    path = heartbeat_path(cfg, "bridge")
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["generated_at"] = (datetime.now(timezone.utc) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert read_heartbeat(cfg, "bridge", max_age_s=60) is None
    assert read_heartbeat(cfg, "bridge")["state"] == "running"


def test_context_writes_pid_and_cleans_up(cfg: Config) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    with daemon_context("unit", cfg) as ctx:
        assert pid_path(cfg, "unit").read_text() == f"{os.getpid()}\n"
        assert read_heartbeat(cfg, "unit")["state"] == "starting"
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
        assert not ctx.stop.is_set()
    assert not pid_path(cfg, "unit").exists()
    assert read_heartbeat(cfg, "unit")["state"] == "stopped"
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_sigterm_sets_stop_in_process(cfg: Config) -> None:
    with daemon_context("unit", cfg) as ctx:
        assert ctx.wait(0.01) is False
        os.kill(os.getpid(), signal.SIGTERM)  # Python runs the handler before the next line
        assert ctx.stop.is_set()
        assert ctx.wait(5.0) is True


def test_effective_config_is_logged_one_line_per_section(cfg: Config, rl_home: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    tuned = replace_section(cfg, "costs", fee=0.0025)
    logger = logging.getLogger("tests.daemon")
    sections = [f.name for f in dataclasses.fields(Config)]
    with caplog.at_level(logging.INFO, logger="tests.daemon"):
        logged = log_effective_config(logger, tuned, source="my.toml")
    full = [r.getMessage() for r in caplog.records]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tests.daemon"):
        log_effective_config(logger, tuned, sections=["costs", "market"])
    partial = [r.getMessage() for r in caplog.records]
    assert full[0] == f"effective config (home {rl_home}, file my.toml): {len(sections)} section(s)"
    by_section = {line.split("] ", 1)[0].strip(" ["): json.loads(line.split("] ", 1)[1]) for line in full[1:]}
    assert [name for name in by_section if "." not in name] == sections and logged.keys() == set(sections)
    assert by_section["costs"] == {"fee": 0.0025, "slippage": 0.0005}
    assert by_section["strategy_agent.ppo"] == logged["strategy_agent"]["ppo"]  # a nested section: its own line
    assert "ppo" not in by_section["strategy_agent"]
    assert f"file {loaded_from()}" in partial[0]  # the file this process loaded (the tests' empty one)
    assert [line.split("]")[0].strip(" [") for line in partial[1:]] == ["costs", "market"]


def test_error_in_the_loop_still_removes_the_pid_file(cfg: Config) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with daemon_context("unit", cfg):
            raise RuntimeError("boom")
    assert not pid_path(cfg, "unit").exists()
    assert read_heartbeat(cfg, "unit")["state"] == "stopped"


def test_pid_file_of_another_instance_is_left_alone(cfg: Config) -> None:
    with daemon_context("unit", cfg):
        pid_path(cfg, "unit").write_text("999999\n")  # a newer instance took over the name
    assert pid_path(cfg, "unit").read_text() == "999999\n"


# --- real processes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_a_real_daemon_with_exit_code_zero(cfg: Config, daemon_script: Path, sig: int) -> None:
    proc = start_daemon(daemon_script, "idle")
    try:
        wait_for(lambda: heartbeat_state(cfg) == "running" or proc.poll() is not None)
        assert proc.poll() is None, proc.communicate()[1].decode()
        assert pid_path(cfg, "tiny").read_text().strip() == str(proc.pid)
        beat = read_heartbeat(cfg, "tiny")
        assert beat["pid"] == proc.pid and beat["producer"] == "tiny" and beat["schema_version"] == 1
        code, err = stop_and_wait(proc, sig)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, err
    assert "Traceback" not in err
    assert not pid_path(cfg, "tiny").exists()
    assert read_heartbeat(cfg, "tiny")["state"] == "stopped"
    log_text = (cfg.runtime_dir / "logs" / "tiny.log").read_text(encoding="utf-8")
    assert f"received {signal.Signals(sig).name}" in log_text


def test_sigterm_mid_step_lets_the_step_finish(cfg: Config, daemon_script: Path) -> None:
    out = cfg.runtime_dir / "tiny"
    proc = start_daemon(daemon_script, "busy")
    try:
        wait_for(lambda: (out / "started-1").exists() or proc.poll() is not None)
        assert proc.poll() is None, proc.communicate()[1].decode()
        proc.send_signal(signal.SIGTERM)
        log_file = cfg.runtime_dir / "logs" / "tiny.log"
        wait_for(lambda: log_file.exists() and "received SIGTERM" in log_file.read_text(encoding="utf-8"))
        assert not (out / "result.json").exists()  # step 1 is still running after the signal was handled
        assert proc.poll() is None
        (out / "go").touch()
        code, err = stop_and_wait(proc, 0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, err
    result = read_json(out / "result.json")
    assert result.ok and result.data["step"] == 1 and result.data["complete"] is True
    assert not (out / "started-2").exists()  # and no new step began after the signal
    assert read_heartbeat(cfg, "tiny")["state"] == "stopped"
    assert not pid_path(cfg, "tiny").exists()


# --- write errors and leftover temporary files ---------------------------------------------------------------------


class FakeClock:
    """A monotonic clock the test moves by hand (backoff without sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def failing_publish(monkeypatch: pytest.MonkeyPatch, errors: list[OSError | None]) -> list[Path]:
    """Make core.daemon's writer raise the next error of ``errors`` per call (None: write for real)."""
    real = core_daemon.publish_json
    calls: list[Path] = []

    def publish(path: Path, producer: str, payload: dict[str, object]) -> dict[str, object]:
        calls.append(Path(path))
        error = errors.pop(0) if errors else None
        if error is not None:
            raise error
        return real(path, producer, payload)

    monkeypatch.setattr(core_daemon, "publish_json", publish)
    return calls


def test_heartbeat_write_errors_are_survived_logged_once_and_retried(
        cfg: Config, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    ctx = DaemonContext(name="unit", cfg=cfg)
    ctx.beat(state="running", step=1)
    before = heartbeat_path(cfg, "unit").read_bytes()
    full = OSError(errno.ENOSPC, "No space left on device")
    failing_publish(monkeypatch, [PermissionError(errno.EACCES, "Permission denied"), full, full, None])
    with caplog.at_level(logging.DEBUG, logger="core.daemon"):
        for step in (2, 3, 4):
            ctx.beat(state="running", step=step)  # must not raise
        assert heartbeat_path(cfg, "unit").read_bytes() == before  # the previous heartbeat stays intact
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 2  # one per distinct error, the repeat of ENOSPC only at DEBUG
        assert "Permission denied" in errors[0] and "No space left" in errors[1]
        ctx.beat(state="running", step=5)
    assert read_heartbeat(cfg, "unit") is not None and read_heartbeat(cfg, "unit")["step"] == 5
    assert any("works again" in r.getMessage() for r in caplog.records)
    assert not ctx.writes.failing


def test_a_failed_write_turns_the_heartbeat_degraded_with_the_reason(cfg: Config) -> None:
    ctx = DaemonContext(name="unit", cfg=cfg)
    ctx.write_failed("allocations_override.json", PermissionError(errno.EROFS, "Read-only file system"))
    ctx.beat(state="running")
    doc = read_heartbeat(cfg, "unit")
    assert doc is not None and (doc["state"], doc["activity"]) == ("degraded", "running")
    assert doc["degraded_reason"] == "cannot write allocations_override.json: [Errno 30] Read-only file system"
    ctx.write_ok("allocations_override.json")
    ctx.beat()
    doc = read_heartbeat(cfg, "unit")
    assert doc is not None and doc["state"] == "running" and "degraded_reason" not in doc


def test_retries_back_off_exponentially_and_reset_on_success(cfg: Config) -> None:
    clock = FakeClock()
    ctx = DaemonContext(name="unit", cfg=cfg, writes=core_daemon.WriteErrors(clock=clock))
    assert ctx.retry_due("state")
    waits = []
    for _ in range(10):
        ctx.write_failed("state", OSError(errno.ENOSPC, "No space left on device"))
        start = clock.now
        while not ctx.retry_due("state"):
            clock.now += 1.0
        waits.append(clock.now - start)
    assert waits[:4] == [core_daemon.RETRY_FIRST_S * 2 ** i for i in range(4)]
    assert waits[-1] == core_daemon.RETRY_MAX_S
    ctx.write_ok("state")
    ctx.write_failed("state", OSError(errno.ENOSPC, "No space left on device"))
    assert ctx.writes.next_try["state"] == clock.now + core_daemon.RETRY_FIRST_S


def test_context_survives_unwritable_pid_and_heartbeat_folders(cfg: Config) -> None:
    # A file where the folders should be fails every write there, even for root.
    cfg.runtime_dir.mkdir(parents=True)
    (cfg.runtime_dir / "pids").write_text("not a folder")
    (cfg.runtime_dir / "heartbeats").write_text("not a folder")
    with daemon_context("unit", cfg) as ctx:
        ctx.beat(state="running")
        assert set(ctx.writes.failing) == {"pid file", core_daemon.HEARTBEAT}
    assert (cfg.runtime_dir / "heartbeats").read_text() == "not a folder"


def test_leftover_temp_files_are_removed_at_start_only_old_and_only_the_writers(cfg: Config) -> None:
    model = cfg.state_dir / "rl_model"
    model.mkdir(parents=True)
    old = time.time() - 2 * core_daemon.TEMP_MIN_AGE_S
    leftovers = [model / ".checkpoint_latest.pt.k3j_x9ab.tmp", cfg.state_dir / ".paper_trader_state.json.a1b2c3d4.tmp"]
    kept = [model / ".config.json.zz99yy88.tmp",  # young: a writer may be filling it now
            cfg.state_dir / "notes.tmp", cfg.state_dir / ".notes.tmp",  # user files, not the writer's pattern
            cfg.state_dir / ".x.json.ABCDEFGH.tmp"]  # mkstemp never uses capitals
    for path in leftovers + kept:
        path.write_bytes(b"")
    for path in leftovers + kept[1:]:
        os.utime(path, (old, old))
    with daemon_context("unit", cfg):
        pass
    assert not any(p.exists() for p in leftovers)
    assert all(p.exists() for p in kept)


FREED_HEAP = textwrap.dedent("""
    import gc
    from core.daemon import release_free_memory

    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

    blocks = [bytes(2000) + bytes([i % 256]) for i in range(20000)]  # 40 MB of malloc's heap (past pymalloc)
    keep = bytes(3000)  # allocated after them: the heap cannot just shrink from its top
    del blocks
    gc.collect()
    before = rss_mb()
    print(release_free_memory(), before, rss_mb())
""")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the resident size from /proc")
def test_release_free_memory_hands_a_freed_peak_back_to_the_system() -> None:
    done = subprocess.run([sys.executable, "-c", FREED_HEAP], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    released, before, after = done.stdout.split()
    if released == "False":
        pytest.skip("the C library has no malloc_trim (not glibc)")
    assert float(before) - float(after) > 20  # of the 40 MB freed, kept resident until released


def test_run_in_child_returns_the_works_code_and_keeps_its_memory_out_of_ours(tmp_path: Path) -> None:
    import threading

    from core.daemon import run_in_child
    from core.supervisor import rss_bytes

    def allocate() -> int:
        at_fork = rss_bytes(os.getpid()) or 0
        block = bytearray(200 * 2**20)  # 200 MB touched in the child only
        block[::4096] = b"x" * len(block[::4096])
        (tmp_path / "child_growth").write_text(str((rss_bytes(os.getpid()) or 0) - at_fork))
        return 7

    before = rss_bytes(os.getpid()) or 0
    waits: list[int] = []
    assert run_in_child(allocate, threading.Event(), lambda: waits.append(1), poll_s=0.05) == 7
    assert int((tmp_path / "child_growth").read_text()) > 150 * 2**20
    assert (rss_bytes(os.getpid()) or 0) < before + 50 * 2**20  # none of it here
    assert run_in_child(lambda: 1 // 0, threading.Event(), lambda: None, poll_s=0.05) == 1  # raised: 1


def test_run_in_child_relays_stop_as_sigterm_to_the_child(tmp_path: Path) -> None:
    import threading

    from core.daemon import run_in_child

    stop = threading.Event()  # the child's copy is set by its SIGTERM handler, as a daemon's is
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        def until_stopped() -> int:
            (tmp_path / "running").touch()
            return 5 if stop.wait(30) else 0

        threading.Timer(0.5, stop.set).start()  # the parent is asked to stop while the child works
        started = time.monotonic()
        assert run_in_child(until_stopped, stop, lambda: None, poll_s=0.05) == 5
        assert time.monotonic() - started < 10 and (tmp_path / "running").exists()
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_child_stops_when_its_parent_is_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import os, signal, sys, threading, time
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from core.daemon import run_in_child
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())

        def work():
            open({str(tmp_path / "child.pid")!r}, "w").write(str(os.getpid()))
            stopped = stop.wait(60)
            open({str(tmp_path / "child.out")!r}, "w").write("stopped" if stopped else "ran on")
            return 0

        run_in_child(work, threading.Event(), lambda: None, poll_s=0.05)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 30
    while not (tmp_path / "child.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    parent.kill()  # SIGKILL: the parent cannot relay anything
    parent.wait()
    while not (tmp_path / "child.out").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "child.out").read_text() == "stopped"
