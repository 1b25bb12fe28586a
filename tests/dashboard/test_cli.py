"""The dashboard command: refused without a token off loopback (exit 2, one line), a taken port (exit 1), and the
daemon's heartbeat, its URL and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.config import REPO_ROOT
from core.errors import ExitCode
from dashboard.cli import main, url_of
from tests.dashboard.support import free_port, get


def test_another_address_without_a_token_is_refused(capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RL_DASHBOARD_TOKEN", raising=False)
    assert main(["--host", "0.0.0.0", "--port", str(free_port())]) == ExitCode.BAD_INPUT == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "RL_DASHBOARD_TOKEN" in err and "not loopback" in err


def test_a_bad_port_in_the_config_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[dashboard]\nport = 70000\n")
    assert main(["--config", str(config)]) == ExitCode.BAD_INPUT
    assert "dashboard.port = 70000" in capsys.readouterr().err


def test_a_taken_port_is_a_clear_failure(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["--port", str(port)]) == ExitCode.FAILURE
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err


def test_urls() -> None:
    assert url_of("127.0.0.1", 8765) == "http://127.0.0.1:8765/"
    assert url_of("::1", 80) == "http://[::1]:80/"


def test_the_daemon_beats_serves_and_stops_on_sigterm(rl_home: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dashboard.cli", "--port", str(port)], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        beat_file = rl_home / "runtime" / "heartbeats" / "dashboard.json"
        deadline = time.monotonic() + 60
        while not (beat_file.exists() and json.loads(beat_file.read_text()).get("state") == "serving"):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        beat = json.loads(beat_file.read_text())
        assert beat["url"] == f"http://127.0.0.1:{port}/" and beat["pid"] == proc.pid
        health = json.loads(get(beat["url"] + "api/health"))
        assert [d["name"] for d in health["daemons"]] == ["dashboard"]  # it sees its own heartbeat
        assert health["daemons"][0]["running"] is True
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.strip() == f"dashboard: http://127.0.0.1:{port}/"
    assert json.loads(beat_file.read_text())["state"] == "stopped"
    assert not (rl_home / "runtime" / "pids" / "dashboard.pid").exists()
