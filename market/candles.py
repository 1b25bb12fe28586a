"""Candles: the one frame format, its validation, the cache files and the single entry point :func:`load_candles`.

A candle frame is a :class:`pandas.DataFrame` with exactly the columns ``timestamp, open, high, low, close,
volume``: ``timestamp`` is int64 milliseconds UTC (the candle's open time), ascending and unique; the other
columns are float64; the index is a RangeIndex. Every source (synthetic, CSV, ccxt) passes its frame through
:func:`validate_candles`, which repairs what is safe to repair (order, duplicate timestamps) with a counted
warning and rejects the rest with a :class:`~core.errors.DataError` naming the source and the first bad row.

Cache files live at ``<state_dir>/candles/<exchange>/<BASE>_<QUOTE>-<timeframe>.csv``; a sidecar
``<file>.meta.json`` records where the candles came from (``data_source``, exchange, symbol, timeframe,
``updated_at``).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.atomic import atomic_open, publish_json, utc_now_iso
from core.config import DATA_SOURCES, Config
from core.errors import ConfigError, DataError, RetryableError

log = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = ("timestamp", "open", "high", "low", "close", "volume")
"""The columns of a candle frame, in order."""
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
META_SUFFIX = ".meta.json"
PRODUCER = "market.candles"

_TIMEFRAME = re.compile(r"^([1-9][0-9]*)([smhdw])$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_SAFE_PART = re.compile(r"[^A-Za-z0-9._-]+")
Describe = Callable[[int], str]
"""Message maker for a bad row, given its 0-based position."""


# --------------------------------------------------------------------------------------------- timeframes


def timeframe_to_ms(timeframe: str) -> int:
    """Length of one candle of ``timeframe`` (ccxt notation: ``1m``, ``15m``, ``1h``, ``4h``, ``1d``, ``1w``)."""
    match = _TIMEFRAME.match(str(timeframe).strip())
    if not match:
        if str(timeframe).strip().endswith(("M", "y")):
            raise ConfigError(
                f"timeframe `{timeframe}`: months and years have no fixed length; use 1w or shorter"
            )
        raise ConfigError(
            f"timeframe `{timeframe}` is not valid; use ccxt notation such as 1m, 5m, 15m, 1h, 4h, 1d or 1w"
        )
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def ms_to_iso(ms: int) -> str:
    """Milliseconds since 1970 as ISO-8601 UTC (``2024-01-01T00:00:00Z``)."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def empty_candles() -> pd.DataFrame:
    """A candle frame without rows, with the contract's dtypes."""
    frame = pd.DataFrame({c: pd.Series(dtype="int64" if c == "timestamp" else "float64") for c in COLUMNS})
    return frame.reset_index(drop=True)


# --------------------------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Repairs:
    """What :func:`validate_candles` repaired: rows found out of order and duplicate timestamps dropped."""

    out_of_order: int = 0
    duplicates: int = 0

    @property
    def total(self) -> int:
        return self.out_of_order + self.duplicates


def validate_candles(frame: pd.DataFrame, source: str) -> tuple[pd.DataFrame, Repairs]:
    """Check and normalize a candle frame; the one validation every source uses.

    Rejected with :class:`DataError` (naming ``source``, the first bad row as a 1-based data row number and
    the fix): a missing column, an empty or non-numeric cell, a non-integral timestamp, a non-positive or
    infinite price, negative volume, ``high < low``, ``open`` or ``close`` outside ``[low, high]``.
    Repaired with a counted warning: rows out of order (stable sort) and duplicate timestamps (the last one
    in input order wins, so newer data replaces older). Extra columns are dropped.
    """
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(missing)}; expected columns: {', '.join(COLUMNS)}"
        )
    data = frame.loc[:, list(COLUMNS)].reset_index(drop=True)
    numeric = {c: pd.to_numeric(data[c], errors="coerce").astype("float64") for c in COLUMNS}
    _reject_first_bad_row(data, numeric, source)
    result = pd.DataFrame({c: numeric[c].to_numpy() for c in COLUMNS})
    result["timestamp"] = result["timestamp"].astype("int64")
    return _sort_and_dedupe(result, source)


