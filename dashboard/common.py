"""What the panels share: JSON-safe values, ages of documents, empty states that say what to run."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from core.atomic import ReadResult, parse_iso

Panel = dict[str, Any]
"""The JSON document of one panel (``/api/<panel>``)."""


def clean(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, so the JSON answer is standard JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return clean(value.item())
    return value


def number(value: Any) -> float | None:
    """``value`` as a finite float, or None (absent, text, NaN, a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def empty(message: str) -> Panel:
    """A panel with nothing to show yet: ``message`` says why and what to run (the page shows it as is)."""
    return {"empty": True, "message": message}


def file_state(result: ReadResult) -> dict[str, Any]:
    """How a tolerant read went: ``status`` (ok, absent, stale, invalid), the reason and the document's age."""
    return {"status": result.status, "reason": result.reason or None,
            "age_s": None if result.age_s is None else round(result.age_s, 1)}


def age_s(stamp: Any, now: datetime | None = None) -> float | None:
    """Seconds since the ISO-8601 time ``stamp``, or None when it is not one."""
    if not isinstance(stamp, str):
        return None
    try:
        then = parse_iso(stamp)
    except ValueError:
        return None
    return round(((now or datetime.now(timezone.utc)) - then).total_seconds(), 1)


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
