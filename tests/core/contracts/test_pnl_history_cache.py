"""The history cache of one-shot readers gives exactly a full read: after appends across calls and processes,
after truncation and rewrites, with a corrupt or foreign cache file, and while another process appends."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pandas.testing import assert_frame_equal

import core.contracts.pnl_history as pnl_history
import core.contracts.pnl_history_cache as pnl_history_cache
from core.config import REPO_ROOT
from core.contracts.pnl_history import HistoryRead, append_trades, read_history
from core.contracts.pnl_history_cache import CACHE_VERSION, cache_path, read_history_cached
from tests.core.contracts.support import csv_line, trade


@pytest.fixture
def history(rl_home: Path) -> Path:
    return rl_home / "state" / "pnl_history.csv"


@pytest.fixture
def parsed_rows(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many rows were parsed since the fixture started (one count per call of the row parser)."""
    calls: list[int] = []
    original = pnl_history._parse_row

    def counting(*args: Any) -> Any:
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(pnl_history, "_parse_row", counting)
    return calls


def assert_equal_reads(cached: HistoryRead, path: Path) -> None:
    full = read_history(path)
    assert_frame_equal(cached.trades, full.trades)
    assert (cached.skipped, cached.duplicates, cached.problems) == (full.skipped, full.duplicates, full.problems)


def test_appends_parse_only_the_new_rows_and_equal_a_full_read(history: Path, parsed_rows: list[int]) -> None:
    rng = np.random.default_rng(3)
    assert read_history_cached(history).trades.empty  # no file: an empty history, no cache
    assert not cache_path(history).exists()
    i = 0
    for _ in range(15):
        batch = []
        for _ in range(int(rng.integers(1, 8))):
            j = int(rng.integers(0, i + 1)) if rng.random() < 0.15 else i  # out of order and exact duplicates
            batch.append(trade(j, equity_after=10_000.0 + j))
            i += 1
        append_trades(history, batch)
        if rng.random() < 0.3:
            with open(history, "a") as fh:
                fh.write(csv_line(trade(i, pnl_pct="nan")) + "\n")  # a malformed row
        before = len(parsed_rows)
        cached = read_history_cached(history)
        new_rows = len(parsed_rows) - before
        assert_equal_reads(cached, history)
        assert new_rows <= len(batch) + 1  # only what was appended since the previous call
    assert read_history_cached(history).duplicates > 0


def test_another_process_continues_from_the_cache(history: Path) -> None:
    append_trades(history, [trade(i) for i in range(30)])
    read_history_cached(history)
    append_trades(history, [trade(i) for i in range(30, 45)])
    code = ("import sys; from core.contracts.pnl_history_cache import read_history_cached as r; "
            "d = r(sys.argv[1]); print(len(d.trades), d.skipped)")
    done = subprocess.run([sys.executable, "-c", code, str(history)], cwd=REPO_ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, check=True)
    assert done.stdout.split() == ["45", "0"]
    assert_equal_reads(read_history_cached(history), history)


def test_truncation_and_rewrites_are_read_again(history: Path) -> None:
    append_trades(history, [trade(i) for i in range(20)])
    read_history_cached(history)
    lines = history.read_text().splitlines(keepends=True)
    with open(history, "r+") as fh:  # truncated in place
        fh.truncate(len("".join(lines[:8])))
    assert_equal_reads(read_history_cached(history), history)
    replacement = history.with_suffix(".new")  # replaced by a new file (another inode), longer than before
    replacement.write_text("".join(lines[:1] + lines[5:] + [csv_line(trade(50)) + "\n"] * 3))
    os.replace(replacement, history)
    assert_equal_reads(read_history_cached(history), history)


def test_a_middle_row_edited_in_place_is_noticed(history: Path) -> None:
    append_trades(history, [trade(i) for i in range(100)])  # far more than the leading bytes compared
    os.utime(history, ns=(10**18, 10**18))
    read_history_cached(history)
    lines = history.read_text().splitlines(keepends=True)
    lines[50] = lines[50].replace("BTC/USDT", "ETH/USDT")  # same length, same inode, same first and last rows
    with open(history, "r+") as fh:
        fh.write("".join(lines))
    cached = read_history_cached(history)
    assert_equal_reads(cached, history)
    assert (cached.trades["symbol"] == "ETH/USDT").sum() == 1


@pytest.mark.parametrize("damage", ["garbage", "truncated", "version", "pickled", "counts", "short column",
                                    "short digest"])