def _row_problems(data: pd.DataFrame, numeric: dict[str, pd.Series]) -> list[tuple[pd.Series, Describe]]:
    """(bad-row mask, message maker) pairs in the order problems are reported for one row."""
    ts = numeric["timestamp"]
    prices = {c: numeric[c] for c in PRICE_COLUMNS}
    problems: list[tuple[pd.Series, Describe]] = []
    for col in COLUMNS:
        bad = numeric[col].isna()
        problems.append((bad, lambda i, col=col: f"`{col}` is empty or not a number ({_cell(data[col].iloc[i])})"))
    problems.append((~np.isfinite(ts) | (ts != np.floor(ts)),
                     lambda i: f"timestamp {_num(ts, i)} is not a whole number of milliseconds"))
    for col in (*PRICE_COLUMNS, "volume"):
        bad = ~np.isfinite(numeric[col])
        problems.append((bad, lambda i, col=col: f"`{col}` is infinite ({_num(numeric[col], i)})"))
    for col in PRICE_COLUMNS:
        problems.append((prices[col] <= 0,
                         lambda i, col=col: f"`{col}` = {_num(prices[col], i)} is not a positive price"))
    problems.append((numeric["volume"] < 0, lambda i: f"`volume` = {_num(numeric['volume'], i)} is negative"))
    high, low = prices["high"], prices["low"]
    problems.append((high < low, lambda i: f"high {_num(high, i)} < low {_num(low, i)}"))
    for col in ("open", "close"):
        outside = (prices[col] < low) | (prices[col] > high)
        problems.append((outside, lambda i, col=col: (
            f"`{col}` = {_num(prices[col], i)} is outside [low {_num(low, i)}, high {_num(high, i)}]")))
    return problems


