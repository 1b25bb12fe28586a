"""``runtime/rl_v3_rollout.json`` and ``state/rl_v3/settings.json``: the trading PPO's rollout and shadow switch.

The rollout file says how much of the trader's equity the PPO book (strategy ``rl_v3_ppo`` in the trade
history) may use. ``python ai/shadow_ppo.py rollout`` writes it (:func:`write_rollout`), the paper trader reads
it on every candle (:func:`read_rollout`), and the risk guard (:func:`check_risk_guard`, called by the trader
after each PPO trade and by the shadow daemon) sends it back to Stage 0 (:func:`trip_rollout`). The settings
file holds the shadow-mode switch: while it is on, the book follows no decision.

The risk guard lives here rather than with the trader because both sides call it and it reads only shared
files (this rollout and the trade history).

Stages of the rollout: 0 % Stage 0 (shadow mode, observation only), up to 1 % Stage 1, up to 5 % Stage 2,
up to 10 % Stage 3, above 10 % Stage 4.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypedDict

import pandas as pd

from core.atomic import SCHEMA_VERSION, publish_json, read_json, utc_now_iso
from core.config import Config
from core.contracts.pnl_history import EXTRA_STRATEGIES, history_path, read_history

log = logging.getLogger(__name__)

ROLLOUT_NAME = "rl_v3_rollout.json"
"""File name of the rollout inside ``runtime/``."""
SETTINGS_NAME = "settings.json"
"""File name of the shadow switch inside ``state/rl_v3/``."""
ROLLOUT_SCHEMA_VERSION = SCHEMA_VERSION
BOOK = EXTRA_STRATEGIES[0]
"""Strategy name of the PPO book's trades in the trade history (``rl_v3_ppo``)."""
PRODUCER = "shadow_ppo"
STAGES: tuple[tuple[float, str], ...] = (
    (0.0, "Stage 0: Shadow Mode (observation only)"),
    (1.0, "Stage 1: Initial Testing"),
    (5.0, "Stage 2: Confidence Building"),
    (10.0, "Stage 3: Standard Operation"),
    (math.inf, "Stage 4: Expanded Operation"),
)
"""(highest capital percentage, name) of each stage, in order."""


class TripRecord(TypedDict):
    """Why and when the risk guard sent the rollout back to Stage 0."""

    reason: str
    at: str
    previous_capital_percentage: float
    previous_stage: str


class _RolloutRequired(TypedDict):
    capital_percentage: float
    max_position_size: float
    enable_risk_guard: bool
    configured_at: str
    stage: str
    stage_index: int
    forced: bool
    tripped: TripRecord | None
    book_trades_before: int


class RolloutPayload(_RolloutRequired, total=False):
    """What the rollout file holds besides the envelope (``message`` after a trip; extra keys are kept)."""

    message: str


class SettingsPayload(TypedDict):
    """The shadow switch (``state/rl_v3/settings.json``)."""

    shadow_mode: bool
    changed_at: str
    reason: str


def rollout_path(cfg: Config) -> Path:
    """``runtime/rl_v3_rollout.json`` of the configured home."""
    return cfg.runtime_dir / ROLLOUT_NAME


def settings_path(cfg: Config) -> Path:
    """Where the shadow-mode switch is kept (``state/rl_v3/settings.json``)."""
    return cfg.state_dir / "rl_v3" / SETTINGS_NAME


# ---------------------------------------------------------------------------------------------- rollout


def stage_for(capital_percentage: float) -> tuple[int, str]:
    """(stage number, stage name) of a capital percentage."""
    if not math.isfinite(capital_percentage) or capital_percentage < 0:
        raise ValueError(f"capital percentage must be a number >= 0, got {capital_percentage!r}")
    for index, (highest, name) in enumerate(STAGES):
        if capital_percentage <= highest:
            return index, name
    raise AssertionError("unreachable: the last stage has no upper bound")


@dataclass(frozen=True)
class Rollout:
    """The rollout in force (``runtime/rl_v3_rollout.json``)."""

    capital_percentage: float
    max_position_size: float
    enable_risk_guard: bool
    configured_at: str
    stage: str
    stage_index: int
    forced: bool = False
    tripped: dict[str, Any] | None = None
    book_trades_before: int = 0
    """PPO book trades already in the trade history when the rollout was configured: the risk guard judges
    only the trades after them, so the losses that tripped an earlier rollout do not trip the next one."""

    @property
    def live(self) -> bool:
        """True when the book trades real (paper) capital."""
        return self.capital_percentage > 0

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Rollout:
        """The rollout of a document; ValueError naming the first bad key."""
        problem = validate_rollout(doc)
        if problem:
            raise ValueError(problem)
        pct = float(doc["capital_percentage"])
        index, name = stage_for(pct)
        return cls(pct, float(doc["max_position_size"]), bool(doc["enable_risk_guard"]), str(doc["configured_at"]),
                   str(doc.get("stage") or name), index, bool(doc.get("forced", False)), doc.get("tripped"),
                   int(doc.get("book_trades_before") or 0))


