"""Telling the page that a file changed: a watcher on ``state/`` and ``runtime/`` (the suite's one debouncer
and observer choice, :mod:`core.watch`) counts changes, and ``/api/events`` streams the count as server-sent
events. The page fetches its panels again on each event, so it follows the files within about ``refresh``
seconds without a reload. Logs, locks and the atomic writer's temporary files are not changes of what is shown.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.api import BaseObserver

from core.config import Config
from core.watch import WATCHED_EVENTS, Debouncer, make_observer

log = logging.getLogger(__name__)

IGNORED_PARTS = frozenset({"logs", "locks", "pids"})
"""Folders whose changes do not change any panel."""
TICK_S = 15.0
"""Even without a change the page hears from the stream this often (ages move on; a proxy keeps it open)."""


def shown(path: str) -> bool:
    """True when a change of ``path`` can change a panel."""
    p = Path(path)
    name = p.name
    if name.endswith((".tmp", ".lock")) or name.startswith("."):
        return False
    return not IGNORED_PARTS.intersection(p.parts)


class _Handler(FileSystemEventHandler):
    def __init__(self, notify: Callable[[], None]) -> None:
        super().__init__()
        self.notify = notify

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in WATCHED_EVENTS:
            return
        paths = (event.src_path, getattr(event, "dest_path", "") or "")
        if any(shown(os.fsdecode(p)) for p in paths if p):
            self.notify()


class ChangeFeed:
    """A change counter fed by file events (debounced to at most one bump per ``refresh`` seconds)."""

    def __init__(self, refresh_s: float) -> None:
        self.refresh_s = refresh_s
        self.version = 0
        self.closed = threading.Event()
        self._debouncer = Debouncer(quiet_s=min(0.25, refresh_s / 4), max_delay_s=refresh_s)
        self._observer: BaseObserver | None = None
        self._thread: threading.Thread | None = None

    def bump(self) -> None:
        self.version += 1

    def start(self, cfg: Config, polling: bool = False) -> None:
        """Watch the home's ``state/`` and ``runtime/`` (created when missing, as every daemon does)."""
        observer = make_observer(polling, self.refresh_s)
        handler = _Handler(self._debouncer.notify)
        for folder in (cfg.state_dir, cfg.runtime_dir):
            folder.mkdir(parents=True, exist_ok=True)
            observer.schedule(handler, str(folder), recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer
        self._thread = threading.Thread(target=self._run, name="dashboard-changes", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self.closed.is_set():
            remaining = self._debouncer.seconds_until_due()
            self._debouncer.wait(self.refresh_s if remaining is None else max(remaining, 0.01))
            if self._debouncer.take_if_due():
                self.bump()

    def close(self) -> None:
        self.closed.set()
        self._debouncer.wake()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=5)

    async def events(self, disconnected: Callable[[], Awaitable[bool]]) -> AsyncIterator[str]:
        """Server-sent events: ``change`` with the counter when it moves, ``tick`` every :data:`TICK_S`."""
        seen = self.version
        yield f"retry: {int(self.refresh_s * 1000)}\nevent: change\ndata: {seen}\n\n"
        idle = 0.0
        step = min(0.5, self.refresh_s / 2)
        while not self.closed.is_set():
            await asyncio.sleep(step)
            if await disconnected():
                return
            idle += step
            if self.version != seen:
                seen, idle = self.version, 0.0
                yield f"event: change\ndata: {seen}\n\n"
            elif idle >= TICK_S:
                idle = 0.0
                yield f"event: tick\ndata: {seen}\n\n"
