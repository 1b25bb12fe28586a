"""``runtime/rl_v3_decisions.jsonl``: the trading PPO's decision on every closed candle, newest last.

The ``shadow_ppo`` daemon appends one record a candle (:func:`append_decision`, a bounded JSON Lines log); the
paper trader's PPO book follows the decision for its candle (:func:`decision_for`) and the status commands
show the newest one (:func:`latest_decision`). Reading is tolerant: a missing file is no decision, and a line
a crashed writer left half-written (or any line that is not a decision) is skipped.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, TypedDict, cast

from core.config import Config
from core.jsonl import append_jsonl

log = logging.getLogger(__name__)

DECISIONS_NAME = "rl_v3_decisions.jsonl"
"""File name of the decisions log inside ``runtime/``."""
TAIL_BYTES = 65_536
"""How much of the end of the log is read: about 100 decisions, more than the daemon runs ahead of a replay."""


class Decision(TypedDict, total=False):
    """One decision line. ``timestamp`` (the candle's open, ms UTC) is always there; ``exposure`` is the
    target exposure in [-1, 1] the shadow account moved to and ``action_name`` the model's action."""

    timestamp: int
    candle_time: str
    decided_at: str
    symbol: str
    timeframe: str
    close: float
    action: int
    action_name: str
    confidence: float
    previous_exposure: float
    exposure: float
    shadow_equity: float
    shadow_mode: bool
    model_sha256: str


def decisions_path(cfg: Config) -> Path:
    """``runtime/rl_v3_decisions.jsonl`` of the configured home."""
    return cfg.runtime_dir / DECISIONS_NAME


def append_decision(cfg: Config, record: dict[str, Any]) -> None:
    """Append one decision (NaN refused), keeping the log within ``logging.jsonl_max_lines`` lines."""
    append_jsonl(decisions_path(cfg), record, max_lines=cfg.logging.jsonl_max_lines)


def recent_decisions(cfg: Config) -> list[Decision]:
    """The decisions at the end of the log, oldest first (its last :data:`TAIL_BYTES`); empty without a file."""
    path = decisions_path(cfg)
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - TAIL_BYTES))
            tail = fh.read()
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning("%s: unreadable (%s)", path.name, exc.strerror or exc)
        return []
    records: list[Decision] = []
    for line in tail.splitlines():
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            continue  # the cut first line of the tail, or a line a crashed writer left half-written
        if isinstance(record, dict) and is_decision(record):
            records.append(cast(Decision, record))
    return records


def is_decision(record: dict[str, Any]) -> bool:
    """True when ``record`` has the integer candle ``timestamp`` every decision carries."""
    stamp = record.get("timestamp")
    return isinstance(stamp, int) and not isinstance(stamp, bool)


def latest_decision(cfg: Config) -> Decision | None:
    """The newest decision of the log, or None (no file, no valid line)."""
    records = recent_decisions(cfg)
    return records[-1] if records else None


def decision_for(cfg: Config, candle_ts: int) -> Decision | None:
    """The newest decision for the candle opened at ``candle_ts`` or an earlier one, or None.

    In a replay the daemon decides a little ahead of the trader (see ``trading_agent.replay_lead_candles``),
    so the newest line may be for a later candle than the one the trader is at: that one must not be used.
    """
    for record in reversed(recent_decisions(cfg)):
        if record["timestamp"] <= candle_ts:
            return record
    return None
