"""The Q-learning agents' health, read only: per-agent figures, the learning daemon's state and the checks.

Health checks (shared by ``scripts/monitor_qlearning.py`` and the dashboard):

- growth: tables over 10 MB are too large; otherwise growing (new updates since the last snapshot), waiting
  (none, but the learning daemon is running: no trade has closed since), stalled (none, and the daemon has no
  fresh heartbeat or reports an error) or, without a previous snapshot, at a healthy size;
- exploration: epsilon of 0.08 or more is a high exploration rate (still learning), 0.05 to 0.08 reduced
  (forming preferences), below 0.05 mostly exploiting;
- learning stage, per agent: early below 100 updates, active from 100 to 1000, mature above 1000.

Nothing here writes a file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ai.tabular.agent import learning_stage
from ai.tabular.daemon import DAEMON_NAME
from ai.tabular.store import load_agent
from core.atomic import parse_iso, read_json
from core.config import Config
from core.contracts.qtables import AGENT_NAMES, agent_path
from core.daemon import heartbeat_path
from core.errors import FatalError

LARGE_TABLES_BYTES = 10 * 1024 * 1024
HIGH_EPSILON, REDUCED_EPSILON = 0.08, 0.05
HEARTBEAT_INTERVALS = 3.0
"""A heartbeat older than this many ``qlearning.recheck_interval_s`` means the daemon is not running."""
MIN_HEARTBEAT_AGE_S = 60.0


def agent_snapshot(cfg: Config, name: str) -> dict[str, Any]:
    """One agent's figures; ``found`` is False without a table, ``error`` set when it cannot be read."""
    path = agent_path(cfg, name)
    base: dict[str, Any] = {"found": path.exists(), "error": None, "file": str(path)}
    try:
        agent = load_agent(cfg, name)
    except FatalError as exc:
        return {**base, "error": str(exc), "states": 0, "pairs": 0, "updates": 0, "size_bytes": _size(path)}
    stats = agent.stats()
    return {**base, **stats, "stage": learning_stage(agent.updates),
            "size_bytes": _size(path) if base["found"] else 0}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def daemon_status(cfg: Config) -> dict[str, Any]:
    """Whether the learning daemon runs, from its heartbeat: ``running``, ``state``, ``age_s``, ``detail``."""
    result = read_json(heartbeat_path(cfg, DAEMON_NAME))
    limit = max(MIN_HEARTBEAT_AGE_S, HEARTBEAT_INTERVALS * cfg.qlearning.recheck_interval_s)
    if result.data is None:
        detail = "never started here" if result.status == "absent" else f"heartbeat unreadable: {result.reason}"
        return {"running": False, "state": result.status, "age_s": None, "detail": detail}
    state = str(result.data.get("state", "unknown"))
    age = result.age_s if result.age_s is not None else math.inf
    running = state not in ("stopped", "error") and age <= limit
    if state == "error":
        detail = f"error in its last pass: {result.data.get('error', 'see its log')}"
    elif state == "stopped":
        detail = f"stopped {human_duration(age)} ago"
    elif age > limit:
        detail = f"heartbeat {human_duration(age)} old (over {human_duration(limit)}): not running"
    else:
        detail = f"last pass {human_duration(age)} ago"
    return {"running": running, "state": state, "age_s": None if math.isinf(age) else round(age, 1),
            "detail": detail}