def validate_rollout(doc: Mapping[str, Any]) -> str | None:
    """Why ``doc`` is not a usable rollout document, or None."""
    version = doc.get("schema_version", ROLLOUT_SCHEMA_VERSION)
    if version != ROLLOUT_SCHEMA_VERSION:
        return f"`schema_version` is {version!r}; this version reads {ROLLOUT_SCHEMA_VERSION} (write it again)"
    for key in ("capital_percentage", "max_position_size"):
        value = doc.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            return f"`{key}` must be a number >= 0, got {value!r}"
    if float(doc["capital_percentage"]) > 100:
        return f"`capital_percentage` must be at most 100, got {doc['capital_percentage']!r}"
    if not isinstance(doc.get("enable_risk_guard"), bool):
        return f"`enable_risk_guard` must be true or false, got {doc.get('enable_risk_guard')!r}"
    if not isinstance(doc.get("configured_at"), str):
        return "`configured_at` is missing"
    before = doc.get("book_trades_before", 0)
    if isinstance(before, bool) or not isinstance(before, int) or before < 0:
        return f"`book_trades_before` must be an integer >= 0, got {before!r}"
    return None


def read_rollout(cfg: Config) -> Rollout | None:
    """The rollout in force, or None when the file is absent or invalid (the reason is logged)."""
    result = read_json(rollout_path(cfg), validate=validate_rollout)
    if not result.ok or result.data is None:
        level = logging.DEBUG if result.status == "absent" else logging.WARNING
        log.log(level, "no rollout in force: %s", result.reason)
        return None
    return Rollout.from_doc(result.data)


def read_rollout_document(cfg: Config) -> tuple[dict[str, Any] | None, str]:
    """The rollout file's whole document when it is valid, else None, and the reason it is not ("" when it is)."""
    result = read_json(rollout_path(cfg), validate=validate_rollout)
    return (result.data, "") if result.ok else (None, result.reason)


def write_rollout(cfg: Config, capital_percentage: float, max_position_size: float, enable_risk_guard: bool,
                  forced: bool = False, **extra: Any) -> dict[str, Any]:
    """Publish a rollout (stage derived from the percentage); returns the document written."""
    index, name = stage_for(capital_percentage)
    if capital_percentage > 100:
        raise ValueError(f"capital percentage must be at most 100, got {capital_percentage}")
    if not max_position_size > 0:
        raise ValueError(f"max position size must be > 0, got {max_position_size}")
    payload: RolloutPayload = {
        "capital_percentage": float(capital_percentage),
        "max_position_size": float(max_position_size),
        "enable_risk_guard": bool(enable_risk_guard),
        "configured_at": utc_now_iso(),
        "stage": name,
        "stage_index": index,
        "forced": bool(forced),
        "tripped": None,
        "book_trades_before": book_trade_count(cfg),
    }
    doc = publish_json(rollout_path(cfg), PRODUCER, {**payload, **extra})
    set_shadow_mode(cfg, capital_percentage <= 0, reason=f"rollout set to {name} ({capital_percentage:g}%)")
    return doc


def trip_rollout(cfg: Config, reason: str) -> dict[str, Any]:
    """Send the rollout back to Stage 0 (shadow mode) with ``reason`` in the file and the log."""
    current = read_rollout(cfg)
    previous_pct = current.capital_percentage if current else 0.0
    previous_stage = current.stage if current else stage_for(0.0)[1]
    log.warning("risk guard tripped: %s; rollout sent back from %s (%g%%) to Stage 0", reason, previous_stage,
                previous_pct)
    index, name = stage_for(0.0)
    payload: RolloutPayload = {
        "capital_percentage": 0.0,
        "max_position_size": current.max_position_size if current else 0.0,
        "enable_risk_guard": current.enable_risk_guard if current else True,
        "configured_at": utc_now_iso(),
        "stage": name,
        "stage_index": index,
        "forced": False,
        "book_trades_before": book_trade_count(cfg),
        "tripped": {"reason": reason, "at": utc_now_iso(), "previous_capital_percentage": previous_pct,
                    "previous_stage": previous_stage},
        "message": f"Risk guard tripped: {reason}. Rollout back to {name}.",
    }
    doc = publish_json(rollout_path(cfg), PRODUCER, dict(payload))
    set_shadow_mode(cfg, True, reason=f"risk guard tripped: {reason}")
    return doc


