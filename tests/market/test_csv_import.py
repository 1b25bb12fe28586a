"""Candles from CSV files and frames: timestamp formats, column names, headerless exports, errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from core.errors import DataError
from market.csv_import import normalize_candles, read_csv_candles

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z

AssertContract = Callable[[pd.DataFrame], None]
WriteFile = Callable[..., Path]



@pytest.mark.parametrize("times", [
    ["1704067200000", "1704070800000"],  # milliseconds
    ["1704067200", "1704070800"],  # seconds
    ["1704067200000000", "1704070800000000"],  # microseconds (Binance's newer exports)
    ["2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"],
    ["2024-01-01 00:00:00", "2024-01-01 01:00:00"],  # naive: taken as UTC
    ["2024-01-01T02:00:00+02:00", "2024-01-01T03:00:00+02:00"],
    ["2024-01-01T00:00:00.000Z", "2024-01-01T01:00:00.000Z"],
])
def test_csv_timestamp_formats(tmp_path: Path, times: list[str], assert_contract: AssertContract,
                              write: WriteFile) -> None:
    text = "timestamp,open,high,low,close,volume\n" + "".join(
        f"{t},100,101,99,100.5,7\n" for t in times)
    frame = read_csv_candles(write(tmp_path, text))
    assert frame["timestamp"].tolist() == [T0, T0 + H]
    assert_contract(frame)


def test_csv_date_only_and_case_insensitive_names(tmp_path: Path, write: WriteFile) -> None:
    text = ("Date,Open,High,Low,Close,Adj Close,Volume\n"
            "2024-01-02,10,12,9,11,11,1000\n2024-01-01,9,10.5,8.5,10,10,900\n")
    frame = read_csv_candles(write(tmp_path, text))
    assert frame["timestamp"].tolist() == [T0, T0 + 24 * H]  # newest-first export, sorted
    assert frame["close"].tolist() == [10.0, 11.0] and frame["volume"].tolist() == [900.0, 1000.0]


@pytest.mark.parametrize("name", ["time", "datetime", "DATE", "Timestamp"])
def test_csv_time_column_aliases(tmp_path: Path, name: str, write: WriteFile) -> None:
    text = f"{name},open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5,3\n"
    assert read_csv_candles(write(tmp_path, text))["timestamp"].tolist() == [T0]


def test_csv_exchange_export_with_banner_and_named_volumes(tmp_path: Path, write: WriteFile) -> None:
    text = ("https://www.example-data-site.com\n"
            "unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT,tradecount\n"
            "1704070800000,2024-01-01 01:00:00,BTC/USDT,42500,42600,42400,42550,12.5,531875,900\n"
            "1704067200000,2024-01-01 00:00:00,BTC/USDT,42400,42550,42300,42500,10.0,425000,800\n")
    frame = read_csv_candles(write(tmp_path, text))
    assert frame["timestamp"].tolist() == [T0, T0 + H]
    assert frame["volume"].tolist() == [10.0, 12.5]


def test_csv_without_header_in_kline_order(tmp_path: Path, write: WriteFile) -> None:
    text = ("1704067200000,42400.1,42550,42300,42500,10.5,1704070799999,445000,800,5,200000,0\n"
            "1704070800000,42500,42600,42400,42550.25,12,1704074399999,510000,900,6,250000,0\n")
    frame = read_csv_candles(write(tmp_path, text))
    assert frame.iloc[0].tolist() == [T0, 42400.1, 42550.0, 42300.0, 42500.0, 10.5]
    assert frame["close"].iloc[1] == 42550.25


def test_frame_with_a_date_index(assert_contract: AssertContract) -> None:
    index = pd.DatetimeIndex(["2024-01-01", "2024-01-01 01:00"], name="Date", tz="UTC")
    raw = pd.DataFrame({"Open": [1.0, 2.0], "High": [2.0, 3.0], "Low": [0.5, 1.5], "Close": [1.5, 2.5],
                        "Volume": [10, 20]}, index=index)
    frame = normalize_candles(raw, "memory")
    assert frame["timestamp"].tolist() == [T0, T0 + H]
    assert_contract(frame)


def test_csv_unparsable_time_names_the_row(tmp_path: Path, write: WriteFile) -> None:
    text = "date,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,3\n01/02/2024 9am,1,2,0.5,1.5,3\n"
    file = write(tmp_path, text)
    with pytest.raises(DataError, match=r"c\.csv: data row 2: time '01/02/2024 9am' is neither .* ISO-8601"):
        read_csv_candles(file)


def test_csv_numbers_that_are_not_epoch_times_are_rejected(tmp_path: Path, write: WriteFile) -> None:
    text = "date,open,high,low,close,volume\n20240101,1,2,0.5,1.5,3\n20240102,1,2,0.5,1.5,3\n"
    with pytest.raises(DataError, match="times such as 20240101 are too small .* ISO-8601"):
        read_csv_candles(write(tmp_path, text))


def test_csv_bad_value_names_file_and_row(tmp_path: Path, write: WriteFile) -> None:
    text = "timestamp,open,high,low,close,volume\n1704067200,1,2,0.5,1.5,3\n1704070800,1,2,0.5,,3\n"
    with pytest.raises(DataError, match=r"c\.csv: data row 2 .*`close` is empty"):
        read_csv_candles(write(tmp_path, text))


def test_csv_missing_columns_lists_what_was_found(tmp_path: Path, write: WriteFile) -> None:
    with pytest.raises(DataError, match="no column for volume .found: date, open, high, low, close."):
        read_csv_candles(write(tmp_path, "date,open,high,low,close\n2024-01-01,1,2,0.5,1.5\n"))


def test_csv_missing_or_empty_file(tmp_path: Path, write: WriteFile) -> None:
    with pytest.raises(DataError, match="cannot read the candle file"):
        read_csv_candles(tmp_path / "absent.csv")
    with pytest.raises(DataError, match="the file is empty"):
        read_csv_candles(write(tmp_path, "\n"))


@pytest.mark.parametrize(("content", "message"), [
    (bytes(range(256)) * 4, "not a text CSV file"),
    ("timestamp,open,high,low,close,volume\n1704067200000,1,2,0.5,1.5,10\n".encode("utf-16"), "not a text CSV"),
    (b"\x00\x01\x02garbage\n\x00\x00", "not a text CSV file"),
    (b"timestamp,open,high,low,close,volume\n", "no candles (a header and no rows)"),
])
def test_garbage_or_empty_candle_files_are_a_data_error_naming_the_file(
        tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "candles.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=re.escape(message)) as info:
        read_csv_candles(path)
    assert str(info.value).startswith(f"{path}: ")
