"""Atomic files and tolerant readers.

Writers put the new content in a temporary file in the same folder, fsync it and ``os.replace`` it over the
target, so a reader sees the old file or the new one, never a torn one, and a crash leaves no garbage behind.
Readers never raise on a missing, unparsable or stale file: they return a :class:`ReadResult` with a reason.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
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


FileSignature = tuple[int, int, int]
"""``(inode, size, modification time in ns)``: changes whenever an atomic writer replaces the file."""


def file_signature(path: Path) -> FileSignature | None:
    """What tells a reader a file changed since it last looked (None when it cannot be read)."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


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
MAX_JSON_BYTES = 64 * 1024 * 1024
"""Largest JSON file a tolerant reader parses (the biggest this suite writes, a Q-table, is far below)."""
MAX_JSON_DEPTH = 64
"""Deepest nesting a tolerant reader accepts (the documents this suite writes nest a few levels deep)."""
MAX_INT_DIGITS = 20
"""Longest integer a tolerant reader accepts: any 64-bit count, seed or time in ms fits in 20 digits."""
CLOCK_SKEW_S = 300.0
"""How far a document's ``generated_at`` may lie ahead of this clock (another machine's clock) before the
document counts as invalid ("generated in the future")."""


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


def seconds_in_future(doc: dict[str, Any]) -> float:
    """How far the document's ``generated_at`` lies ahead of this clock (0 when it does not, or has none)."""
    stamp = doc.get("generated_at")
    if not isinstance(stamp, str):
        return 0.0
    try:
        return max(0.0, parse_iso(stamp).timestamp() - time.time())
    except (ValueError, OverflowError):
        return 0.0


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
        doc = load_json_file(p)
    except FileNotFoundError:
        return ReadResult("absent", reason=f"{p.name}: file not found")
    except OSError as exc:
        return ReadResult("invalid", reason=f"{p.name}: unreadable ({exc.strerror or exc})")
    except ValueError as exc:
        return ReadResult("invalid", reason=f"{p.name}: {exc}")
    if not isinstance(doc, dict):
        return ReadResult("invalid", reason=f"{p.name}: expected a JSON object, got {type(doc).__name__}")
    ahead = seconds_in_future(doc)
    if ahead > CLOCK_SKEW_S:
        # Clamping such an age to 0 would keep the file fresh forever; it is a wrong clock or a forged file.
        return ReadResult("invalid", reason=f"{p.name}: generated in the future (`generated_at` "
                                            f"{doc.get('generated_at')}, {ahead:.0f}s ahead of this clock); "
                                            "fix the writer's clock or delete the file")
    age = document_age_s(doc, p)
    if validate is not None:
        problem = validate(doc)
        if problem:
            return ReadResult("invalid", reason=f"{p.name}: {problem}", age_s=age)
    if max_age_s is not None and age > max_age_s:
        return ReadResult("stale", reason=f"{p.name}: {age:.0f}s old, older than the {max_age_s:.0f}s allowed",
                          age_s=age)
    return ReadResult("ok", data=doc, age_s=age)


def load_json_file(path: Path, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON file through :func:`loads_bounded`: OSError when unreadable, ValueError (the reason) when
    it is too large, not UTF-8 or not JSON this suite accepts. The size is checked before anything is read."""
    with open(path, "rb") as fh:
        # Read what the file holds (+1 to see it grow), not max_bytes: a read of n bytes allocates n at once.
        data = fh.read(min(os.fstat(fh.fileno()).st_size, max_bytes) + 1)
    if len(data) > max_bytes:
        raise ValueError(f"larger than {max_bytes} bytes; not a file this suite writes, move it aside")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return loads_bounded(text, max_depth)


def loads_bounded(text: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` for untrusted input; ValueError with the reason instead of any other exception.

    Refused: NaN/Infinity, numbers that overflow a float (``1e400``), integers longer than
    :data:`MAX_INT_DIGITS` digits, and nesting deeper than ``max_depth`` (the C parser would otherwise raise
    RecursionError on a few thousand ``[``).
    """
    try:
        doc = json.loads(text, parse_constant=_no_constants, parse_float=_finite_float, parse_int=_bounded_int)
    except RecursionError:
        raise ValueError(f"not valid JSON (nested deeper than {max_depth} levels)") from None
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise ValueError(f"not valid JSON ({exc})") from None
    if _depth(doc) > max_depth:
        raise ValueError(f"not valid JSON (nested deeper than {max_depth} levels)")
    return doc


def _depth(doc: Any) -> int:
    """Nesting depth of a parsed document, iteratively (no recursion to exhaust)."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, level)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _bounded_int(text: str) -> int:
    # A 400-digit integer parses, then overflows (OverflowError) wherever it meets a float.
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"integer of {len(text.lstrip('-'))} digits is too large")
    return int(text)


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


def _finite_float(text: str) -> float:
    # A literal like 1e400 overflows to inf without passing through parse_constant.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} overflows to {value}")
    return value


TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
"""The names :func:`atomic_open` gives its temporary files (``.<target>.<8 random chars>.tmp``)."""


def remove_stale_temp_files(folder: Path, min_age_s: float = 600.0) -> list[Path]:
    """Remove the temporary files a killed writer left in ``folder`` and below; returns those removed.

    Only regular files named like :data:`TEMP_NAME` and last modified more than ``min_age_s`` ago go: a
    writer of another process may be filling a younger one right now, and no other name is ever touched.
    Errors (a read-only folder, a file removed meanwhile) are skipped: cleaning is best effort.
    """
    removed: list[Path] = []
    cutoff = time.time() - min_age_s
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if not TEMP_NAME.match(name):
                continue
            path = Path(root) / name
            try:
                st = path.lstat()
                if stat.S_ISREG(st.st_mode) and st.st_mtime < cutoff:
                    path.unlink()
                    removed.append(path)
            except OSError:
                continue
    return removed
