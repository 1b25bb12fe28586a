"""The ``--loop`` daemon: history events filtered by name, and the real daemon in a subprocess learning
appended trades and exiting 0 on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from watchdog.events import (
    DirModifiedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
)

from ai.tabular.daemon import HistoryFileHandler
from core.config import REPO_ROOT, Config
from core.contracts.pnl_history import append_trades, history_path
from core.contracts.qtables import agent_path

# Signatures of the helper fixtures of conftest.py.
TradeRows = Callable[..., list[dict[str, object]]]


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def updates(cfg: Config) -> int:
    try:
        return int(json.loads(agent_path(cfg, "meta").read_text())["updates"])
    except (FileNotFoundError, ValueError, KeyError):
        return -1


def test_history_events_are_filtered_by_name(tmp_path: Path) -> None:
    calls: list[int] = []
    handler = HistoryFileHandler("pnl_history.csv", lambda: calls.append(1))
    target = str(tmp_path / "pnl_history.csv")
    for event in (FileModifiedEvent(target), FileCreatedEvent(target),
                  FileMovedEvent(str(tmp_path / ".pnl_history.csv.x.tmp"), target)):
        handler.dispatch(event)
    assert len(calls) == 3
    for event in (FileModifiedEvent(target + ".lock"), FileModifiedEvent(str(tmp_path / "other.csv")),
                  FileDeletedEvent(target), DirModifiedEvent(str(tmp_path)), FileOpenedEvent(target)):
        handler.dispatch(event)
    assert len(calls) == 3


def heartbeat(cfg: Config) -> dict[str, object]:
    try:
        return json.loads((cfg.runtime_dir / "heartbeats" / "qlearning.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


@pytest.mark.parametrize("mode", [[], ["--polling"]], ids=["os-events", "polling"])
def test_loop_learns_appended_trades_and_exits_0_on_sigterm(cfg: Config, tmp_path: Path, mode: list[str],
                                                            trade_rows: TradeRows) -> None:
    toml = tmp_path / "q.toml"
    toml.write_text("[qlearning]\ndebounce_s = 0.1\nrecheck_interval_s = 60.0\npoll_interval_s = 0.2\n")
    rows = trade_rows(cfg, list(range(300, 400, 10)), 3, lambda k, s: 0.01)
    log = open(tmp_path / "loop.out", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "ai.tabular.cli", "--loop", "--config", str(toml), *mode],
                            cwd=REPO_ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: updates(cfg) == 0), (tmp_path / "loop.out").read_text()
        append_trades(history_path(cfg), rows[:40])
        assert wait_for(lambda: updates(cfg) == 40), (tmp_path / "loop.out").read_text()
        append_trades(history_path(cfg), rows[40:])
        assert wait_for(lambda: updates(cfg) == len(rows)), (tmp_path / "loop.out").read_text()
        # The heartbeat follows the pass that saved the tables.
        assert wait_for(lambda: heartbeat(cfg).get("trades_learned", {}).get("meta") == len(rows))
        assert heartbeat(cfg)["state"] == "running"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
        log.close()
    assert code == 0
    assert heartbeat(cfg)["state"] == "stopped"


def test_a_write_error_in_a_pass_is_survived_reported_and_retried_after_backoff(
        cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    from ai.tabular import daemon
    from core.daemon import DaemonContext, WriteErrors, read_heartbeat

    calls: list[int] = []

    def read_only_pass(*_args: object) -> None:
        calls.append(1)
        raise PermissionError(13, "Permission denied", str(cfg.state_dir / "qlearning"))

    monkeypatch.setattr(daemon, "run_pass", read_only_pass)
    now = [0.0]
    ctx = DaemonContext(name="qlearning", cfg=cfg, writes=WriteErrors(clock=lambda: now[0]))
    daemon._pass_and_beat(cfg, ctx, None, "timer")  # type: ignore[arg-type]
    beat = read_heartbeat(cfg, "qlearning")
    assert beat is not None and beat["state"] == "degraded" and "Permission denied" in beat["degraded_reason"]
    daemon._pass_and_beat(cfg, ctx, None, "change")  # type: ignore[arg-type]
    assert len(calls) == 1  # backing off
    now[0] += 10.0
    daemon._pass_and_beat(cfg, ctx, None, "timer")  # type: ignore[arg-type]
    assert len(calls) == 2
