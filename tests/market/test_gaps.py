"""Gaps in a candle frame: found with their ranges and described in one line."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from market.gaps import Gap, describe_gaps, find_gaps

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z

MakeCandles = Callable[..., pd.DataFrame]



def test_gaps_are_found_with_their_ranges(candles: MakeCandles) -> None:
    ts = [T0, T0 + H, T0 + 4 * H, T0 + 5 * H, T0 + 7 * H]
    frame = candles(5).assign(timestamp=ts)
    gaps = find_gaps(frame, "1h")
    assert gaps == [Gap(T0 + 2 * H, T0 + 3 * H, 2), Gap(T0 + 6 * H, T0 + 6 * H, 1)]
    assert describe_gaps(gaps) == ("2 gaps, 3 candle(s) missing: 2024-01-01T02:00:00Z..2024-01-01T03:00:00Z "
                                   "(2 missing), 2024-01-01T06:00:00Z..2024-01-01T06:00:00Z (1 missing)")
    assert describe_gaps(gaps, first=1).endswith("(2 missing), +1 more")
    assert find_gaps(candles(5), "1h") == [] and describe_gaps([]) == "no gaps"
