"""The candle cache: exact round trips, atomic replacement, foreign files, path layout and sanitizing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from core.config import Config
from core.errors import ConfigError, DataError
from market.cache import (
    cache_path,
    meta_path,
    read_cache_meta,
    read_cached_candles,
    write_candles_atomic,
    write_candles_meta,
)
from market.gaps import Gap

MakeCandles = Callable[..., pd.DataFrame]
AssertContract = Callable[[pd.DataFrame], None]
WriteFile = Callable[..., Path]



def test_write_then_read_round_trips_exactly(tmp_path: Path, candles: MakeCandles) -> None:
    frame = candles(50)
    frame["close"] = frame["close"] + 0.1 + 0.2  # floats without a short decimal form
    frame["high"] = frame["close"] + 1 / 3
    path = write_candles_atomic(tmp_path / "deep" / "x.csv", frame)
    back = read_cached_candles(path)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert [p.name for p in path.parent.iterdir()] == ["x.csv"]  # no temporary file left behind


def test_writing_invalid_candles_keeps_the_old_file(tmp_path: Path, candles: MakeCandles) -> None:
    path = write_candles_atomic(tmp_path / "x.csv", candles(3))
    before = path.read_bytes()
    bad = candles(3)
    bad.loc[0, "low"] = 1000.0
    with pytest.raises(DataError):
        write_candles_atomic(path, bad)
    assert path.read_bytes() == before


def test_read_cache_absent_is_empty_and_foreign_is_rejected(tmp_path: Path, assert_contract: AssertContract,
                                                            write: WriteFile) -> None:
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


def test_sidecar_round_trips_with_its_envelope_and_is_read_tolerantly(tmp_path: Path, candles: MakeCandles) -> None:
    path = write_candles_atomic(tmp_path / "BTC_USDT-1h.csv", candles(4))
    target = write_candles_meta(path, data_source="ccxt", exchange="binance", symbol="BTC/USDT", timeframe="1h",
                                frame=candles(4), gaps=[Gap(1, 2, 2)], extra={"gap_ranges": ["a..b (2 missing)"]})
    assert target == meta_path(path) == tmp_path / "BTC_USDT-1h.csv.meta.json"
    result = read_cache_meta(path)
    assert result.ok and result.data is not None
    doc = result.data
    assert list(doc)[:3] == ["schema_version", "generated_at", "producer"]
    assert (doc["rows"], doc["gaps"], doc["missing_candles"]) == (4, 1, 2)
    assert doc["first_timestamp"] == int(candles(4)["timestamp"].iloc[0])
    assert doc["gap_ranges"] == ["a..b (2 missing)"] and list(doc)[-1] == "gap_ranges"


def test_sidecar_absent_or_invalid_is_a_status_not_an_error(tmp_path: Path) -> None:
    csv = tmp_path / "x.csv"
    assert read_cache_meta(csv).status == "absent"
    meta_path(csv).write_text('{"data_source": "ccxt", "rows": -1}')
    result = read_cache_meta(csv)
    assert result.status == "invalid" and "`exchange` missing or not text" in result.reason
