"""The Q-learning monitor: golden dashboards for fixed tables, the change since the last snapshot, health checks,
JSON output checked against the files, continuous mode and the command line."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ai.tabular import health
from ai.tabular import store as ql
from ai.tabular.agent import StateRow
from ai.tabular.store import save_agent_file
from core.config import REPO_ROOT, Config
from core.contracts.qtables import agent_path
from scripts import monitor_qlearning as mon

NOW = datetime(2025, 12, 2, 15, 30, tzinfo=timezone.utc)
LATER = datetime(2025, 12, 2, 16, 30, tzinfo=timezone.utc)


def write_agent(cfg: Config, name: str, rows: dict[str, tuple[int, dict[int, tuple[float, int]]]], updates: int,
                epsilon: float) -> None:
    """An agent file with exactly these Q-values (``{state: (visits, {action: (q, n)})}``)."""
    agent = ql.new_agent(cfg, name)
    agent.table = {s: StateRow(v, {a: [q, n] for a, (q, n) in acts.items()}) for s, (v, acts) in rows.items()}
    agent.updates, agent.epsilon = updates, epsilon
    agent.q_updates = sum(n for _, acts in rows.values() for _, n in acts.values())
    save_agent_file(agent, agent_path(cfg, name))


def write_example_agents(cfg: Config, meta_updates: int = 47, sizing_updates: int = 52) -> None:
    write_agent(cfg, "meta", {"S1": (3, {0: (0.5, 3), 1: (-0.25, 1)}), "S2": (2, {2: (1.0, 2)})}, meta_updates,
                0.095)
    write_agent(cfg, "sizing", {"S1": (5, {0: (2.0, 5), 1: (-1.0, 5), 2: (0.5, 5), 3: (0.5, 5)})}, sizing_updates,
                0.093)


def kb(cfg: Config, *names: str) -> str:
    return f"{sum(agent_path(cfg, n).stat().st_size for n in names) / 1024:.2f}"


GOLDEN = """\
================================================================================
Q-LEARNING MONITORING DASHBOARD
================================================================================
Timestamp: 2025-12-02T15:30:00Z

📊 META STRATEGY AGENT
--------------------------------------------------------------------------------
  States Learned:        2
  State-Action Pairs:    3
  Avg Actions/State:     1.5
  Total Updates:         47
  Exploration Rate (ε):  0.0950
  Q-Value Range:         [-0.2500, 1.0000]
  Avg Q-Value:           0.4167
  Q-Table Size:          {meta_kb} KB

📈 POSITION SIZING AGENT
--------------------------------------------------------------------------------
  States Learned:        1
  State-Action Pairs:    4
  Avg Actions/State:     4.0
  Total Updates:         52
  Exploration Rate (ε):  0.0930
  Q-Value Range:         [-1.0000, 2.0000]
  Avg Q-Value:           0.5000
  Q-Table Size:          {sizing_kb} KB

🎯 OVERALL STATISTICS
--------------------------------------------------------------------------------
  Total Updates:         99
  Total States:          3
  Total Q-Table Size:    {total_kb} KB
  Learning Daemon:       not running (never started here)

🏥 HEALTH CHECK
--------------------------------------------------------------------------------
  ✅ Q-tables at healthy size
  🔍 High exploration rate - still learning
  🌱 Early learning stage (< 100 updates): meta 47, sizing 52
"""

GOLDEN_EMPTY = """\
================================================================================
Q-LEARNING MONITORING DASHBOARD
================================================================================
Timestamp: 2025-12-02T15:30:00Z

📊 META STRATEGY AGENT
--------------------------------------------------------------------------------
  States Learned:        0
  State-Action Pairs:    0
  ⚠️  Q-table not found - agent not yet trained

📈 POSITION SIZING AGENT
--------------------------------------------------------------------------------
  States Learned:        0
  State-Action Pairs:    0
  ⚠️  Q-table not found - agent not yet trained

🎯 OVERALL STATISTICS
--------------------------------------------------------------------------------
  Total Updates:         0
  Total States:          0
  Total Q-Table Size:    0.00 KB
  Learning Daemon:       not running (never started here)

🏥 HEALTH CHECK
--------------------------------------------------------------------------------
  ✅ Q-tables at healthy size
  🔍 High exploration rate - still learning
  🌱 Early learning stage (< 100 updates): meta 0, sizing 0
"""


def render(cfg: Config, now: datetime = NOW) -> str:
    return mon.render_report(mon.snapshot_round(cfg, now), as_json=False)


def test_golden_dashboard_of_fixed_tables(cfg: Config) -> None:
    write_example_agents(cfg)
    expected = GOLDEN.format(meta_kb=kb(cfg, "meta"), sizing_kb=kb(cfg, "sizing"),
                             total_kb=kb(cfg, "meta", "sizing"))
    assert render(cfg) == expected


def test_golden_dashboard_before_any_training(cfg: Config) -> None:
    assert render(cfg) == GOLDEN_EMPTY
    assert not agent_path(cfg, "meta").exists()  # the monitor only reads the agents


def test_progress_since_the_last_snapshot_and_growth_checks(cfg: Config) -> None:
    write_example_agents(cfg)
    render(cfg)
    stored = json.loads(mon.last_snapshot_path(cfg).read_text())
    assert stored["timestamp"] == "2025-12-02T15:30:00Z" and stored["agents"]["meta"]["updates"] == 47
    write_agent(cfg, "meta", {"S1": (3, {0: (0.5, 3)}), "S2": (2, {2: (1.0, 2)}), "S3": (1, {5: (0.1, 1)})},
                60, 0.07)
    text = render(cfg, LATER)
    assert """📈 LEARNING PROGRESS (Last vs Current)
