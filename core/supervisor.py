"""One supervising process that restarts daemons which exit unexpectedly.

Protocol, all through files under ``runtime/supervisor/`` (so start, stop and status are separate processes):

- ``wanted.json`` lists the daemons that should run, each with its module, arguments and the time it was
  requested. ``start`` adds to it, ``stop`` removes from it *before* signalling a daemon; the supervisor reads it
  under the same lock for its whole tick, so it never restarts a daemon that is being stopped.
- ``state.json`` is written by the supervisor only: per daemon its pid, restarts, last exit code, last error line
  and state (``running``, ``restarting``, ``given up``, ``failed at start``, ``stopped``).

A daemon whose first launch exits before its first heartbeat failed at start (bad install, bad configuration):
``start`` reports it and it is not restarted. Any later exit is restarted after an exponential backoff; after
``max_restarts`` restarts within ``window_s`` the supervisor gives up on it (a crash loop helps nobody).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.atomic import publish_json, read_json
from core.config import REPO_ROOT, Config
from core.daemon import pid_path, read_heartbeat
from core.locks import locked

log = logging.getLogger(__name__)
PRODUCER = "supervisor"


@dataclass(frozen=True)
class Backoff:
    """Restart policy: ``first_s`` doubling up to ``max_s``; give up after ``max_restarts`` within ``window_s``."""

    first_s: float = 1.0
    max_s: float = 60.0
    max_restarts: int = 5
    window_s: float = 600.0

    def delay_s(self, recent_restarts: int) -> float:
        """Seconds to wait before the next restart, given how many restarts fall inside the window."""
        return float(min(self.max_s, self.first_s * 2 ** min(recent_restarts, 30)))


def supervisor_dir(cfg: Config) -> Path:
    return cfg.runtime_dir / "supervisor"


def wanted_path(cfg: Config) -> Path:
    return supervisor_dir(cfg) / "wanted.json"


def state_path(cfg: Config) -> Path:
    return supervisor_dir(cfg) / "state.json"


def read_wanted(cfg: Config) -> dict[str, dict[str, Any]]:
    """The wanted daemons (name -> ``module``, ``args``, ``requested_at``); empty when none or unreadable."""
    doc = read_json(wanted_path(cfg)).data or {}
    daemons = doc.get("daemons")
    return dict(daemons) if isinstance(daemons, dict) else {}


def update_wanted(cfg: Config, change: Callable[[dict[str, dict[str, Any]]], None]) -> dict[str, dict[str, Any]]:
    """Apply ``change`` to the wanted daemons under the supervisor's lock; returns the new set."""
    path = wanted_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path):
        wanted = read_wanted(cfg)
        change(wanted)
        publish_json(path, PRODUCER, {"daemons": wanted})
    return wanted


def read_state(cfg: Config) -> dict[str, dict[str, Any]]:
    """The supervisor's last record of each daemon; empty when it never ran."""
    doc = read_json(state_path(cfg)).data or {}
    daemons = doc.get("daemons")
    return dict(daemons) if isinstance(daemons, dict) else {}


def alive(pid: int) -> bool:
    """True when ``pid`` is a live process (a zombie child of ours is reaped and counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return not _zombie(pid)  # another process's child that exited and is not reaped yet has stopped


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def command_line(pid: int) -> str | None:
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


def rss_bytes(pid: int) -> int | None:
    """Resident memory of a live process (``VmRSS`` of ``/proc/<pid>/status``), or None where it cannot be read
    (the process is gone, or the system has no ``/proc``)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def last_error_line(cfg: Config, name: str) -> str:
    """The last line of the daemon's raw output (a traceback's last line), else the last ERROR line of its log."""
    logs = cfg.runtime_dir / "logs"
    for path, marker in ((logs / f"{name}.out", ""), (logs / f"{name}.log", "ERROR")):
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[-200:]
        except OSError:
            continue
        hits = [line.strip() for line in lines if line.strip() and marker in line]
        if hits:
            return hits[-1][:300]
    return ""


def exit_text(code: int | None) -> str:
    """``1``, ``-9 (SIGKILL)``, or ``unknown`` for a daemon this supervisor did not start."""
    if code is None:
        return "unknown"
    if code < 0:
        try:
            return f"{code} ({signal.Signals(-code).name})"
        except ValueError:
            return str(code)
    return str(code)


