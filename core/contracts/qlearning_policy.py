"""``runtime/qlearning_policy.json``: what the tabular Q-learning agents would do in the current state now.

The Q-learning daemon (:mod:`ai.tabular`) writes it after every learning pass through :func:`publish_policy`;
the paper trader reads it through :func:`sizing_multiplier` before sizing a new position, and the status
command through :func:`read_policy`. Nobody else names the file.

The document (inside the envelope of :mod:`core.atomic`) holds the traded symbol, whether sizing is applied,
the state the choices were made in (or the ``reason`` it is unknown), each agent's greedy and epsilon-greedy
choice, and the sizing agent's greedy ``sizing_multiplier`` (one of :data:`SIZE_MULTIPLIERS`, 1.0 when the
state is unknown) and ``stop_atr``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NotRequired, TypedDict, cast

from core.atomic import SCHEMA_VERSION, Envelope, ReadResult, publish_json, read_json
from core.config import Config

log = logging.getLogger(__name__)

POLICY_NAME = "qlearning_policy.json"
"""File name of the policy inside ``runtime/``."""
POLICY_SCHEMA_VERSION = SCHEMA_VERSION
"""``schema_version`` of the document (the envelope's, unchanged since the file was introduced)."""
SIZE_MULTIPLIERS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
"""The multipliers of a position's size the sizing agent chooses from; a published multiplier is one of them
(the reader accepts any number within their range)."""
NEUTRAL_MULTIPLIER = 1.0
"""The size the allocation gives unchanged: shadow mode, and the fallback of every unusable policy."""


class GreedyChoice(TypedDict, total=False):
    """An agent's greedy action with its meaning (``choice``/``aggressiveness``/``level`` for the meta agent,
    ``multiplier``/``stop_atr`` for the sizing agent) and its learned Q-value (None when not learned here)."""

    action: int
    label: str
    q: float | None
    choice: str
    aggressiveness: float
    level: str
    multiplier: float
    stop_atr: float | None


class ExploringChoice(TypedDict):
    """The epsilon-greedy action drawn for the state, and whether it was a random one."""

    action: int
    label: str
    explored: bool


class AgentChoice(TypedDict):
    """What one agent says in the current state."""

    known_state: bool
    visits: int
    greedy: GreedyChoice
    epsilon: float
    epsilon_greedy: ExploringChoice
    updates: int


class PolicyPayload(TypedDict):
    """The content of the policy (without the envelope)."""

    symbol: str
    apply_sizing: bool
    state: dict[str, Any] | None
    agents: dict[str, AgentChoice]
    sizing_multiplier: float
    stop_atr: float | None
    reason: NotRequired[str]
    """Why the current state is unknown (then ``state`` is None and the agents are empty)."""
    state_time: NotRequired[str]
    state_time_source: NotRequired[str]
    state_key: NotRequired[str]


class PolicyDocument(PolicyPayload, Envelope):
    """The document as written: the envelope and the payload."""


def policy_path(cfg: Config) -> Path:
    """``runtime/qlearning_policy.json`` of the configured home."""
    return cfg.runtime_dir / POLICY_NAME


def validate_policy(doc: Mapping[str, Any]) -> str | None:
    """Why ``doc`` has no usable ``sizing_multiplier``, or None when it has one."""
    value = doc.get("sizing_multiplier")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"`sizing_multiplier` must be a number, got {value!r}"
    if not min(SIZE_MULTIPLIERS) <= value <= max(SIZE_MULTIPLIERS):
        return f"`sizing_multiplier` {value} is outside {min(SIZE_MULTIPLIERS)}..{max(SIZE_MULTIPLIERS)}"
    return None


def publish_policy(cfg: Config, producer: str, payload: PolicyPayload) -> PolicyDocument:
    """Write the policy atomically inside the envelope; returns the document.

    Raises ValueError (naming the file) when the payload has no usable multiplier or holds NaN; nothing is
    written then.
    """
    problem = validate_policy(payload)
    if problem:
        raise ValueError(f"{POLICY_NAME}: refusing to publish: {problem}")
    return cast(PolicyDocument, publish_json(policy_path(cfg), producer, dict(payload)))


def read_policy(cfg: Config, max_age_s: float | None = None) -> ReadResult:
    """Read the policy without raising: ``absent``, ``invalid`` (with the reason), ``stale`` or ``ok``."""
    return read_json(policy_path(cfg), max_age_s=max_age_s, validate=validate_policy)


def policy_document(result: ReadResult) -> PolicyDocument | None:
    """The document of a successful :func:`read_policy`, else None."""
    return cast(PolicyDocument, result.data) if result.ok and result.data is not None else None


_last_sizing_reason: list[str] = [""]
"""The reason :func:`sizing_multiplier` last fell back to 1.0 ("" when it did not): the trader calls it on every
candle, so a reason is logged when it changes, not every time."""


def sizing_multiplier(cfg: Config) -> float:
    """The multiplier the paper trader applies to a new position's size.

    1.0 when ``qlearning.apply_sizing`` is off (shadow mode), and when the policy is absent, invalid, out of
    range or older than ``qlearning.policy_max_age_s``; else the sizing agent's greedy multiplier for the
    current state. Never raises; a reason to fall back is logged when it changes.
    """
    if not cfg.qlearning.apply_sizing:
        return NEUTRAL_MULTIPLIER
    max_age = cfg.qlearning.policy_max_age_s or None
    result = read_policy(cfg, max_age_s=max_age)
    reason = "" if result.ok else result.reason
    if reason != _last_sizing_reason[0]:
        if reason:
            log.warning("sizing multiplier 1.0: %s", reason)
        else:
            log.info("sizing multiplier follows %s again", POLICY_NAME)
        _last_sizing_reason[0] = reason
    doc = policy_document(result)
    return float(doc["sizing_multiplier"]) if doc is not None else NEUTRAL_MULTIPLIER
