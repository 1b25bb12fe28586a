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
from typing import Any

from core.atomic import read_json
from core.config import REPO_ROOT, Config, load_config
from core.contracts.allocation_model import MODEL_DIR_NAME, model_config_version
from core.contracts.qlearning_policy import POLICY_NAME, policy_path
from core.contracts.rollout import rollout_path
from core.contracts.trader_status import read_trader_status
from core.contracts.weights import ALLOCATIONS_NAME, RL_WEIGHTS_NAME, allocations_path
from core.daemon import heartbeat_path, pid_path, read_heartbeat
from core.errors import ConfigError, ExitCode


@dataclass(frozen=True)
class DaemonSpec:
    """How to run one daemon: ``python -m <module> <args...>``."""

    name: str
    module: str
    args: tuple[str, ...]
    what: str


DAEMONS: tuple[DaemonSpec, ...] = (
    DaemonSpec("weights_bridge", "agents.weights_bridge", ("--watch",),
               f"merges weight sources by priority into runtime/{ALLOCATIONS_NAME}"),
    DaemonSpec("paper_trader", "agents.paper_trader", ("--replay",),
               "runs the 8 strategies on candles, appends closed trades to state/pnl_history.csv"),
    DaemonSpec("performance_tracker", "analytics.performance.daemon", ("--loop",),
               "weight history, performance report and plots; runs the portfolio optimizer and strategy lab"),
    DaemonSpec("qlearning", "ai.tabular.cli", ("--loop",),
               f"tabular strategy and sizing agents learn from each new trade; publishes runtime/{POLICY_NAME}"),
    DaemonSpec("rl_trainer", "ai.allocation.trainer", ("--loop",),
               f"retrains the strategy-weight PPO agent weekly or after 50 new trades; state/{MODEL_DIR_NAME}/"),
    DaemonSpec("rl_inference", "ai.allocation.inference", ("--loop",),
               f"publishes runtime/{RL_WEIGHTS_NAME} from the latest model every 5 min and on change"),
    DaemonSpec("shadow_ppo", "ai.trading.cli", ("run",),
               "trading PPO in shadow mode: a decision per closed candle, experiences, monthly retraining"),
)
"""Every daemon of the suite, in start order (the trader's inputs before the trader)."""
NAME_WIDTH = max(len(d.name) for d in DAEMONS)
STARTUP_CHECK_S = 20.0
"""How long ``start`` waits at most for each new process to write its first heartbeat or to exit (a bad install,
a crash on import), so a daemon that died at once is reported instead of listed as started."""


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


