"""Start, stop and inspect the suite's background daemons.

    python scripts/rl_system.py start [--only NAME ...] [--foreground]
    python scripts/rl_system.py stop
    python scripts/rl_system.py status [--json]
    python scripts/rl_system.py job NAME        (for crontab: one run of a scheduled job at a time)

``start`` hands the daemons to one supervising process (``supervise``, in the background; with ``--foreground``
this process is the supervisor), which restarts a daemon that exits unexpectedly with an exponential backoff and
gives up after a crash loop (see core/supervisor.py). Each daemon runs as its own process in its own session (so
a terminal's Ctrl-C does not reach it), with its pid in ``runtime/pids/<name>.pid`` and its stdout/stderr in
``runtime/logs/<name>.out``. ``stop`` stops the supervisor first, then sends SIGTERM, waits for a clean exit and
only then SIGKILLs. ``status`` reads pids, heartbeats, the supervisor's record and the jobs' schedules.
"""

from __future__ import annotations

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import REPO_ROOT, Config, load_config
from core.contracts.allocation_model import MODEL_DIR_NAME
from core.contracts.qlearning_policy import POLICY_NAME
from core.contracts.weights import ALLOCATIONS_NAME, RL_WEIGHTS_NAME
from core.daemon import pid_path, read_heartbeat
from core.errors import ConfigError, ExitCode
from core.jobs import JOBS, job_named, lock_path, run_job
from core.status import show_status
from core.supervisor import (
    Backoff,
    Supervisor,
    alive,
    command_line,
    read_state,
    request,
    stop_supervising,
    supervisor_pid,
)


@dataclass(frozen=True)
class DaemonSpec:
    """How to run one daemon: ``python -m <module> <args...>``; ``aliases`` are the other command lines that run
    it (the README's ``python ai/qlearning.py --loop``, the ``rl-qlearning`` console script), so status and stop
    recognise a daemon however it was started."""

    name: str
    module: str
    args: tuple[str, ...]
    what: str
    aliases: tuple[str, ...] = ()


DAEMONS: tuple[DaemonSpec, ...] = (
    DaemonSpec("weights_bridge", "agents.weights_bridge", ("--watch",),
               f"merges weight sources by priority into runtime/{ALLOCATIONS_NAME}",
               ("agents/weights_bridge.py", "rl-weights-bridge")),
    DaemonSpec("paper_trader", "agents.paper_trader", ("--replay",),
               "runs the 8 strategies on candles, appends closed trades to state/pnl_history.csv",
               ("agents/paper_trader.py", "rl-paper-trader")),
    DaemonSpec("performance_tracker", "analytics.performance.daemon", ("--loop",),
               "weight history, performance report and plots; runs the portfolio optimizer and strategy lab",
               ("analytics/rl_performance.py", "analytics.rl_performance", "rl-performance")),
    DaemonSpec("qlearning", "ai.tabular.cli", ("--loop",),
               f"tabular strategy and sizing agents learn from each new trade; publishes runtime/{POLICY_NAME}",
               ("ai/qlearning.py", "ai.qlearning", "rl-qlearning")),
    DaemonSpec("rl_trainer", "ai.allocation.trainer", ("--loop",),
               f"retrains the strategy-weight PPO agent weekly or after 50 new trades; state/{MODEL_DIR_NAME}/",
               ("ai/rl_trainer.py", "ai.rl_trainer", "rl-trainer")),
    DaemonSpec("rl_inference", "ai.allocation.inference", ("--loop",),
               f"publishes runtime/{RL_WEIGHTS_NAME} from the latest model every 5 min and on change",
               ("ai/rl_inference.py", "ai.rl_inference", "rl-inference")),
    DaemonSpec("shadow_ppo", "ai.trading.cli", ("run",),
               "trading PPO in shadow mode: a decision per closed candle, experiences, monthly retraining",
               ("ai/shadow_ppo.py", "ai.shadow_ppo", "rl-shadow-ppo")),
    DaemonSpec("dashboard", "dashboard.cli", (),
               "the web page of the suite: health, the loop, the trader, both PPO agents, Q-learning (read only)",
               ("scripts/dashboard.py",)),
)
"""Every daemon of the suite, in start order (the trader's inputs before the trader)."""
NAME_WIDTH = max(len(d.name) for d in DAEMONS)
STARTUP_CHECK_S = 20.0
"""How long ``start`` waits at most for each new process to write its first heartbeat or to exit (a bad install,
a crash on import), so a daemon that died at once is reported instead of listed as started."""


_alive = alive


