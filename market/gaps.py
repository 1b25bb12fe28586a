"""Gaps in a candle frame: missing candles between two present ones, found and described in one line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.timeframes import ms_to_iso, timeframe_to_ms


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
