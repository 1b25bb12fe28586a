"""Timeframes: the one parser of candle lengths in ccxt notation (``1m``, ``15m``, ``1h``, ``4h``, ``1d``,
``1w``).

It sits in ``core`` so that the configuration can check a timeframe when it is loaded with the same rule the
data layer uses to turn it into milliseconds. Months and years are refused: they have no fixed length.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from core.errors import ConfigError

_TIMEFRAME = re.compile(r"^([1-9][0-9]*)([smhdw])$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def timeframe_to_ms(timeframe: str) -> int:
    """Length of one candle of ``timeframe`` (ccxt notation: ``1m``, ``15m``, ``1h``, ``4h``, ``1d``, ``1w``)."""
    match = _TIMEFRAME.match(str(timeframe).strip())
    if not match:
        if str(timeframe).strip().endswith(("M", "y")):
            raise ConfigError(
                f"timeframe `{timeframe}`: months and years have no fixed length; use 1w or shorter"
            )
        raise ConfigError(
            f"timeframe `{timeframe}` is not valid; use ccxt notation such as 1m, 5m, 15m, 1h, 4h, 1d or 1w"
        )
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def is_timeframe(text: str, *, seconds: bool = True) -> bool:
    """True when :func:`timeframe_to_ms` accepts ``text``; with ``seconds=False`` a timeframe in seconds
    (``30s``) is refused too, for settings where so short a period makes no sense."""
    match = _TIMEFRAME.match(str(text).strip())
    return match is not None and (seconds or match.group(2) != "s")


def ms_to_iso(ms: int) -> str:
    """Milliseconds since 1970 as ISO-8601 UTC (``2024-01-01T00:00:00Z``)."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