def _cell(value: Any) -> str:
    """A raw cell for a message: ``NaN`` for a missing value (pandas reads both "" and "nan" as NaN), else the
    text as written (a numpy scalar's repr would say ``np.float64(...)``)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "NaN"
    return repr(str(value))


def _num(values: pd.Series, row: int) -> str:
    return repr(float(values.iloc[row]))


def _reject_first_bad_row(data: pd.DataFrame, numeric: dict[str, pd.Series], source: str) -> None:
    problems = _row_problems(data, numeric)
    any_bad = np.zeros(len(data), dtype=bool)
    for mask, _ in problems:
        any_bad |= mask.fillna(False).to_numpy(dtype=bool)
    if not any_bad.any():
        return
    row = int(np.argmax(any_bad))
    for mask, describe in problems:
        if bool(mask.iloc[row]):
            raise DataError(
                f"{source}: data row {row + 1}{_timestamp_hint(numeric['timestamp'].iloc[row])}: "
                f"{describe(row)}; fix or delete that row"
            )


def _timestamp_hint(value: float) -> str:
    if not math.isfinite(value) or value != math.floor(value):
        return ""
    try:
        return f" (timestamp {int(value)} = {ms_to_iso(int(value))})"
    except (OverflowError, OSError, ValueError):
        return f" (timestamp {int(value)})"


def _sort_and_dedupe(frame: pd.DataFrame, source: str) -> tuple[pd.DataFrame, Repairs]:
    ts = frame["timestamp"].to_numpy()
    out_of_order = int((np.diff(ts) < 0).sum()) if len(ts) > 1 else 0
    if out_of_order:
        # A stable sort keeps the input order among equal timestamps, so "last" below means last in the input.
        frame = frame.sort_values("timestamp", kind="mergesort")
    before = len(frame)
    frame = frame.drop_duplicates("timestamp", keep="last").reset_index(drop=True)
    repairs = Repairs(out_of_order=out_of_order, duplicates=before - len(frame))
    if repairs.total:
        log.warning("%s: repaired candles: sorted %d out-of-order row(s), dropped %d duplicate timestamp(s)",
                    source, repairs.out_of_order, repairs.duplicates)
    return frame, repairs


# ------------------------------------------------------------------------------------------------- gaps


@dataclass(frozen=True)
class Gap:
    """Missing candles between two present ones: open times ``first_missing_ms`` .. ``last_missing_ms``."""

    first_missing_ms: int
    last_missing_ms: int
    missing: int

    def describe(self) -> str:
        return f"{ms_to_iso(self.first_missing_ms)}..{ms_to_iso(self.last_missing_ms)} ({self.missing} missing)"


def find_gaps(frame: pd.DataFrame, timeframe: str) -> list[Gap]:
    """Holes in a validated candle frame: consecutive open times further apart than one timeframe."""
    tf_ms = timeframe_to_ms(timeframe)
    ts = frame["timestamp"].to_numpy(dtype="int64")
    if len(ts) < 2:
        return []
    step = np.diff(ts)
    gaps = []
    for i in np.flatnonzero(step > tf_ms):
        missing = int(-(-int(step[i]) // tf_ms)) - 1  # ceil: a misaligned hole still counts its candles
        gaps.append(Gap(int(ts[i]) + tf_ms, int(ts[i + 1]) - tf_ms, missing))
    return gaps


def describe_gaps(gaps: Sequence[Gap], first: int = 3) -> str:
    """One line: the number of gaps, candles missing and the first few ranges."""
    if not gaps:
        return "no gaps"
    missing = sum(g.missing for g in gaps)
    ranges = ", ".join(g.describe() for g in gaps[:first])
    more = f", +{len(gaps) - first} more" if len(gaps) > first else ""
    noun = "gap" if len(gaps) == 1 else "gaps"
    return f"{len(gaps)} {noun}, {missing} candle(s) missing: {ranges}{more}"


# -------------------------------------------------------------------------------------- flexible parsing

_TIME_NAMES = ("timestamp", "open_time", "open time", "opentime", "unix", "ts", "time", "date", "datetime",
               "date_time", "date time", "unnamed: 0", "index")
_VOLUME_NAMES = ("volume", "vol")


def normalize_candles(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    """Any frame that holds candles (case-insensitive names, a date column or index, s/ms/ISO times) to the
    contract, validated. Accepts exports such as ``Date,Open,High,Low,Close,Adj Close,Volume``."""
    frame = raw
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.name is not None:
        frame = frame.reset_index()  # a Date-style index becomes an ordinary column
    by_name: dict[str, str] = {}
    for col in frame.columns:
        by_name.setdefault(str(col).strip().lower(), col)
    time_col = next((by_name[n] for n in _TIME_NAMES if n in by_name), None)
    volume_col = next((by_name[n] for n in _VOLUME_NAMES if n in by_name), None)
    if volume_col is None:
        volume_col = next((by_name[n] for n in by_name if n.startswith("volume")), None)
    found = {"timestamp": time_col, "volume": volume_col, **{c: by_name.get(c) for c in PRICE_COLUMNS}}
    missing = [name for name, col in found.items() if col is None]
    if missing:
        raise DataError(
            f"{source}: no column for {', '.join(missing)} (found: {', '.join(map(str, frame.columns))}); "
            f"expected {', '.join(COLUMNS)} (names case-insensitive; the time column may be called "
            "timestamp, time, date or datetime)"
        )
    out = pd.DataFrame({name: frame[col].to_numpy() for name, col in found.items()})
    out["timestamp"] = parse_timestamps(out["timestamp"], source)
    return validate_candles(out, source)[0]


def parse_timestamps(values: pd.Series, source: str) -> pd.Series:
    """Times as int64 ms UTC, from epoch seconds, ms, µs or ns (told apart by magnitude) or ISO-8601 text.

    Naive ISO times are taken as UTC. Empty cells stay NaN so validation names their row.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.to_datetime(values, utc=True)
        return _datetimes_to_ms(parsed)
    as_number = pd.to_numeric(values, errors="coerce")
    present = (values.notna() & (values.astype("string").str.strip() != "")).fillna(False).astype(bool)
    if present.any() and as_number[present].notna().all():
        return _epoch_to_ms(as_number, source)
    parsed = pd.to_datetime(values.astype("string").str.strip(), utc=True, format="ISO8601", errors="coerce")
    unparsed = present & parsed.isna()
    if unparsed.any():
        row = int(np.argmax(unparsed.to_numpy()))
        raise DataError(
            f"{source}: data row {row + 1}: time {values.iloc[row]!r} is neither a number of seconds or "
            "milliseconds since 1970 nor ISO-8601 (e.g. 2024-01-31T12:00:00Z); fix that cell"
        )
    return _datetimes_to_ms(parsed)


