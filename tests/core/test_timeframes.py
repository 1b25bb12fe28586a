"""Timeframes: ccxt notation to milliseconds, the rejected forms and their messages, the validity check."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.timeframes import is_timeframe, ms_to_iso, timeframe_to_ms


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


@pytest.mark.parametrize("tf", ["1m", "15m", "1h", "4h", "1d", "1w", "30s", " 1h "])
def test_is_timeframe_accepts_what_timeframe_to_ms_accepts(tf: str) -> None:
    assert is_timeframe(tf)
    assert timeframe_to_ms(tf) > 0


@pytest.mark.parametrize("tf", ["1M", "1y", "h", "0h", "1H", "", "1.5h", "-1h", "1 h"])
def test_is_timeframe_refuses_what_timeframe_to_ms_rejects(tf: str) -> None:
    assert not is_timeframe(tf)
    with pytest.raises(ConfigError):
        timeframe_to_ms(tf)


@pytest.mark.parametrize(("text", "seconds", "ok"), [
    ("1h", False, True), ("15m", False, True), ("1w", False, True), ("30s", True, True), ("30s", False, False),
    ("0h", False, False), ("1.5h", False, False), ("1M", False, False), ("", False, False),
])
def test_is_timeframe(text: str, seconds: bool, ok: bool) -> None:
    assert is_timeframe(text, seconds=seconds) is ok


def test_is_timeframe_without_seconds_refuses_only_seconds() -> None:
    assert not is_timeframe("30s", seconds=False)
    assert all(is_timeframe(tf, seconds=False) for tf in ("1m", "1h", "1d", "1w"))


def test_ms_to_iso() -> None:
    assert ms_to_iso(0) == "1970-01-01T00:00:00Z"
    assert ms_to_iso(1_704_070_800_000) == "2024-01-01T01:00:00Z"
    assert ms_to_iso(1_704_070_800_999) == "2024-01-01T01:00:00Z"  # whole seconds, never rounded up
