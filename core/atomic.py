"""Atomic files and tolerant readers.

Writers put the new content in a temporary file in the same folder, fsync it and ``os.replace`` it over the
target, so a reader sees the old file or the new one, never a torn one, and a crash leaves no garbage behind.
Readers never raise on a missing, unparsable or stale file: they return a :class:`ReadResult` with a reason.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Literal, TypedDict

SCHEMA_VERSION = 1
_UMASK = os.umask(0)
os.umask(_UMASK)


def utc_now_iso() -> str:
    """Now as ISO-8601 UTC with a ``Z`` suffix, to the second."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """ISO-8601 (``Z`` accepted) to an aware UTC datetime; naive times are taken as UTC."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; on success fsync and replace ``path`` with it.

    On an exception the temporary file is removed and ``path`` keeps its old content.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; published files should read like any other
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(target.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (a no-op where the filesystem refuses to open folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path, "w") as fh:
        fh.write(text)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def _reject_nan(value: Any, where: str = "$") -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"non-finite number {value!r} at {where}; refusing to write it")
    if isinstance(value, dict):
        for k, v in value.items():
            _reject_nan(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _reject_nan(v, f"{where}[{i}]")


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as JSON atomically; NaN or infinity anywhere is refused (ValueError) before writing."""
    _reject_nan(data)
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")


class Envelope(TypedDict):
    """The keys every published document starts with (a document type inherits them with its payload)."""

    schema_version: int
    generated_at: str
    producer: str


def envelope(producer: str, payload: dict[str, Any], schema_version: int = SCHEMA_VERSION) -> dict[str, Any]:
    """``payload`` with the design's envelope keys first: schema_version, generated_at, producer."""
    return {"schema_version": schema_version, "generated_at": utc_now_iso(), "producer": producer, **payload}


def publish_json(path: str | os.PathLike[str], producer: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Write ``payload`` inside the envelope atomically; returns the document written."""
    doc = envelope(producer, payload)
    atomic_write_json(path, doc)
    return doc


Status = Literal["ok", "absent", "invalid", "stale"]


@dataclass(frozen=True)
class ReadResult:
    """What a tolerant read found: ``data`` is set only when ``status == "ok"``."""

    status: Status
    data: dict[str, Any] | None = None
    reason: str = ""
    age_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def document_age_s(doc: dict[str, Any], path: Path) -> float:
    """Seconds since the document's ``generated_at`` (or the file's mtime when it has none)."""
    stamp = doc.get("generated_at")
    if isinstance(stamp, str):
        try:
            return max(0.0, time.time() - parse_iso(stamp).timestamp())
        except ValueError:
            pass
    return max(0.0, time.time() - path.stat().st_mtime)


def read_json(
    path: str | os.PathLike[str],
    max_age_s: float | None = None,
    validate: Callable[[dict[str, Any]], str | None] | None = None,
) -> ReadResult:
    """Read a published JSON document without raising.

    ``validate`` returns an error message or None. A document older than ``max_age_s`` is ``stale``.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ReadResult("absent", reason=f"{p.name}: file not found")
    except OSError as exc:
        return ReadResult("invalid", reason=f"{p.name}: unreadable ({exc.strerror or exc})")
    except UnicodeDecodeError as exc:
        return ReadResult("invalid", reason=f"{p.name}: not UTF-8 text ({exc.reason} at byte {exc.start})")
    try:
        doc = json.loads(text, parse_constant=_no_constants, parse_float=_finite_float)
    except (json.JSONDecodeError, ValueError) as exc:
        return ReadResult("invalid", reason=f"{p.name}: not valid JSON ({exc})")
    if not isinstance(doc, dict):
        return ReadResult("invalid", reason=f"{p.name}: expected a JSON object, got {type(doc).__name__}")
    age = document_age_s(doc, p)
    if validate is not None:
        problem = validate(doc)
        if problem:
            return ReadResult("invalid", reason=f"{p.name}: {problem}", age_s=age)
    if max_age_s is not None and age > max_age_s:
        return ReadResult("stale", reason=f"{p.name}: {age:.0f}s old, older than the {max_age_s:.0f}s allowed",
                          age_s=age)
    return ReadResult("ok", data=doc, age_s=age)


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


def _finite_float(text: str) -> float:
    # A literal like 1e400 overflows to inf without passing through parse_constant.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} overflows to {value}")
    return value