def _datetimes_to_ms(parsed: pd.Series) -> pd.Series:
    # Subtracting the epoch works whatever resolution (s, ms, us, ns) pandas chose for the parsed times.
    epoch = pd.Timestamp("1970-01-01", tz="UTC")
    ms = (parsed - epoch) // pd.Timedelta(milliseconds=1)
    return ms.astype("float64")


def _epoch_to_ms(numbers: pd.Series, source: str) -> pd.Series:
    magnitude = float(numbers.abs().median())
    if magnitude < 1e8:
        # Below 1973 in seconds: rather a date written as a number (20240131) or a row counter.
        raise DataError(
            f"{source}: times such as {numbers.dropna().iloc[0]} are too small for seconds or "
            "milliseconds since 1970; write them as ISO-8601 (2024-01-31T12:00:00Z) or epoch seconds/ms"
        )
    # Seconds stay below 1e11 until the year 5138; ms passed 1e11 in 1973, so the ranges do not overlap
    # for market data. Binance's own exports switched to microseconds in 2025.
    if magnitude < 1e11:
        factor = 1000.0
    elif magnitude < 1e14:
        factor = 1.0
    elif magnitude < 1e17:
        factor = 1e-3
    else:
        factor = 1e-6
    return (numbers.astype("float64") * factor).round()


def read_csv_candles(path: str | Path) -> pd.DataFrame:
    """Candles from any CSV file with the six columns (see :func:`normalize_candles`), validated.

    A file without a header whose rows start with ``time, open, high, low, close, volume`` (ccxt's and
    Binance's kline order) is read positionally; a line of text above the header is skipped.
    """
    file = Path(path)
    try:
        lines = _first_lines(file, 5)
    except OSError as exc:
        raise DataError(f"{file}: cannot read the candle file ({exc.strerror or exc}); check the path") from exc
    if not lines:
        raise DataError(f"{file}: the file is empty; expected a header {','.join(COLUMNS)} and rows")
    try:
        if _looks_numeric(lines[0].split(",")[0]):
            raw = pd.read_csv(file, header=None, skipinitialspace=True)
            if raw.shape[1] < len(COLUMNS):
                raise DataError(f"{file}: a file without a header needs the columns {', '.join(COLUMNS)} "
                                f"in that order; found {raw.shape[1]} column(s)")
            raw = raw.iloc[:, : len(COLUMNS)].set_axis(list(COLUMNS), axis=1)
        else:
            raw = pd.read_csv(file, skiprows=_header_line(lines), skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{file}: not a readable CSV file ({exc}); export it as comma-separated text") from exc
    return normalize_candles(raw, str(file))


def _first_lines(file: Path, count: int) -> list[str]:
    lines = []
    with file.open(encoding="utf-8-sig") as fh:
        for line in fh:
            if line.strip():
                lines.append(line.strip())
            if len(lines) >= count:
                break
    return lines


def _header_line(lines: list[str]) -> int:
    """Lines above the header (a download site's banner, for instance)."""
    for i, line in enumerate(lines):
        low = line.lower()
        if "open" in low and "close" in low:
            return i
    return 0


def _looks_numeric(text: str) -> bool:
    try:
        float(text.strip().strip('"'))
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------------------------ cache


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
    return cfg.state_dir / "candles" / sanitize_part(exchange, "exchange") / file


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
    gaps: Sequence[Gap] = (), extra: dict[str, Any] | None = None,
) -> Path:
    """Write the provenance sidecar ``<path>.meta.json`` (with the design's envelope) next to a cache file."""
    ts = frame["timestamp"]
    payload: dict[str, Any] = {
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
        **(extra or {}),
    }
    target = meta_path(path)
    publish_json(target, PRODUCER, payload)
    return target


