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
import signal
import sys
import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ai.tabular.health import (  # the figures and checks, shared with the dashboard
    changes_since,
    collect_snapshot,
    daemon_status,  # noqa: F401  (part of this command's interface)
    health_checks,
    human_duration,
)
from core.atomic import publish_json, read_json
from core.cli import add_config_argument, load_command_config
from core.config import Config
from core.contracts.qtables import QTABLE_DIR_NAME, agent_dir
from core.errors import ExitCode

PRODUCER = "monitor_qlearning"
RULE = "=" * 80
LINE = "-" * 80
TITLES = {"meta": "📊 META STRATEGY AGENT", "sizing": "📈 POSITION SIZING AGENT"}
NAMES = {"meta": "Meta Agent", "sizing": "Sizing Agent"}
LAST_SNAPSHOT_NAME = "monitor_last.json"
"""The previous snapshot, beside the Q-tables. Private to this command: nothing else reads or writes it."""


def last_snapshot_path(cfg: Config) -> Path:
    return agent_dir(cfg) / LAST_SNAPSHOT_NAME


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
                + (f" ({human_duration(changes['elapsed_s'])} ago)" if changes.get("elapsed_s") is not None else "")]
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
    add_config_argument(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.interval <= 0:
        parser.error(f"--interval {args.interval:g}: give a positive number of seconds, e.g. --interval 30")
    if args.count < 0:
        parser.error(f"--count {args.count}: give 0 (never stop) or a positive number of snapshots")
    cfg = load_command_config("monitor_qlearning", args.config)
    if cfg is None:
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
