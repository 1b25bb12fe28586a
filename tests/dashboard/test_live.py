"""Live updates: a change of a file the page shows moves the counter (and the event stream) within the refresh
time; logs, locks and the atomic writer's temporary files do not."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.atomic import publish_json
from core.config import Config
from dashboard.live import ChangeFeed, shown


@pytest.mark.parametrize(("path", "is_shown"), [
    ("/h/state/pnl_history.csv", True), ("/h/runtime/heartbeats/paper_trader.json", True),
    ("/h/runtime/logs/paper_trader.log", False), ("/h/state/pnl_history.csv.lock", False),
    ("/h/runtime/.allocations_override.json.ab12cd34.tmp", False), ("/h/runtime/pids/x.pid", False),
])
def test_which_changes_count(path: str, is_shown: bool) -> None:
    assert shown(path) is is_shown


def wait_for(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_a_published_file_moves_the_counter_and_a_log_does_not(cfg: Config) -> None:
    feed = ChangeFeed(refresh_s=0.5)
    feed.start(cfg)
    try:
        (cfg.runtime_dir / "logs").mkdir(parents=True, exist_ok=True)
        (cfg.runtime_dir / "logs" / "paper_trader.log").write_text("a line\n")
        time.sleep(1.0)
        assert feed.version == 0
        publish_json(cfg.runtime_dir / "allocations_override.json", "test", {"weights": {}})
        assert wait_for(lambda: feed.version >= 1, 5.0)
        with open(cfg.state_dir / "pnl_history.csv", "a") as fh:
            fh.write("closed_at\n")
        assert wait_for(lambda: feed.version >= 2, 5.0)
    finally:
        feed.close()


def test_the_event_stream_sends_the_counter() -> None:
    feed = ChangeFeed(refresh_s=0.2)

    async def collect() -> list[str]:
        got: list[str] = []

        async def never() -> bool:
            return False

        async for event in feed.events(never):
            got.append(event)
            if len(got) == 1:
                feed.bump()
            else:
                feed.closed.set()
        return got

    events = asyncio.run(asyncio.wait_for(collect(), 10))
    assert events[0].startswith("retry: 200\nevent: change\ndata: 0\n\n")
    assert events[1] == "event: change\ndata: 1\n\n"
