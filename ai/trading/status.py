"""The trading PPO's status: what ``status`` prints and the daemon publishes (:mod:`core.contracts.shadow_status`)."""

from __future__ import annotations

from typing import Any

from ai.ppo import CheckpointError
from ai.trading.common import DAEMON_NAME, finite_or_none, load_model, trading_symbol
from core.config import Config
from core.contracts.rollout import read_rollout, shadow_mode
from core.contracts.shadow_decisions import latest_decision
from core.contracts.shadow_status import ShadowStatus, count_experiences
from core.contracts.shadow_status import publish_status as write_status
from core.contracts.trading_model import model_path
from core.daemon import read_heartbeat


def status_payload(cfg: Config) -> ShadowStatus:
    """The status of the trading PPO: what ``status`` prints and the status document holds."""
    max_age = max(60.0, 3 * cfg.trading_agent.poll_interval_s)
    heartbeat = read_heartbeat(cfg, DAEMON_NAME, max_age_s=max_age)
    active = heartbeat is not None and heartbeat.get("state") not in ("stopped",)
    model_error = None
    trained_range = trained_at = None
    try:
        model = load_model(model_path(cfg))
        trained_range, trained_at = model.train_range, model.extra.get("trained_at")
    except CheckpointError as exc:
        model, model_error = None, str(exc)
    decision = latest_decision(cfg)
    rollout = read_rollout(cfg)
    return finite_or_none({
        "active": active,
        "shadow_mode": shadow_mode(cfg),
        "model_loaded": model is not None,
        "model_path": str(model_path(cfg)),
        "model_error": model_error,
        "trained_range": trained_range,
        "trained_at": trained_at,
        "symbol": trading_symbol(cfg),
        "timeframe": cfg.market.timeframe,
        "experiences_collected": count_experiences(cfg),
        "last_decision_at": decision.get("decided_at") if decision else None,
        "last_decision": {k: decision.get(k) for k in ("candle_time", "action_name", "confidence", "exposure",
                                                       "shadow_mode")} if decision else None,
        "rollout": {"capital_percentage": rollout.capital_percentage, "stage": rollout.stage} if rollout else None,
        "daemon": {k: heartbeat.get(k) for k in ("pid", "uptime_s", "state", "next_retrain_at", "waiting")}
        if heartbeat else None,
    })


def publish_status(cfg: Config) -> dict[str, Any]:
    """Publish the status; returns the document written."""
    return write_status(cfg, status_payload(cfg))