# -------------------------------------------------------------------------------------------- shadow switch


def shadow_mode(cfg: Config) -> bool:
    """True (observation only) unless the switch in ``state/rl_v3/settings.json`` says otherwise."""
    result = read_json(settings_path(cfg))
    if not result.ok or result.data is None:
        return True
    return bool(result.data.get("shadow_mode", True))


def set_shadow_mode(cfg: Config, enabled: bool, reason: str = "") -> dict[str, Any]:
    """Switch shadow mode on (decisions are observation only) or off; returns the settings written."""
    payload: SettingsPayload = {"shadow_mode": bool(enabled), "changed_at": utc_now_iso(), "reason": reason}
    doc = publish_json(settings_path(cfg), PRODUCER, dict(payload))
    log.info("shadow mode %s%s", "on" if enabled else "off", f" ({reason})" if reason else "")
    return doc


# --------------------------------------------------------------------------------------------- risk guard


@dataclass(frozen=True)
class GuardVerdict:
    """What the risk guard found: whether it trips, why, and the measured loss and drawdown (in %)."""

    trip: bool
    reasons: list[str] = field(default_factory=list)
    daily_loss_pct: float = 0.0
    drawdown_pct: float = 0.0

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RiskGuard:
    """Trips when the PPO book lost ``max_daily_loss_pct`` of its capital today or is ``max_drawdown_pct`` below
    its peak (both in % of the book's capital; reaching a limit trips)."""

    max_daily_loss_pct: float = 2.0
    max_drawdown_pct: float = 10.0

    @classmethod
    def from_config(cls, cfg: Config) -> RiskGuard:
        return cls(cfg.trading_agent.max_daily_loss_pct, cfg.trading_agent.max_drawdown_pct)

    def check(self, daily_pnl: float, capital: float, drawdown: float) -> GuardVerdict:
        """``daily_pnl`` in currency over today (UTC), ``capital`` the book's capital, ``drawdown`` the fall
        from the book's peak as a fraction (its sign is ignored: -0.12 and 0.12 are both 12 %)."""
        if not capital > 0:
            return GuardVerdict(False)
        loss_pct = max(0.0, -float(daily_pnl)) / capital * 100.0
        drawdown_pct = abs(float(drawdown)) * 100.0
        reasons = []
        if loss_pct >= self.max_daily_loss_pct:
            reasons.append(f"daily loss {loss_pct:.2f}% of the book's capital reached the "
                           f"{self.max_daily_loss_pct:g}% limit")
        if drawdown_pct >= self.max_drawdown_pct:
            reasons.append(f"drawdown {drawdown_pct:.2f}% reached the {self.max_drawdown_pct:g}% limit")
        return GuardVerdict(bool(reasons), reasons, loss_pct, drawdown_pct)


def book_trade_count(cfg: Config) -> int:
    """PPO book trades in the trade history (0 without the file)."""
    trades = read_history(history_path(cfg)).trades
    return int((trades["strategy"] == BOOK).sum())


def book_risk(trades: pd.DataFrame, capital: float, now: datetime | None = None,
              skip: int = 0) -> tuple[float, float]:
    """(P&L of the book's trades closed today (UTC), current drawdown fraction of its closed-trade equity curve).

    The first ``skip`` book trades (in closing order) are left out: they belong to an earlier rollout. The
    curve starts at ``capital`` and adds each remaining trade's ``pnl`` in closing order; the drawdown is
    ``1 - last / peak`` (0 without trades).
    """
    book = trades[trades["strategy"] == BOOK].sort_values("closed_at", kind="stable").iloc[max(0, skip):]
    if book.empty or not capital > 0:
        return 0.0, 0.0
    moment = pd.Timestamp(now or datetime.now(timezone.utc))
    moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
    today = book["closed_at"] >= moment.normalize()
    daily = float(book.loc[today, "pnl"].sum())
    curve = capital + book["pnl"].cumsum().to_numpy()
    peak = max(capital, float(curve.max()))
    return daily, max(0.0, 1.0 - float(curve[-1]) / peak)


def check_risk_guard(cfg: Config, capital: float, now: datetime | None = None) -> GuardVerdict | None:
    """Check the live PPO book against the risk guard and trip the rollout when it must.

    None when there is nothing to guard (no rollout above 0 % or the guard disabled in it).
    """
    rollout = read_rollout(cfg)
    if rollout is None or not rollout.live or not rollout.enable_risk_guard:
        return None
    history = read_history(history_path(cfg))
    daily, drawdown = book_risk(history.trades, capital, now, skip=rollout.book_trades_before)
    verdict = RiskGuard.from_config(cfg).check(daily, capital, drawdown)
    if verdict.trip:
        trip_rollout(cfg, verdict.reason)
    return verdict