--------------------------------------------------------------------------------
  Since: 2025-12-02T15:30:00Z (60 min ago)
  Meta Agent:
    New States:          +1
    New Updates:         +13
  Sizing Agent:
    New States:          +0
    New Updates:         +0
""" in text
    assert "⚡ Q-tables growing normally (+1 states, +13 updates)" in text
    stalled = render(cfg, LATER)
    assert "⏸️  No new updates since the last snapshot, and the learning daemon is not running" in stalled


def write_heartbeat(cfg: Config, age_s: float, **status: object) -> None:
    path = cfg.runtime_dir / "heartbeats" / "qlearning.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromtimestamp(time.time() - age_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    path.write_text(json.dumps({"schema_version": 1, "generated_at": stamp, "producer": "qlearning", **status}))


@pytest.mark.parametrize(("age_s", "status", "running", "detail"), [
    (5.0, {"state": "running"}, True, r"last pass [56] s ago"),  # stamps have whole seconds
    (170.0, {"state": "running"}, True, r"last pass 3 min ago"),  # within 3 recheck intervals of 60 s
    (200.0, {"state": "running"}, False, r"heartbeat 3 min old \(over 3 min\): not running"),
    (5.0, {"state": "error", "error": "disk full"}, False, r"error in its last pass: disk full"),
    (30.0, {"state": "stopped"}, False, r"stopped 3[01] s ago"),
])
def test_daemon_status_from_its_heartbeat(cfg: Config, age_s: float, status: dict[str, object], running: bool,
                                          detail: str) -> None:
    write_heartbeat(cfg, age_s, **status)
    got = mon.daemon_status(cfg)
    assert got["running"] is running and re.fullmatch(detail, got["detail"]), got


def test_no_new_trades_while_the_daemon_runs_is_waiting_not_stalled(cfg: Config) -> None:
    write_example_agents(cfg)
    render(cfg)
    write_heartbeat(cfg, 2.0, state="running")
    text = render(cfg, LATER)
    assert "⏳ No new updates since the last snapshot: the learning daemon is running (last pass " in text
    assert "Learning Daemon:       running (last pass " in text
    report = mon.snapshot_round(cfg, LATER)
    assert report["daemon"]["running"] is True and report["health"][0]["status"] == "info"


def test_health_thresholds(cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    write_example_agents(cfg, meta_updates=150, sizing_updates=2000)
    text = render(cfg)
    assert "📚 Active learning (100-1000 updates): meta 150, sizing 2000" in text  # the least advanced agent
    write_agent(cfg, "meta", {"S": (1, {0: (0.0, 1)})}, 1500, 0.06)
    write_agent(cfg, "sizing", {"S": (1, {0: (0.0, 1)})}, 1500, 0.03)
    text = render(cfg)
    assert "🎓 Mature agents (> 1000 updates)" in text and "📉 Reduced exploration - forming preferences" in text
    write_agent(cfg, "meta", {"S": (1, {0: (0.0, 1)})}, 1500, 0.03)
    assert "🎯 Mostly exploiting - occasional exploration" in render(cfg)
    monkeypatch.setattr(health, "LARGE_TABLES_BYTES", 100)
    assert "⚠️  Q-tables large" in render(cfg)


def test_unreadable_table_is_shown_not_fatal(cfg: Config) -> None:
    write_example_agents(cfg)
    agent_path(cfg, "sizing").write_text("[1, 2")
    text = render(cfg)
    assert "❌ Q-table unreadable:" in text and "sizing_agent.json: not valid JSON" in text
    assert "Q-table unreadable: sizing" in text


def test_json_output_matches_the_files(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    write_example_agents(cfg)
    assert mon.main(["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for name in ("meta", "sizing"):
        doc = json.loads(agent_path(cfg, name).read_text())
        values = [e[0] for row in doc["table"].values() for e in row["q"].values()]
        got = report["agents"][name]
        assert got["states"] == len(doc["table"]) and got["pairs"] == len(values)
        assert got["q_min"] == min(values) and got["q_max"] == max(values)
        assert got["q_mean"] == pytest.approx(sum(values) / len(values))
        assert got["updates"] == doc["updates"] and got["epsilon"] == doc["epsilon"]
        assert got["size_bytes"] == agent_path(cfg, name).stat().st_size
    assert report["changes"] is None and [h["check"] for h in report["health"]] == ["growth", "exploration", "stage"]


def test_continuous_prints_snapshot_after_snapshot(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    write_example_agents(cfg)
    assert mon.main(["--continuous", "--interval", "0.01", "--count", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("Q-LEARNING MONITORING DASHBOARD") == 3
    assert out.count("LEARNING PROGRESS (Last vs Current)") == 2


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        mon.main(["--continuous", "--interval", "0"])
    assert exc.value.code == 2 and "--interval 0: give a positive number" in capsys.readouterr().err


def test_command_line_help_and_sigterm_in_continuous_mode(cfg: Config, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "scripts/monitor_qlearning.py", "--help"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--continuous" in done.stdout and "--interval" in done.stdout
    out = tmp_path / "out.txt"
    with open(out, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "scripts.monitor_qlearning", "--continuous", "--interval",
                                 "0.2"], cwd=REPO_ROOT, env=os.environ.copy(), stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "HEALTH CHECK" not in out.read_text(errors="replace"):
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert "Q-LEARNING MONITORING DASHBOARD" in out.read_text()
