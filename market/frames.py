"""Candle frames: the one frame format and its validation, which every source passes its candles through.

A candle frame is a :class:`pandas.DataFrame` with exactly the columns ``timestamp, open, high, low, close,
volume``: ``timestamp`` is int64 milliseconds UTC (the candle's open time), ascending and unique; the other
columns are float64; the index is a RangeIndex. :func:`validate_candles` repairs what is safe to repair
(order, duplicate timestamps) with a counted warning and rejects the rest with a
:class:`~core.errors.DataError` naming the source and the first bad row.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.errors import DataError
from core.timeframes import ms_to_iso

log = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = ("timestamp", "open", "high", "low", "close", "volume")
"""The columns of a candle frame, in order."""
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")

Describe = Callable[[int], str]
"""Message maker for a bad row, given its 0-based position."""
Problem = tuple[pd.Series, Describe]
"""A bad-row mask and the message maker for the rows it marks."""


def empty_candles() -> pd.DataFrame:
    """A candle frame without rows, with the contract's dtypes."""
    frame = pd.DataFrame({c: pd.Series(dtype="int64" if c == "timestamp" else "float64") for c in COLUMNS})
    return frame.reset_index(drop=True)


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


def _row_problems(data: pd.DataFrame, numeric: dict[str, pd.Series]) -> list[Problem]:
    """(bad-row mask, message maker) pairs in the order problems are reported for one row."""
    ts, volume = numeric["timestamp"], numeric["volume"]
    high, low = numeric["high"], numeric["low"]
    problems: list[Problem] = [(numeric[col].isna(), _not_a_number(data[col], col)) for col in COLUMNS]
    problems.append((~np.isfinite(ts) | (ts != np.floor(ts)),
                     lambda i: f"timestamp {_num(ts, i)} is not a whole number of milliseconds"))
    problems += [(~np.isfinite(numeric[col]), _infinite(numeric[col], col))
                 for col in (*PRICE_COLUMNS, "volume")]
    problems += [(numeric[col] <= 0, _not_positive(numeric[col], col)) for col in PRICE_COLUMNS]
    problems.append((volume < 0, lambda i: f"`volume` = {_num(volume, i)} is negative"))
    problems.append((high < low, lambda i: f"high {_num(high, i)} < low {_num(low, i)}"))
    problems += [((numeric[col] < low) | (numeric[col] > high), _outside(numeric[col], col, low, high))
                 for col in ("open", "close")]
    return problems


# One message maker per problem; each binds its own column (a lambda in a loop would see the last one).
def _not_a_number(raw: pd.Series, col: str) -> Describe:
    return lambda i: f"`{col}` is empty or not a number ({_cell(raw.iloc[i])})"


def _infinite(values: pd.Series, col: str) -> Describe:
    return lambda i: f"`{col}` is infinite ({_num(values, i)})"


def _not_positive(values: pd.Series, col: str) -> Describe:
    return lambda i: f"`{col}` = {_num(values, i)} is not a positive price"


def _outside(values: pd.Series, col: str, low: pd.Series, high: pd.Series) -> Describe:
    return lambda i: f"`{col}` = {_num(values, i)} is outside [low {_num(low, i)}, high {_num(high, i)}]"


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

