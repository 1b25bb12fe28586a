"""Bounded JSON Lines logs: append one record a line; when the file passes ``max_lines`` it is trimmed to the
newest ``keep_lines`` (atomically, under the same lock as appends), so it never grows without bound."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.atomic import _reject_nan, atomic_write_text
from core.pnl_history import locked


def append_jsonl(path: str | os.PathLike[str], record: dict[str, Any], max_lines: int = 10_000) -> None:
    """Append ``record`` as one line; past ``max_lines`` lines keep the newest three quarters of ``max_lines``.

    Trimming below the bound rather than to exactly ``max_lines`` keeps the rewrite rare.
    """
    _reject_nan(record)
    line = json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n"
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with locked(p):
        with open(p, "a", encoding="utf-8") as fh:
            fh.write(line)
        if max_lines > 0 and p.stat().st_size > 0:
            lines = p.read_text(encoding="utf-8").splitlines(keepends=True)
            if len(lines) > max_lines:
                keep = max(1, (max_lines * 3) // 4)
                atomic_write_text(p, "".join(lines[-keep:]))


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
                rec = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                yield rec