def _command_line(pid: int) -> str | None:
    """The process's command line, or None when it cannot be read (no /proc and no ps)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return ""  # Linux, and the process is gone
    except OSError:
        return None
    try:  # macOS and other systems without /proc
        out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def _is_daemon(pid: int, spec: DaemonSpec) -> bool:
    """True when ``pid`` is alive and runs ``spec``: a pid file left by a crash may name a reused pid, and a
    stranger must never receive our SIGTERM."""
    if not _alive(pid):
        return False
    command = _command_line(pid)
    return command is None or spec.module in command


def running_pid(cfg: Config, name: str) -> int | None:
    """The pid of the daemon if its pid file names a live process running that daemon, else None."""
    try:
        pid = int(pid_path(cfg, name).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _is_daemon(pid, _spec(name)) else None


def _spec(name: str) -> DaemonSpec:
    return next(d for d in DAEMONS if d.name == name)


def start_daemon(cfg: Config, spec: DaemonSpec, config_file: str | None) -> tuple[int, bool, subprocess.Popen | None]:
    """Start ``spec`` unless it already runs; returns (pid, started_now, the new process)."""
    pid = running_pid(cfg, spec.name)
    if pid is not None:
        return pid, False, None
    logs = cfg.runtime_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # --config goes first: a command with subcommands (shadow_ppo run) takes it before the subcommand.
    cmd = [sys.executable, "-m", spec.module, *(["--config", config_file] if config_file else []), *spec.args]
    with open(logs / f"{spec.name}.out", "ab") as out:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, env=_child_env(cfg),
                                stdin=subprocess.DEVNULL, start_new_session=True)
    pid_file = pid_path(cfg, spec.name)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid, True, proc


def _child_env(cfg: Config) -> dict[str, str]:
    # The daemons run from the repository root: a home or config file given relative to the caller's folder
    # must reach them as the same absolute path, or they would write their state somewhere else.
    env = os.environ.copy()
    env["RL_SYSTEM_HOME"] = str(cfg.home)
    env["RL_SYSTEM_LOG_CONSOLE"] = "0"  # the log file has every line; <name>.out keeps only crashes
    if env.get("RL_SYSTEM_CONFIG"):
        env["RL_SYSTEM_CONFIG"] = str(Path(env["RL_SYSTEM_CONFIG"]).expanduser().resolve())
    return env


def stop_daemons(cfg: Config, names: list[str], timeout_s: float = 15.0) -> dict[str, str]:
    """SIGTERM to every running one at once, wait up to ``timeout_s`` for clean exits, then SIGKILL the rest.

    Returns what happened to each: ``stopped``, ``killed after timeout`` or ``not running``.
    """
    outcome: dict[str, str] = {}
    pending: dict[str, int] = {}
    for name in names:
        pid = running_pid(cfg, name)
        if pid is None:
            pid_path(cfg, name).unlink(missing_ok=True)
            outcome[name] = "not running"
            continue
        try:
            os.kill(pid, signal.SIGTERM)
            pending[name] = pid
        except ProcessLookupError:
            outcome[name] = "stopped"
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        for name, pid in list(pending.items()):
            if not _alive(pid):
                outcome[name] = "stopped"
                del pending[name]
        time.sleep(0.1)
    for name, pid in pending.items():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        outcome[name] = "killed after timeout"
    for name in names:
        if outcome[name] != "not running":
            pid_path(cfg, name).unlink(missing_ok=True)
    return {name: outcome[name] for name in names}


def stop_daemon(cfg: Config, name: str, timeout_s: float = 15.0) -> str:
    """Stop one daemon (see :func:`stop_daemons`); returns what happened."""
    return stop_daemons(cfg, [name], timeout_s)[name]


STALE_HEARTBEAT_S = 180.0
"""A running daemon whose heartbeat is older than this is shown as stale (hung, or stopped without cleanup)."""


def status_rows(cfg: Config) -> list[dict[str, object]]:
    rows = []
    for spec in DAEMONS:
        pid = running_pid(cfg, spec.name)
        beat = read_json(heartbeat_path(cfg, spec.name))
        doc = beat.data or {}
        rows.append({
            "name": spec.name,
            "running": pid is not None,
            "pid": pid,
            "heartbeat_at": doc.get("generated_at"),
            "heartbeat_stale": pid is not None and (beat.age_s is None or beat.age_s > STALE_HEARTBEAT_S),
            "state": doc.get("state"),
            "what": spec.what,
        })
    return rows


def loop_summary(cfg: Config) -> dict[str, object]:
    """Where the loop stands, from what the daemons publish (None where a file is absent or unreadable)."""
    def doc(path: Path) -> dict[str, Any]:
        result = read_json(path)
        return result.data if result.ok and result.data is not None else {}

    status = read_trader_status(cfg)
    trader = dict(status.doc) if status is not None else {}
    allocation = doc(allocations_path(cfg))
    last = trader.get("last_candle") or {}
    return {
        "trader": {"mode": trader.get("mode"), "equity": trader.get("equity"),
                   "trades_written": trader.get("trades_written"), "last_candle": last.get("time")} if trader else None,
        "allocation_source": allocation.get("source"),
        "sources_passed_over": sorted(allocation.get("fallback_reasons") or {}),
        "strategy_model_version": model_config_version(cfg),
        "qlearning_sizing_multiplier": doc(policy_path(cfg)).get("sizing_multiplier"),
        "ppo_rollout_stage": doc(rollout_path(cfg)).get("stage"),
    }


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
    config_file = str(Path(args.config).expanduser().resolve()) if args.config else None
    started: dict[str, subprocess.Popen] = {}
    for spec in specs:
        pid, new, proc = start_daemon(cfg, spec, config_file)
        if proc is not None:
            started[spec.name] = proc
        print(f"{spec.name:<{NAME_WIDTH}} {'started' if new else 'already running'} (pid {pid}): {spec.what}")
    failed = early_exits(cfg, started, STARTUP_CHECK_S)
    for line in failed:
        print(line, file=sys.stderr)
    print(f"state: {cfg.state_dir}   runtime: {cfg.runtime_dir}   logs: {cfg.runtime_dir / 'logs'}")
    if not args.foreground:
        print("stop with: bash scripts/stop_rl_system.sh   status: python scripts/rl_system.py status")
        return ExitCode.FAILURE if failed else ExitCode.OK
    print("running in the foreground; Ctrl-C stops every daemon")
    try:
        while any(running_pid(cfg, s.name) for s in specs):
            time.sleep(1.0)
        print("every daemon has exited")
        return ExitCode.FAILURE
    except KeyboardInterrupt:
        _print_outcomes(stop_daemons(cfg, [s.name for s in reversed(specs)]))
        return ExitCode.OK


def early_exits(cfg: Config, started: dict[str, subprocess.Popen], watch_s: float) -> list[str]:
    """One error line per new daemon that exited before its first heartbeat, with its last output line.

    Waits until each process has either published a heartbeat with its pid or exited, ``watch_s`` at most.
    """
    deadline = time.monotonic() + watch_s
    while time.monotonic() < deadline and not all(
        proc.poll() is not None or (read_heartbeat(cfg, name) or {}).get("pid") == proc.pid
        for name, proc in started.items()
    ):
        time.sleep(0.1)
    lines = []
    for name, proc in started.items():
        code = proc.poll()
        if code is None:
            continue
        pid_path(cfg, name).unlink(missing_ok=True)
        out = cfg.runtime_dir / "logs" / f"{name}.out"
        last = _last_line(out)
        lines.append(f"error: {name} exited at once (exit code {code})" + (f": {last}" if last else "")
                     + f"; see {out}")
    return lines


def _last_line(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
    return text.splitlines()[-1] if text else ""


def _print_outcomes(outcomes: dict[str, str]) -> None:
    for name, what in outcomes.items():
        print(f"{name:<{NAME_WIDTH}} {what}")


def cmd_stop(cfg: Config, args: argparse.Namespace) -> int:
    _print_outcomes(stop_daemons(cfg, [s.name for s in reversed(_select(args.only))]))
    return ExitCode.OK


def cmd_status(cfg: Config, args: argparse.Namespace) -> int:
    rows, loop = status_rows(cfg), loop_summary(cfg)
    if args.json:
        print(json.dumps({"daemons": rows, "loop": loop}, indent=2))
        return ExitCode.OK
    for row in rows:
        state = f"running (pid {row['pid']})" if row["running"] else "stopped"
        stale = "  STALE heartbeat: hung? see runtime/logs/" if row["heartbeat_stale"] else ""
        print(f"{row['name']:<{NAME_WIDTH}} {state:<22} heartbeat {row['heartbeat_at'] or '-'}  "
              f"{row['state'] or ''}{stale}")
    trader = loop["trader"]
    if isinstance(trader, dict):
        print(f"trader: {trader['mode']}, equity {_number(trader['equity'])}, {trader['trades_written']} trades "
              f"written, last candle {trader['last_candle'] or '-'}")
    passed = ", ".join(loop["sources_passed_over"]) or "none"  # type: ignore[arg-type]
    print(f"allocation: {loop['allocation_source'] or '-'} (passed over: {passed}); "
          f"strategy model {loop['strategy_model_version'] or 'not trained yet'}; "
          f"sizing x{loop['qlearning_sizing_multiplier'] or '-'}; "
          f"trading PPO {loop['ppo_rollout_stage'] or 'Stage 0: Shadow Mode (no rollout configured)'}")
    return ExitCode.OK


def _number(value: object) -> str:
    return f"{value:,.2f}" if isinstance(value, (int, float)) else "-"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rl_system", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="TOML configuration file (default: rl_system.toml or $RL_SYSTEM_CONFIG)")
    # Also after the subcommand (`status --config PATH`): SUPPRESS keeps one given before it when absent here.
    config_after = argparse.ArgumentParser(add_help=False)
    config_after.add_argument("--config", default=argparse.SUPPRESS, metavar="CONFIG",
                              help="TOML configuration file (also accepted before the subcommand)")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start the daemons in the background", parents=[config_after])
    start.add_argument("--only", nargs="+", metavar="NAME", help="start only these daemons")
    start.add_argument("--foreground", action="store_true", help="stay attached; Ctrl-C stops everything")
    stop = sub.add_parser("stop", help="stop the daemons (SIGTERM, then SIGKILL after 15 s)", parents=[config_after])
    stop.add_argument("--only", nargs="+", metavar="NAME", help="stop only these daemons")
    status = sub.add_parser("status", help="show which daemons run and their last heartbeat",
                            parents=[config_after])
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
        return ExitCode.BAD_INPUT
    except OSError as exc:
        print(f"error: {exc.filename or 'runtime folder'}: {exc.strerror or exc}; check that the state and "
              "runtime folders are writable (RL_SYSTEM_HOME)", file=sys.stderr)
        return ExitCode.FAILURE


if __name__ == "__main__":
    sys.exit(main())
