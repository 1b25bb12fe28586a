"""Atomic JSON writes (temp file in the same folder, fsync, os.replace, cleanup on failure) and tolerant reads."""

from __future__ import annotations

import json
import os
import re
import threading
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from core.atomic import (
    SCHEMA_VERSION,
    ReadResult,
    atomic_open,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    envelope,
    load_json_file,
    parse_iso,
    publish_json,
    read_json,
    utc_now_iso,
)

OLD = {"schema_version": 1, "generated_at": "2024-01-01T00:00:00Z", "producer": "old", "value": 1}


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """A file holding the old document, alone in its folder."""
    folder = tmp_path / "out"
    folder.mkdir()
    path = folder / "weights.json"
    path.write_text(json.dumps(OLD), encoding="utf-8")
    return path


def assert_untouched(path: Path) -> None:
    assert json.loads(path.read_text(encoding="utf-8")) == OLD
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name], "a temporary file was left behind"


# --- writes ------------------------------------------------------------------------------------------------------


def test_write_json_round_trips_and_leaves_only_the_target(target: Path) -> None:
    data = {"weights": {"a": 0.25, "b": 0.75}, "n": 3, "tags": ["x", "y"], "none": None}
    atomic_write_json(target, data)
    assert json.loads(target.read_text(encoding="utf-8")) == data
    assert target.read_text(encoding="utf-8").endswith("\n")
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_text_and_bytes_round_trip_and_create_parent_folders(tmp_path: Path) -> None:
    text_file = tmp_path / "a" / "b" / "note.txt"
    atomic_write_text(text_file, "héllo\n")
    assert text_file.read_text(encoding="utf-8") == "héllo\n"
    blob = bytes(range(256))
    atomic_write_bytes(tmp_path / "c" / "blob.bin", blob)
    assert (tmp_path / "c" / "blob.bin").read_bytes() == blob


def test_temp_file_lives_beside_the_target_and_is_fsynced_before_replace(
    target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def spy_fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else ""))
        real_fsync(fd)

    def spy_replace(src: str, dst: str) -> None:
        events.append(("replace", str(src)))
        assert Path(src).parent == Path(dst).parent, "os.replace across folders is not atomic"
        assert json.loads(Path(src).read_text(encoding="utf-8")) == {"new": True}  # complete before the swap
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    atomic_write_json(target, {"new": True})
    kinds = [kind for kind, _ in events]
    assert "replace" in kinds
    first_replace = kinds.index("replace")
    assert "fsync" in kinds[:first_replace], "data must be fsynced before the rename"
    tmp_name = events[first_replace][1]
    assert Path(tmp_name).parent == target.parent
    if events[0][1]:  # /proc available: the fsynced file is the temporary one
        assert events[0][1] == tmp_name
    assert json.loads(target.read_text(encoding="utf-8")) == {"new": True}


def test_unserializable_object_leaves_old_content(target: Path) -> None:
    with pytest.raises(TypeError):
        atomic_write_json(target, {"when": object()})
    assert_untouched(target)


def test_failure_mid_write_leaves_old_content_and_no_temp(target: Path) -> None:
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_open(target) as fh:
            fh.write('{"half": ')
            raise RuntimeError("disk on fire")
    assert_untouched(target)


