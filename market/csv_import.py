"""Candles from CSV files and frames of any common layout: exchange and data-site exports, with or without a
header, times in epoch seconds, milliseconds, microseconds or ISO-8601, turned into the candle frame contract
(:mod:`market.frames`) and validated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import DataError
from market.frames import COLUMNS, PRICE_COLUMNS, validate_candles

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
    except UnicodeDecodeError as exc:
        raise DataError(f"{file}: not a text CSV file (not UTF-8: {exc.reason} at byte {exc.start}); "
                        "export the candles as UTF-8 comma-separated text") from None
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
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{file}: not a readable CSV file ({exc}); export it as comma-separated text") from exc
    candles = normalize_candles(raw, str(file))
    if candles.empty:
        # Zero candles would let a trader or a learner run and finish on nothing, reporting success.
        raise DataError(f"{file}: no candles (a header and no rows); add rows {','.join(COLUMNS)} or fix the path")
    return candles


def _first_lines(file: Path, count: int) -> list[str]:
    lines = []
    with file.open(encoding="utf-8-sig") as fh:
        for line in fh:
            if "\x00" in line:  # NUL decodes as UTF-8 but no text export holds it: binary garbage
                raise DataError(f"{file}: not a text CSV file (a NUL byte); export the candles as UTF-8 "
                                "comma-separated text")
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