# ----------------------------------------------------------------------------------------- entry point


def load_candles(
    cfg: Config, symbols: Sequence[str] | None = None, *, source: str | None = None, limit: int | None = None,
    exchange: Any = None,
) -> dict[str, pd.DataFrame]:
    """Candles per symbol from the configured source; the one call strategies, environments and trainers use.

    ``source`` overrides ``cfg.market.data_source``: ``synthetic`` (seeded, offline; ``synthetic.n_candles``
    candles), ``csv`` (``market.csv_paths``; relative paths are taken from the home folder) or ``ccxt`` (the
    cache under ``state/candles/<exchange>/``, updated first with only the candles newer than its last one;
    when the exchange cannot be reached the cache is used as it is). ``limit`` keeps the last ``limit``
    candles of each symbol. Symbols default to ``market.symbols``. ``exchange``: a ccxt client to reuse (a
    poller keeps one, so the exchange's market list is loaded once rather than at every poll).
    """
    wanted = list(symbols) if symbols is not None else list(cfg.market.symbols)
    if not wanted:
        raise ConfigError("no symbols given and `market.symbols` is empty; list at least one BASE/QUOTE symbol")
    kind = (source or cfg.market.data_source).strip().lower()
    if limit is not None and limit <= 0:
        raise ConfigError(f"limit must be a positive number of candles, got {limit}")
    timeframe_to_ms(cfg.market.timeframe)  # a bad timeframe is reported before any work
    if kind == "synthetic":
        frames = _load_synthetic(cfg, wanted, limit)
    elif kind == "csv":
        frames = {s: _load_csv(cfg, s) for s in wanted}
    elif kind == "ccxt":
        frames = _load_ccxt(cfg, wanted, limit, exchange)
    else:
        raise ConfigError(
            f"market.data_source `{kind}` is not known; use one of: {', '.join(DATA_SOURCES)}"
        )
    if limit is not None:
        frames = {s: f.tail(limit).reset_index(drop=True) for s, f in frames.items()}
    return frames


def _load_synthetic(cfg: Config, symbols: list[str], limit: int | None) -> dict[str, pd.DataFrame]:
    # Imported here because the synthetic market itself uses this module's frame helpers.
    from market.synthetic import synthetic_candles

    return synthetic_candles(cfg, symbols, n_candles=max(cfg.synthetic.n_candles, limit or 0))


def _load_csv(cfg: Config, symbol: str) -> pd.DataFrame:
    paths = cfg.market.csv_paths
    if symbol not in paths:
        raise ConfigError(
            f"market.csv_paths has no file for {symbol}; add e.g. `csv_paths = {{\"{symbol}\" = \"data/file.csv\"}}` "
            "under [market]"
        )
    file = Path(paths[symbol]).expanduser()
    if not file.is_absolute():
        file = cfg.home / file
    if not file.exists():
        raise DataError(f"{file}: candle file for {symbol} not found; fix market.csv_paths")
    frame = read_csv_candles(file)
    gaps = find_gaps(frame, cfg.market.timeframe)
    if gaps:
        log.warning("%s (%s, %s): %s", file, symbol, cfg.market.timeframe, describe_gaps(gaps))
    return frame


def _load_ccxt(cfg: Config, symbols: list[str], limit: int | None, exchange: Any = None
               ) -> dict[str, pd.DataFrame]:
    # Imported here: the exchange layer builds on this module's cache helpers.
    from market.exchange import open_exchange, update_cache

    frames: dict[str, pd.DataFrame] = {}
    for symbol in symbols:
        path = cache_path(cfg, symbol)
        try:
            if exchange is None:
                exchange = open_exchange(cfg)
            history = max(cfg.exchange.history_candles, limit or 0)
            update_cache(cfg, symbol, exchange=exchange, history_candles=history)
        except RetryableError as exc:
            if not path.exists():
                raise
            log.warning("%s: update failed, using the cached candles as they are: %s", symbol, exc)
        frames[symbol] = read_cached_candles(path)
    return frames
