"""core.watch: bounded debouncing keeps reacting while events never stop; the first event fixes the time."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from core.watch import DebouncedWorker, Debouncer, schedule_once_soon


class RecordingScheduler:
    """The two calls schedule_once_soon makes, with a job that stays pending until the test runs it."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.added: list[dict[str, Any]] = []

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        return self.jobs.get(job_id)

    def add_job(self, func: Any, trigger: str, **kwargs: Any) -> None:
        job = {"func": func, "trigger": trigger, **kwargs}
        self.jobs[kwargs["id"]] = job
        self.added.append(job)

    def run(self, job_id: str) -> None:
        job = self.jobs.pop(job_id)
        job["func"](*job["args"])


def test_events_while_pending_join_the_job_without_delaying_it() -> None:
    scheduler = RecordingScheduler()
    calls: list[str] = []
    before = datetime.now(timezone.utc)
    for _ in range(50):  # a steady stream: a trailing debounce would push the run back 50 times
        schedule_once_soon(scheduler, calls.append, "job", 2.0, 60, args=["x"])
    after = datetime.now(timezone.utc)
    assert len(scheduler.added) == 1
    job = scheduler.added[0]
    assert before + timedelta(seconds=2) <= job["run_date"] <= after + timedelta(seconds=2)
    assert (job["trigger"], job["coalesce"], job["max_instances"], job["misfire_grace_time"]) == ("date", True, 1, 60)
    scheduler.run("job")
    assert calls == ["x"]
    schedule_once_soon(scheduler, calls.append, "job", 2.0, 60, args=["y"])  # after the run: a new job
    assert len(scheduler.added) == 2
    scheduler.run("job")
    assert calls == ["x", "y"]


def test_other_job_ids_are_independent() -> None:
    scheduler = RecordingScheduler()
    schedule_once_soon(scheduler, print, "a", 1.0, 60)
    schedule_once_soon(scheduler, print, "b", 1.0, 60)
    assert sorted(scheduler.jobs) == ["a", "b"]


def test_debouncer_waits_for_quiet_but_not_longer_than_the_bound() -> None:
    now = [100.0]
    deb = Debouncer(quiet_s=1.0, max_delay_s=3.0, clock=lambda: now[0])
    assert deb.seconds_until_due() is None and deb.take_if_due() is False
    deb.notify()
    assert deb.seconds_until_due() == 1.0
    due_at = []
    for _ in range(13):  # an event every half second: never quiet for a whole second
        now[0] += 0.5
        deb.notify()
        if deb.take_if_due():
            due_at.append(now[0])
    assert due_at == [103.0, 106.5]  # at the bound, 3 s after the first event of each burst (100, 103.5)
    assert deb.seconds_until_due() is None  # taken: nothing pending any more
    deb.notify()
    now[0] += 0.75
    assert deb.take_if_due() is False  # 0.75 s of quiet after a lone event
    now[0] += 0.25
    assert deb.take_if_due() is True


def test_a_real_scheduler_runs_a_burst_once() -> None:
    calls: list[int] = []
    ran = threading.Event()
    scheduler = BackgroundScheduler()
    scheduler.start()
    try:
        for i in range(10):
            schedule_once_soon(scheduler, lambda i=i: (calls.append(i), ran.set()), "job", 0.05, 60)
        assert ran.wait(5)
        # Let the scheduler retire the one-off job before shutting down: shutdown empties the job store, and a
        # scheduler thread still retiring the job would then find it gone (JobLookupError in that thread).
        deadline = time.monotonic() + 5
        while scheduler.get_job("job") is not None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        scheduler.shutdown(wait=True)
    assert calls == [0]  # the first event's job ran; the nine after it joined it


def test_a_worker_runs_once_per_burst_and_again_for_events_during_a_run() -> None:
    started, release = threading.Event(), threading.Event()
    runs: list[float] = []

    def work() -> None:
        runs.append(time.monotonic())
        started.set()
        release.wait(5)

    worker = DebouncedWorker(work, quiet_s=0.02, max_delay_s=0.5)
    worker.start()
    try:
        for _ in range(20):  # one burst: twenty events within a few milliseconds
            worker.notify()
        assert started.wait(2)
        for _ in range(5):  # events while the run is busy: one more run after it, not five
            worker.notify()
        release.set()
        deadline = time.monotonic() + 2
        while len(runs) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        assert len(runs) == 2 and worker.runs == 2
    finally:
        release.set()
        worker.stop()
    assert not worker._thread.is_alive()
