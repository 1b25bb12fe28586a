"""What every daemon shares: a pid file, a heartbeat file, and a SIGTERM that ends the loop cleanly.

The loop itself stays thin (freqtrade's worker): a daemon's jobs are plain functions called from APScheduler
jobs or watchdog handlers, so tests call the functions directly.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.atomic import publish_json, read_json
from core.config import Config
from core.errors import ExitCode
from core.logging_setup import setup_logging

log = logging.getLogger(__name__)


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

    def beat(self, **status: Any) -> None:
        """Publish ``runtime/heartbeats/<name>.json`` (pid, uptime and any status fields)."""
        self.extra.update(status)
        publish_json(self.heartbeat_path, self.name, {
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started_at, 1),
            **self.extra,
        })

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when asked to stop."""
        return self.stop.wait(seconds)


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
    pid_file = pid_path(cfg, name)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n")
    try:
        ctx.beat(state="starting")
        yield ctx
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        try:
            if pid_file.read_text().strip() == str(os.getpid()):
                pid_file.unlink()
        except FileNotFoundError:
            pass
        try:
            ctx.beat(state="stopped")
        except OSError:
            pass


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
