"""Advisory locks on ``<path>.lock``: where the lock file lives, that a second holder (thread or process) waits
while the first holds it, shared versus exclusive, and release on exception."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from core import locks as lock_module
from core.config import REPO_ROOT
from core.locks import AlreadyLocked, locked, single_instance

WAIT = 10.0  # upper bound for anything that should happen promptly
HELD = 0.4  # how long a holder keeps the lock while the other side must wait

# A child process that probes the lock file without blocking: prints "free" or "busy".
PROBE = textwrap.dedent("""
    import fcntl, sys
    with open(sys.argv[1], "a+") as fh:
        flag = fcntl.LOCK_SH if sys.argv[2] == "shared" else fcntl.LOCK_EX
        try:
            fcntl.flock(fh.fileno(), flag | fcntl.LOCK_NB)
        except BlockingIOError:
            print("busy")
        else:
            print("free")
""")

# A child process that takes the lock with core.locks, says so, and holds it until its stdin closes.
HOLDER = textwrap.dedent("""
    import sys, time
    from core.locks import locked
    with locked(sys.argv[1]):
        print("held", flush=True)
        sys.stdin.read()
        print(f"releasing {time.time()!r}", flush=True)
""")


def probe(lock_file: Path, mode: str = "exclusive") -> str:
    done = subprocess.run([sys.executable, "-c", PROBE, str(lock_file), mode], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_lock_file_is_a_sibling_named_path_dot_lock(tmp_path: Path) -> None:
    data = tmp_path / "state" / "deep" / "pnl_history.csv"  # folders that do not exist yet
    with locked(data):
        assert (tmp_path / "state" / "deep" / "pnl_history.csv.lock").is_file()
        assert not data.exists()  # the data file itself is neither created nor touched
    assert sorted(p.name for p in data.parent.iterdir()) == ["pnl_history.csv.lock"]


def test_the_lock_accepts_a_string_path(tmp_path: Path) -> None:
    with locked(str(tmp_path / "x.jsonl")):
        assert probe(tmp_path / "x.jsonl.lock") == "busy"
    assert probe(tmp_path / "x.jsonl.lock") == "free"


def test_the_data_file_stays_readable_and_replaceable_while_locked(tmp_path: Path) -> None:
    data = tmp_path / "history.csv"
    data.write_text("a\n")
    with locked(data):
        assert data.read_text() == "a\n"
        replacement = tmp_path / "history.csv.tmp"
        replacement.write_text("b\n")
        replacement.replace(data)
        assert probe(tmp_path / "history.csv.lock") == "busy"  # the lock is on the sibling, not the data
    assert data.read_text() == "b\n"


def test_another_process_sees_the_exclusive_lock_until_release(tmp_path: Path) -> None:
    lock_file = tmp_path / "f.csv.lock"
    with locked(tmp_path / "f.csv"):
        assert probe(lock_file, "exclusive") == "busy"
        assert probe(lock_file, "shared") == "busy"
    assert probe(lock_file, "exclusive") == "free"


def test_shared_locks_coexist_and_exclude_writers(tmp_path: Path) -> None:
    lock_file = tmp_path / "f.csv.lock"
    with locked(tmp_path / "f.csv", exclusive=False):
        assert probe(lock_file, "shared") == "free"
        assert probe(lock_file, "exclusive") == "busy"
        with locked(tmp_path / "f.csv", exclusive=False):  # a second reader in this process does not wait
            pass
    assert probe(lock_file, "exclusive") == "free"


def test_a_second_thread_waits_for_the_first(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    holding, release = threading.Event(), threading.Event()
    acquired = threading.Event()
    times: dict[str, float] = {}

    def first() -> None:
        with locked(path):
            holding.set()
            release.wait(WAIT)
            times["released"] = time.monotonic()

    def second() -> None:
        holding.wait(WAIT)
        with locked(path):
            times["acquired"] = time.monotonic()
            acquired.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    assert holding.wait(WAIT)
    assert not acquired.wait(HELD), "the second thread got the lock while the first held it"
    release.set()
    assert acquired.wait(WAIT)
    for thread in threads:
        thread.join(WAIT)
    assert times["acquired"] >= times["released"]


def test_a_second_process_waits_for_the_first(tmp_path: Path) -> None:
    path = tmp_path / "pnl_history.csv"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], cwd=REPO_ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "held"
        acquired = threading.Event()
        times: dict[str, float] = {}

        def take() -> None:
            with locked(path):
                times["acquired"] = time.time()
                acquired.set()

        taker = threading.Thread(target=take)
        taker.start()
        assert not acquired.wait(HELD), "this process got the lock while another process held it"
        holder.stdin.close()  # let the holder release
        assert acquired.wait(WAIT)
        taker.join(WAIT)
        out = holder.stdout.read()
        assert holder.wait(WAIT) == 0
        released = float(out.split()[-1])
        assert times["acquired"] >= released
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_an_exception_releases_the_lock_and_propagates(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    with pytest.raises(RuntimeError, match="boom"):
        with locked(path):
            assert probe(tmp_path / "f.csv.lock") == "busy"
            raise RuntimeError("boom")
    assert probe(tmp_path / "f.csv.lock") == "free"
    done = threading.Event()

    def take() -> None:
        with locked(path):
            done.set()

    thread = threading.Thread(target=take)
    thread.start()
    assert done.wait(WAIT), "the lock stayed held after the exception"
    thread.join(WAIT)


def test_writers_under_the_lock_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    inside = 0
    overlaps = 0
    guard = threading.Lock()

    def writer(tag: str) -> None:
        nonlocal inside, overlaps
        for _ in range(20):
            with locked(path):
                with guard:
                    inside += 1
                    overlaps += inside > 1
                with open(path, "a") as fh:
                    fh.write(f"{tag}-start\n")
                    fh.flush()
                    time.sleep(0.001)
                    fh.write(f"{tag}-end\n")
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=writer, args=(t,)) for t in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT * 3)
    assert overlaps == 0
    lines = path.read_text().splitlines()
    assert len(lines) == 4 * 20 * 2
    for start, end in zip(lines[::2], lines[1::2], strict=True):
        assert start.endswith("-start") and end == start.replace("-start", "-end")


# ------------------------------------------------------------------------------ read-only folders

def refuse_writes_in(monkeypatch: pytest.MonkeyPatch, *folders: Path) -> None:
    """Make opening a file for writing under ``folders`` fail as a read-only folder does (the tests run as
    root, which chmod does not stop); reading stays possible."""
    real_open = open

    def fake_open(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
        if mode != "r" and any(Path(str(file)).is_relative_to(f) for f in folders):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, mode, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(lock_module, "open", fake_open, raising=False)


def test_an_existing_lock_file_in_a_read_only_folder_still_excludes(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "pnl_history.csv"
    (tmp_path / "pnl_history.csv.lock").write_text("")
    refuse_writes_in(monkeypatch, tmp_path)
    with locked(path):
        assert probe(tmp_path / "pnl_history.csv.lock") == "busy"  # flock on a read-only descriptor
    assert probe(tmp_path / "pnl_history.csv.lock") == "free"


def test_single_instance_falls_back_when_the_lock_cannot_be_created(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    state, runtime = tmp_path / "state", tmp_path / "runtime" / "locks"
    state.mkdir()
    refuse_writes_in(monkeypatch, state)
    with single_instance(state / "x.json.lock", runtime / "x.json.lock") as held:
        assert held == runtime / "x.json.lock" and not (state / "x.json.lock").exists()
        assert probe(runtime / "x.json.lock") == "busy"
        with pytest.raises(AlreadyLocked):
            with single_instance(state / "x.json.lock", runtime / "x.json.lock"):
                pass
    assert probe(runtime / "x.json.lock") == "free"


def test_single_instance_runs_unguarded_when_no_lock_can_be_created(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    refuse_writes_in(monkeypatch, tmp_path)
    with single_instance(tmp_path / "state" / "x.lock", tmp_path / "runtime" / "x.lock") as held:
        assert held is None
    assert "running without it" in caplog.text


def test_a_fallback_holder_and_a_later_primary_holder_exclude_each_other(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    primary, fallback = tmp_path / "state" / "x.lock", tmp_path / "runtime" / "x.lock"
    primary.parent.mkdir()
    with monkeypatch.context() as patch:
        refuse_writes_in(patch, primary.parent)
        first = single_instance(primary, fallback)
        assert first.__enter__() == fallback
    try:
        # The state folder is writable again: the primary can be created, but the first holder still runs.
        with pytest.raises(AlreadyLocked):
            with single_instance(primary, fallback):
                pass
    finally:
        first.__exit__(None, None, None)
    with single_instance(primary, fallback) as held:
        assert held == primary and probe(fallback) == "busy"  # holds the leftover fallback too


def test_a_reader_reads_unlocked_when_no_lock_file_can_be_created(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "pnl_history.csv"
    data.write_text("closed_at\n")
    refuse_writes_in(monkeypatch, tmp_path)
    with locked(data, exclusive=False):
        assert data.read_text() == "closed_at\n"
    assert not (tmp_path / "pnl_history.csv.lock").exists()
    with pytest.raises(PermissionError):  # a writer must not append unguarded: its error handling reports it
        with locked(data):
            pass


def test_a_reader_still_waits_for_a_writer_when_the_lock_file_exists(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "pnl_history.csv"
    with locked(data):  # creates the lock file while the folder is writable
        pass
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(data)], cwd=REPO_ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "held"
    refuse_writes_in(monkeypatch, tmp_path)
    done = threading.Event()

    def read() -> None:
        with locked(data, exclusive=False):
            done.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert not done.wait(HELD)  # the existing lock file is opened read-only and still excludes
    holder.stdin.close()
    assert done.wait(WAIT)
    reader.join(WAIT)
    holder.wait(WAIT)
