"""Bounded JSON Lines logs: append one record a line; when the file passes ``max_lines`` it is trimmed to its
newest lines (atomically, under the same lock as appends), so it never grows without bound."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.atomic import _finite_float, _no_constants, _reject_nan, atomic_write_bytes
from core.locks import locked


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
        if max_lines > 0 and p.stat().st_size > 0:
            # Bytes, not text: one undecodable foreign line must not make every later append fail.
            lines = p.read_bytes().splitlines(keepends=True)
            if len(lines) > max_lines:
                keep = max(1, (max_lines * 3) // 4)
                atomic_write_bytes(p, b"".join(lines[-keep:]))


def read_jsonl(path: str | os.PathLike[str], limit: int | None = None) -> list[dict[str, Any]]:
    """Records of a JSON Lines file, oldest first (the newest ``limit`` if given); bad lines are skipped."""
    records = list(iter_jsonl(path))
    return records[-limit:] if limit else records


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    p = Path(path)
    if not p.exists():
        return
    with open(p, encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            raw = raw.strip()
            if not raw:
                continue
            try:
                rec = json.loads(raw, parse_constant=_no_constants, parse_float=_finite_float)
            except ValueError:  # JSONDecodeError, or NaN/Infinity, which writers refuse
                continue
            if isinstance(rec, dict):
                yield rec
