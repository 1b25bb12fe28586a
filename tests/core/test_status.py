"""The status table of `scripts/rl_system.py` (:mod:`core.status`): a row per daemon from its pid
and heartbeat, a heartbeat older than the stale limit flagged, the supervisor's record shown, and the same rows
as JSON."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pytest

from core import status
from core.atomic import publish_json
from core.config import Config
from core.daemon import heartbeat_path


@dataclass(frozen=True)
class Daemon:
    name: str
    what: str


DAEMONS = (Daemon("alpha", "first daemon"), Daemon("a_longer_name", "second daemon"))


def only_alpha_runs(cfg: Config, name: str) -> int | None:
    return os.getpid() if name == "alpha" else None


def test_rows_follow_pids_and_heartbeats(cfg: Config) -> None:
    publish_json(heartbeat_path(cfg, "alpha"), "alpha", {"state": "running"})
    rows = status.status_rows(cfg, DAEMONS, only_alpha_runs)
    alpha, other = rows
    assert (alpha["name"], alpha["running"], alpha["pid"], alpha["state"]) == ("alpha", True, os.getpid(), "running")
    assert alpha["heartbeat_stale"] is False and isinstance(alpha["rss_bytes"], int)
    assert (other["running"], other["pid"], other["heartbeat_at"], other["rss_bytes"]) == (False, None, None, None)
    assert other["restarts"] == 0 and other["supervisor_state"] is None


def test_a_running_daemon_without_a_heartbeat_is_stale(cfg: Config) -> None:
    rows = status.status_rows(cfg, DAEMONS, only_alpha_runs)
    assert rows[0]["heartbeat_stale"] is True and rows[1]["heartbeat_stale"] is False


def test_the_table_aligns_names_and_the_json_holds_the_rows(cfg: Config,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert status.show_status(cfg, DAEMONS, only_alpha_runs, as_json=False) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("alpha         running (pid ") and "STALE heartbeat" in lines[0]
    assert lines[1].startswith("a_longer_name stopped")
    assert lines[-1].startswith("supervisor: not running; scheduled jobs (UTC, next run): ")
    assert status.show_status(cfg, DAEMONS, only_alpha_runs, as_json=True) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in doc["daemons"]] == ["alpha", "a_longer_name"]
    assert doc["supervisor_pid"] is None and doc["loop"]["allocation_source"] is None
