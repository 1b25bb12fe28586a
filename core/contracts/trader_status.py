"""``runtime/trader_status.json``: where the paper trader stands, published every few seconds.

Writer: the paper trader (:func:`publish_trader_status`, on start, every ``trader.status_interval_s`` and on
stop). Readers, all through :func:`read_trader_status`:

- the strategy-weight inference and the Q-learning daemon take the trader's last candle as "now" (in a
  replay the market's time is not the wall clock);
- the performance tracker places each weight record at the trader's clock;
- the trading PPO's shadow daemon follows the trader's replay and sizes the risk guard by its equity;
- ``scripts/rl_system.py status`` shows the trader's mode, equity and last candle.

Reading is tolerant: a missing, unparsable, wrong-schema or stale file is "no status" (None) with the reason
logged. Only the keys a document holds are checked, so a status from an older trader still gives its last
candle.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from core.atomic import SCHEMA_VERSION, publish_json, read_json
from core.config import Config

log = logging.getLogger(__name__)

STATUS_NAME = "trader_status.json"
"""File name of the status inside ``runtime/``."""
STATUS_SCHEMA_VERSION = SCHEMA_VERSION
PRODUCER = "paper_trader"


class PositionStatus(TypedDict):
    """One book's open trade (see :class:`agents.books.OpenTrade`)."""

    side: str
    qty: float
    notional: float
    entry_price: float
    opened_at: str
    target: float
    weight: float
    unrealized_pnl: float


class AllocationStatus(TypedDict):
    """The allocation in force, who produced it, and why the allocations file was not used (if it was not)."""

    weights: dict[str, float]
    source: str
    file_status: str
    reason: str


class RolloutStatus(TypedDict):
    """The trading PPO's rollout the trader saw at its last candle."""

    stage: str
    capital_percentage: float
    max_position_size: float


class LastCandle(TypedDict):
    """The candle processed last: its open time (ms UTC and ISO-8601) and close."""

    timestamp: int
    time: str
    close: float | None


class TraderStatus(TypedDict):
    """The payload of ``runtime/trader_status.json`` (inside the published envelope)."""

    state: str
    mode: str
    data_source: str
    symbol: str
    timeframe: str
    initial_equity: float
    equity: float
    cash: float
    positions: dict[str, PositionStatus | None]
    allocation: AllocationStatus
    sizing_multiplier: float
    ppo_rollout: RolloutStatus | None
    last_candle: LastCandle | None
    candles_processed: int
    trades_written: int


_TEXT_KEYS = ("state", "mode", "data_source", "symbol", "timeframe")
_NUMBER_KEYS = ("initial_equity", "equity", "cash", "sizing_multiplier")
_COUNT_KEYS = ("candles_processed", "trades_written")


def status_path(cfg: Config) -> Path:
    """``runtime/trader_status.json`` of the configured home."""
    return cfg.runtime_dir / STATUS_NAME


def publish_trader_status(cfg: Config, status: TraderStatus) -> dict[str, Any]:
    """Publish ``status`` atomically inside the envelope; returns the document written (NaN is refused)."""
    return publish_json(status_path(cfg), PRODUCER, dict(status))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_status(doc: Mapping[str, Any]) -> str | None:
    """Why ``doc`` is not a usable trader status, or None. Keys it lacks are not checked."""
    version = doc.get("schema_version", STATUS_SCHEMA_VERSION)
    if version != STATUS_SCHEMA_VERSION:
        return f"`schema_version` is {version!r}; this version reads {STATUS_SCHEMA_VERSION} (restart the trader)"
    for key in _TEXT_KEYS:
        if key in doc and not isinstance(doc[key], str):
            return f"`{key}` must be text, got {doc[key]!r}"
    for key in _NUMBER_KEYS:
        if key in doc and not _is_number(doc[key]):
            return f"`{key}` must be a finite number, got {doc[key]!r}"
    for key in _COUNT_KEYS:
        if key in doc and not _is_int(doc[key]):
            return f"`{key}` must be an integer, got {doc[key]!r}"
    last = doc.get("last_candle")
    if last is not None:
        if not isinstance(last, Mapping):
            return f"`last_candle` must be an object or null, got {type(last).__name__}"
        if not _is_int(last.get("timestamp")):
            return f"`last_candle.timestamp` must be an integer (ms UTC), got {last.get('timestamp')!r}"
    for key in ("positions", "allocation"):
        if key in doc and not isinstance(doc[key], Mapping):
            return f"`{key}` must be an object, got {type(doc[key]).__name__}"
    return None


@dataclass(frozen=True)
class TraderStatusRead:
    """A valid status as read: the document (every key optional for an older writer) and its age."""

    doc: Mapping[str, Any]
    age_s: float | None = None

    @property
    def last_candle_ts(self) -> int | None:
        """Open time (ms UTC) of the candle the trader processed last, or None before its first candle."""
        last = self.doc.get("last_candle")
        return int(last["timestamp"]) if isinstance(last, Mapping) else None

    @property
    def symbol(self) -> str | None:
        value = self.doc.get("symbol")
        return value if isinstance(value, str) else None

    @property
    def timeframe(self) -> str | None:
        value = self.doc.get("timeframe")
        return value if isinstance(value, str) else None

    @property
    def equity(self) -> float | None:
        value = self.doc.get("equity")
        return float(value) if isinstance(value, (int, float)) and _is_number(value) else None


def read_trader_status(cfg: Config, max_age_s: float | None = None) -> TraderStatusRead | None:
    """The trader's status, or None when it is missing, invalid, of another schema or older than ``max_age_s``.

    The reason is logged: as a warning when the file is invalid, at debug level when it is absent or stale
    (no trader running is a normal state, and readers poll it often).
    """
    result = read_json(status_path(cfg), max_age_s=max_age_s, validate=validate_status)
    if not result.ok or result.data is None:
        level = logging.WARNING if result.status == "invalid" else logging.DEBUG
        log.log(level, "no trader status: %s", result.reason)
        return None
    return TraderStatusRead(result.data, result.age_s)