def test_a_corrupt_or_foreign_cache_is_ignored_and_rebuilt(history: Path, damage: str,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    append_trades(history, [trade(i) for i in range(25)])
    read_history_cached(history)
    saved = cache_path(history)
    data = saved.read_bytes()
    if damage == "garbage":
        saved.write_bytes(b"not a cache at all")
    elif damage == "truncated":
        saved.write_bytes(data[:len(data) // 2])
    else:
        with np.load(saved, allow_pickle=False) as arrays:
            fields = {k: arrays[k] for k in arrays.files}
        if damage == "version":
            fields["version"] = np.array(CACHE_VERSION + 1)
        elif damage == "pickled":
            fields["problems"] = np.array([{"a": 1}], dtype=object)  # an object array needs pickle to load
        elif damage == "short column":
            fields["col_qty"] = fields["col_qty"][:-1]
        elif damage == "short digest":
            fields["read_digest"] = fields["read_digest"][:-1]
        else:
            fields["counts"] = fields["counts"].copy()
            fields["counts"][3] += 1  # says one trade more than the arrays hold
        buf = io.BytesIO()
        np.savez(buf, allow_pickle=True, **fields)
        saved.write_bytes(buf.getvalue())
    append_trades(history, [trade(i) for i in range(25, 30)])
    with caplog.at_level(logging.INFO, logger="core.contracts.pnl_history_cache"):
        assert_equal_reads(read_history_cached(history), history)
    assert str(saved) in caplog.text  # the reason is logged
    with np.load(saved, allow_pickle=False) as rebuilt:
        assert int(rebuilt["counts"][3]) == 30


def test_a_torn_last_line_counts_as_in_a_full_read_until_completed(history: Path) -> None:
    append_trades(history, [trade(i) for i in range(10)])
    read_history_cached(history)
    line = csv_line(trade(10))
    with open(history, "a") as fh:
        fh.write(line[:25])  # a writer caught mid-append
    assert_equal_reads(read_history_cached(history), history)
    with open(history, "a") as fh:
        fh.write(line[25:] + "\n")
    cached = read_history_cached(history)
    assert_equal_reads(cached, history)
    assert len(cached.trades) == 11


def test_reads_while_another_process_appends_equal_a_full_read(history: Path) -> None:
    append_trades(history, [trade(i) for i in range(5)])
    code = ("import sys; from core.contracts.pnl_history import append_trades; "
            "from tests.core.contracts.support import trade\n"
            "for k in range(60): append_trades(sys.argv[1], [trade(5 + 3 * k + j) for j in range(3)])")
    writer = subprocess.Popen([sys.executable, "-c", code, str(history)], cwd=REPO_ROOT,
                              env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        while writer.poll() is None:
            read_history_cached(history)  # each read may meet a half-written batch
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0
    cached = read_history_cached(history)
    assert_equal_reads(cached, history)
    assert len(cached.trades) == 185


@pytest.mark.parametrize("append", [True, False], ids=["then-appended", "alone"])
def test_a_same_length_edit_is_noticed_even_with_an_append_and_the_old_time(
        history: Path, parsed_rows: list[int], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
        append: bool) -> None:
    monkeypatch.setattr(pnl_history_cache, "READ_CHUNK", 97)  # the check streams across many pieces
    append_trades(history, [trade(i) for i in range(100)])
    read_history_cached(history)
    stamp = history.stat()
    lines = history.read_text().splitlines(keepends=True)
    lines[60] = lines[60].replace("BTC/USDT", "ETH/USDT")  # same length, inode, first and last rows
    with open(history, "r+") as fh:
        fh.write("".join(lines))
    if append:
        append_trades(history, [trade(i) for i in range(100, 102)])
    os.utime(history, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # as a tool that keeps file times would
    before = len(parsed_rows)
    with caplog.at_level(logging.INFO, logger="core.contracts.pnl_history_cache"):
        cached = read_history_cached(history)
    assert len(parsed_rows) - before == len(cached.trades)  # read again from the start
    assert_equal_reads(cached, history)
    assert (cached.trades["symbol"] == "ETH/USDT").sum() == 1
    assert "their digest differs" in caplog.text
    append_trades(history, [trade(200)])
    before = len(parsed_rows)
    cached = read_history_cached(history)
    assert len(parsed_rows) - before == 1  # the rebuilt cache is trusted again
    assert_equal_reads(cached, history)


def test_an_untouched_history_plus_an_append_parses_only_the_appended_rows(
        history: Path, parsed_rows: list[int], caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pnl_history_cache, "READ_CHUNK", 97)
    append_trades(history, [trade(i) for i in range(200)])
    read_history_cached(history)
    append_trades(history, [trade(i) for i in range(200, 203)])
    before = len(parsed_rows)
    with caplog.at_level(logging.INFO, logger="core.contracts.pnl_history_cache"):
        cached = read_history_cached(history)
    assert len(parsed_rows) - before == 3
    assert_equal_reads(cached, history)
    assert caplog.text == ""  # nothing stale, nothing rebuilt
    with np.load(cache_path(history), allow_pickle=False) as saved:
        assert saved["read_digest"].tobytes() == hashlib.sha256(history.read_bytes()).digest()


def test_a_cache_of_the_previous_version_is_ignored_and_rebuilt(
        history: Path, parsed_rows: list[int], caplog: pytest.LogCaptureFixture) -> None:
    append_trades(history, [trade(i) for i in range(25)])
    read_history_cached(history)
    saved = cache_path(history)
    with np.load(saved, allow_pickle=False) as arrays:
        fields = {k: arrays[k] for k in arrays.files if k != "read_digest"}
    stat = history.stat()  # version 1 kept the size and time instead of a digest of the bytes read
    fields.update(version=np.array(1, dtype=np.int64), stamp=np.array([stat.st_size, stat.st_mtime_ns]))
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **fields)
    saved.write_bytes(buf.getvalue())
    append_trades(history, [trade(i) for i in range(25, 30)])
    before = len(parsed_rows)
    with caplog.at_level(logging.INFO, logger="core.contracts.pnl_history_cache"):
        cached = read_history_cached(history)
    assert len(parsed_rows) - before == 30
    assert_equal_reads(cached, history)
    assert f"saved by another version (1, this one is {CACHE_VERSION})" in caplog.text
    with np.load(saved, allow_pickle=False) as rebuilt:
        assert int(rebuilt["version"]) == CACHE_VERSION
        assert rebuilt["read_digest"].tobytes() == hashlib.sha256(history.read_bytes()).digest()