def collect_snapshot(cfg: Config, now: datetime | None = None) -> dict[str, Any]:
    """Both agents' figures, the totals and the learning daemon's status, stamped ``now`` (UTC)."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    agents = {name: agent_snapshot(cfg, name) for name in AGENT_NAMES}
    overall = {
        "updates": sum(a["updates"] for a in agents.values()),
        "states": sum(a["states"] for a in agents.values()),
        "pairs": sum(a["pairs"] for a in agents.values()),
        "size_bytes": sum(a["size_bytes"] for a in agents.values()),
    }
    return {"timestamp": stamp, "agents": agents, "overall": overall, "daemon": daemon_status(cfg)}


def changes_since(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> dict[str, Any] | None:
    """New states, pairs and updates per agent since ``previous`` (None without one)."""
    if not previous or not isinstance(previous.get("agents"), Mapping):
        return None
    out: dict[str, Any] = {"since": previous.get("timestamp"), "agents": {}}
    for name, now in current["agents"].items():
        before = previous["agents"].get(name) or {}
        out["agents"][name] = {k: int(now.get(k, 0)) - int(before.get(k, 0) or 0)
                               for k in ("states", "pairs", "updates")}
    try:
        elapsed = parse_iso(str(current["timestamp"])) - parse_iso(str(previous.get("timestamp")))
        out["elapsed_s"] = elapsed.total_seconds()
    except ValueError:
        out["elapsed_s"] = None
    return out


def health_checks(cfg: Config, snapshot: Mapping[str, Any], changes: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """Growth, exploration and learning-stage checks: ``{check, status (ok/info/warn), icon, message}``."""
    return [_growth_check(snapshot, changes), _exploration_check(cfg, snapshot), _stage_check(snapshot)]


def _growth_check(snapshot: Mapping[str, Any], changes: Mapping[str, Any] | None) -> dict[str, str]:
    size = snapshot["overall"]["size_bytes"]
    if size > LARGE_TABLES_BYTES:
        return _check("growth", "warn", "⚠️ ", f"Q-tables large ({size / 1024 / 1024:.1f} MB > 10 MB): "
                      "use fewer bins or prune rarely visited states")
    errors = [n for n, a in snapshot["agents"].items() if a.get("error")]
    if errors:
        return _check("growth", "warn", "❌", f"Q-table unreadable: {', '.join(errors)} (see above)")
    if changes is not None:
        new_updates = sum(c["updates"] for c in changes["agents"].values())
        new_states = sum(c["states"] for c in changes["agents"].values())
        if new_updates > 0:
            return _check("growth", "ok", "⚡", f"Q-tables growing normally (+{new_states} states, "
                          f"+{new_updates} updates)")
        daemon = snapshot["daemon"]
        if daemon["running"]:
            return _check("growth", "info", "⏳", "No new updates since the last snapshot: the learning daemon is "
                          f"running ({daemon['detail']}), no trade has closed since")
        return _check("growth", "warn", "⏸️ ", f"No new updates since the last snapshot, and the learning daemon "
                      f"is not running ({daemon['detail']}): start it with `python ai/qlearning.py --loop` "
                      "or scripts/start_rl_system.sh")
    return _check("growth", "ok", "✅", "Q-tables at healthy size")


def _exploration_check(cfg: Config, snapshot: Mapping[str, Any]) -> dict[str, str]:
    values = [a["epsilon"] for a in snapshot["agents"].values() if a.get("epsilon") is not None]
    epsilon = max(values) if values else cfg.qlearning.epsilon
    if epsilon >= HIGH_EPSILON:
        return _check("exploration", "info", "🔍", "High exploration rate - still learning")
    if epsilon >= REDUCED_EPSILON:
        return _check("exploration", "info", "📉", "Reduced exploration - forming preferences")
    return _check("exploration", "ok", "🎯", "Mostly exploiting - occasional exploration")


def _stage_check(snapshot: Mapping[str, Any]) -> dict[str, str]:
    updates = {n: int(a["updates"]) for n, a in snapshot["agents"].items()}
    stage = learning_stage(min(updates.values()))  # the least advanced agent sets the stage
    detail = ", ".join(f"{n} {u}" for n, u in updates.items())
    if stage == "early":
        return _check("stage", "info", "🌱", f"Early learning stage (< 100 updates): {detail}")
    if stage == "active":
        return _check("stage", "info", "📚", f"Active learning (100-1000 updates): {detail}")
    return _check("stage", "ok", "🎓", f"Mature agents (> 1000 updates): {detail}")


def _check(check: str, status: str, icon: str, message: str) -> dict[str, str]:
    return {"check": check, "status": status, "icon": icon, "message": message}


def human_duration(seconds: float) -> str:
    """``42 s``, ``17 min`` or ``3.5 h``."""
    seconds = max(0.0, float(seconds))
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"