@dataclass
class Record:
    """What the supervisor knows of one daemon."""

    requested_at: float
    pid: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    launches: int = 0
    beaten: bool = False
    restarts: int = 0
    restart_times: list[float] = field(default_factory=list)
    last_exit: int | None = None
    last_exit_at: float | None = None
    last_error: str = ""
    state: str = "starting"
    restart_at: float | None = None

    def public(self) -> dict[str, Any]:
        return {"pid": self.pid, "restarts": self.restarts, "last_exit": self.last_exit,
                "last_exit_text": exit_text(self.last_exit) if self.last_exit_at else None,
                "last_exit_at": self.last_exit_at, "last_error": self.last_error, "state": self.state,
                "restart_at": self.restart_at, "requested_at": self.requested_at}


class Supervisor:
    """Starts the wanted daemons, restarts them with backoff, records what happened in ``state.json``."""

    def __init__(self, cfg: Config, config_file: str | None, env: dict[str, str], backoff: Backoff,
                 is_running: Callable[[int, str], bool], say: Callable[[str], None] = log.info) -> None:
        self.cfg, self.config_file, self.env, self.backoff = cfg, config_file, env, backoff
        self.is_running, self.say = is_running, say
        self.records: dict[str, Record] = {}
        self.reaping: list[subprocess.Popen[bytes]] = []
        self.stop = threading.Event()
        self._written: dict[str, Any] | None = None

    def run(self, tick_s: float = 0.2) -> None:
        """Supervise until asked to stop or until no daemon is wanted any more."""
        pid_file = pid_path(self.cfg, PRODUCER)
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(f"{os.getpid()}\n")
        try:
            while not self.stop.is_set() and self.tick():
                self.stop.wait(tick_s)
        finally:
            if pid_file.exists() and pid_file.read_text().strip() == str(os.getpid()):
                pid_file.unlink()

    def tick(self) -> bool:
        """One pass over the wanted daemons under the lock; False when none is wanted any more."""
        path = wanted_path(self.cfg)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.reaping = [proc for proc in self.reaping if proc.poll() is None]  # no zombies for `stop` to wait on
        with locked(path):
            wanted = read_wanted(self.cfg)
            for name, entry in wanted.items():
                self._supervise(name, entry, time.time())
            ended = [n for n in wanted if self.records[n].state in ("given up", "failed at start")]
            for name in ended:
                del wanted[name]
            self._release_unwanted(wanted)
            if ended:
                publish_json(path, PRODUCER, {"daemons": wanted})
            self._publish_state()
            if not wanted:
                # Under the lock: a `start` adding a daemon now finds no supervisor and launches a new one.
                pid_path(self.cfg, PRODUCER).unlink(missing_ok=True)
            return bool(wanted)

    def _publish_state(self) -> None:
        # Only on a change: the tick runs five times a second and the disk need not hear of each.
        state = {"pid": os.getpid(), "daemons": {n: r.public() for n, r in self.records.items()}}
        if state != self._written:
            publish_json(state_path(self.cfg), PRODUCER, state)
            self._written = state

    def _supervise(self, name: str, entry: dict[str, Any], now: float) -> None:
        requested_at = float(entry.get("requested_at", 0.0))
        record = self.records.get(name)
        if record is None or record.requested_at != requested_at:
            record = self.records[name] = Record(requested_at=requested_at)
            self._launch_or_adopt(name, entry, record)
            return
        if record.state == "restarting":
            if record.restart_at is not None and now >= record.restart_at:
                record.restarts += 1
                record.restart_times.append(now)
                self._launch_or_adopt(name, entry, record)
            return
        if record.pid is None or record.state in ("given up", "failed at start"):
            return
        if not record.beaten and (read_heartbeat(self.cfg, name) or {}).get("pid") == record.pid:
            record.beaten, record.state = True, "running"
        code = self._exit_code(name, entry, record)
        if code is not False:
            self._on_exit(name, record, code, now)

    def _exit_code(self, name: str, entry: dict[str, Any], record: Record) -> int | None | bool:
        """The exit code of a daemon that has exited (None when not our child), or False while it runs."""
        if record.proc is not None:
            code = record.proc.poll()
            return False if code is None else code
        assert record.pid is not None
        return False if self.is_running(record.pid, str(entry.get("module", ""))) else None

    def _on_exit(self, name: str, record: Record, code: int | None, now: float) -> None:
        record.last_exit, record.last_exit_at, record.proc = code, now, None
        record.last_error = last_error_line(self.cfg, name)
        pid_path(self.cfg, name).unlink(missing_ok=True)
        if record.launches == 1 and not record.beaten and record.restarts == 0:
            record.state = "failed at start"
            self.say(f"{name} exited before its first heartbeat (exit code {exit_text(code)}); not restarting")
            return
        record.restart_times = [t for t in record.restart_times if now - t < self.backoff.window_s]
        if len(record.restart_times) >= self.backoff.max_restarts:
            record.state, record.restart_at = "given up", None
            self.say(f"{name} exited (exit code {exit_text(code)}) after {len(record.restart_times)} restarts in "
                     f"{self.backoff.window_s:.0f} s: giving up; fix it, then start it again")
            return
        delay = self.backoff.delay_s(len(record.restart_times))
        record.state, record.restart_at = "restarting", now + delay
        self.say(f"{name} exited unexpectedly (exit code {exit_text(code)}); restarting in {delay:.1f} s")

    def _launch_or_adopt(self, name: str, entry: dict[str, Any], record: Record) -> None:
        module = str(entry.get("module", ""))
        pid = _pid_in_file(self.cfg, name)
        if pid is not None and self.is_running(pid, module):
            record.pid, record.proc, record.beaten, record.state = pid, None, True, "running"
            return
        logs = self.cfg.runtime_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        # --config goes first: a command with subcommands (shadow_ppo run) takes it before the subcommand.
        cmd = [sys.executable, "-m", module, *(["--config", self.config_file] if self.config_file else []),
               *[str(a) for a in entry.get("args", [])]]
        with open(logs / f"{name}.out", "ab") as out:
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        pid_path(self.cfg, name).write_text(f"{proc.pid}\n")
        record.pid, record.proc, record.beaten, record.restart_at = proc.pid, proc, False, None
        record.launches += 1
        record.state = "starting"

    def _release_unwanted(self, wanted: dict[str, dict[str, Any]]) -> None:
        """Daemons removed by ``stop``: never restarted; their processes are reaped when they exit."""
        for name, record in self.records.items():
            if name in wanted or record.state in ("stopped", "given up", "failed at start"):
                continue
            if record.proc is not None:
                self.reaping.append(record.proc)
            record.proc, record.state, record.restart_at = None, "stopped", None

    def stop_children(self, stop_all: Callable[[list[str]], object]) -> None:
        """Stop every daemon still supervised (the foreground supervisor's Ctrl-C or SIGTERM)."""
        names = [n for n, r in self.records.items() if r.state in ("running", "starting", "restarting")]

        def forget(wanted: dict[str, dict[str, Any]]) -> None:
            for name in names:
                wanted.pop(name, None)

        update_wanted(self.cfg, forget)
        stop_all(names)
        for proc in self.reaping:
            proc.poll()