def test_failing_replace_leaves_old_content_and_no_temp(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        atomic_write_json(target, {"new": True})
    assert_untouched(target)


def test_failing_fsync_leaves_old_content_and_no_temp(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="Input/output"):
        atomic_write_text(target, "new")
    assert_untouched(target)


def test_interrupt_during_write_is_cleaned_up_too(target: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(target, "wb") as fh:
            fh.write(b"partial")
            raise KeyboardInterrupt
    assert_untouched(target)


@pytest.mark.parametrize("bad, where", [
    ({"a": float("nan")}, "$.a"),
    ({"a": {"b": [1.0, float("inf")]}}, "$.a.b[1]"),
    ([{"x": -float("inf")}], "$[0].x"),
    ({"np": np.float64("nan")}, "$.np"),
])
def test_non_finite_numbers_are_refused_before_writing(target: Path, bad: object, where: str) -> None:
    with pytest.raises(ValueError, match=re.escape(where)):
        atomic_write_json(target, bad)
    assert_untouched(target)


def test_non_finite_number_never_creates_a_new_file(tmp_path: Path) -> None:
    folder = tmp_path / "fresh"
    folder.mkdir()
    with pytest.raises(ValueError):
        publish_json(folder / "new.json", "tester", {"sharpe": float("nan")})
    assert list(folder.iterdir()) == []


def test_readers_never_see_a_torn_file(tmp_path: Path) -> None:
    path = tmp_path / "busy.json"
    big = {"values": list(range(20_000))}
    atomic_write_json(path, {"values": []})
    stop = threading.Event()
    bad: list[str] = []

    def read_loop() -> None:
        while not stop.is_set():
            result = read_json(path)
            if not result.ok:
                bad.append(result.reason)

    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        for i in range(40):
            atomic_write_json(path, big if i % 2 else {"values": [i]})
    finally:
        stop.set()
        reader.join()
    assert bad == []


# --- envelope ------------------------------------------------------------------------------------------------------


def test_envelope_keys_come_first_and_are_correct() -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    doc = envelope("ai.allocation.inference", {"weights": {"a": 1.0}, "note": "x"})
    after = datetime.now(timezone.utc)
    assert list(doc)[:3] == ["schema_version", "generated_at", "producer"]
    assert doc["schema_version"] == SCHEMA_VERSION == 1
    assert doc["producer"] == "ai.allocation.inference"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["generated_at"])
    stamp = datetime.strptime(doc["generated_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert before <= stamp <= after
    assert doc["weights"] == {"a": 1.0} and doc["note"] == "x"


def test_envelope_schema_version_can_be_raised() -> None:
    assert envelope("p", {}, schema_version=3)["schema_version"] == 3


def test_publish_then_read_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "runtime" / "status.json"
    written = publish_json(path, "tester", {"state": "running", "count": 2})
    result = read_json(path, max_age_s=60)
    assert result.status == "ok" and result.ok
    assert result.data == written
    assert result.data["producer"] == "tester"
    assert result.reason == ""
    assert result.age_s is not None and 0 <= result.age_s < 60


def test_utc_now_iso_is_utc_with_z() -> None:
    text = utc_now_iso()
    assert text.endswith("Z")
    parsed = parse_iso(text)
    assert abs((datetime.now(timezone.utc) - parsed).total_seconds()) < 5


@pytest.mark.parametrize("text, expected", [
    ("2024-03-01T12:00:00Z", datetime(2024, 3, 1, 12, tzinfo=timezone.utc)),
    ("2024-03-01T12:00:00", datetime(2024, 3, 1, 12, tzinfo=timezone.utc)),           # naive taken as UTC
    ("2024-03-01T14:00:00+02:00", datetime(2024, 3, 1, 12, tzinfo=timezone.utc)),     # offsets converted
])
def test_parse_iso(text: str, expected: datetime) -> None:
    parsed = parse_iso(text)
    assert parsed.tzinfo is not None
    assert parsed == expected


# --- tolerant reads -------------------------------------------------------------------------------------------------


def write_raw(tmp_path: Path, content: str | bytes, name: str = "doc.json") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def assert_invalid(result: ReadResult, name: str, *fragments: str) -> None:
    assert result.status == "invalid"
    assert not result.ok
    assert result.data is None
    assert result.reason.startswith(f"{name}:"), result.reason
    for fragment in fragments:
        assert fragment in result.reason, result.reason


def test_absent_file(tmp_path: Path) -> None:
    result = read_json(tmp_path / "missing.json")
    assert (result.status, result.data) == ("absent", None)
    assert "missing.json" in result.reason and "not found" in result.reason


def test_truncated_json_is_invalid(tmp_path: Path) -> None:
    full = json.dumps(envelope("p", {"weights": {"a": 0.5, "b": 0.5}}))
    path = write_raw(tmp_path, full[: len(full) // 2])
    assert_invalid(read_json(path), "doc.json", "not valid JSON")


def test_empty_file_is_invalid(tmp_path: Path) -> None:
    assert_invalid(read_json(write_raw(tmp_path, "")), "doc.json", "not valid JSON")


@pytest.mark.parametrize("content, kind", [("[1, 2]", "list"), ('"text"', "str"), ("3", "int"), ("null", "NoneType")])
def test_non_object_is_invalid(tmp_path: Path, content: str, kind: str) -> None:
    assert_invalid(read_json(write_raw(tmp_path, content)), "doc.json", "expected a JSON object", kind)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_invalid(tmp_path: Path, literal: str) -> None:
    path = write_raw(tmp_path, f'{{"generated_at": "{utc_now_iso()}", "x": {literal}}}')
    assert_invalid(read_json(path), "doc.json", literal)


def test_non_utf8_bytes_are_invalid_not_an_exception(tmp_path: Path) -> None:
    assert_invalid(read_json(write_raw(tmp_path, b'{"a": "\xff\xfe"}')), "doc.json", "UTF-8")


def test_folder_in_place_of_file_is_invalid(tmp_path: Path) -> None:
    (tmp_path / "doc.json").mkdir()
    assert_invalid(read_json(tmp_path / "doc.json"), "doc.json", "unreadable")


def test_too_old_document_is_stale(tmp_path: Path) -> None:
    two_hours_ago = iso(datetime.now(timezone.utc) - timedelta(hours=2))
    path = write_raw(tmp_path, json.dumps({"generated_at": two_hours_ago, "weights": {}}))
    result = read_json(path, max_age_s=3600)
    assert result.status == "stale"
    assert result.data is None
    assert "doc.json" in result.reason and "3600" in result.reason
    assert result.age_s == pytest.approx(7200, abs=30)
    assert read_json(path, max_age_s=3 * 3600).ok  # the same file within a looser limit
    assert read_json(path).ok  # no limit, no staleness


def test_age_falls_back_to_mtime_without_generated_at(tmp_path: Path) -> None:
    path = write_raw(tmp_path, '{"weights": {}}')
    old = time.time() - 600
    os.utime(path, (old, old))
    result = read_json(path, max_age_s=300)
    assert result.status == "stale"
    assert result.age_s == pytest.approx(600, abs=30)


def test_timestamp_within_clock_skew_counts_as_fresh(tmp_path: Path) -> None:
    later = iso(datetime.now(timezone.utc) + timedelta(seconds=60))
    result = read_json(write_raw(tmp_path, json.dumps({"generated_at": later})), max_age_s=10)
    assert result.ok and result.age_s == 0.0


@pytest.mark.parametrize("stamp", ["2099-01-01T00:00:00Z", "HOUR"])
def test_timestamp_in_the_future_is_invalid_not_forever_fresh(tmp_path: Path, stamp: str) -> None:
    if stamp == "HOUR":
        stamp = iso(datetime.now(timezone.utc) + timedelta(hours=1))
    result = read_json(write_raw(tmp_path, json.dumps({"generated_at": stamp})), max_age_s=10)
    assert result.status == "invalid" and "generated in the future" in result.reason


@pytest.mark.parametrize(("text", "expected"), [
    ("[" * 100_000 + "]" * 100_000, "nested deeper than"),
    ('{"a": ' * 70 + "1" + "}" * 70, "nested deeper than"),
    ('{"w": ' + "9" * 400 + "}", "too large"),
    ('{"w": 1e400}', "overflows"),
    ('{"w": NaN}', "NaN is not allowed"),
])
def test_hostile_json_is_invalid_with_a_reason(tmp_path: Path, text: str, expected: str) -> None:
    result = read_json(write_raw(tmp_path, text))
    assert result.status == "invalid" and expected in result.reason


def test_oversized_json_is_refused_before_parsing(tmp_path: Path) -> None:
    path = write_raw(tmp_path, json.dumps({"pad": "x" * 200}))
    with pytest.raises(ValueError, match="larger than 100 bytes"):
        load_json_file(path, max_bytes=100)
    assert load_json_file(path)["pad"] == "x" * 200


def test_validator_message_makes_the_document_invalid(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    publish_json(path, "p", {"weights": {"a": 0.7}})

    def sums_to_one(doc: dict) -> str | None:
        total = sum(doc["weights"].values())
        return None if abs(total - 1) < 1e-9 else f"weights sum to {total}, expected 1"

    result = read_json(path, validate=sums_to_one)
    assert_invalid(result, "w.json", "weights sum to 0.7")
    publish_json(path, "p", {"weights": {"a": 0.25, "b": 0.75}})
    assert read_json(path, validate=sums_to_one).ok



def test_reading_a_small_json_file_allocates_about_its_size(tmp_path: Path) -> None:
    path = tmp_path / "small.json"
    path.write_text(json.dumps({"weights": list(range(100))}))
    tracemalloc.start()
    try:
        assert load_json_file(path)["weights"][-1] == 99
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # was MAX_JSON_BYTES (64 MiB) for every read: a read of n bytes allocates n
