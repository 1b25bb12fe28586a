"""The trading PPO's status: what it says with nothing yet, with a model, decisions, experiences, a rollout and a
running daemon (fresh, stopped or silent), and the status document it publishes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from ai.ppo import PPO
from ai.ppo.networks import ActionSpec
from ai.trading.account import ACTION_NAMES, N_ACTIONS
from ai.trading.common import DAEMON_NAME
from ai.trading.features import FEATURE_NAMES, N_FEATURES
from ai.trading.status import publish_status, status_payload
from core.atomic import publish_json, read_json
from core.config import Config, PPOConfig, replace_section
from core.contracts.rollout import set_shadow_mode, write_rollout
from core.contracts.shadow_decisions import append_decision
from core.contracts.shadow_status import experiences_path, status_path
from core.contracts.trading_model import MODEL_KIND, model_path
from core.daemon import heartbeat_path

TRAIN_RANGE = {"start": 1_704_067_200_000, "end": 1_704_150_000_000, "start_time": "2024-01-01T00:00:00Z",
               "end_time": "2024-01-01T23:00:00Z", "bars": 24}


def install_model(cfg: Config, **extra: Any) -> Path:
    agent = PPO(None, PPOConfig(hidden_sizes=[8], threads=1, device="cpu"), obs_dim=N_FEATURES,
                action_spec=ActionSpec("discrete", N_ACTIONS))
    path = model_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    agent.save(path, extra_meta={"kind": MODEL_KIND, "features": list(FEATURE_NAMES), "actions": list(ACTION_NAMES),
                                 "train_range": TRAIN_RANGE, "trained_at": "2024-01-02T03:04:05Z", **extra})
    return path


def write_heartbeat(cfg: Config, age_s: float = 0.0, **fields: Any) -> None:
    """A heartbeat of the shadow daemon published ``age_s`` seconds ago."""
    path = heartbeat_path(cfg, DAEMON_NAME)
    if age_s == 0.0:
        publish_json(path, DAEMON_NAME, fields)
        return
    stamp = (datetime.now(timezone.utc) - timedelta(seconds=age_s)).strftime("%Y-%m-%dT%H:%M:%SZ")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema_version": 1, "generated_at": stamp, "producer": DAEMON_NAME, **fields}))


def decision(timestamp: int, action_name: str, confidence: float, exposure: float) -> dict[str, Any]:
    return {"timestamp": timestamp, "candle_time": f"t{timestamp}", "decided_at": f"decided {timestamp}",
            "symbol": "BTC/USDT", "close": 40_000.0, "action": ACTION_NAMES.index(action_name),
            "action_name": action_name, "confidence": confidence, "exposure": exposure, "shadow_mode": True,
            "model_sha256": "abc"}


def test_with_nothing_yet_the_status_says_so(cfg: Config) -> None:
    status = status_payload(cfg)
    assert status["model_error"] == (f"{model_path(cfg)}: no trained model yet; run `python ai/shadow_ppo.py "
                                     "train` first")
    assert {k: v for k, v in status.items() if k != "model_error"} == {
        "active": False, "shadow_mode": True, "model_loaded": False, "model_path": str(model_path(cfg)),
        "trained_range": None, "trained_at": None, "symbol": "BTC/USDT", "timeframe": "1h",
        "experiences_collected": 0, "last_decision_at": None, "last_decision": None, "rollout": None,
        "daemon": None,
    }


def test_a_model_decisions_experiences_and_a_rollout_are_reported(cfg: Config) -> None:
    install_model(cfg)
    append_decision(cfg, decision(1_000, "LONG", 0.4, 0.1))
    append_decision(cfg, decision(2_000, "REDUCE", 0.7, 0.05))  # the newest line is the one reported
    path = experiences_path(cfg)
    path.write_text('{"timestamp": 1}\n\n{"timestamp": 2}\n   \n{"timestamp": 3}\n')
    doc = write_rollout(cfg, 10.0, 0.2, True)
    cfg = replace_section(cfg, "trading_agent", symbol="ETH/USDT")
    cfg = replace_section(cfg, "market", timeframe="4h")

    status = status_payload(cfg)
    assert status["model_loaded"] is True and status["model_error"] is None
    assert status["trained_range"] == TRAIN_RANGE and status["trained_at"] == "2024-01-02T03:04:05Z"
    assert status["experiences_collected"] == 3  # blank lines are not experiences
    assert status["last_decision_at"] == "decided 2000"
    assert status["last_decision"] == {"candle_time": "t2000", "action_name": "REDUCE", "confidence": 0.7,
                                       "exposure": 0.05, "shadow_mode": True}
    assert status["rollout"] == {"capital_percentage": 10.0, "stage": doc["stage"]}
    assert status["shadow_mode"] is False  # a rollout above 0 % switches shadow mode off
    assert (status["symbol"], status["timeframe"]) == ("ETH/USDT", "4h")
    set_shadow_mode(cfg, True, reason="paused")
    assert status_payload(cfg)["shadow_mode"] is True


def test_an_unusable_model_is_reported_not_raised(cfg: Config) -> None:
    install_model(cfg, kind="something_else")
    status = status_payload(cfg)
    assert status["model_loaded"] is False and status["trained_range"] is None and status["trained_at"] is None
    assert status["model_error"].startswith(f"{model_path(cfg)}: not a trading PPO model (kind 'something_else')")
    model_path(cfg).write_bytes(b"not a checkpoint")
    status = status_payload(cfg)
    assert status["model_loaded"] is False and "not a loadable weights-only checkpoint" in status["model_error"]


def test_a_fresh_heartbeat_makes_the_daemon_active(cfg: Config) -> None:
    write_heartbeat(cfg, pid=4321, uptime_s=12.5, state="running", next_retrain_at="2024-02-01T03:00:00Z",
                    decisions=7, waiting="waiting for the paper trader's status")
    status = status_payload(cfg)
    assert status["active"] is True
    assert status["daemon"] == {"pid": 4321, "uptime_s": 12.5, "state": "running",
                                "next_retrain_at": "2024-02-01T03:00:00Z",
                                "waiting": "waiting for the paper trader's status"}
    write_heartbeat(cfg, pid=4321, uptime_s=30.0, state="stopped")
    status = status_payload(cfg)
    assert status["active"] is False  # a daemon that said it stopped is not active, though it wrote lately
    assert status["daemon"] == {"pid": 4321, "uptime_s": 30.0, "state": "stopped", "next_retrain_at": None,
                                "waiting": None}


@pytest.mark.parametrize("poll_s, age_s, fresh", [
    (5.0, 45.0, True),      # the heartbeat may be up to max(60 s, 3 polls) old
    (5.0, 120.0, False),
    (100.0, 240.0, True),   # a slow poll allows 3 x 100 s
    (100.0, 360.0, False),
])
def test_an_old_heartbeat_means_the_daemon_is_not_running(cfg: Config, poll_s: float, age_s: float,
                                                           fresh: bool) -> None:
    cfg = replace_section(cfg, "trading_agent", poll_interval_s=poll_s)
    write_heartbeat(cfg, age_s=age_s, pid=99, uptime_s=1.0, state="running")
    status = status_payload(cfg)
    assert status["active"] is fresh
    assert (status["daemon"] is not None) is fresh


def test_publish_status_writes_the_document_it_returns(cfg: Config) -> None:
    install_model(cfg)
    write_heartbeat(cfg, pid=1, uptime_s=2.0, state="running")
    doc = publish_status(cfg)
    assert doc["producer"] == "shadow_ppo" and doc["schema_version"] == 1 and "generated_at" in doc
    assert {k: v for k, v in doc.items() if k not in ("producer", "schema_version", "generated_at")} \
        == status_payload(cfg)
    written = read_json(status_path(cfg))
    assert written.ok and written.data == doc
    assert status_path(cfg) == cfg.runtime_dir / "rl_v3_status.json"
    assert written.data["model_loaded"] is True and written.data["active"] is True
