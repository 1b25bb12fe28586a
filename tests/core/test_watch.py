"""core.watch: bounded debouncing keeps reacting while events never stop."""

from __future__ import annotations

import threading
import time

from apscheduler.schedulers.background import BackgroundScheduler

from core.watch import schedule_once_soon


def test_steady_event_stream_still_runs_the_job() -> None:
    runs: list[float] = []
    done = threading.Event()
    scheduler = BackgroundScheduler()
    scheduler.start()
    try:
        start = time.monotonic()
        while time.monotonic() - start < 1.5:  # an event every 20 ms, like a replay appending trades
            schedule_once_soon(scheduler, lambda: runs.append(time.monotonic()), "job", 0.2, 60)
            time.sleep(0.02)
        during = len(runs)
        schedule_once_soon(scheduler, done.set, "final", 0.2, 60)
        assert done.wait(5)
    finally:
        scheduler.shutdown(wait=True)
    # A trailing debounce that every event pushed back would not have run once during the stream.
    assert during >= 3
    assert all(b - a >= 0.15 for a, b in zip(runs, runs[1:], strict=False))


def test_events_before_the_job_runs_join_it() -> None:
    calls = []
    scheduler = BackgroundScheduler()
    scheduler.start()
    try:
        for _ in range(10):
            schedule_once_soon(scheduler, lambda: calls.append(1), "job", 0.3, 60)
        time.sleep(0.8)
    finally:
        scheduler.shutdown(wait=True)
    assert calls == [1]
