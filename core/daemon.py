"""What every daemon shares: a pid file, a heartbeat file, and a SIGTERM that ends the loop cleanly.

The loop itself stays thin (freqtrade's worker): a daemon's jobs are plain functions called from APScheduler
jobs or watchdog handlers, so tests call the functions directly.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.atomic import publish_json, read_json, remove_stale_temp_files
from core.config import Config
from core.errors import ExitCode
from core.logging_setup import setup_logging

log = logging.getLogger(__name__)

HEARTBEAT = "heartbeat"
"""The name :class:`WriteErrors` gives the heartbeat file's own write."""
RETRY_FIRST_S = 5.0
"""Wait before the first retry of a failed write; it doubles with each further failure ..."""
RETRY_MAX_S = 300.0
"""... up to this (a full disk or a read-only folder is fixed by a person, in minutes)."""
TEMP_MIN_AGE_S = 600.0
"""Leftover temporary files of the atomic writer younger than this are left at start (another daemon may be
writing one now)."""


@dataclass
class WriteErrors:
    """The writes of a daemon that fail now (permission, full disk), each with its backoff.

    A distinct error is logged once (at ERROR); its repeats only at DEBUG, so a read-only folder does not fill
    the log; the recovery is logged once too.
    """

    clock: Callable[[], float] = time.monotonic
    failing: dict[str, str] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    next_try: dict[str, float] = field(default_factory=dict)

    def failed(self, what: str, exc: BaseException, daemon: str) -> None:
        message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, OSError) else str(exc)
        level = logging.DEBUG if self.failing.get(what) == message else logging.ERROR
        # logging never raises out of a handler (a full disk prints to stderr), so this handler cannot either.
        log.log(level, "%s: cannot write %s (%s); keeping the previous file, retrying with backoff",
                daemon, what, message)
        self.failing[what] = message
        self.attempts[what] = self.attempts.get(what, 0) + 1
        delay = min(RETRY_FIRST_S * 2 ** (self.attempts[what] - 1), RETRY_MAX_S)
        self.next_try[what] = self.clock() + delay

    def ok(self, what: str, daemon: str) -> None:
        if self.failing.pop(what, None) is not None:
            log.warning("%s: writing %s works again after %d failed attempt(s)", daemon, what,
                        self.attempts.get(what, 0))
        self.attempts.pop(what, None)
        self.next_try.pop(what, None)

    def retry_due(self, what: str) -> bool:
        return self.clock() >= self.next_try.get(what, -math.inf)

    def reason(self) -> str:
        return "; ".join(f"cannot write {what}: {message}" for what, message in sorted(self.failing.items()))


@dataclass
class DaemonContext:
    """Handed to a daemon's loop: ``stop`` is set by SIGTERM/SIGINT; ``beat()`` refreshes the heartbeat."""

    name: str
    cfg: Config
    stop: threading.Event = field(default_factory=threading.Event)
    started_at: float = field(default_factory=time.time)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def heartbeat_path(self) -> Path:
        return heartbeat_path(self.cfg, self.name)

    writes: WriteErrors = field(default_factory=lambda: WriteErrors())

    def beat(self, **status: Any) -> None:
        """Publish ``runtime/heartbeats/<name>.json`` (pid, uptime and any status fields); never raises.

        While a write of the daemon fails (:meth:`write_failed`), ``state`` says ``degraded`` with the reason
        (the daemon's own state stays under ``activity``). A heartbeat that cannot be written is logged once and
        tried again at the next beat: the daemon keeps running.
        """
        self.extra.update(status)
        payload = {"pid": os.getpid(), "uptime_s": round(time.time() - self.started_at, 1), **self.extra}
        if self.writes.failing:
            payload.update(state="degraded", activity=self.extra.get("state"),
                           degraded_reason=self.writes.reason(), write_errors=dict(self.writes.failing))
        try:
            publish_json(self.heartbeat_path, self.name, payload)
        except (OSError, ValueError) as exc:
            self.writes.failed(HEARTBEAT, exc, self.name)
        else:
            self.writes.ok(HEARTBEAT, self.name)

    def write_failed(self, what: str, exc: BaseException) -> None:
        """Record that writing ``what`` failed (logged once per distinct error); the heartbeat turns degraded."""
        self.writes.failed(what, exc, self.name)

    def write_ok(self, what: str) -> None:
        """Record that writing ``what`` worked (again): it leaves the degraded reasons."""
        self.writes.ok(what, self.name)

    def retry_due(self, what: str) -> bool:
        """False while the backoff after a failed write of ``what`` runs: skip the attempt until then."""
        return self.writes.retry_due(what)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when asked to stop."""
        return self.stop.wait(seconds)


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None  # not glibc: its allocator returns memory its own way
    return trim


_MALLOC_TRIM = _malloc_trim()


def release_free_memory() -> bool:
    """Hand the memory freed by a daemon's work back to the system (glibc's ``malloc_trim``); False where the C
    library has no such call.

    A pass that builds frames and tables and frees them leaves its peak in the heap: glibc keeps freed memory
    whose pages share the heap with a live object, so a daemon's resident size followed its largest pass and
    crept up with the data (measured with ``scripts/soak.py``). Called after each pass of a daemon whose
    working set follows the data."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


