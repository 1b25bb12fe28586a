"""Tests of the trading PPO's command line: prediction, the staged rollout and its gate, status, experiences and
the shadow switch."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from ai.trading.account import Action
from ai.trading.common import file_sha256
from core.atomic import publish_json, read_json
from core.config import Config, load_config
from core.contracts.rollout import read_rollout, shadow_mode, write_rollout
from core.contracts.shadow_status import experiences_path
from core.contracts.trading_model import model_path
from core.contracts.trading_reports import benchmark_path
from core.jsonl import append_jsonl

# ------------------------------------------------------------------------------------------ prediction


def test_predict_answers_for_an_observation_dict_and_the_latest_candle(run_cli: Callable[..., Any], tiny: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "train", "--source", "synthetic", "--lookback-hours", "200", "--episodes", "1",
                   "--quiet")[0] == 0
    code, out, _ = run_cli(capsys, "predict", "--obs", json.dumps({
        "price_change_1m": 0.001, "price_change_5m": 0.005, "volatility": 0.02, "rsi": 55.0, "position_size": 0.0,
        "balance": 10000.0, "equity": 10000.0, "regime": "TREND", "unknown_key": 1}))
    assert code == 0
    probs = out["probs"]
    assert list(probs) == [a.name for a in Action] and sum(probs.values()) == pytest.approx(1.0, abs=1e-6)
    assert out["action_name"] == max(probs, key=probs.get) and out["action"] == Action[out["action_name"]]
    assert out["confidence"] == pytest.approx(max(probs.values()))
    assert isinstance(out["value"], float)
    assert "rsi" not in out["defaulted"] and "macd" in out["defaulted"] and out["ignored"] == ["unknown_key"]
    code, latest, _ = run_cli(capsys, "predict", "--latest")
    assert code == 0 and latest["symbol"] == "BTC/USDT" and latest["action_name"] in probs


def test_predict_reports_bad_input_and_a_missing_model(run_cli: Callable[..., Any], tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "predict", "--obs", "{}")
    assert code == 3 and "no trained model yet" in err
    assert run_cli(capsys, "train", "--source", "synthetic", "--lookback-hours", "150", "--episodes", "1",
                   "--quiet")[0] == 0
    code, _, err = run_cli(capsys, "predict", "--obs", "{not json")
    assert code == 2 and "--obs is not valid JSON" in err
    code, _, err = run_cli(capsys, "predict", "--obs", '{"rsi": "high"}')
    assert code == 2 and "`rsi` must be a number" in err


# ---------------------------------------------------------------------------------------------- rollout


def passing_benchmark(cfg: Config, age_days: float = 0.0, **changes: Any) -> None:
    doc = {"gate": {"passed": True}, "in_sample": False, "model": {"sha256": file_sha256(model_path(cfg))}, **changes}
    publish_json(benchmark_path(cfg), "shadow_ppo", doc)
    if age_days:
        raw = json.loads(benchmark_path(cfg).read_text())
        stamp = datetime.now(timezone.utc) - timedelta(days=age_days)
        raw["generated_at"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        benchmark_path(cfg).write_text(json.dumps(raw))


def test_rollout_needs_a_passed_recent_out_of_sample_benchmark(run_cli: Callable[..., Any], tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = load_config(tiny)
    code, _, err = run_cli(capsys, "rollout", "--capital-pct", "5", "--max-position", "50000")
    assert code == 3 and "no usable benchmark" in err and read_rollout(cfg) is None
    code, out, _ = run_cli(capsys, "rollout", "--capital-pct", "0", "--max-position", "1000")
    assert code == 0 and out["config"]["stage"] == "Stage 0: Shadow Mode (observation only)"
    assert run_cli(capsys, "train", "--source", "synthetic", "--lookback-hours", "150", "--episodes", "1",
                   "--quiet")[0] == 0
    passing_benchmark(cfg, in_sample=True)
    code, _, err = run_cli(capsys, "rollout", "--capital-pct", "5", "--max-position", "50000")
    assert code == 3 and "in sample" in err
    passing_benchmark(cfg, age_days=30)
    code, _, err = run_cli(capsys, "rollout", "--capital-pct", "5", "--max-position", "50000")
    assert code == 3 and "days old" in err
    passing_benchmark(cfg)
    code, out, _ = run_cli(capsys, "rollout", "--capital-pct", "5", "--max-position", "50000")
    assert code == 0 and out["message"] == "Rollout configured: Stage 2: Confidence Building (5%)"
    config = out["config"]
    assert config["capital_percentage"] == 5.0 and config["max_position_size"] == 50000.0
    assert config["enable_risk_guard"] is True and config["forced"] is False and "configured_at" in config
    assert shadow_mode(cfg) is False
    code, status, _ = run_cli(capsys, "rollout-status")
    assert code == 0 and status["configured"] and status["config"]["stage"] == "Stage 2: Confidence Building"


def test_a_forced_rollout_is_recorded(run_cli: Callable[..., Any], tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "rollout", "--capital-pct", "1", "--max-position", "100", "--no-risk-guard",
                           "--force")
    assert code == 0 and out["config"]["forced"] is True and out["config"]["enable_risk_guard"] is False
    assert out["config"]["forced_despite"] and "no usable benchmark" in out["config"]["forced_despite"][0]
    code, _, err = run_cli(capsys, "rollout", "--capital-pct", "150", "--max-position", "100")
    assert code == 2 and "between 0 and 100" in err
    code, _, err = run_cli(capsys, "rollout", "--capital-pct", "5", "--max-position", "inf", "--force")
    assert code == 2 and "--max-position must be a number > 0" in err and "forced despite" not in err
    assert read_rollout(load_config(tiny)).capital_percentage == 1.0  # the rollout in force is kept


# ------------------------------------------------------------------------------------ other commands


def test_status_experiences_and_shadow_commands(run_cli: Callable[..., Any], tcfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    append_jsonl(experiences_path(tcfg), {"timestamp": 1, "observation": [0.0] * 64, "reward": 0.1})
    append_jsonl(experiences_path(tcfg), {"timestamp": 2, "observation": [0.0] * 64, "reward": 0.2})
    code, status, _ = run_cli(capsys, "status")
    assert code == 0 and status["active"] is False and status["model_loaded"] is False
    assert status["shadow_mode"] is True and status["experiences_collected"] == 2
    assert status["last_decision_at"] is None and status["model_path"].endswith("state/rl_v3/ppo_model.pt")
    assert read_json(tcfg.runtime_dir / "rl_v3_status.json").data["experiences_collected"] == 2
    code, out, _ = run_cli(capsys, "experiences", "--limit", "1")
    assert out == {"count": 1, "experiences": [{"timestamp": 2, "reward": 0.2}]}
    code, out, _ = run_cli(capsys, "shadow", "--disable")
    assert out["shadow_mode"] is False and "Stage 0" in out["note"] and shadow_mode(tcfg) is False
    assert run_cli(capsys, "shadow", "--enable")[1] == {"shadow_mode": True}
    write_rollout(tcfg, 5.0, 1000.0, True)
    code, out, _ = run_cli(capsys, "shadow", "--enable")
    assert code == 0 and out["shadow_mode"] is True and "is paused" in out["note"]


def test_train_with_tensorboard_writes_event_files_beside_the_model(run_cli: Callable[..., Any], tiny: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert run_cli(capsys, "train", "--source", "synthetic", "--lookback-hours", "150", "--episodes", "2",
                   "--quiet", "--tensorboard")[0] == 0
    cfg = load_config(tiny)
    runs = list((model_path(cfg).parent / "tensorboard").iterdir())
    assert len(runs) == 1
    events = EventAccumulator(str(runs[0]))
    events.Reload()
    steps = [s.step for s in events.Scalars("ppo/policy_loss")]
    csv_rows = (model_path(cfg).parent / "training_metrics.csv").read_text().splitlines()[1:]
    assert steps and steps == [int(row.split(",")[1]) for row in csv_rows]
    assert {"ppo/entropy", "ppo/approx_kl", "ppo/explained_variance", "ppo/learning_rate"} <= set(
        events.Tags()["scalars"])
