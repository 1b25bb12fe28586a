"""Helpers shared by the tests of the data layer, given as fixtures: a valid candle frame, the frame
contract's assertions and a small CSV writer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from market.frames import COLUMNS

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z

MakeCandles = Callable[..., pd.DataFrame]
AssertContract = Callable[[pd.DataFrame], None]
WriteFile = Callable[..., Path]


def make_candles(n: int = 5, start: int = T0, step: int = H) -> pd.DataFrame:
    close = 100.0 + np.arange(n, dtype=float)
    return pd.DataFrame({
        "timestamp": start + step * np.arange(n, dtype=np.int64),
        "open": close - 0.5, "high": close + 1.0, "low": close - 1.0, "close": close,
        "volume": np.full(n, 10.0),
    })


def check_contract(frame: pd.DataFrame) -> None:
    assert tuple(frame.columns) == COLUMNS
    assert frame["timestamp"].dtype == np.int64
    assert all(frame[c].dtype == np.float64 for c in COLUMNS[1:])
    assert isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0
    assert frame["timestamp"].is_monotonic_increasing and frame["timestamp"].is_unique


def write_file(tmp_path: Path, text: str, name: str = "c.csv") -> Path:
    file = tmp_path / name
    file.write_text(text)
    return file


@pytest.fixture
def candles() -> MakeCandles:
    """``candles(n=5, start=T0, step=H)``: ``n`` valid hourly candles from 2024-01-01, closes 100, 101, ..."""
    return make_candles


@pytest.fixture
def assert_contract() -> AssertContract:
    """``assert_contract(frame)``: the frame has the candle contract's columns, dtypes, index and order."""
    return check_contract


@pytest.fixture
def write() -> WriteFile:
    """``write(tmp_path, text, name="c.csv")``: the text as a file in ``tmp_path``."""
    return write_file