def _pid_in_file(cfg: Config, name: str) -> int | None:
    try:
        return int(pid_path(cfg, name).read_text().strip())
    except (OSError, ValueError):
        return None


def request(cfg: Config, daemons: dict[str, tuple[str, tuple[str, ...]]], fresh: set[str]) -> dict[str, float]:
    """Add ``daemons`` (name -> module, args) to the wanted ones; the ``fresh`` ones (not running yet) get a new
    request time, which resets their record and makes the supervisor launch them. Returns those times."""
    now = time.time()

    def add(wanted: dict[str, dict[str, Any]]) -> None:
        for name, (module, args) in daemons.items():
            previous = wanted.get(name, {}).get("requested_at", now)
            wanted[name] = {"module": module, "args": list(args), "requested_at": now if name in fresh else previous}

    update_wanted(cfg, add)
    return {name: now for name in fresh}


def supervisor_pid(cfg: Config) -> int | None:
    """The pid of the supervisor running for this home, if any."""
    pid = _pid_in_file(cfg, PRODUCER)
    if pid is None or not alive(pid):
        return None
    command = command_line(pid)
    return pid if command is None or "supervise" in command or "start" in command else None


def stop_supervising(cfg: Config, names: list[str], timeout_s: float = 10.0) -> None:
    """Take ``names`` out of supervision before they are signalled, so none is restarted while it stops; when
    no daemon stays wanted, end the supervisor and wait for it."""
    def forget(wanted: dict[str, dict[str, Any]]) -> None:
        for name in names:
            wanted.pop(name, None)

    # Under the supervisor's lock: once this returns, no tick of the supervisor can restart these daemons.
    if update_wanted(cfg, forget):
        return
    pid = supervisor_pid(cfg)
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
