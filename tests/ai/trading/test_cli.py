"""Tests of the trading PPO manager: training, progress and its lock, prediction, the out-of-sample benchmark
against independent computations, the staged rollout and its gate, the PPO book's risk guard, the shadow
daemon (in process and as a subprocess) and the scheduled retraining."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from agents.ppo_book import (
    BOOK,
    RiskGuard,
    book_target,
    book_weight,
    check_risk_guard,
    decisions_path,
    latest_decision,
    read_rollout,
    shadow_mode,
    stage_for,
    trip_rollout,
    write_rollout,
)
from ai.trading.benchmark import policy_run
from ai.trading.cli import main
from ai.trading.common import (
    TradingModel,
    benchmark_path,
    experiences_path,
    file_sha256,
    load_model,
    model_path,
    progress_path,
    retrain_path,
)
from ai.trading.env import Action, options_from_config
from ai.trading.features import N_FEATURES, compute_market_features
from ai.trading.retrain import RETRAIN_JOB_ID, retrain, start_scheduler
from ai.trading.shadow_daemon import ShadowRunner
from ai.trading.training import ProgressReporter, read_progress, reported_training, training_lock
from analytics.baselines import exposure_returns
from core.atomic import publish_json, read_json
from core.config import Config, load_config, replace_section
from core.contracts.pnl_history import append_trades
from core.jsonl import append_jsonl, read_jsonl
from market.candles import load_candles, read_csv_candles

REPO = Path(__file__).resolve().parents[3]
TINY = """
[trading_agent]
episode_length = 48
warmup_candles = 30
num_envs = 2
bootstrap_episodes = 2
retrain_candles = 300
retrain_episodes = 2
benchmark_episodes = 2
poll_interval_s = 0.1
replay_lead_candles = 0

