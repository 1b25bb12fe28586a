"""Candle frames: timeframes, validation (repairs and rejections), CSV formats, cache files, load_candles."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.config import Config, replace_section
from core.errors import ConfigError, DataError
from market.candles import (
    COLUMNS,
    Gap,
    Repairs,
    cache_path,
    describe_gaps,
    empty_candles,
    find_gaps,
    load_candles,
    normalize_candles,
    read_cached_candles,
    read_csv_candles,
    timeframe_to_ms,
    validate_candles,
    write_candles_atomic,
)

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def candles(n: int = 5, start: int = T0, step: int = H) -> pd.DataFrame:
    close = 100.0 + np.arange(n, dtype=float)
    return pd.DataFrame({
        "timestamp": start + step * np.arange(n, dtype=np.int64),
        "open": close - 0.5, "high": close + 1.0, "low": close - 1.0, "close": close,
        "volume": np.full(n, 10.0),
    })


def assert_contract(frame: pd.DataFrame) -> None:
    assert tuple(frame.columns) == COLUMNS
    assert frame["timestamp"].dtype == np.int64
    assert all(frame[c].dtype == np.float64 for c in COLUMNS[1:])
    assert isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0
    assert frame["timestamp"].is_monotonic_increasing and frame["timestamp"].is_unique


# ---------------------------------------------------------------------------------------- timeframes


@pytest.mark.parametrize(("tf", "ms"), [
    ("1m", 60_000), ("5m", 300_000), ("15m", 900_000), ("1h", 3_600_000), ("4h", 14_400_000),
    ("12h", 43_200_000), ("1d", 86_400_000), ("3d", 259_200_000), ("1w", 604_800_000), ("30s", 30_000),
])
def test_timeframe_to_ms(tf: str, ms: int) -> None:
    assert timeframe_to_ms(tf) == ms


@pytest.mark.parametrize(("tf", "message"), [
    ("1M", "months and years have no fixed length"), ("h", "not valid"), ("0h", "not valid"),
    ("1H", "not valid"), ("", "not valid"), ("1.5h", "not valid"),
])
def test_bad_timeframes_are_rejected(tf: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        timeframe_to_ms(tf)


# ---------------------------------------------------------------------------------------- validation


def test_valid_frame_passes_unchanged() -> None:
    frame, repairs = validate_candles(candles(), "src")
    pd.testing.assert_frame_equal(frame, candles())
    assert repairs == Repairs(0, 0)
    assert_contract(frame)


def test_unsorted_and_duplicate_rows_are_repaired_and_counted(caplog: pytest.LogCaptureFixture) -> None:
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
def test_bad_rows_are_rejected_naming_the_source_and_the_first_bad_row(column: str, value: object,
                                                                        message: str) -> None:
    frame = candles(5).astype({column: object})
    frame.loc[2, column] = value  # data row 3
    frame.loc[4, "open"] = -1.0  # a later bad row must not be the one reported
    with pytest.raises(DataError) as caught:
        validate_candles(frame, "data/btc.csv")
    text = str(caught.value)
    assert text.startswith("data/btc.csv: data row 3")
    assert message in text and text.endswith("fix or delete that row")


def test_bad_row_message_gives_the_time() -> None:
    frame = candles(3)
    frame.loc[1, "close"] = 0.0
    with pytest.raises(DataError, match=r"data row 2 \(timestamp 1704070800000 = 2024-01-01T01:00:00Z\)"):
        validate_candles(frame, "x")


def test_missing_column_is_rejected() -> None:
    with pytest.raises(DataError, match="x: missing column.s. volume; expected columns: timestamp, open"):
        validate_candles(candles().drop(columns="volume"), "x")


def test_extra_columns_are_dropped_and_the_index_reset() -> None:
    frame = candles().assign(trades=1).set_axis(range(10, 15))
    out, _ = validate_candles(frame, "x")
    assert_contract(out)


def test_empty_frame_is_valid() -> None:
    frame, repairs = validate_candles(empty_candles(), "x")
    assert len(frame) == 0 and repairs.total == 0
    assert_contract(frame)


# ---------------------------------------------------------------------------------------------- gaps


def test_gaps_are_found_with_their_ranges() -> None:
    ts = [T0, T0 + H, T0 + 4 * H, T0 + 5 * H, T0 + 7 * H]
    frame = candles(5).assign(timestamp=ts)
    gaps = find_gaps(frame, "1h")
    assert gaps == [Gap(T0 + 2 * H, T0 + 3 * H, 2), Gap(T0 + 6 * H, T0 + 6 * H, 1)]
    assert describe_gaps(gaps) == ("2 gaps, 3 candle(s) missing: 2024-01-01T02:00:00Z..2024-01-01T03:00:00Z "
                                   "(2 missing), 2024-01-01T06:00:00Z..2024-01-01T06:00:00Z (1 missing)")
    assert describe_gaps(gaps, first=1).endswith("(2 missing), +1 more")
    assert find_gaps(candles(5), "1h") == [] and describe_gaps([]) == "no gaps"


# ------------------------------------------------------------------------------------------------ CSV


def write(tmp_path: Path, text: str, name: str = "c.csv") -> Path:
    file = tmp_path / name
    file.write_text(text)
    return file


@pytest.mark.parametrize("times", [
    ["1704067200000", "1704070800000"],  # milliseconds
    ["1704067200", "1704070800"],  # seconds
    ["1704067200000000", "1704070800000000"],  # microseconds (Binance's newer exports)
    ["2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"],
    ["2024-01-01 00:00:00", "2024-01-01 01:00:00"],  # naive: taken as UTC
    ["2024-01-01T02:00:00+02:00", "2024-01-01T03:00:00+02:00"],
    ["2024-01-01T00:00:00.000Z", "2024-01-01T01:00:00.000Z"],
])
def test_csv_timestamp_formats(tmp_path: Path, times: list[str]) -> None:
    text = "timestamp,open,high,low,close,volume\n" + "".join(
        f"{t},100,101,99,100.5,7\n" for t in times)
    frame = read_csv_candles(write(tmp_path, text))
    assert frame["timestamp"].tolist() == [T0, T0 + H]
    assert_contract(frame)


def test_csv_date_only_and_case_insensitive_names(tmp_path: Path) -> None:
    text = ("Date,Open,High,Low,Close,Adj Close,Volume\n"
            "2024-01-02,10,12,9,11,11,1000\n2024-01-01,9,10.5,8.5,10,10,900\n")
    frame = read_csv_candles(write(tmp_path, text))
    assert frame["timestamp"].tolist() == [T0, T0 + 24 * H]  # newest-first export, sorted
    assert frame["close"].tolist() == [10.0, 11.0] and frame["volume"].tolist() == [900.0, 1000.0]


@pytest.mark.parametrize("name", ["time", "datetime", "DATE", "Timestamp"])
def test_csv_time_column_aliases(tmp_path: Path, name: str) -> None:
    text = f"{name},open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5,3\n"
    assert read_csv_candles(write(tmp_path, text))["timestamp"].tolist() == [T0]


def test_csv_exchange_export_with_banner_and_named_volumes(tmp_path: Path) -> None:
    text = ("https://www.example-data-site.com\n"
            "unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT,tradecount\n"
            "1704070800000,2024-01-01 01:00:00,BTC/USDT,42500,42600,42400,42550,12.5,531875,900\n"
            "1704067200000,2024-01-01 00:00:00,BTC/USDT,42400,42550,42300,42500,10.0,425000,800\n")
    frame = read_csv_candles(write(tmp_path, text))
    assert frame["timestamp"].tolist() == [T0, T0 + H]
    assert frame["volume"].tolist() == [10.0, 12.5]


def test_csv_without_header_in_kline_order(tmp_path: Path) -> None:
    text = ("1704067200000,42400.1,42550,42300,42500,10.5,1704070799999,445000,800,5,200000,0\n"
            "1704070800000,42500,42600,42400,42550.25,12,1704074399999,510000,900,6,250000,0\n")
    frame = read_csv_candles(write(tmp_path, text))
    assert frame.iloc[0].tolist() == [T0, 42400.1, 42550.0, 42300.0, 42500.0, 10.5]
    assert frame["close"].iloc[1] == 42550.25


def test_frame_with_a_date_index() -> None:
    index = pd.DatetimeIndex(["2024-01-01", "2024-01-01 01:00"], name="Date", tz="UTC")
    raw = pd.DataFrame({"Open": [1.0, 2.0], "High": [2.0, 3.0], "Low": [0.5, 1.5], "Close": [1.5, 2.5],
                        "Volume": [10, 20]}, index=index)
    frame = normalize_candles(raw, "memory")
    assert frame["timestamp"].tolist() == [T0, T0 + H]
    assert_contract(frame)


def test_csv_unparsable_time_names_the_row(tmp_path: Path) -> None:
    text = "date,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,3\n01/02/2024 9am,1,2,0.5,1.5,3\n"
    file = write(tmp_path, text)
    with pytest.raises(DataError, match=r"c\.csv: data row 2: time '01/02/2024 9am' is neither .* ISO-8601"):
        read_csv_candles(file)


def test_csv_numbers_that_are_not_epoch_times_are_rejected(tmp_path: Path) -> None:
    text = "date,open,high,low,close,volume\n20240101,1,2,0.5,1.5,3\n20240102,1,2,0.5,1.5,3\n"
    with pytest.raises(DataError, match="times such as 20240101 are too small .* ISO-8601"):
        read_csv_candles(write(tmp_path, text))


def test_csv_bad_value_names_file_and_row(tmp_path: Path) -> None:
    text = "timestamp,open,high,low,close,volume\n1704067200,1,2,0.5,1.5,3\n1704070800,1,2,0.5,,3\n"
    with pytest.raises(DataError, match=r"c\.csv: data row 2 .*`close` is empty"):
        read_csv_candles(write(tmp_path, text))


def test_csv_missing_columns_lists_what_was_found(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no column for volume .found: date, open, high, low, close."):
        read_csv_candles(write(tmp_path, "date,open,high,low,close\n2024-01-01,1,2,0.5,1.5\n"))


def test_csv_missing_or_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read the candle file"):
        read_csv_candles(tmp_path / "absent.csv")
    with pytest.raises(DataError, match="the file is empty"):
        read_csv_candles(write(tmp_path, "\n"))


# ---------------------------------------------------------------------------------------------- cache


def test_write_then_read_round_trips_exactly(tmp_path: Path) -> None:
    frame = candles(50)
    frame["close"] = frame["close"] + 0.1 + 0.2  # floats without a short decimal form
    frame["high"] = frame["close"] + 1 / 3
    path = write_candles_atomic(tmp_path / "deep" / "x.csv", frame)
    back = read_cached_candles(path)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert [p.name for p in path.parent.iterdir()] == ["x.csv"]  # no temporary file left behind


def test_writing_invalid_candles_keeps_the_old_file(tmp_path: Path) -> None:
    path = write_candles_atomic(tmp_path / "x.csv", candles(3))
    before = path.read_bytes()
    bad = candles(3)
    bad.loc[0, "low"] = 1000.0
    with pytest.raises(DataError):
        write_candles_atomic(path, bad)
    assert path.read_bytes() == before


def test_read_cache_absent_is_empty_and_foreign_is_rejected(tmp_path: Path) -> None:
    assert_contract(read_cached_candles(tmp_path / "none.csv"))
    foreign = write(tmp_path, "Date,Open\n2024-01-01,1\n")
    with pytest.raises(DataError, match="not a candle cache .* delete the file to download it again"):
        read_cached_candles(foreign)


def test_cache_path_layout_and_sanitizing(cfg: Config) -> None:
    root = cfg.state_dir / "candles"
    assert cache_path(cfg, "BTC/USDT") == root / "binance" / "BTC_USDT-1h.csv"
    assert cache_path(cfg, "BTC/USDT:USDT", exchange="kraken", timeframe="4h") == \
        root / "kraken" / "BTC_USDT_USDT-4h.csv"
    evil = cache_path(cfg, "BTC/../../etc/passwd", exchange="a/../..", timeframe="1h/../../x")
    assert evil == root / "a_.._.." / "BTC__.._etc_passwd-1h_.._.._x.csv"  # one folder, one file
    with pytest.raises(ConfigError, match="exchange `..` gives an empty file name"):
        cache_path(cfg, "BTC/USDT", exchange="..")
    with pytest.raises(ConfigError, match="symbol"):
        cache_path(cfg, "../../etc/passwd")


# --------------------------------------------------------------------------------------- load_candles


def test_load_candles_synthetic_default(cfg: Config) -> None:
    frames = load_candles(cfg)
    assert list(frames) == ["BTC/USDT", "ETH/USDT"]
    for frame in frames.values():
        assert len(frame) == cfg.synthetic.n_candles
        assert_contract(frame)
    tail = load_candles(cfg, ["ETH/USDT"], limit=100)["ETH/USDT"]
    pd.testing.assert_frame_equal(tail, frames["ETH/USDT"].iloc[-100:].reset_index(drop=True))
    assert not (cfg.state_dir / "candles").exists()  # loading synthetic candles writes nothing


def test_load_candles_csv_relative_to_home(cfg: Config, rl_home: Path) -> None:
    (rl_home / "data").mkdir()
    write_candles_atomic(rl_home / "data" / "btc.csv", candles(30))
    csv_cfg = replace_section(cfg, "market", data_source="csv", csv_paths={"BTC/USDT": "data/btc.csv"})
    frames = load_candles(csv_cfg, ["BTC/USDT"], limit=10)
    pd.testing.assert_frame_equal(frames["BTC/USDT"], candles(30).iloc[-10:].reset_index(drop=True))
    with pytest.raises(ConfigError, match="market.csv_paths has no file for ETH/USDT"):
        load_candles(csv_cfg, ["ETH/USDT"])
    missing = replace_section(csv_cfg, "market", csv_paths={"BTC/USDT": "data/nope.csv"})
    with pytest.raises(DataError, match="not found; fix market.csv_paths"):
        load_candles(missing, ["BTC/USDT"])


def test_load_candles_rejects_unknown_source_and_bad_limit(cfg: Config) -> None:
    with pytest.raises(ConfigError, match="market.data_source `parquet` is not known; use one of: synthetic"):
        load_candles(cfg, source="parquet")
    with pytest.raises(ConfigError, match="limit must be a positive"):
        load_candles(cfg, limit=0)
