"""The supervisor's restart policy (its processes are exercised end to end in tests/scripts/test_rl_system.py)."""

from __future__ import annotations

import subprocess
import time

import pytest

from core.config import Config
from core.supervisor import Backoff, alive, exit_text, read_wanted, request, rss_bytes, stop_supervising


def test_backoff_doubles_up_to_its_ceiling() -> None:
    backoff = Backoff(first_s=1.0, max_s=60.0)
    assert [backoff.delay_s(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff.delay_s(10_000) == 60  # no overflow however long the loop


def test_exit_codes_read_as_people_read_them() -> None:
    assert exit_text(2) == "2" and exit_text(-9) == "-9 (SIGKILL)" and exit_text(None) == "unknown"


def test_requests_keep_the_time_of_a_running_daemon_and_stop_forgets_them(cfg: Config) -> None:
    first = request(cfg, {"a": ("m.a", ("--loop",)), "b": ("m.b", ())}, {"a", "b"})
    again = request(cfg, {"a": ("m.a", ("--loop",))}, set())  # already running: adopted, not relaunched
    assert again == {} and read_wanted(cfg)["a"]["requested_at"] == first["a"]
    assert read_wanted(cfg)["a"]["args"] == ["--loop"]
    stop_supervising(cfg, ["a"])
    assert set(read_wanted(cfg)) == {"b"}


def test_an_exited_child_of_another_process_is_not_alive() -> None:
    # A zombie (exited, not reaped by its parent) must not keep `stop` waiting for 15 s.
    parent = subprocess.Popen(["sh", "-c", "sleep 0 & exec sleep 5"])
    try:
        child = None
        for _ in range(50):
            out = subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True).stdout.split()
            if out:
                child = int(out[0])
                break
            time.sleep(0.05)
        assert child is not None
        time.sleep(0.3)
        assert not alive(child)
        assert alive(parent.pid)
    finally:
        parent.kill()
        parent.wait()


def test_resident_memory_of_a_live_process_and_none_for_a_gone_one() -> None:
    proc = subprocess.Popen(["sleep", "5"])
    try:
        deadline = time.monotonic() + 10
        while open(f"/proc/{proc.pid}/comm").read().strip() != "sleep" and time.monotonic() < deadline:
            time.sleep(0.01)  # until the fork has become `sleep`: before exec its size is the test runner's
        status = open(f"/proc/{proc.pid}/status").read()
        expected = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) * 1024
        assert rss_bytes(proc.pid) == pytest.approx(expected, rel=0.5) and rss_bytes(proc.pid) > 0
    finally:
        proc.kill()
        proc.wait()
    assert rss_bytes(proc.pid) is None
