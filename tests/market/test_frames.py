"""Candle frames: the column contract, validation (repairs and rejections) and the empty frame."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from core.errors import DataError
from market.frames import Repairs, empty_candles, validate_candles

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z

MakeCandles = Callable[..., pd.DataFrame]
AssertContract = Callable[[pd.DataFrame], None]



def test_valid_frame_passes_unchanged(candles: MakeCandles, assert_contract: AssertContract) -> None:
    frame, repairs = validate_candles(candles(), "src")
    pd.testing.assert_frame_equal(frame, candles())
    assert repairs == Repairs(0, 0)
    assert_contract(frame)


def test_unsorted_and_duplicate_rows_are_repaired_and_counted(caplog: pytest.LogCaptureFixture, candles: MakeCandles,
                                                              assert_contract: AssertContract) -> None:
    raw = candles(4)
    shuffled = raw.iloc[[2, 0, 3, 1]]
    newer = raw.iloc[[1]].assign(close=101.5)  # a later copy of the 2nd candle wins
    with caplog.at_level(logging.WARNING):
        frame, repairs = validate_candles(pd.concat([shuffled, raw.iloc[[0]], newer]), "feed.csv")
    assert repairs == Repairs(out_of_order=3, duplicates=2)  # every step back in time counts
    expected = raw.copy()
    expected.loc[1, "close"] = 101.5
    pd.testing.assert_frame_equal(frame, expected)
    assert "feed.csv: repaired candles: sorted 3 out-of-order row(s), dropped 2 duplicate timestamp(s)" in caplog.text
    assert_contract(frame)


@pytest.mark.parametrize(("column", "value", "message"), [
    ("close", np.nan, "`close` is empty or not a number (NaN)"),
    ("close", np.float64("nan"), "`close` is empty or not a number (NaN)"),
    ("volume", "abc", "`volume` is empty or not a number ('abc')"),
    ("open", 0.0, "`open` = 0.0 is not a positive price"),
    ("low", -1.0, "`low` = -1.0 is not a positive price"),
    ("high", 98.0, "high 98.0 < low 101.0"),
    ("close", 250.0, "`close` = 250.0 is outside [low 101.0, high 103.0]"),
    ("open", 1.0, "`open` = 1.0 is outside [low 101.0, high 103.0]"),
    ("volume", -5.0, "`volume` = -5.0 is negative"),
    ("high", np.inf, "`high` is infinite"),
    ("timestamp", T0 + 0.5, "is not a whole number of milliseconds"),
])
def test_bad_rows_are_rejected_naming_the_source_and_the_first_bad_row(column: str, value: object, message: str,
                                                                        candles: MakeCandles) -> None:
    frame = candles(5).astype({column: object})
    frame.loc[2, column] = value  # data row 3
    frame.loc[4, "open"] = -1.0  # a later bad row must not be the one reported
    with pytest.raises(DataError) as caught:
        validate_candles(frame, "data/btc.csv")
    text = str(caught.value)
    assert text.startswith("data/btc.csv: data row 3")
    assert message in text and text.endswith("fix or delete that row")


def test_bad_row_message_gives_the_time(candles: MakeCandles) -> None:
    frame = candles(3)
    frame.loc[1, "close"] = 0.0
    with pytest.raises(DataError, match=r"data row 2 \(timestamp 1704070800000 = 2024-01-01T01:00:00Z\)"):
        validate_candles(frame, "x")


def test_missing_column_is_rejected(candles: MakeCandles) -> None:
    with pytest.raises(DataError, match="x: missing column.s. volume; expected columns: timestamp, open"):
        validate_candles(candles().drop(columns="volume"), "x")


def test_extra_columns_are_dropped_and_the_index_reset(candles: MakeCandles,
                                                      assert_contract: AssertContract) -> None:
    frame = candles().assign(trades=1).set_axis(range(10, 15))
    out, _ = validate_candles(frame, "x")
    assert_contract(out)


def test_empty_frame_is_valid(assert_contract: AssertContract) -> None:
    frame, repairs = validate_candles(empty_candles(), "x")
    assert len(frame) == 0 and repairs.total == 0
    assert_contract(frame)
