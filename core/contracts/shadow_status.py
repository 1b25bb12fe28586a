"""What the trading PPO's shadow daemon publishes and keeps: its status, its resume state and its experiences.

- ``runtime/rl_v3_status.json`` (:class:`ShadowStatus`): whether the daemon runs, the model in use, the last
  decision, the rollout and the experiences collected; written by ``status`` and every daemon poll;
- ``state/rl_v3/shadow_state.json`` (:class:`ShadowStateDoc`): the daemon's cursor, the decision waiting for
  its next candle and the shadow account, saved after every candle so a restart resumes where it stopped;
- ``state/rl_v3/experiences.jsonl`` (:class:`Experience` a line, bounded by ``trading_agent.max_experiences``):
  realized experiences (observation, action, reward, next observation and both candles).

The JSON documents carry the envelope of :mod:`core.atomic` and are written atomically; readers are tolerant
(a missing or invalid file is "no input" with a reason, never an exception).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypedDict

from core.atomic import ReadResult, publish_json, read_json
from core.config import Config
from core.contracts.trading_model import TrainRange, model_dir
from core.jsonl import append_jsonl, iter_jsonl, read_jsonl

PRODUCER = "shadow_ppo"
"""``producer`` of every document of the trading agent."""
STATUS_NAME = "rl_v3_status.json"
SHADOW_STATE_NAME = "shadow_state.json"
EXPERIENCES_NAME = "experiences.jsonl"


# ------------------------------------------------------------------------------------------------ payloads


class CandleRow(TypedDict):
    """One candle as plain data (open time in ms)."""

    timestamp: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class LastDecision(TypedDict, total=False):
    candle_time: str
    action_name: str
    confidence: float
    exposure: float
    shadow_mode: bool


class RolloutSummary(TypedDict):
    capital_percentage: float
    stage: str


class DaemonSummary(TypedDict, total=False):
    pid: int
    uptime_s: float
    state: str
    next_retrain_at: str | None
    waiting: str | None
    """Why the daemon makes no decisions now (waiting for the trader's clock, a model that has seen the
    candles at hand, too few candles for a bootstrap model), or None."""


class ShadowStatus(TypedDict):
    """The payload of ``runtime/rl_v3_status.json`` (what ``python ai/shadow_ppo.py status`` prints)."""

    active: bool
    shadow_mode: bool
    model_loaded: bool
    model_path: str
    model_error: str | None
    trained_range: TrainRange | None
    trained_at: str | None
    symbol: str
    timeframe: str
    experiences_collected: int
    last_decision_at: str | None
    last_decision: LastDecision | None
    rollout: RolloutSummary | None
    daemon: DaemonSummary | None


class PendingDecision(TypedDict):
    """A decision waiting for its next candle, from which its experience is realized."""

    timestamp: int
    close: float
    observation: list[float]
    action: int
    action_name: str
    high_volatility: bool
    direction: float
    candle: CandleRow


class ShadowStateDoc(TypedDict):
    """The payload of ``state/rl_v3/shadow_state.json``."""

    symbol: str
    timeframe: str
    cursor_ts: int | None
    pending: PendingDecision | None
    account: dict[str, float] | None
    decisions: int
    experiences: int
    last_decision_at: str | None
    followed_trader: bool
    trader_ts: int | None


class Experience(TypedDict):
    """One line of ``state/rl_v3/experiences.jsonl``."""

    timestamp: int
    next_timestamp: int
    symbol: str
    timeframe: str
    observation: list[float]
    action: int
    action_name: str
    reward: float
    next_observation: list[float]
    step_return: float
    exposure: float
    equity: float
    terminated: bool
    candle: CandleRow
    next_candle: CandleRow
    recorded_at: str


# --------------------------------------------------------------------------------------------------- status


def status_path(cfg: Config) -> Path:
    """``runtime/rl_v3_status.json``."""
    return cfg.runtime_dir / STATUS_NAME


def publish_status(cfg: Config, status: ShadowStatus) -> dict[str, Any]:
    """Write the status document; returns it with its envelope."""
    return publish_json(status_path(cfg), PRODUCER, dict(status))


def read_status(cfg: Config, max_age_s: float | None = None) -> ReadResult:
    """The status document (tolerant; ``stale`` past ``max_age_s``)."""
    return read_json(status_path(cfg), max_age_s=max_age_s)


# --------------------------------------------------------------------------------------------- shadow state


def shadow_state_path(cfg: Config) -> Path:
    """``state/rl_v3/shadow_state.json``."""
    return model_dir(cfg) / SHADOW_STATE_NAME


def save_shadow_state(cfg: Config, state: ShadowStateDoc) -> dict[str, Any]:
    """Write the daemon's resume state atomically."""
    return publish_json(shadow_state_path(cfg), PRODUCER, dict(state))


def read_shadow_state(cfg: Config) -> ReadResult:
    """The saved resume state (tolerant: ``absent`` or ``invalid`` with the reason)."""
    return read_json(shadow_state_path(cfg))


def saved_account(cfg: Config, symbol: str) -> dict[str, float] | None:
    """The shadow account saved for ``symbol``, as plain data, or None (no state, another symbol, no account)."""
    result = read_shadow_state(cfg)
    doc = result.data if result.ok else None
    if not doc or doc.get("symbol") != symbol or not isinstance(doc.get("account"), Mapping):
        return None
    account: dict[str, float] = dict(doc["account"])
    return account


# ---------------------------------------------------------------------------------------------- experiences


def experiences_path(cfg: Config) -> Path:
    """``state/rl_v3/experiences.jsonl``."""
    return model_dir(cfg) / EXPERIENCES_NAME


def append_experience(cfg: Config, record: Experience) -> None:
    """Append one experience; the file keeps at most ``trading_agent.max_experiences`` lines."""
    append_jsonl(experiences_path(cfg), dict(record), max_lines=cfg.trading_agent.max_experiences)


def read_experiences(cfg: Config, limit: int | None = None) -> list[dict[str, Any]]:
    """The experiences, oldest first (the newest ``limit`` if given); unreadable lines are skipped."""
    return read_jsonl(experiences_path(cfg), limit=limit)


def iter_experiences(cfg: Config) -> Iterator[dict[str, Any]]:
    """The experiences one by one, oldest first; unreadable lines are skipped."""
    return iter_jsonl(experiences_path(cfg))


def count_experiences(cfg: Config) -> int:
    """Non-empty lines of the experiences file (0 when absent)."""
    try:
        with open(experiences_path(cfg), "rb") as fh:
            return sum(1 for line in fh if line.strip())
    except FileNotFoundError:
        return 0