def _is_daemon(pid: int, spec: DaemonSpec) -> bool:
    """True when ``pid`` is alive and runs ``spec``: a pid file left by a crash may name a reused pid, and a
    stranger must never receive our SIGTERM."""
    return _runs(pid, spec.module)


def _runs(pid: int, module: str) -> bool:
    """True when ``pid`` is alive and runs ``module`` under any of its command lines."""
    if not _alive(pid):
        return False
    command = command_line(pid)
    known = {d.module: d for d in DAEMONS}
    marks = (module, *known[module].aliases) if module in known else (module,)
    return command is None or any(mark in command for mark in marks)


def running_pid(cfg: Config, name: str) -> int | None:
    """The pid of the daemon if its pid file names a live process running that daemon, else None."""
    try:
        pid = int(pid_path(cfg, name).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _is_daemon(pid, _spec(name)) else None


def _spec(name: str) -> DaemonSpec:
    return next(d for d in DAEMONS if d.name == name)


def ensure_supervisor(cfg: Config, config_file: str | None, args: argparse.Namespace) -> int:
    """Start the background supervisor unless one runs; returns its pid."""
    pid = supervisor_pid(cfg)
    if pid is not None:
        return pid
    logs = cfg.runtime_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), *(["--config", config_file] if config_file else []),
           "supervise", *_backoff_argv(args)]
    with open(logs / "supervisor.out", "ab") as out:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, env=_child_env(cfg),
                                stdin=subprocess.DEVNULL, start_new_session=True)
    pid_file = pid_path(cfg, "supervisor")
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def _backoff(args: argparse.Namespace) -> Backoff:
    return Backoff(args.restart_delay, args.max_restart_delay, args.max_restarts, args.restart_window)


def _backoff_argv(args: argparse.Namespace) -> list[str]:
    return ["--restart-delay", str(args.restart_delay), "--max-restart-delay", str(args.max_restart_delay),
            "--max-restarts", str(args.max_restarts), "--restart-window", str(args.restart_window)]


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
    config_file = _config_file(args)
    if args.foreground and supervisor_pid(cfg) is not None:
        raise ConfigError("a background supervisor already runs for this home; stop it first "
                          "(bash scripts/stop_rl_system.sh) or leave out --foreground")
    fresh = request(cfg, {s.name: (s.module, s.args) for s in specs},
                    {s.name for s in specs if running_pid(cfg, s.name) is None})
    if args.foreground:
        return _supervise_here(cfg, config_file, args, stop_daemons_on_exit=True)
    ensure_supervisor(cfg, config_file, args)
    failed = early_exits(cfg, fresh, STARTUP_CHECK_S)
    for spec in specs:
        pid = running_pid(cfg, spec.name)
        what = "started" if spec.name in fresh else "already running"
        if spec.name not in failed:
            print(f"{spec.name:<{NAME_WIDTH}} {what} (pid {pid}): {spec.what}")
    for line in failed.values():
        print(line, file=sys.stderr)
    if any(s.name == "dashboard" for s in specs) and "dashboard" not in failed:
        url = (read_heartbeat(cfg, "dashboard") or {}).get("url")  # the port actually taken (port = 0)
        print(f"dashboard: {url or f'http://{cfg.dashboard.host}:{cfg.dashboard.port}/'}")
    print(f"state: {cfg.state_dir}   runtime: {cfg.runtime_dir}   logs: {cfg.runtime_dir / 'logs'}")
    print("supervised: a daemon that exits unexpectedly is restarted (status shows restarts)")
    print("stop with: bash scripts/stop_rl_system.sh   status: python scripts/rl_system.py status")
    return ExitCode.FAILURE if failed else ExitCode.OK


def _config_file(args: argparse.Namespace) -> str | None:
    return str(Path(args.config).expanduser().resolve()) if args.config else None


def _supervise_here(cfg: Config, config_file: str | None, args: argparse.Namespace,
                    stop_daemons_on_exit: bool) -> int:
    """Run the supervisor in this process until SIGTERM/SIGINT or until no daemon is wanted any more.

    In the foreground (a terminal, systemd) the end stops every daemon; the background supervisor leaves them
    running (``stop`` stops them after it).
    """
    supervisor = Supervisor(cfg, config_file, _child_env(cfg), _backoff(args), _runs,
                            say=lambda line: print(line, flush=True))

    def on_signal(signum: int, _frame: Any) -> None:
        supervisor.stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    if stop_daemons_on_exit:
        print("running in the foreground as the supervisor; Ctrl-C (or SIGTERM) stops every daemon", flush=True)
    supervisor.run()
    if not supervisor.stop.is_set():
        print("no daemon left to supervise", flush=True)
        return ExitCode.FAILURE if stop_daemons_on_exit else ExitCode.OK
    if stop_daemons_on_exit:
        supervisor.stop_children(lambda names: _print_outcomes(stop_daemons(cfg, names[::-1])))
    return ExitCode.OK


