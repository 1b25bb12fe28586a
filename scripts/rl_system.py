"""Start, stop and inspect the suite's background daemons.

    python scripts/rl_system.py start [--only NAME ...] [--foreground]
    python scripts/rl_system.py stop
    python scripts/rl_system.py status [--json]

Each daemon runs as its own process in its own session (so a terminal's Ctrl-C does not reach it), with its pid
in ``runtime/pids/<name>.pid`` and its stdout/stderr in ``runtime/logs/<name>.out``. ``stop`` sends SIGTERM,
waits for a clean exit and only then SIGKILLs. ``status`` reads pids and heartbeats.
"""

from __future__ import annotations

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from core.config import REPO_ROOT, Config, load_config
from core.daemon import pid_path, read_heartbeat
from core.errors import ConfigError


@dataclass(frozen=True)
class DaemonSpec:
    """How to run one daemon: ``python -m <module> <args...>``."""

    name: str
    module: str
    args: tuple[str, ...]
    what: str


DAEMONS: tuple[DaemonSpec, ...] = (
    DaemonSpec("weights_bridge", "agents.weights_bridge", ("--watch",),
               "merges weight sources by priority into runtime/allocations_override.json"),
    DaemonSpec("paper_trader", "agents.paper_trader", ("--replay",),
               "runs the 8 strategies on candles, appends closed trades to state/pnl_history.csv"),
    DaemonSpec("performance_tracker", "analytics.rl_performance", ("--loop",),
               "weight history, performance report and plots; runs the portfolio optimizer and strategy lab"),
    DaemonSpec("qlearning", "ai.qlearning", ("--loop",),
               "tabular strategy and sizing agents learn from each new trade; publishes runtime/qlearning_policy.json"),
    DaemonSpec("rl_trainer", "ai.rl_trainer", ("--loop",),
               "retrains the strategy-weight PPO agent weekly or after 50 new trades; state/rl_model/"),
    DaemonSpec("rl_inference", "ai.rl_inference", ("--loop",),
               "publishes runtime/rl_strategy_weights.json from the latest model every 5 min and on change"),
    DaemonSpec("shadow_ppo", "ai.shadow_ppo", ("run",),
               "trading PPO in shadow mode: a decision per closed candle, experiences, monthly retraining"),
)
"""Every daemon of the suite, in start order (the trader's inputs before the trader)."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0): reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def running_pid(cfg: Config, name: str) -> int | None:
    """The pid of the daemon if its pid file names a live process, else None."""
    try:
        pid = int(pid_path(cfg, name).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def start_daemon(cfg: Config, spec: DaemonSpec, config_file: str | None) -> tuple[int, bool]:
    """Start ``spec`` unless it already runs; returns (pid, started_now)."""
    pid = running_pid(cfg, spec.name)
    if pid is not None:
        return pid, False
    logs = cfg.runtime_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # --config goes first: a command with subcommands (shadow_ppo run) takes it before the subcommand.
    cmd = [sys.executable, "-m", spec.module, *(["--config", config_file] if config_file else []), *spec.args]
    with open(logs / f"{spec.name}.out", "ab") as out:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    pid_file = pid_path(cfg, spec.name)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid, True


def stop_daemon(cfg: Config, name: str, timeout_s: float = 15.0) -> str:
    """SIGTERM, wait up to ``timeout_s`` for a clean exit, then SIGKILL; returns what happened."""
    pid = running_pid(cfg, name)
    if pid is None:
        pid_path(cfg, name).unlink(missing_ok=True)
        return "not running"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            pid_path(cfg, name).unlink(missing_ok=True)
            return "stopped"
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    pid_path(cfg, name).unlink(missing_ok=True)
    return "killed after timeout"


def status_rows(cfg: Config) -> list[dict[str, object]]:
    rows = []
    for spec in DAEMONS:
        pid = running_pid(cfg, spec.name)
        beat = read_heartbeat(cfg, spec.name) or {}
        rows.append({
            "name": spec.name,
            "running": pid is not None,
            "pid": pid,
            "heartbeat_at": beat.get("generated_at"),
            "state": beat.get("state"),
            "what": spec.what,
        })
    return rows


def _select(only: list[str] | None) -> list[DaemonSpec]:
    if not only:
        return list(DAEMONS)
    known = {d.name: d for d in DAEMONS}
    unknown = [n for n in only if n not in known]
    if unknown:
        raise ConfigError(f"unknown daemon {unknown[0]!r}; known daemons: {', '.join(known)}")
    return [known[n] for n in only]


def cmd_start(cfg: Config, args: argparse.Namespace) -> int:
    specs = _select(args.only)
    for spec in specs:
        pid, started = start_daemon(cfg, spec, args.config)
        print(f"{spec.name:<18} {'started' if started else 'already running'} (pid {pid}): {spec.what}")
    print(f"state: {cfg.state_dir}   runtime: {cfg.runtime_dir}   logs: {cfg.runtime_dir / 'logs'}")
    if not args.foreground:
        print("stop with: bash scripts/stop_rl_system.sh   status: python scripts/rl_system.py status")
        return 0
    print("running in the foreground; Ctrl-C stops every daemon")
    try:
        while any(running_pid(cfg, s.name) for s in specs):
            time.sleep(1.0)
        print("every daemon has exited")
        return 1
    except KeyboardInterrupt:
        for spec in reversed(specs):
            print(f"{spec.name:<18} {stop_daemon(cfg, spec.name)}")
        return 0


def cmd_stop(cfg: Config, args: argparse.Namespace) -> int:
    for spec in reversed(_select(args.only)):
        print(f"{spec.name:<18} {stop_daemon(cfg, spec.name)}")
    return 0


def cmd_status(cfg: Config, args: argparse.Namespace) -> int:
    rows = status_rows(cfg)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        state = f"running (pid {row['pid']})" if row["running"] else "stopped"
        print(f"{row['name']:<18} {state:<22} heartbeat {row['heartbeat_at'] or '-'}  {row['state'] or ''}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rl_system", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="TOML configuration file (default: rl_system.toml or $RL_SYSTEM_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start the daemons in the background")
    start.add_argument("--only", nargs="+", metavar="NAME", help="start only these daemons")
    start.add_argument("--foreground", action="store_true", help="stay attached; Ctrl-C stops everything")
    stop = sub.add_parser("stop", help="stop the daemons (SIGTERM, then SIGKILL after 15 s)")
    stop.add_argument("--only", nargs="+", metavar="NAME", help="stop only these daemons")
    status = sub.add_parser("status", help="show which daemons run and their last heartbeat")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.config)
        handler = {"start": cmd_start, "stop": cmd_stop, "status": cmd_status}[args.command]
        return handler(cfg, args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
