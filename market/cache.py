"""The candle cache: the one owner of its file names and format.

Cache files live at ``<state_dir>/candles/<exchange>/<BASE>_<QUOTE>-<timeframe>.csv`` (every part sanitized)
with exactly the header ``timestamp,open,high,low,close,volume``; a sidecar ``<file>.meta.json`` records where
the candles came from (``data_source``, exchange, symbol, timeframe, ``updated_at``, rows, gaps) in the
published-JSON envelope. Both are written atomically, so a reader sees the old file or the new one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

import pandas as pd

from core.atomic import ReadResult, atomic_open, publish_json, read_json, utc_now_iso
from core.config import Config
from core.errors import ConfigError, DataError
from market.frames import COLUMNS, empty_candles, validate_candles
from market.gaps import Gap

CANDLES_DIR = "candles"
"""Folder of the cache under the state folder."""
META_SUFFIX = ".meta.json"
PRODUCER = "market.candles"
"""The sidecar's ``producer``, unchanged since the cache was written by one candle module: the files keep their
schema."""

_SAFE_PART = re.compile(r"[^A-Za-z0-9._-]+")


class CacheMetaExtra(TypedDict, total=False):
    """What a writer may add to the sidecar: the first gap ranges (ccxt) or the seed (synthetic)."""

    gap_ranges: list[str]
    seed: int


class CacheMeta(CacheMetaExtra):
    """The sidecar's payload (inside the envelope ``schema_version``, ``generated_at``, ``producer``)."""

    data_source: str
    exchange: str
    symbol: str
    timeframe: str
    updated_at: str
    rows: int
    first_timestamp: int | None
    last_timestamp: int | None
    gaps: int
    missing_candles: int


_META_TEXT_KEYS = ("data_source", "exchange", "symbol", "timeframe", "updated_at")
_META_COUNT_KEYS = ("rows", "gaps", "missing_candles")


def sanitize_part(text: str, what: str) -> str:
    """A file-name part built from user input: only ``[A-Za-z0-9._-]``, no leading dot, never empty."""
    safe = _SAFE_PART.sub("_", str(text).strip()).lstrip(".")
    if not safe.strip("_"):
        raise ConfigError(f"{what} `{text}` gives an empty file name; use letters and digits")
    return safe


def cache_path(cfg: Config, symbol: str, *, exchange: str | None = None, timeframe: str | None = None) -> Path:
    """``<state_dir>/candles/<exchange>/<BASE>_<QUOTE>-<timeframe>.csv`` with every part sanitized."""
    exchange = exchange or cfg.exchange.id
    timeframe = timeframe or cfg.market.timeframe
    base, _, quote = symbol.partition("/")
    name = sanitize_part(base, "symbol") + (f"_{sanitize_part(quote, 'symbol')}" if quote else "")
    file = f"{name}-{sanitize_part(timeframe, 'timeframe')}.csv"
    return cfg.state_dir / CANDLES_DIR / sanitize_part(exchange, "exchange") / file


def meta_path(csv_path: str | Path) -> Path:
    """The provenance sidecar of a cache file: ``<file>.meta.json``."""
    p = Path(csv_path)
    return p.with_name(p.name + META_SUFFIX)


def read_cached_candles(path: str | Path) -> pd.DataFrame:
    """A cache file as a validated candle frame; an absent file is an empty frame.

    The file must have exactly the contract's header (the cache is written by :func:`write_candles_atomic`);
    anything else is a :class:`DataError` saying to delete the file so it is rebuilt.
    """
    file = Path(path)
    if not file.exists():
        return empty_candles()
    try:
        raw = pd.read_csv(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{file}: unreadable candle cache ({exc}); delete the file to download it again") from exc
    if tuple(map(str, raw.columns)) != COLUMNS:
        raise DataError(
            f"{file}: not a candle cache (header {','.join(map(str, raw.columns))}); expected "
            f"{','.join(COLUMNS)}; delete the file to download it again"
        )
    return validate_candles(raw, str(file))[0]


def write_candles_atomic(path: str | Path, frame: pd.DataFrame) -> Path:
    """Validate ``frame`` and write it as CSV atomically (temp file, fsync, replace); returns the path."""
    clean, _ = validate_candles(frame, str(path))
    with atomic_open(path, "w") as fh:
        # pandas writes floats with repr(), the shortest text that reads back to the same float64.
        clean.to_csv(fh, index=False, lineterminator="\n")
    return Path(path)


def write_candles_meta(
    path: str | Path, *, data_source: str, exchange: str, symbol: str, timeframe: str, frame: pd.DataFrame,
    gaps: Sequence[Gap] = (), extra: CacheMetaExtra | None = None,
) -> Path:
    """Write the provenance sidecar ``<path>.meta.json`` (with the design's envelope) next to a cache file."""
    ts = frame["timestamp"]
    payload: CacheMeta = {
        "data_source": data_source,
        "exchange": exchange,
        "symbol": symbol,
        "timeframe": timeframe,
        "updated_at": utc_now_iso(),
        "rows": int(len(frame)),
        "first_timestamp": int(ts.iloc[0]) if len(frame) else None,
        "last_timestamp": int(ts.iloc[-1]) if len(frame) else None,
        "gaps": len(gaps),
        "missing_candles": int(sum(g.missing for g in gaps)),
        **(extra or CacheMetaExtra()),
    }
    target = meta_path(path)
    publish_json(target, PRODUCER, dict(payload))
    return target


def validate_cache_meta(doc: dict[str, Any]) -> str | None:
    """Why ``doc`` is not a sidecar written by :func:`write_candles_meta`, or None when it is."""
    for key in _META_TEXT_KEYS:
        if not isinstance(doc.get(key), str):
            return f"`{key}` missing or not text; delete the sidecar, the next download writes it again"
    for key in _META_COUNT_KEYS:
        value = doc.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"`{key}` missing or not a count; delete the sidecar, the next download writes it again"
    return None


def read_cache_meta(csv_path: str | Path) -> ReadResult:
    """The sidecar of a cache file, read tolerantly: absent or invalid is a status with a reason, never raised."""
    return read_json(meta_path(csv_path), validate=validate_cache_meta)
