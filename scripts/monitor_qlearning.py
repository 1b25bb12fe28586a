"""Dashboard of the Q-learning agents: table growth, updates, exploration, Q-values and health.

    python scripts/monitor_qlearning.py                              # one snapshot
    python scripts/monitor_qlearning.py --continuous                 # a snapshot every 60 s until Ctrl-C
    python scripts/monitor_qlearning.py --continuous --interval 30
    python scripts/monitor_qlearning.py --json                       # the snapshot as JSON, for machines

Per agent (its Q-table in ``state/qlearning/``, see :mod:`core.contracts.qtables`): states learned,
state-action pairs, average actions per state, total updates (trades learned), exploration rate (epsilon),
the range and mean of the Q-values and the table's size on disk; whether the learning daemon
(``python ai/qlearning.py --loop``) is running, from its heartbeat (``runtime/heartbeats/qlearning.json``,
refreshed after every pass, so fresh within three recheck intervals). Each snapshot is compared with the previous
one, kept beside the Q-tables (:data:`LAST_SNAPSHOT_NAME`, private to this command), to show what was learned
in between.

Health checks:

- growth: tables over 10 MB are too large; otherwise growing (new updates since the last snapshot), waiting
  (none, but the learning daemon is running: no trade has closed since), stalled (none, and the daemon has no
  fresh heartbeat or reports an error) or, without a previous snapshot, at a healthy size;
- exploration: epsilon of 0.08 or more is a high exploration rate (still learning), 0.05 to 0.08 reduced
  (forming preferences), below 0.05 mostly exploiting;
- learning stage, per agent: early below 100 updates, active from 100 to 1000, mature above 1000.

Reads only; never writes the agents' files. Exit codes: 0 done, 2 bad arguments or config.
"""

from __future__ import annotations

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import math
import signal
import sys
import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ai.tabular.agent import learning_stage
from ai.tabular.daemon import DAEMON_NAME
from ai.tabular.store import load_agent
from core.atomic import parse_iso, publish_json, read_json
from core.config import Config, load_config
from core.contracts.qtables import AGENT_NAMES, QTABLE_DIR_NAME, agent_dir, agent_path
from core.daemon import heartbeat_path
from core.errors import ExitCode, FatalError

PRODUCER = "monitor_qlearning"
RULE = "=" * 80
LINE = "-" * 80
LARGE_TABLES_BYTES = 10 * 1024 * 1024
HIGH_EPSILON, REDUCED_EPSILON = 0.08, 0.05
HEARTBEAT_INTERVALS = 3.0
"""A heartbeat older than this many ``qlearning.recheck_interval_s`` means the daemon is not running."""
MIN_HEARTBEAT_AGE_S = 60.0
TITLES = {"meta": "📊 META STRATEGY AGENT", "sizing": "📈 POSITION SIZING AGENT"}
NAMES = {"meta": "Meta Agent", "sizing": "Sizing Agent"}
LAST_SNAPSHOT_NAME = "monitor_last.json"
"""The previous snapshot, beside the Q-tables. Private to this command: nothing else reads or writes it."""


def last_snapshot_path(cfg: Config) -> Path:
    return agent_dir(cfg) / LAST_SNAPSHOT_NAME


# ------------------------------------------------------------------------------------------- snapshot


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
        detail = f"stopped {_duration(age)} ago"
    elif age > limit:
        detail = f"heartbeat {_duration(age)} old (over {_duration(limit)}): not running"
    else:
        detail = f"last pass {_duration(age)} ago"
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


# ------------------------------------------------------------------------------------------- rendering


def render_dashboard(snapshot: Mapping[str, Any], changes: Mapping[str, Any] | None,
                     health: list[dict[str, str]]) -> str:
    """The dashboard as text (the layout of the original operations guide)."""
    out = [RULE, "Q-LEARNING MONITORING DASHBOARD", RULE, f"Timestamp: {snapshot['timestamp']}", ""]
    for name, figures in snapshot["agents"].items():
        out += [TITLES[name], LINE, *_agent_lines(figures), ""]
    overall = snapshot["overall"]
    out += ["🎯 OVERALL STATISTICS", LINE,
            f"  Total Updates:         {overall['updates']}",
            f"  Total States:          {overall['states']}",
            f"  Total Q-Table Size:    {overall['size_bytes'] / 1024:.2f} KB",
            f"  Learning Daemon:       {'running' if snapshot['daemon']['running'] else 'not running'} "
            f"({snapshot['daemon']['detail']})", ""]
    if changes is not None:
        out += ["📈 LEARNING PROGRESS (Last vs Current)", LINE, f"  Since: {changes['since']}"
                + (f" ({_duration(changes['elapsed_s'])} ago)" if changes.get("elapsed_s") is not None else "")]
        for name, delta in changes["agents"].items():
            out += [f"  {NAMES[name]}:", f"    New States:          {delta['states']:+d}",
                    f"    New Updates:         {delta['updates']:+d}"]
        out.append("")
    out += ["🏥 HEALTH CHECK", LINE, *(f"  {h['icon']} {h['message']}" for h in health)]
    return "\n".join(out) + "\n"


