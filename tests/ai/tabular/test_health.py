"""ai.tabular.health: the monitor's figures and checks, read only (the dashboard calls them on every refresh)."""

from __future__ import annotations

from pathlib import Path

from ai.tabular import store as ql
from ai.tabular.agent import StateRow
from ai.tabular.health import collect_snapshot, daemon_status, health_checks
from core.atomic import publish_json
from core.config import Config
from core.contracts.qtables import agent_path
from core.daemon import heartbeat_path


def save(cfg: Config, name: str, updates: int, epsilon: float) -> None:
    agent = ql.new_agent(cfg, name)
    agent.table = {"S1": StateRow(2, {0: [0.5, 2], 1: [-0.25, 1]})}
    agent.updates, agent.epsilon, agent.q_updates = updates, epsilon, 3
    ql.save_agent_file(agent, agent_path(cfg, name))


def files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_fresh_home_has_no_tables_and_no_daemon(cfg: Config) -> None:
    snapshot = collect_snapshot(cfg)
    assert not any(a["found"] for a in snapshot["agents"].values())
    assert snapshot["daemon"] == {"running": False, "state": "absent", "age_s": None, "detail": "never started here"}


def test_figures_and_checks_come_from_the_tables_and_write_nothing(cfg: Config, rl_home: Path) -> None:
    save(cfg, "meta", 1500, 0.03)
    save(cfg, "sizing", 1200, 0.06)
    publish_json(heartbeat_path(cfg, "qlearning"), "qlearning", {"state": "running"})
    before = files(rl_home)
    snapshot = collect_snapshot(cfg)
    checks = {c["check"]: c for c in health_checks(cfg, snapshot, None)}
    assert files(rl_home) == before
    meta = snapshot["agents"]["meta"]
    assert (meta["states"], meta["pairs"], meta["updates"], meta["stage"]) == (1, 2, 1500, "mature")
    assert meta["q_min"] == -0.25 and meta["q_max"] == 0.5
    assert snapshot["overall"]["updates"] == 2700
    assert daemon_status(cfg)["running"] is True
    assert checks["growth"]["message"] == "Q-tables at healthy size"  # no previous snapshot to compare with
    assert checks["exploration"]["message"] == "Reduced exploration - forming preferences"  # the larger epsilon
    assert checks["stage"]["message"].startswith("Mature agents (> 1000 updates)")
