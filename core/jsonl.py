"""Bounded JSON Lines logs: append one record a line; when the file passes ``max_lines`` it is trimmed to its
newest lines (atomically, under the same lock as appends), so it never grows without bound. Readers apply the
limits of :func:`core.atomic.loads_bounded` to every line (see :func:`iter_jsonl`)."""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from core.atomic import MAX_JSON_BYTES, MAX_JSON_DEPTH, _reject_nan, atomic_write_bytes, loads_bounded
from core.locks import locked

log = logging.getLogger(__name__)


def append_jsonl(path: str | os.PathLike[str], record: dict[str, Any], max_lines: int = 10_000) -> None:
    """Append ``record`` as one line; past ``max_lines`` lines keep the newest three quarters of ``max_lines``.

    Trimming below the bound rather than to exactly ``max_lines`` keeps the rewrite rare.
    """
    _reject_nan(record)
    line = json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n"
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with locked(p):
        with open(p, "a+b") as fh:
            if fh.tell() > 0:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    line = "\n" + line  # a crashed writer left half a line: keep ours out of it
            fh.write(line.encode("utf-8"))
        if max_lines > 0 and p.stat().st_size > 0 and _most_lines(p) > max_lines:
            # Bytes, not text: one undecodable foreign line must not make every later append fail.
            lines = p.read_bytes().splitlines(keepends=True)
            if len(lines) > max_lines:
                keep = max(1, (max_lines * 3) // 4)
                atomic_write_bytes(p, b"".join(lines[-keep:]))


def _most_lines(path: Path, chunk: int = 1 << 20) -> int:
    """An upper bound of ``len(path.read_bytes().splitlines())``, read in chunks: an append holds one chunk,
    not the whole log, until the log is due for a trim."""
    breaks = 0
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            breaks += block.count(b"\n") + block.count(b"\r")  # "\r\n" counts twice: still a bound
    return breaks + 1


def read_jsonl(path: str | os.PathLike[str], limit: int | None = None) -> list[dict[str, Any]]:
    """Records of a JSON Lines file, oldest first (the newest ``limit`` if given); bad lines are skipped."""
    if limit:
        return list(deque(iter_jsonl(path), maxlen=limit))  # only the newest ``limit`` are ever held
    return list(iter_jsonl(path))


def iter_jsonl(path: str | os.PathLike[str], max_line_bytes: int = MAX_JSON_BYTES,
               max_depth: int = MAX_JSON_DEPTH) -> Iterator[dict[str, Any]]:
    """The JSON object of each line, oldest first, with the limits of :func:`core.atomic.loads_bounded`.

    A line that is not such an object (torn, not UTF-8, NaN, a 400-digit integer, nested deeper than
    ``max_depth``, longer than ``max_line_bytes``) is skipped; the skips are logged once per read, with a count
    and the first reason, so a hostile or damaged log never raises into a daemon.
    """
    p = Path(path)
    skipped: list[str] = []
    try:
        fh = open(p, "rb")
    except FileNotFoundError:
        return
    with fh:
        number = 0
        while True:
            raw = fh.readline(max_line_bytes + 1)
            if not raw:
                break
            number += 1
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                _skip_rest_of_line(fh)  # never holds more than the limit of one line in memory
                skipped.append(f"line {number}: longer than {max_line_bytes} bytes")
                continue
            record = _parse_line(raw, max_depth)
            if isinstance(record, str):
                if record:
                    skipped.append(f"line {number}: {record}")
                continue
            yield record
    if skipped:
        log.warning("%s: skipped %d bad line(s) (%s); the other records are used", p.name, len(skipped), skipped[0])


def _parse_line(raw: bytes, max_depth: int) -> dict[str, Any] | str:
    """The line's object, or why not ("" for a blank line, which is no error)."""
    text = raw.strip()
    if not text:
        return ""
    try:
        rec = loads_bounded(text.decode("utf-8"), max_depth)
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text ({exc.reason} at byte {exc.start})"
    except ValueError as exc:  # torn line, NaN/Infinity, overflow, big integer, too deep
        return str(exc)
    return rec if isinstance(rec, dict) else f"expected a JSON object, got {type(rec).__name__}"


def _skip_rest_of_line(fh: BinaryIO, chunk: int = 1 << 20) -> None:
    while True:
        part = fh.readline(chunk)
        if not part or part.endswith(b"\n"):
            return