def run_in_child(work: Callable[[], int], stop: threading.Event, on_wait: Callable[[], None],
                 poll_s: float = 1.0) -> int:
    """Run ``work`` in a forked copy of this process and return its exit code (``work``'s return value; 1 when
    it raised, the negative signal number when it was killed).

    Everything the work allocates is handed back to the system when the child ends, however the allocator
    fragments it: a daemon that trains a model every few minutes keeps a flat resident size. The child sees the
    parent's memory as it was (configuration, patched functions) and writes files as the parent would. While it
    runs ``on_wait`` is called every ``poll_s`` (a heartbeat); once ``stop`` is set the child is sent SIGTERM,
    which sets the child's own copy of the daemon's stop flag, so it ends at its next check."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the parent's code
        code = 1
        try:
            _stop_with_parent()
            code = int(work())
        except BaseException:
            log.exception("the child process failed")
        finally:
            logging.shutdown()
            os._exit(code)
    signalled = False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if stop.is_set() and not signalled:
            os.kill(pid, signal.SIGTERM)
            signalled = True
        if signalled:
            time.sleep(poll_s / 10)
        else:
            stop.wait(poll_s)
        on_wait()


def _stop_with_parent() -> None:
    """Have the kernel send this process SIGTERM when its parent dies (Linux ``PR_SET_PDEATHSIG``), so a child
    of a daemon killed with SIGKILL stops at its next check instead of running on unsupervised."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (AttributeError, OSError):
        pass  # not Linux: the child finishes its work and exits


def heartbeat_path(cfg: Config, name: str) -> Path:
    return cfg.runtime_dir / "heartbeats" / f"{name}.json"


def pid_path(cfg: Config, name: str) -> Path:
    return cfg.runtime_dir / "pids" / f"{name}.pid"


def read_heartbeat(cfg: Config, name: str, max_age_s: float | None = None) -> dict[str, Any] | None:
    result = read_json(heartbeat_path(cfg, name), max_age_s=max_age_s)
    return result.data if result.ok else None


@contextmanager
def daemon_context(name: str, cfg: Config) -> Iterator[DaemonContext]:
    """Install SIGTERM/SIGINT handlers that set ``ctx.stop``, write the pid file, remove it on exit."""
    ctx = DaemonContext(name=name, cfg=cfg)

    def _on_signal(signum: int, _frame: Any) -> None:
        log.info("%s: received %s, finishing the current step", name, signal.Signals(signum).name)
        ctx.stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    clean_leftover_temp_files(cfg)
    pid_file = pid_path(cfg, name)
    try:
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(f"{os.getpid()}\n")
    except OSError as exc:
        # Without its pid file the daemon still works (status finds it by its heartbeat and command line).
        ctx.write_failed("pid file", exc)
    try:
        ctx.beat(state="starting")
        yield ctx
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        try:
            if pid_file.read_text().strip() == str(os.getpid()):
                pid_file.unlink()
        except OSError:
            pass
        ctx.beat(state="stopped")


def clean_leftover_temp_files(cfg: Config) -> list[Path]:
    """Remove what killed atomic writers left in ``state/`` and ``runtime/`` (older ones only; logged)."""
    removed = [p for folder in (cfg.state_dir, cfg.runtime_dir) if folder.is_dir()
               for p in remove_stale_temp_files(folder, TEMP_MIN_AGE_S)]
    if removed:
        log.info("removed %d leftover temporary file(s) of interrupted writes: %s", len(removed),
                 ", ".join(p.name for p in removed[:5]) + (" ..." if len(removed) > 5 else ""))
    return removed


def run_daemon_main(name: str, cfg: Config, body: Callable[[DaemonContext], None]) -> int:
    """The daemon mode of a command: its log file (effective configuration first), pid file and heartbeat, and
    ``body(ctx)`` until SIGTERM or SIGINT sets ``ctx.stop``; returns :attr:`ExitCode.OK`."""
    setup_logging(cfg, daemon=name)
    if logging.getLogger().level > logging.DEBUG:
        # APScheduler logs every run of every job at INFO; the jobs' own log lines say what matters.
        logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
    with daemon_context(name, cfg) as ctx:
        body(ctx)
    logging.getLogger(name).info("stopped")
    return ExitCode.OK
