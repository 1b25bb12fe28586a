"""The ``rl_trainer`` daemon: retrains the strategy-weight agent on a schedule and after new trades.

It retrains on the cron schedule ``strategy_agent.retrain_cron`` (standard cron, UTC: ``0 3 * * 0`` is Sundays
at 03:00) and as soon as ``retrain_after_new_trades`` trades have closed since the last completed training (the
first training happens once ``min_trades`` trades exist). It watches the history's folder (debounced; atomic
replacements arrive as moves) and re-checks every ``check_interval_s``. SIGTERM stops a training in progress
without promoting it and exits 0. Scheduler jobs and file events only *request* work (one-line calls); the
trainings run one at a time, each in a forked child process the daemon's thread waits for (its memory goes back
to the system when it ends; a child whose daemon dies is stopped too). Each holds the lock of the crontab's ``job trainer``
(:func:`core.jobs.try_lock`): a crontab run finds the daemon training and exits at once, and the daemon skips a
training while a crontab run holds it.

No look-ahead: with the paper trader's status at hand, its clock (the close of its last candle) is "now": a
training uses only the trades closed by then, and only those count toward the triggers. In a replay the history
can hold trades of a later time (a replay started again over an older history); a model trained on them would
be refused by inference at the trader's clock (:mod:`ai.allocation.inference`).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timezone
from typing import Any

import pandas as pd
from apscheduler.schedulers.background import BackgroundScheduler

from ai.allocation.env import load_trades
from ai.allocation.features import ms_to_iso, to_ms
from ai.allocation.inference import trader_clock_ms
from ai.allocation.training import last_completed_training, settle_pending_promotions, train_once
from ai.allocation.training_data import NotEnoughDataError, count_trades
from core.config import STRATEGIES, Config
from core.contracts.pnl_history import HISTORY_NAME, HistoryTail, history_path
from core.daemon import DaemonContext, release_free_memory, run_in_child
from core.errors import ExitCode, FatalError
from core.jobs import try_lock
from core.schedule import cron_trigger
from core.watch import SourceFileHandler, make_observer, schedule_once_soon

log = logging.getLogger(__name__)

DAEMON_NAME = "rl_trainer"
HEARTBEAT_S = 30.0
"""Longest time between two heartbeats of the daemon, training included."""
CRON_KEY = "strategy_agent.retrain_cron"
JOB_NAME = "trainer"
"""The scheduled job (:mod:`core.jobs`) that runs this daemon's training from a crontab; its lock is held by
every training of the daemon too."""
COUNT_SPAN = pd.Timedelta(days=1)
"""Trades the daemon keeps in memory: those closed within this span of the newest; older ones only as counts."""
MAX_COUNT_SPAN = pd.Timedelta(days=30)
"""The most the kept span grows to follow a trader's clock that lags its newest trades (a fast replay writes its
status every few seconds while its trades run ahead)."""


def trades_by(cfg: Config, clock_ms: int | None, history: HistoryTail | None = None) -> int:
    """Valid trades of the 8 strategies closed at or before ``clock_ms`` (all of them when None).

    With ``history`` (the daemon's incremental reader) only what was appended since its last poll is read; the
    trades it dropped from memory (``keep_span``) closed before the kept ones and count by their number, and a
    clock before them (a replay started again over a later history) falls back to a full read.
    """
    if history is not None:
        history.poll()
        if not _kept_covers(history, clock_ms) and _widened_for(history, clock_ms):
            history.poll()  # read again from the start, keeping the wider span
        if _kept_covers(history, clock_ms):
            before = sum(history.dropped_by_strategy[name] for name in STRATEGIES)
            trades = history.trades[history.trades["strategy"].isin(STRATEGIES)]
            if clock_ms is None:
                return before + len(trades)
            return before + int((to_ms(pd.DatetimeIndex(trades["closed_at"])) <= clock_ms).sum())
    if clock_ms is None:
        return count_trades(cfg)
    trades = load_trades(cfg)
    return int((to_ms(pd.DatetimeIndex(trades["closed_at"])) <= clock_ms).sum())


def _kept_covers(history: HistoryTail, clock_ms: int | None) -> bool:
    dropped = history.dropped_before
    return clock_ms is None or dropped is None or clock_ms >= to_ms(pd.DatetimeIndex([dropped]))[0]


def _widened_for(history: HistoryTail, clock_ms: int | None) -> bool:
    """Keep twice the clock's lag behind the newest trade from now on (up to :data:`MAX_COUNT_SPAN`); False
    when it lags further (a replay started again over a later history: those counts read the whole file)."""
    if clock_ms is None or history.trades.empty or history.keep_span is None:
        return False
    lag = history.trades["closed_at"].iloc[-1] - pd.Timestamp(clock_ms, unit="ms", tz="UTC")
    wanted = max(history.keep_span, COUNT_SPAN + 2 * lag)
    if wanted > MAX_COUNT_SPAN:
        return False
    log.info("the trader's clock lags the newest trade by %s: keeping %s of trades in memory", lag, wanted)
    history.widen(wanted)
    return True


def trades_since_last_training(cfg: Config, history: HistoryTail | None = None) -> tuple[int, int | None]:
    """(trades now, trades at the last completed training or None when there was none); "now" is the trader's
    clock when its status is at hand."""
    now = trades_by(cfg, trader_clock_ms(cfg), history)
    last = last_completed_training(cfg)
    seen = last.get("trades") if last else None
    return now, seen if isinstance(seen, int) and not isinstance(seen, bool) else None


def retrain_due(cfg: Config, history: HistoryTail | None = None) -> str | None:
    """Why training is due because of new trades, or None."""
    return cfg.strategy_agent.retrain_reason(*trades_since_last_training(cfg, history))


class TrainerDaemon:
    """Schedules trainings and runs them one at a time, each in a child process the calling thread waits for.

    Scheduler jobs and file events only *request* a training or a check (one-line calls), so a training never
    overlaps another and SIGTERM can stop it between two PPO updates.
    """

    def __init__(self, cfg: Config, ctx: DaemonContext) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.acfg = cfg.strategy_agent
        self.wake = threading.Event()
        self._lock = threading.Lock()
        self._requests: list[str] = []
        self._check_requested = True  # look at the history once at start
        self.scheduler = BackgroundScheduler(timezone=timezone.utc)
        self.observer = make_observer(self.acfg.polling, self.acfg.poll_interval_s)
        self._last_beat = 0.0
        self.trainings = 0
        self.history = HistoryTail(history_path(cfg), keep_span=COUNT_SPAN)
        """New trades are counted from what was appended since the last check, not from a full read; only the
        latest day of trades (and their duplicate digests) stays in memory."""

    # -- triggers (called from scheduler and watchdog threads) ------------------------------------------

    def request_training(self, reason: str) -> None:
        with self._lock:
            self._requests.append(reason)
        self.wake.set()

    def request_check(self) -> None:
        with self._lock:
            self._check_requested = True
        self.wake.set()

    def on_history_event(self) -> None:
        schedule_once_soon(self.scheduler, self.request_check, "history_changed", self.acfg.debounce_s,
                           self.acfg.misfire_grace_s)

    # -- main loop --------------------------------------------------------------------------------------

    def start(self) -> None:
        grace = self.acfg.misfire_grace_s
        weekly = cron_trigger(self.acfg.retrain_cron, CRON_KEY)
        self.scheduler.add_job(self.request_training, weekly, args=["scheduled retraining"], id="scheduled_retrain",
                               coalesce=True, max_instances=1, misfire_grace_time=grace)
        self.scheduler.add_job(self.request_check, "interval", seconds=self.acfg.check_interval_s,
                               id="new_trades_check", coalesce=True, max_instances=1, misfire_grace_time=grace)
        self.scheduler.start()
        folder = history_path(self.cfg).parent
        folder.mkdir(parents=True, exist_ok=True)
        self.observer.schedule(SourceFileHandler(frozenset({HISTORY_NAME}), self.on_history_event), str(folder),
                               recursive=False)
        self.observer.start()
        # SIGTERM only sets ctx.stop; relaying it to `wake` ends the wait at once.
        threading.Thread(target=self._relay_stop, name="stop-relay", daemon=True).start()
        log.info("watching %s (%s); retraining on cron %r (UTC) or after %d new trades", folder,
                 "polling" if self.acfg.polling else "OS events", self.acfg.retrain_cron,
                 self.acfg.retrain_after_new_trades)

    def _relay_stop(self) -> None:
        self.ctx.stop.wait()
        self.wake.set()

    def stop(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=5)
        self.scheduler.shutdown(wait=False)

    def run(self) -> None:
        """Until SIGTERM: wait for a request, check or train, refresh the heartbeat."""
        self.start()
        try:
            settle_pending_promotions(self.cfg)  # a kill of the previous run between promotion and its record
        except OSError as exc:
            self.ctx.write_failed("training log", exc)
        self.wake.set()  # the check requested at construction runs now, not a heartbeat period later
        try:
            self.beat("idle")
            while not self.ctx.stop.is_set():
                self.wake.wait(HEARTBEAT_S)
                self.wake.clear()
                if self.ctx.stop.is_set():
                    break
                self.handle_requests()
                release_free_memory()  # a check's frames or a training's buffers are not kept resident
                self.beat("idle")
        finally:
            self.stop()

    def handle_requests(self) -> None:
        with self._lock:
            requests, check = self._requests, self._check_requested
            self._requests, self._check_requested = [], False
        reason = "; ".join(dict.fromkeys(requests))
        if check and not reason:
            try:
                reason = retrain_due(self.cfg, self.history) or ""
            except FatalError as exc:
                log.error("cannot read the history: %s", exc)
                return
        if reason:
            self.train(reason)

    def train(self, reason: str) -> None:
        try:
            handle = try_lock(self.cfg, JOB_NAME)
        except OSError as exc:
            # No lock can be created (read-only runtime/): neither can a crontab run's, so none can overlap.
            self.ctx.write_failed("training lock", exc)
            self._train(reason)
            return
        if handle is None:
            log.info("not training (%s): a `job %s` run from the crontab is training now; it uses the same "
                     "trades", reason, JOB_NAME)
            return
        with handle:  # the crontab's `job trainer` holds the same lock: the two never train at once
            self.ctx.write_ok("training lock")
            self._train(reason)

    def _train(self, reason: str) -> None:
        """One training in a child process (:func:`core.daemon.run_in_child`): its memory goes back to the system
        when it ends, so the daemon's resident size does not creep up with every training."""
        self.beat("training", trigger=reason)
        clock = trader_clock_ms(self.cfg)
        if clock is not None:
            log.info("training on the trades closed by the trader's clock %s", ms_to_iso(clock))
        code = run_in_child(lambda: self._train_here(reason, clock), self.ctx.stop, self.beat_now)
        if code == ExitCode.OK:
            record = last_completed_training(self.cfg)
            if record is not None:
                self.trainings += 1
                self.ctx.extra.update(last_training_at=record.get("finished_at"),
                                      last_model_version=record.get("model_version"),
                                      last_promoted=record.get("promoted"), trainings=self.trainings)
        elif code != ExitCode.NOT_READY:
            # One failed training must not end the daemon; the next trigger tries again.
            self.beat("error", error=f"training failed ({reason}): exit {code}, see the log")

    def _train_here(self, reason: str, clock: int | None) -> int:
        """The training itself (in the child): an exit code, problems logged."""
        try:
            train_once(self.cfg, stop=self.ctx.stop, trigger=reason, as_of_ms=clock)
        except NotEnoughDataError as exc:
            log.info("not training (%s): %s", reason, exc)
            return ExitCode.NOT_READY
        except (FatalError, OSError, ValueError, RuntimeError) as exc:
            log.error("training failed (%s): %s", reason, exc)
            return ExitCode.FAILURE
        return ExitCode.OK

    def beat(self, state: str, **fields: Any) -> None:
        self.ctx.beat(state=state, **fields)
        self._last_beat = time.monotonic()

    def beat_now(self) -> None:
        """Refresh the heartbeat during a training, at most every :data:`HEARTBEAT_S`."""
        if time.monotonic() - self._last_beat >= HEARTBEAT_S:
            self.beat("training")