[trading_agent.ppo]
n_steps = 48
batch_size = 48
n_epochs = 1
hidden_sizes = [16, 16]
threads = 1
device = "cpu"
"""


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    monkeypatch.setenv("RL_SYSTEM_CONFIG", str(path))
    return path


@pytest.fixture
def tcfg(tiny: Path) -> Config:
    return load_config(tiny)


def write_binance_csv(path: Path, n: int = 360, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """A Binance kline export (12 columns, no header, open times in ms); returns (open times, closes)."""
    rng = np.random.default_rng(seed)
    closes = np.round(30_000 * np.exp(np.cumsum(rng.normal(0.0002, 0.008, n))), 2)
    opens = np.concatenate([[30_000.0], closes[:-1]])
    times = 1_704_067_200_000 + np.arange(n, dtype=np.int64) * 3_600_000
    with open(path, "w") as fh:
        for t, o, c in zip(times, opens, closes, strict=True):
            high, low = max(o, c) * 1.002, min(o, c) * 0.998
            volume = float(rng.uniform(5, 50))
            fh.write(f"{t},{o:.2f},{high:.2f},{low:.2f},{c:.2f},{volume:.4f},{t + 3_599_999},"
                     f"{volume * c:.2f},{rng.integers(50, 500)},{volume / 2:.4f},{volume * c / 2:.2f},0\n")
    return times, closes


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    try:
        return code, json.loads(out), err
    except json.JSONDecodeError:
        return code, out, err


# ------------------------------------------------------------------------------------------- training


def test_train_saves_the_model_with_its_range_and_reports_progress(tiny: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "btc.csv"
    times, _ = write_binance_csv(csv, n=200)
    code, out, _ = run_cli(capsys, "train", "--candles", str(csv), "--episodes", "3", "--quiet")
    cfg = load_config(tiny)
    assert code == 0
    assert out["train_range"]["start"] == times[0] and out["train_range"]["end"] == times[-1]
    assert out["train_range"]["bars"] == 200 and out["timeframe"] == "1h"
    model = load_model(model_path(cfg))
    assert model.train_range == out["train_range"] and model.extra["data_source"] == "csv:btc.csv"
    progress = read_json(progress_path(cfg)).data
    assert progress["active"] is False and progress["progress"] == 100.0
    assert progress["message"].startswith("Training complete") and progress["episodes_done"] == 3
    # The budget is 3 episodes of 48 steps, split into equal rollouts: not rounded up to whole 48-step rollouts
    # of both environments (192 steps, 4 episodes).
    assert progress["steps_total"] == 3 * 48 and out["metrics"]["timesteps"] == 3 * 48
    assert set(progress["metrics"]) == {"current_reward", "avg_reward", "policy_loss", "value_loss"}
    assert all(isinstance(v, float) for v in progress["metrics"].values())
    code, printed, _ = run_cli(capsys, "progress")
    assert code == 0 and printed["message"] == progress["message"]


def test_a_second_training_is_refused_while_one_runs(tcfg: Config, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "btc.csv"
    write_binance_csv(csv, n=120)
    with training_lock(tcfg):
        code, _, err = run_cli(capsys, "train", "--candles", str(csv), "--episodes", "1", "--quiet")
    assert code == 3
    assert "already running" in err and f"pid {os.getpid()}" in err
    assert not model_path(tcfg).exists()


def test_progress_counts_steps_not_the_episodes_parallel_environments_finish(cfg: Config) -> None:
    reporter = ProgressReporter(cfg, episodes=2, min_interval_s=0.0)
    reporter.start()
    reporter.total_steps = 100
    reporter.episode(3, 1.5, [1.0, 2.0], steps=40)  # three short episodes ended, 40 of 100 steps done
    doc = read_json(progress_path(cfg)).data
    assert doc["active"] is True and doc["progress"] == 40.0 and doc["message"] == "Episode 2/2"
    assert doc["metrics"]["avg_reward"] == 1.5 and doc["steps_done"] == 40
    reporter.finish("done")
    assert read_json(progress_path(cfg)).data["progress"] == 100.0


def test_progress_watch_stops_when_the_training_process_died(cfg: Config,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    publish_json(progress_path(cfg), "shadow_ppo", {"active": True, "progress": 30.0, "message": "Episode 3/10",
                                                    "pid": dead.pid, "metrics": {}})
    assert read_progress(cfg)["active"] is False  # checked first: without it `--watch` would never return
    code, out, _ = run_cli(capsys, "progress", "--watch", "--interval", "0.01")
    assert code == 0 and out["active"] is False and f"process {dead.pid} ended" in out["message"]


def test_a_failed_training_is_recorded_and_releases_the_lock(cfg: Config) -> None:
    with pytest.raises(RuntimeError), reported_training(cfg, 5, "doomed"):
        raise RuntimeError("out of candles")
    doc = read_json(progress_path(cfg)).data
    assert doc["active"] is False and doc["message"] == "Training failed: out of candles"
    with training_lock(cfg):  # free again
        pass


# ------------------------------------------------------------------------------------------ prediction


def test_predict_answers_for_an_observation_dict_and_the_latest_candle(tiny: Path,
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


def test_predict_reports_bad_input_and_a_missing_model(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "predict", "--obs", "{}")
    assert code == 3 and "no trained model yet" in err
    assert run_cli(capsys, "train", "--source", "synthetic", "--lookback-hours", "150", "--episodes", "1",
                   "--quiet")[0] == 0
    code, _, err = run_cli(capsys, "predict", "--obs", "{not json")
    assert code == 2 and "--obs is not valid JSON" in err
    code, _, err = run_cli(capsys, "predict", "--obs", '{"rsi": "high"}')
    assert code == 2 and "`rsi` must be a number" in err


# ------------------------------------------------------------------------------------------- benchmark


def reference_trades(closes: np.ndarray, exposures: list[float], fee: float) -> list[float]:
    """Trade returns by the documented rule, written independently of the module (runs of one sign)."""
    trades, k, n = [], 0, len(exposures)
    while k < n:
        if exposures[k] == 0:
            k += 1
            continue
        sign, growth, first = np.sign(exposures[k]), 1.0, k
        while k < n and np.sign(exposures[k]) == sign:
            added = abs(exposures[k]) if k == first else abs(exposures[k] - exposures[k - 1])
            growth *= 1 + exposures[k] * (closes[k + 1] / closes[k] - 1) - fee * added
            k += 1
        if k < n:
            growth *= 1 - fee * abs(exposures[k - 1])
        trades.append(growth - 1)
    return trades


def reference_metrics(closes: np.ndarray, exposures: list[float], fee: float, ppy: float) -> dict[str, float]:
    returns, previous = [], 0.0
    for k, p in enumerate(exposures):
        returns.append(p * (closes[k + 1] / closes[k] - 1) - fee * abs(p - previous))
        previous = p
    equity, peak, deepest = 1.0, 1.0, 0.0
    for r in returns:
        equity *= 1 + r
        peak = max(peak, equity)
        deepest = min(deepest, equity / peak - 1)
    mean = sum(returns) / len(returns)
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1))
    trades = reference_trades(closes, exposures, fee)
    return {"total_return": equity - 1, "sharpe_ratio": mean / std * math.sqrt(ppy), "max_drawdown": deepest,
            "win_rate": sum(t > 0 for t in trades) / len(trades), "avg_return": sum(trades) / len(trades),
            "n_trades": float(len(trades))}


def test_benchmark_on_a_binance_export_matches_independent_baselines(tiny: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "BTCUSDT-1h.csv"
    times, closes = write_binance_csv(csv, n=360)
    fee, ppy, fast, slow = 0.001, 8760.0, 10, 20
    code, doc, _ = run_cli(capsys, "benchmark", "--candles", str(csv), "--train-frac", "0.7", "--fee", str(fee),
                           "--episodes", "3", "--train-episodes", "2", "--save-model", "--ma-fast", str(fast),
                           "--ma-slow", str(slow), "--json")
    assert code == 0
    split = round(360 * 0.7)
    assert doc["test_window"] == {"start": int(times[split]), "end": int(times[-1]),
                                  "start_time": doc["test_window"]["start_time"],
                                  "end_time": doc["test_window"]["end_time"], "bars": 360 - split}
    assert doc["train_window"]["end"] == int(times[split - 1]) and doc["train_window"]["bars"] == split
    assert doc["in_sample"] is False and doc["fee"] == fee and doc["periods_per_year"] == ppy
    assert doc["data_source"] == "csv:BTCUSDT-1h.csv"
    test_closes = closes[split:]
    expected_bh = reference_metrics(test_closes, [1.0] * (359 - split), fee, ppy)
    ma = []
    for k in range(split, 359):
        f = closes[k - fast + 1:k + 1].mean()
        s = closes[k - slow + 1:k + 1].mean()
        ma.append(1.0 if f > s else -1.0 if f < s else 0.0)
    expected_ma = reference_metrics(test_closes, ma, fee, ppy)
    for key, value in expected_bh.items():
        assert doc["buy_hold_metrics"][key] == pytest.approx(value, rel=1e-9), key
    for key, value in expected_ma.items():
        assert doc["moving_avg_metrics"][key] == pytest.approx(value, rel=1e-9), key
    for name in ("rl_v3", "random"):
        assert set(doc[f"{name}_metrics"]) == set(expected_bh)
    sharpes = {"RL v3": doc["rl_v3_metrics"]["sharpe_ratio"], "Buy & Hold": doc["buy_hold_metrics"]["sharpe_ratio"],
               "Moving Average": doc["moving_avg_metrics"]["sharpe_ratio"],
               "Random": doc["random_metrics"]["sharpe_ratio"]}
    assert doc["winner"] == max((k for k, v in sharpes.items() if v is not None), key=lambda k: sharpes[k])
    gate = doc["gate"]
    rl = doc["rl_v3_metrics"]
    assert gate["sharpe_ratio"]["passed"] == (rl["sharpe_ratio"] is not None and rl["sharpe_ratio"] > 1.5)
    assert gate["max_drawdown"]["passed"] == (rl["max_drawdown"] > -0.15)
    assert gate["passed"] == all(gate[k]["passed"] for k in ("sharpe_ratio", "max_drawdown", "win_rate",
                                                             "beats_buy_hold"))
    cfg = load_config(tiny)
    written = read_json(benchmark_path(cfg)).data
    assert written["buy_hold_metrics"] == doc["buy_hold_metrics"] and written["producer"] == "shadow_ppo"
    assert benchmark_path(cfg).with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert doc["model"]["sha256"] == file_sha256(model_path(cfg))


def test_the_policy_run_follows_the_accounting_and_a_saved_model_can_be_in_sample(
        tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "eth.csv"
    _, closes = write_binance_csv(csv, n=240, seed=9)
    assert run_cli(capsys, "train", "--candles", str(csv), "--episodes", "2", "--quiet")[0] == 0
    code, doc, _ = run_cli(capsys, "benchmark", "--candles", str(csv), "--episodes", "1", "--json")
    assert code == 0 and doc["in_sample"] is True and doc["model"]["source"] == "saved"
    assert doc["train_window"]["bars"] == 240
    cfg = load_config(tiny)
    model = load_model(model_path(cfg))
    features = compute_market_features(read_csv_candles(csv))
    exposures, returns = policy_run(model, features, 168, options_from_config(cfg, fee=0.002))
    assert returns == pytest.approx(exposure_returns(closes[168:], exposures, 0.002), rel=1e-12)


# ---------------------------------------------------------------------------------------------- rollout


@pytest.mark.parametrize(("pct", "stage"), [
    (0, "Stage 0: Shadow Mode (observation only)"), (1, "Stage 1: Initial Testing"), (0.5, "Stage 1: Initial Testing"),
    (5, "Stage 2: Confidence Building"), (10, "Stage 3: Standard Operation"), (25, "Stage 4: Expanded Operation"),
])
def test_stage_names(pct: float, stage: str) -> None:
    assert stage_for(pct)[1] == stage


def passing_benchmark(cfg: Config, age_days: float = 0.0, **changes: Any) -> None:
    doc = {"gate": {"passed": True}, "in_sample": False, "model": {"sha256": file_sha256(model_path(cfg))}, **changes}
    publish_json(benchmark_path(cfg), "shadow_ppo", doc)
    if age_days:
        raw = json.loads(benchmark_path(cfg).read_text())
        stamp = datetime.now(timezone.utc) - timedelta(days=age_days)
        raw["generated_at"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        benchmark_path(cfg).write_text(json.dumps(raw))


def test_rollout_needs_a_passed_recent_out_of_sample_benchmark(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
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


def test_a_forced_rollout_is_recorded(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "rollout", "--capital-pct", "1", "--max-position", "100", "--no-risk-guard",
                           "--force")
    assert code == 0 and out["config"]["forced"] is True and out["config"]["enable_risk_guard"] is False
    assert out["config"]["forced_despite"] and "no usable benchmark" in out["config"]["forced_despite"][0]
    code, _, err = run_cli(capsys, "rollout", "--capital-pct", "150", "--max-position", "100")
    assert code == 2 and "between 0 and 100" in err
    code, _, err = run_cli(capsys, "rollout", "--capital-pct", "5", "--max-position", "inf", "--force")
    assert code == 2 and "--max-position must be a number > 0" in err and "forced despite" not in err
    assert read_rollout(load_config(tiny)).capital_percentage == 1.0  # the rollout in force is kept


# ------------------------------------------------------------------------------------ the PPO book, guard


def test_risk_guard_trips_at_its_limits() -> None:
    guard = RiskGuard(max_daily_loss_pct=2.0, max_drawdown_pct=10.0)
    assert not guard.check(daily_pnl=-19.0, capital=1000.0, drawdown=0.05).trip
    verdict = guard.check(daily_pnl=-20.0, capital=1000.0, drawdown=0.0)
    assert verdict.trip and verdict.daily_loss_pct == pytest.approx(2.0) and "daily loss" in verdict.reason
    assert guard.check(daily_pnl=50.0, capital=1000.0, drawdown=-0.1).trip  # the sign of a drawdown is ignored
    assert not guard.check(daily_pnl=-500.0, capital=0.0, drawdown=0.5).trip  # no capital, nothing at risk


def losing_trade(pnl: float, closed_at: datetime) -> dict[str, Any]:
    return {"closed_at": closed_at.isoformat(), "opened_at": (closed_at - timedelta(hours=2)).isoformat(),
            "symbol": "BTC/USDT", "strategy": BOOK, "side": "long", "qty": 0.01, "entry_price": 40_000.0,
            "exit_price": 40_000.0 + pnl / 0.01, "pnl": pnl, "pnl_pct": pnl / 400.0, "fees": 0.0,
            "equity_after": 10_000.0 + pnl}


def test_a_forced_loss_trips_the_rollout_back_to_stage_0(cfg: Config, caplog: pytest.LogCaptureFixture) -> None:
    write_rollout(cfg, 5.0, 50_000.0, True)
    assert shadow_mode(cfg) is False
    history = cfg.state_dir / "pnl_history.csv"
    now = datetime.now(timezone.utc)
    append_trades(history, [losing_trade(-3.0, now)])
    verdict = check_risk_guard(cfg, capital=500.0, now=now)
    assert verdict is not None and not verdict.trip and read_rollout(cfg).capital_percentage == 5.0
    append_trades(history, [losing_trade(-9.0, now)])  # 12 of 500 today: 2.4 %
    with caplog.at_level(logging.WARNING, logger="agents.ppo_book"):
        verdict = check_risk_guard(cfg, capital=500.0, now=now)
    assert verdict.trip
    rollout = read_rollout(cfg)
    assert rollout.capital_percentage == 0.0 and rollout.stage_index == 0
    assert "daily loss 2.40%" in rollout.tripped["reason"] and rollout.tripped["previous_capital_percentage"] == 5.0
    assert "risk guard tripped" in caplog.text and shadow_mode(cfg) is True
    assert check_risk_guard(cfg, capital=500.0, now=now) is None  # nothing live to guard any more


def test_a_new_rollout_is_judged_on_its_own_trades_not_those_that_tripped_the_last(cfg: Config) -> None:
    history = cfg.state_dir / "pnl_history.csv"
    now = datetime.now(timezone.utc)
    write_rollout(cfg, 5.0, 50_000.0, True)
    append_trades(history, [losing_trade(-60.0, now - timedelta(hours=3))])  # 12 % of 500: trips
    assert check_risk_guard(cfg, capital=500.0, now=now).trip
    assert read_rollout(cfg).capital_percentage == 0.0
    write_rollout(cfg, 1.0, 50_000.0, True)  # rolled out again after a new benchmark
    assert read_rollout(cfg).book_trades_before == 1
    append_trades(history, [losing_trade(1.0, now)])
    verdict = check_risk_guard(cfg, capital=100.0, now=now)
    assert verdict is not None and not verdict.trip and verdict.daily_loss_pct == 0.0
    assert read_rollout(cfg).capital_percentage == 1.0
    append_trades(history, [losing_trade(-3.0, now)])  # 3 % of 100 today, the rollout's own loss
    assert check_risk_guard(cfg, capital=100.0, now=now).trip


def test_trip_rollout_records_the_reason(cfg: Config) -> None:
    write_rollout(cfg, 10.0, 1000.0, True)
    doc = trip_rollout(cfg, "manual test")
    assert doc["tripped"]["reason"] == "manual test" and doc["stage"].startswith("Stage 0")
    assert read_json(cfg.runtime_dir / "rl_v3_rollout.json").data["tripped"]["previous_stage"] == \
        "Stage 3: Standard Operation"


def test_book_target_follows_the_latest_decision_only_when_live(cfg: Config) -> None:
    hour = 3_600_000
    append_jsonl(decisions_path(cfg), {"timestamp": 10 * hour, "action_name": "LONG", "exposure": 0.3})
    assert book_target(cfg, 10 * hour, hour) == 0.0  # no rollout yet
    write_rollout(cfg, 5.0, 1000.0, True)
    assert book_target(cfg, 10 * hour, hour) == pytest.approx(0.3)
    assert book_target(cfg, 11 * hour, hour) == pytest.approx(0.3)  # the previous candle's decision
    assert book_target(cfg, 12 * hour, hour) == 0.0  # too old
    with open(decisions_path(cfg), "a") as fh:
        fh.write('{"timestamp": 1')  # a writer killed mid-line
    assert latest_decision(cfg)["exposure"] == 0.3
    append_jsonl(decisions_path(cfg), {"timestamp": 11 * hour, "action_name": "EMERGENCY_FLATTEN", "exposure": 0.0})
    assert book_target(cfg, 11 * hour, hour) == 0.0
    append_jsonl(decisions_path(cfg), {"timestamp": 13 * hour, "action_name": "SHORT", "exposure": -0.2})
    assert book_target(cfg, 12 * hour, hour) == 0.0  # a decision decided ahead is not this candle's
    assert book_target(cfg, 13 * hour, hour) == pytest.approx(-0.2)
    rollout = read_rollout(cfg)
    assert book_weight(rollout, equity=10_000.0) == pytest.approx(0.05)
    assert book_weight(rollout, equity=100_000.0) == pytest.approx(0.01)  # 5 % would be 5000 > 1000 notional


# ---------------------------------------------------------------------------------------- shadow runner


class AlwaysLong(torch.nn.Module):
    """A policy that always prefers LONG (logits), with value 0."""

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = torch.zeros(obs.shape[0], 6)
        logits[:, Action.LONG] = 5.0
        return logits, torch.zeros(obs.shape[0])


def set_trader(cfg: Config, ts: int) -> None:
    publish_json(cfg.runtime_dir / "trader_status.json", "paper_trader",
                 {"symbol": "BTC/USDT", "timeframe": "1h", "last_candle": {"timestamp": ts}, "equity": 10_000.0})


def test_the_shadow_runner_records_decisions_and_realized_experiences(tcfg: Config) -> None:
    frame = load_candles(tcfg, ["BTC/USDT"])["BTC/USDT"]
    ts, closes = frame["timestamp"].to_numpy(), frame["close"].to_numpy()
    runner = ShadowRunner(tcfg, TradingModel(AlwaysLong(), {}, model_path(tcfg), "stub"))
    set_trader(tcfg, int(ts[1000]))
    assert runner.poll() == 1
    assert runner.poll() == 0  # nothing new until the trader moves
    set_trader(tcfg, int(ts[1004]))
    assert runner.poll() == 4
    decisions = read_jsonl(decisions_path(tcfg))
    assert [d["timestamp"] for d in decisions] == [int(t) for t in ts[1000:1005]]
    assert [d["exposure"] for d in decisions] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert all(d["shadow_mode"] is True and d["action_name"] == "LONG" for d in decisions)
    experiences = read_jsonl(experiences_path(tcfg))
    assert len(experiences) == 4
    fee = tcfg.costs.fee
    expected = exposure_returns(closes[1000:1005], [0.1, 0.2, 0.3, 0.4], fee)
    assert [e["step_return"] for e in experiences] == pytest.approx(expected, rel=1e-12)
    for before, after in zip(experiences, experiences[1:], strict=False):
        assert after["observation"] == before["next_observation"]
        assert after["timestamp"] == before["next_timestamp"]
    assert len(experiences[0]["observation"]) == N_FEATURES
    resumed = ShadowRunner(tcfg, runner.model)  # a restart continues from the saved cursor and account
    set_trader(tcfg, int(ts[1005]))
    assert resumed.poll() == 1
    last = read_jsonl(experiences_path(tcfg))[-1]
    assert last["step_return"] == pytest.approx(exposure_returns(closes[1004:1006], [0.5], fee, 0.4)[0])
    (tcfg.runtime_dir / "trader_status.json").unlink()
    assert resumed.poll() == 0  # the replay's later candles are not raced through without the trader


def test_in_a_replay_the_runner_decides_ahead_so_the_trader_finds_each_candles_decision(tcfg: Config) -> None:
    cfg = replace_section(tcfg, "trading_agent", replay_lead_candles=3)
    ts = load_candles(cfg, ["BTC/USDT"])["BTC/USDT"]["timestamp"].to_numpy()
    runner = ShadowRunner(cfg, TradingModel(AlwaysLong(), {}, model_path(cfg), "stub"))
    write_rollout(cfg, 5.0, 1000.0, True)
    set_trader(cfg, int(ts[1000]))
    assert runner.poll() == 4  # the trader's candle and the 3 after it
    assert [d["timestamp"] for d in read_jsonl(decisions_path(cfg))] == [int(t) for t in ts[1000:1004]]
    for k, exposure in zip(range(1000, 1004), [0.1, 0.2, 0.3, 0.4], strict=True):
        assert book_target(cfg, int(ts[k]), 3_600_000) == pytest.approx(exposure)  # each candle its own
    set_trader(cfg, int(ts[1002]))
    assert runner.poll() == 2  # up to 1005
    set_trader(cfg, int(ts[900]))  # the trader's replay was reset: the shadow account starts again there
    assert runner.poll() == 4
    assert read_jsonl(decisions_path(cfg))[-4]["timestamp"] == int(ts[900])
    assert read_jsonl(decisions_path(cfg))[-4]["previous_exposure"] == 0.0


# ------------------------------------------------------------------------------------------ retraining


def test_retrain_installs_a_better_candidate_and_keeps_the_model_otherwise(
        tcfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = load_candles(tcfg, ["BTC/USDT"], limit=300)["BTC/USDT"]
    older = load_candles(tcfg, ["BTC/USDT"])["BTC/USDT"].iloc[1000:1040]  # a separate, older stretch
    for i in range(len(older) - 1):
        rows = [older.iloc[j].to_dict() for j in (i, i + 1)]
        append_jsonl(experiences_path(tcfg), {"symbol": "BTC/USDT", "timeframe": "1h", "candle": rows[0],
                                              "next_candle": rows[1]})
    record = retrain(tcfg)
    assert record["accepted"] is True and record["segments"] == 2 and record["experience_candles"] == 40
    assert record["test_window"]["end"] == int(frame["timestamp"].iloc[-1])
    sha = file_sha256(model_path(tcfg))
    assert read_json(benchmark_path(tcfg)).data["model"]["sha256"] == sha
    monkeypatch.setattr("ai.trading.retrain._current_sharpe", lambda *args: 1e9)
    record = retrain(tcfg)
    assert record["accepted"] is False and "below the current model" in record["reason"]
    assert file_sha256(model_path(tcfg)) == sha
    assert read_json(retrain_path(tcfg)).data["accepted"] is False


def test_the_retrain_job_is_scheduled_monthly_with_safe_settings(tcfg: Config) -> None:
    scheduler = start_scheduler(tcfg, threading.Event())
    try:
        job = scheduler.get_job(RETRAIN_JOB_ID)
        assert job.coalesce is True and job.max_instances == 1 and job.misfire_grace_time == 600
        run = job.next_run_time.astimezone(timezone.utc)
        assert (run.day, run.hour, run.minute) == (1, 3, 0) and run > datetime.now(timezone.utc)
    finally:
        scheduler.shutdown(wait=False)


# ------------------------------------------------------------------------------------ other commands


def test_status_experiences_and_shadow_commands(tcfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
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


# ------------------------------------------------------------------------------------ the daemon itself


def wait_for(predicate: Any, timeout: float, what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited with {proc.returncode} before {what}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_daemon_decides_collects_experiences_and_stops_on_sigterm(tiny: Path, rl_home: Path) -> None:
    cfg = load_config(tiny)
    ts = load_candles(cfg, ["BTC/USDT"])["BTC/USDT"]["timestamp"].to_numpy()
    set_trader(cfg, int(ts[2000]))
    env = {**os.environ, "RL_SYSTEM_HOME": str(rl_home), "RL_SYSTEM_CONFIG": str(tiny)}
    proc = subprocess.Popen([sys.executable, str(REPO / "ai" / "shadow_ppo.py"), "run", "--max-decisions", "4"],
                            env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: decisions_path(cfg).exists(), 90, "the first decision", proc)
        set_trader(cfg, int(ts[2003]))
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill() if proc.poll() is None else None
    log_text = proc.stderr.read().decode()
    assert "training a small bootstrap model" in log_text
    decisions = read_jsonl(decisions_path(cfg))
    assert [d["timestamp"] for d in decisions] == [int(t) for t in ts[2000:2004]]
    assert all(d["shadow_mode"] is True for d in decisions)
    experiences = read_jsonl(experiences_path(cfg))
    assert len(experiences) == 3 and all(len(e["next_observation"]) == N_FEATURES for e in experiences)
    assert read_json(cfg.runtime_dir / "heartbeats" / "shadow_ppo.json").data["state"] == "stopped"
    assert read_json(cfg.runtime_dir / "rl_v3_status.json").data["experiences_collected"] == 3

    set_trader(cfg, int(ts[2004]))
    proc = subprocess.Popen([sys.executable, "-m", "ai.trading.cli", "run"], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(read_jsonl(decisions_path(cfg))) == 5, 60, "the resumed decision", proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill() if proc.poll() is None else None
    assert read_jsonl(experiences_path(cfg))[-1]["next_timestamp"] == int(ts[2004])
