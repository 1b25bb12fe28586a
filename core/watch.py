"""Watching files: the suite's one debouncer, a handler for a few named files, and the observer choice.

Atomic writers show up as moves (``dest_path`` is the file's name), one save fires several events, and a file
that grows without pause (a fast replay appending trades) must still be looked at: so every daemon that
watches files debounces with a bound, never with a pure trailing delay that a steady stream would starve.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

WATCHED_EVENTS = frozenset({"created", "modified", "moved", "deleted"})
MAX_DELAY_FACTOR = 5.0
"""A burst of events delays the reaction by at most this many debounce periods."""


class Debouncer:
    """Turns a burst of notifications into one: due after ``quiet_s`` without a new one, or ``max_delay_s``
    after the first, whichever comes first. ``wait`` sleeps until notified or woken."""

    def __init__(self, quiet_s: float, max_delay_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet_s = quiet_s
        self.max_delay_s = max(max_delay_s, quiet_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._first: float | None = None
        self._last = 0.0
        self._wake = threading.Event()

    def notify(self) -> None:
        with self._lock:
            now = self._clock()
            if self._first is None:
                self._first = now
            self._last = now
        self._wake.set()

    def wake(self) -> None:
        """Interrupt :meth:`wait` without a notification (shutdown)."""
        self._wake.set()

    def seconds_until_due(self) -> float | None:
        """None when nothing is pending, else how long until it is due (0 when it is)."""
        with self._lock:
            if self._first is None:
                return None
            due = min(self._last + self.quiet_s, self._first + self.max_delay_s)
            return max(0.0, due - self._clock())

    def take_if_due(self) -> bool:
        """True (and the pending state cleared) when a notification is due."""
        remaining = self.seconds_until_due()
        if remaining is None or remaining > 0:
            return False
        with self._lock:
            self._first = None
        return True

    def wait(self, timeout: float) -> None:
        self._wake.wait(timeout)
        self._wake.clear()


class SourceFileHandler(FileSystemEventHandler):
    """Calls ``notify`` for created/modified/moved/deleted events touching one of ``names`` (by basename)."""

    def __init__(self, names: frozenset[str], notify: Callable[[], None]) -> None:
        super().__init__()
        self.names = names
        self.notify = notify

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in WATCHED_EVENTS:
            return
        # A move counts by either end: renamed into place (atomic write) or renamed away (gone).
        paths = (event.src_path, getattr(event, "dest_path", "") or "")
        if any(os.path.basename(os.fsdecode(p)) in self.names for p in paths if p):
            self.notify()


def make_observer(polling: bool, poll_interval_s: float) -> BaseObserver:
    """An inotify/FSEvents observer, or a polling one (network filesystems, where OS events don't arrive)."""
    return PollingObserver(timeout=poll_interval_s) if polling else Observer()


def schedule_once_soon(scheduler: Any, func: Callable[..., Any], job_id: str, delay_s: float,
                       misfire_grace_s: int, args: list[Any] | None = None) -> None:
    """Run ``func`` once, ``delay_s`` from now, unless that job is already pending (then it joins it).

    The first event of a burst fixes the time, so a steady stream of events cannot keep pushing it back.
    """
    if scheduler.get_job(job_id) is not None:
        return
    run_at = datetime.now(timezone.utc) + timedelta(seconds=delay_s)
    scheduler.add_job(func, "date", run_date=run_at, args=args or [], id=job_id, replace_existing=True,
                      coalesce=True, max_instances=1, misfire_grace_time=misfire_grace_s)


class DebouncedWorker:
    """Runs ``work`` on its own thread once per burst of :meth:`notify` calls (see :class:`Debouncer`).

    A notification that arrives while ``work`` runs is not lost: it makes one more run after the current one,
    so the last change is always looked at, and a burst of any length costs one run per ``max_delay_s`` at most.
    """

    def __init__(self, work: Callable[[], None], quiet_s: float, max_delay_s: float, name: str = "debounced") -> None:
        self.work = work
        self.debouncer = Debouncer(quiet_s, max_delay_s)
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def notify(self) -> None:
        self.debouncer.notify()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop after the run in progress (if any) has finished, waiting up to ``timeout_s``."""
        self._stop.set()
        self.debouncer.wake()
        self._thread.join(timeout_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            pending = self.debouncer.seconds_until_due()
            self.debouncer.wait(60.0 if pending is None else pending)
            if not self._stop.is_set() and self.debouncer.take_if_due():
                self.runs += 1
                self.work()