def _agent_lines(a: Mapping[str, Any]) -> list[str]:
    lines = [f"  States Learned:        {a['states']}", f"  State-Action Pairs:    {a['pairs']}"]
    if a.get("error"):
        return lines + [f"  ❌ Q-table unreadable: {a['error']}"]
    if not a["found"]:
        return lines + ["  ⚠️  Q-table not found - agent not yet trained"]
    q_range = "n/a" if a["q_min"] is None else f"[{a['q_min']:.4f}, {a['q_max']:.4f}]"
    q_mean = "n/a" if a["q_mean"] is None else f"{a['q_mean']:.4f}"
    return lines + [
        f"  Avg Actions/State:     {a['avg_actions_per_state']:.1f}",
        f"  Total Updates:         {a['updates']}",
        f"  Exploration Rate (ε):  {a['epsilon']:.4f}",
        f"  Q-Value Range:         {q_range}",
        f"  Avg Q-Value:           {q_mean}",
        f"  Q-Table Size:          {a['size_bytes'] / 1024:.2f} KB",
    ]


def _duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# ------------------------------------------------------------------------------------------- one round


def snapshot_round(cfg: Config, now: datetime | None = None) -> dict[str, Any]:
    """Collect, compare with the stored last snapshot, check, store this one as the last; returns the report."""
    snapshot = collect_snapshot(cfg, now)
    previous = read_json(last_snapshot_path(cfg))
    changes = changes_since(previous.data if previous.ok else None, snapshot)
    health = health_checks(cfg, snapshot, changes)
    publish_json(last_snapshot_path(cfg), PRODUCER, {
        "timestamp": snapshot["timestamp"],
        "agents": {n: {k: a.get(k) for k in ("states", "pairs", "updates", "size_bytes")}
                   for n, a in snapshot["agents"].items()},
    })
    return {**snapshot, "changes": changes, "health": health}


def render_report(report: Mapping[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps(report, indent=2, allow_nan=False) + "\n"
    return render_dashboard(report, report["changes"], report["health"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor_qlearning.py",
        description=f"Dashboard of the Q-learning agents (state/{QTABLE_DIR_NAME}/): states, state-action pairs, "
                    "updates, epsilon, Q-values, table sizes, the change since the last snapshot and health checks.",
        epilog=f"The last snapshot is kept in state/{QTABLE_DIR_NAME}/{LAST_SNAPSHOT_NAME}. "
               "Exit codes: 0 done, 2 bad input.")
    parser.add_argument("--continuous", action="store_true", help="print a snapshot every --interval seconds "
                        "until Ctrl-C or SIGTERM")
    parser.add_argument("--interval", type=float, default=60.0, metavar="SECONDS",
                        help="seconds between snapshots with --continuous (default: 60)")
    parser.add_argument("--count", type=int, default=0, metavar="N",
                        help="with --continuous, stop after N snapshots (default: 0, never)")
    parser.add_argument("--json", action="store_true", help="print the snapshot as JSON instead of the dashboard")
    parser.add_argument("--config", metavar="PATH", help="TOML configuration file")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.interval <= 0:
        parser.error(f"--interval {args.interval:g}: give a positive number of seconds, e.g. --interval 30")
    if args.count < 0:
        parser.error(f"--count {args.count}: give 0 (never stop) or a positive number of snapshots")
    try:
        cfg = load_config(args.config)
    except FatalError as exc:
        print(f"monitor_qlearning: error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")  # the dashboard's symbols on a terminal that cannot show them
    if not args.continuous:
        sys.stdout.write(render_report(snapshot_round(cfg), args.json))
        return ExitCode.OK
    return run_continuous(cfg, args.interval, args.count, args.json)


def run_continuous(cfg: Config, interval: float, count: int, as_json: bool) -> int:
    """Print a snapshot every ``interval`` seconds; Ctrl-C or SIGTERM ends the loop with exit code 0."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        done = 0
        while not stop.is_set():
            sys.stdout.write(render_report(snapshot_round(cfg), as_json))
            sys.stdout.flush()
            done += 1
            if count and done >= count:
                break
            stop.wait(interval)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
