"""The Q-learning daemon: learn and publish on every change of the trade history and on a timer.

``--loop`` watches the history's folder (created, modified, and moved-into-place events of the history file;
debounced by ``qlearning.debounce_s``), also learns and publishes every ``qlearning.recheck_interval_s``,
refreshes its heartbeat after each pass, and exits 0 on SIGTERM after the current pass. Agent files are
locked (``<file>.lock``) while a pass or a tuning writes them. After a pass it also makes the scheduled Q-table
backup when ``qlearning.backup_cron`` says one is due (:mod:`ai.tabular.backups`), so a backup is at most one
recheck interval late.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from ai.tabular.backups import backup_if_due
from ai.tabular.learner import run_pass, summary_line
from ai.tabular.snapshot import held_history
from ai.tabular.state import CandleLoader
from ai.tabular.store import HeldAgents
from core.atomic import utc_now_iso
from core.config import Config
from core.contracts.pnl_history import HISTORY_NAME, HistoryTail, history_path
from core.daemon import DaemonContext, release_free_memory
from core.errors import FatalError
from core.watch import MAX_DELAY_FACTOR, Debouncer, make_observer
from market.sources import load_candles

log = logging.getLogger(__name__)

DAEMON_NAME = "qlearning"
"""The daemon's name: its heartbeat, pid and log files are named after it."""
WATCHED_EVENTS = frozenset({"created", "modified", "moved"})


class HistoryFileHandler(FileSystemEventHandler):
    """Calls ``notify`` for created, modified and moved-into-place events of the history file."""

    def __init__(self, name: str, notify: Callable[[], None]) -> None:
        super().__init__()
        self.name = name
        self.notify = notify

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in WATCHED_EVENTS:
            return
        paths = (event.src_path, getattr(event, "dest_path", "") or "")
        if any(os.path.basename(os.fsdecode(p)) == self.name for p in paths if p):
            self.notify()


def loop(cfg: Config, ctx: DaemonContext, loader: CandleLoader = load_candles) -> None:
    """Learn and publish now, then on every debounced history change and every recheck interval, until stopped."""

    q = cfg.qlearning
    debouncer = Debouncer(q.debounce_s, q.debounce_s * MAX_DELAY_FACTOR)
    folder = history_path(cfg).parent
    folder.mkdir(parents=True, exist_ok=True)
    observer = make_observer(q.polling, q.poll_interval_s)
    observer.schedule(HistoryFileHandler(HISTORY_NAME, debouncer.notify), str(folder), recursive=False)
    observer.start()
    def relay_stop() -> None:
        # SIGTERM only sets ctx.stop; this relays it to the debouncer's wait so shutdown is immediate.
        ctx.stop.wait()
        debouncer.wake()

    threading.Thread(target=relay_stop, name="stop-relay", daemon=True).start()
    log.info("watching %s (%s)", folder, "polling" if q.polling else "OS events")
    started = datetime.now(timezone.utc)
    history = held_history(cfg)  # each pass parses only the rows appended since the last one
    held = HeldAgents()  # and reads a Q-table file again only when another writer replaced it
    try:
        _pass_and_beat(cfg, ctx, loader, "start", history, held)
        scheduled_backup(cfg, ctx, started)
        release_free_memory()  # a pass's peak (tables, frames) is not kept as resident memory between passes
        next_check = time.monotonic() + q.recheck_interval_s
        while not ctx.stop.is_set():
            pending = debouncer.seconds_until_due()
            debouncer.wait(min(math.inf if pending is None else pending, max(0.0, next_check - time.monotonic())))
            if ctx.stop.is_set():
                break
            if debouncer.take_if_due():
                _pass_and_beat(cfg, ctx, loader, "change", history, held)
            elif time.monotonic() >= next_check:
                _pass_and_beat(cfg, ctx, loader, "timer", history, held)
            else:
                continue
            scheduled_backup(cfg, ctx, started)
            release_free_memory()
            next_check = time.monotonic() + q.recheck_interval_s
    finally:
        observer.stop()
        observer.join(timeout=5)


WRITES = "Q-tables and policy"
"""What the daemon's write errors are reported as (``state/qlearning/*.json``, the policy in ``runtime/``)."""


def _pass_and_beat(cfg: Config, ctx: DaemonContext, loader: CandleLoader, trigger: str,
                   history: HistoryTail | None = None, held: HeldAgents | None = None) -> None:
    if not ctx.retry_due(WRITES):
        ctx.beat()  # backing off after a failed write (a full disk): the heartbeat keeps the reason
        return
    try:
        result = run_pass(cfg, loader, history, held)
    except OSError as exc:
        # A read-only folder or a full disk: the files stay as they were; logged once, retried with backoff.
        ctx.write_failed(WRITES, exc)
        ctx.beat(last_pass_at=utc_now_iso())
        return
    except (FatalError, ValueError) as exc:
        # A bad history or agent file: keep the files as they are and try again next time.
        log.error("pass on %s failed: %s", trigger, exc)
        ctx.beat(state="error", error=str(exc), last_pass_at=utc_now_iso())
        return
    ctx.write_ok(WRITES)
    if result.report.new_trades:
        log.info("%s", summary_line(result))
    ctx.beat(state="running", last_pass_at=utc_now_iso(), trigger=trigger,
             updates={n: a.updates for n, a in result.agents.items()},
             trades_learned={n: a.progress.trades_learned for n, a in result.agents.items()},
             sizing_multiplier=result.policy["sizing_multiplier"])


def scheduled_backup(cfg: Config, ctx: DaemonContext, started: datetime) -> None:
    """The scheduled backup when due; a failure (full disk) is logged and retried after the next pass."""
    try:
        made = backup_if_due(cfg, started)
    except OSError as exc:
        ctx.write_failed("Q-table backup", exc)
        ctx.beat()
        return
    except FatalError as exc:
        log.error("scheduled Q-table backup failed: %s", exc)
        ctx.beat(state="error", error=f"backup: {exc}")
        return
    ctx.write_ok("Q-table backup")
    if made is not None:
        ctx.beat(last_backup=made.name, last_backup_at=utc_now_iso())