def cmd_supervise(cfg: Config, args: argparse.Namespace) -> int:
    return _supervise_here(cfg, _config_file(args), args, stop_daemons_on_exit=False)


def early_exits(cfg: Config, fresh: dict[str, float], watch_s: float) -> dict[str, str]:
    """An error line per newly requested daemon that exited before its first heartbeat, with its last output line.

    Waits until each has either published a heartbeat with the pid the supervisor started it with or has been
    recorded by the supervisor as failed at start, ``watch_s`` at most.
    """
    def settled(name: str) -> bool:
        record = read_state(cfg).get(name, {})
        if record.get("requested_at") != fresh[name]:
            return False
        return record.get("state") == "failed at start" or (
            record.get("pid") is not None and (read_heartbeat(cfg, name) or {}).get("pid") == record.get("pid"))

    deadline = time.monotonic() + watch_s
    while time.monotonic() < deadline and not all(settled(name) for name in fresh):
        time.sleep(0.1)
    lines = {}
    for name in fresh:
        record = read_state(cfg).get(name, {})
        if record.get("requested_at") == fresh[name] and record.get("state") != "failed at start":
            continue
        out = cfg.runtime_dir / "logs" / f"{name}.out"
        last = _last_line(out)
        code = record.get("last_exit_text") or "none: the supervisor did not start it"
        lines[name] = (f"error: {name} exited at once (exit code {code})" + (f": {last}" if last else "")
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
    names = [s.name for s in reversed(_select(args.only))]
    stop_supervising(cfg, names)
    _print_outcomes(stop_daemons(cfg, names))
    return ExitCode.OK


def cmd_status(cfg: Config, args: argparse.Namespace) -> int:
    return show_status(cfg, DAEMONS, running_pid, args.json)


def cmd_job(cfg: Config, args: argparse.Namespace) -> int:
    """One run of a scheduled job, or none when another run of it holds its lock (cron's next tick retries)."""
    job = job_named(args.name)
    if job is None:
        raise ConfigError(f"unknown job {args.name!r}; known jobs: {', '.join(j.name for j in JOBS)}")
    try:
        code = run_job(cfg, job, _config_file(args))
    except OSError as exc:
        print(f"{job.name}: cannot create its lock {lock_path(cfg, job.name)} ({exc}); make {cfg.runtime_dir} "
              "writable", file=sys.stderr)
        return ExitCode.FAILURE
    if code is None:
        print(f"{job.name}: already running (its lock is held by another run, or by the daemon doing the same "
              "work); nothing to do")
        return ExitCode.OK
    return code


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
    start.add_argument("--foreground", action="store_true",
                       help="stay attached as the supervisor (systemd: Type=simple); Ctrl-C stops everything")
    supervise = sub.add_parser("supervise", help="the background supervisor that start launches",
                               parents=[config_after])
    for command in (start, supervise):
        backoff = command.add_argument_group("restarts")
        backoff.add_argument("--restart-delay", type=float, default=Backoff.first_s, metavar="S",
                             help="first restart delay; doubles at each restart (default %(default)s)")
        backoff.add_argument("--max-restart-delay", type=float, default=Backoff.max_s, metavar="S",
                             help="longest restart delay (default %(default)s)")
        backoff.add_argument("--max-restarts", type=int, default=Backoff.max_restarts, metavar="N",
                             help="give up after N restarts within --restart-window (default %(default)s)")
        backoff.add_argument("--restart-window", type=float, default=Backoff.window_s, metavar="S",
                             help="window of the crash-loop limit (default %(default)s)")
    stop = sub.add_parser("stop", help="stop the daemons (SIGTERM, then SIGKILL after 15 s)", parents=[config_after])
    stop.add_argument("--only", nargs="+", metavar="NAME", help="stop only these daemons")
    status = sub.add_parser("status", help="show which daemons run and their last heartbeat",
                            parents=[config_after])
    status.add_argument("--json", action="store_true", help="machine-readable output")
    job = sub.add_parser("job", help="run a scheduled job once (for crontab); exits 0 at once if it runs already",
                         parents=[config_after])
    job.add_argument("name", choices=[j.name for j in JOBS])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.config)
        handler = {"start": cmd_start, "stop": cmd_stop, "status": cmd_status, "supervise": cmd_supervise,
                   "job": cmd_job}[args.command]
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
