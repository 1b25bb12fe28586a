"""Bounded JSON Lines logs: appends, trimming to the newest lines, tolerant reads."""

from __future__ import annotations

import json
import multiprocessing
import tracemalloc
from pathlib import Path

import pytest

from core.jsonl import append_jsonl, iter_jsonl, read_jsonl


@pytest.fixture
def log_file(rl_home: Path) -> Path:
    return rl_home / "runtime" / "events.jsonl"


def line_count(path: Path) -> int:
    return path.read_bytes().count(b"\n")


def test_append_and_read_round_trip(log_file: Path) -> None:
    records = [{"i": 0, "event": "start"}, {"i": 1, "nested": {"w": [0.5, 0.5]}, "text": "naïve ✓"}]
    for rec in records:
        append_jsonl(log_file, rec)
    assert read_jsonl(log_file) == records
    lines = log_file.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == records  # one compact record per line


def test_missing_file_reads_as_empty(log_file: Path) -> None:
    assert read_jsonl(log_file) == []
    assert list(iter_jsonl(log_file)) == []


def test_limit_returns_the_newest(log_file: Path) -> None:
    for i in range(10):
        append_jsonl(log_file, {"i": i})
    assert [r["i"] for r in read_jsonl(log_file, limit=3)] == [7, 8, 9]
    assert len(read_jsonl(log_file, limit=100)) == 10


def test_file_stays_bounded_and_keeps_the_newest(log_file: Path) -> None:
    max_lines, total = 20, 100
    expected_count = 0
    for i in range(total):
        append_jsonl(log_file, {"i": i}, max_lines=max_lines)
        assert line_count(log_file) <= max_lines
        # reference model of the rule: past the bound, keep three quarters of it
        expected_count += 1
        if expected_count > max_lines:
            expected_count = max_lines * 3 // 4
    ids = [r["i"] for r in read_jsonl(log_file)]
    assert len(ids) == expected_count
    assert ids == list(range(total - expected_count, total))
    assert sorted(p.name for p in log_file.parent.iterdir()) == ["events.jsonl", "events.jsonl.lock"]


def test_zero_bound_means_unbounded(log_file: Path) -> None:
    for i in range(30):
        append_jsonl(log_file, {"i": i}, max_lines=0)
    assert line_count(log_file) == 30


def test_bound_of_one_keeps_the_last_record(log_file: Path) -> None:
    for i in range(5):
        append_jsonl(log_file, {"i": i}, max_lines=1)
    assert read_jsonl(log_file) == [{"i": 4}]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_numbers_are_refused(log_file: Path, bad: float) -> None:
    append_jsonl(log_file, {"i": 0})
    before = log_file.read_bytes()
    with pytest.raises(ValueError):
        append_jsonl(log_file, {"reward": [1.0, bad]})
    assert log_file.read_bytes() == before


def test_bad_lines_are_skipped(log_file: Path) -> None:
    log_file.parent.mkdir(parents=True)
    log_file.write_bytes(b"\n".join([
        b'{"i": 0}',
        b"not json at all",
        b'{"i": 1, "trunc',
        b"[1, 2, 3]",
        b'"a string"',
        b'{"x": NaN}',
        b'{"x": -Infinity}',
        b'{"x": 1e999}',
        b"",
        b"   ",
        b'{"bytes": "\xff\xfe"}',
        b'{"i": 2}',
    ]) + b"\n")
    assert read_jsonl(log_file) == [{"i": 0}, {"i": 2}]  # not UTF-8 is refused, as in core.atomic


def test_lines_beyond_the_bounded_json_limits_are_skipped_and_counted(
        log_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    log_file.parent.mkdir(parents=True)
    lines = [b'{"i": 0}', b'{"w": ' + b"9" * 400 + b"}", b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
             b'{"pad": "' + b"x" * 5000 + b'"}', b'{"i": 1}']
    log_file.write_bytes(b"\n".join(lines) + b"\n")
    with caplog.at_level("WARNING", logger="core.jsonl"):
        records = list(iter_jsonl(log_file, max_line_bytes=4096))
    assert records == [{"i": 0}, {"i": 1}]  # no OverflowError, RecursionError or unbounded line in memory
    message = " ".join(r.getMessage() for r in caplog.records)
    assert "skipped 3 bad line(s)" in message and "line 2: not valid JSON (integer of 400 digits is too large)" in message


def test_a_final_line_longer_than_the_limit_is_skipped(log_file: Path) -> None:
    log_file.parent.mkdir(parents=True)
    log_file.write_bytes(b'{"i": 0}\n{"pad": "' + b"x" * 10_000 + b'"}')  # no newline at the end
    assert list(iter_jsonl(log_file, max_line_bytes=100)) == [{"i": 0}]


def test_append_after_a_partial_line_is_not_lost(log_file: Path) -> None:
    log_file.parent.mkdir(parents=True)
    log_file.write_text('{"i": 0}\n{"i": 1, "half', encoding="utf-8")  # a crashed writer
    append_jsonl(log_file, {"i": 2})
    assert read_jsonl(log_file) == [{"i": 0}, {"i": 2}]


def test_trimming_survives_a_foreign_undecodable_line(log_file: Path) -> None:
    log_file.parent.mkdir(parents=True)
    log_file.write_bytes(b"\xff garbage\n")
    for i in range(12):
        append_jsonl(log_file, {"i": i}, max_lines=10)
    assert [r["i"] for r in read_jsonl(log_file)] == list(range(12 - line_count(log_file), 12))
    assert line_count(log_file) <= 10


def _append_range(path: str, writer: int, count: int) -> None:
    for i in range(count):
        append_jsonl(path, {"w": writer, "i": i}, max_lines=40)


def test_concurrent_appends_stay_bounded_and_whole(log_file: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_range, args=(str(log_file), w, 60)) for w in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    lines = log_file.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 40
    records = [json.loads(line) for line in lines]  # every kept line is whole
    for writer in range(3):
        own = [r["i"] for r in records if r["w"] == writer]
        assert own == sorted(own)  # each writer's records stay in order
    assert records[-1]["i"] == 59  # the last append of all is some writer's last record: trimming kept it


def test_an_append_to_a_long_log_does_not_hold_the_whole_log(log_file: Path) -> None:
    row = {"observation": [0.123456] * 200}
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_bytes((json.dumps(row) + "\n").encode() * 4_000)  # about 5 MB, under the bound
    size = log_file.stat().st_size
    tracemalloc.start()
    try:
        append_jsonl(log_file, {"k": 1}, max_lines=5_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < size // 3  # one read chunk (1 MiB), not the 5 MB log
    assert len(read_jsonl(log_file)) == 4_001
    log_file.write_bytes(b"{}\r{}\r\n" * 3 + log_file.read_bytes())  # other line ends count as lines too
    append_jsonl(log_file, {"k": 2}, max_lines=4_007)
    assert len(read_jsonl(log_file)) == (4_007 * 3) // 4 and read_jsonl(log_file)[-1] == {"k": 2}
