"""Tests of the trading PPO's training: the train command, the single-training lock, progress and its file, the
per-update metrics beside the model, and learning a planted edge out of sample."""

from __future__ import annotations

import csv as csv_module
import dataclasses
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import ai.trading.training as training
from ai.ppo import METRICS_COLUMNS
from ai.trading.benchmark import evaluate_window
from ai.trading.common import TradingModel, load_model
from ai.trading.market_features import compute_market_features
from ai.trading.training import (
    ProgressReporter,
    mirrored,
    read_progress,
    reported_training,
    train_agent,
    training_features,
    training_lock,
)
from core.atomic import publish_json, read_json
from core.config import Config, load_config
from core.contracts.trading_model import metrics_path, model_path
from core.contracts.trading_reports import progress_path
from market.frames import validate_candles
from market.planted import PlantedSpec, generate_planted
from market.synthetic import generate_market


def test_train_saves_the_model_with_its_range_and_reports_progress(write_binance_csv: Callable[..., Any], run_cli: Callable[..., Any], tiny: Path, tmp_path: Path,
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
    # The learning curve sits beside the model: one row per update (3 x 48 steps in rollouts of 2 x 36 -> 2).
    with open(metrics_path(cfg), newline="", encoding="utf-8") as fh:
        rows = list(csv_module.DictReader(fh))
    assert [int(r["update"]) for r in rows] == [1, 2] and list(rows[0]) == list(METRICS_COLUMNS)
    assert int(rows[-1]["num_timesteps"]) == out["metrics"]["timesteps"]
    assert all(math.isfinite(float(r[k])) for r in rows for k in ("policy_loss", "value_loss", "entropy",
                                                                   "approx_kl", "clip_fraction", "steps_per_s"))


def test_a_second_training_is_refused_while_one_runs(write_binance_csv: Callable[..., Any], run_cli: Callable[..., Any], tcfg: Config, tmp_path: Path,
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


def test_progress_watch_stops_when_the_training_process_died(run_cli: Callable[..., Any], cfg: Config,
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


def test_the_progress_file_moves_during_an_update_not_only_between_updates(tcfg: Config,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # A long update (3 epochs of 6 minibatches): every minibatch step publishes (no throttle here).
    cfg = dataclasses.replace(tcfg, trading_agent=dataclasses.replace(
        tcfg.trading_agent, ppo=dataclasses.replace(tcfg.trading_agent.ppo, n_epochs=3, batch_size=16)))
    written: list[dict[str, Any]] = []
    real_publish = training.publish_progress
    monkeypatch.setattr(training, "publish_progress", lambda c, doc: (written.append(dict(doc)), real_publish(c, doc)))
    frame = generate_market(["BTC/USDT"], n_candles=200, seed=3).candles["BTC/USDT"]
    with reported_training(cfg, 4, "test") as reporter:
        reporter.min_interval_s = 0.0
        train_agent(cfg, frame, 4, reporter)  # 4 x 48 steps: 2 updates of 2 x 48 in minibatches of 16
        reporter.finish("done")
    inside = [doc["message"] for doc in written if "minibatch" in doc["message"]]
    assert inside == [f"Episode {2 * u}/4, update {u}/2: minibatch {k}/18" for u in (1, 2) for k in range(1, 19)]
    assert read_json(progress_path(cfg)).data["message"] == "done"


def test_progress_inside_an_update_is_throttled(cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[str] = []
    monkeypatch.setattr(training, "publish_progress", lambda _c, doc: written.append(doc["message"]))
    clock = iter([100.0, 100.1, 100.2, 100.7, 100.8])
    monkeypatch.setattr(training.time, "monotonic", lambda: next(clock))
    reporter = ProgressReporter(cfg, episodes=1, min_interval_s=0.5)
    for step in range(1, 6):
        reporter.pulse(training.Pulse(update=1, updates=1, num_timesteps=10, step=step, steps=5))
    assert written == ["Episode 0/1, update 1/1: minibatch 1/5", "Episode 0/1, update 1/1: minibatch 4/5"]


def test_the_agent_finds_a_planted_mean_reverting_edge_out_of_sample() -> None:
    # 2500 hourly candles whose returns are AR(1) with phi = -0.35: train on the first 1750 (40 episodes of 256
    # steps, about 10k steps, seconds), then the benchmark's evaluation on the 750 after them, fee 0.1 %.
    threads = torch.get_num_threads()
    try:
        window = _train_and_evaluate_on_a_planted_market()
    finally:
        torch.set_num_threads(threads)  # the training sets one thread (trading_agent.ppo.threads)
    sharpe = {name: m["sharpe_ratio"] for name, m in window.metrics.items()}
    assert sharpe["rl_v3"] > sharpe["buy_hold"] and sharpe["rl_v3"] > sharpe["random"]
    assert sharpe["rl_v3"] > 2.0 and window.metrics["rl_v3"]["total_return"] > 0.05  # after fees


def _train_and_evaluate_on_a_planted_market() -> Any:
    base = Config()
    cfg = dataclasses.replace(base, trading_agent=dataclasses.replace(base.trading_agent, episode_length=256))
    frame = generate_planted(PlantedSpec("mean_reverting", 2500, seed=0)).candles
    result = train_agent(cfg, frame.iloc[:1750], 40)
    model = TradingModel(result.agent.policy.eval(), {}, Path("in-memory"), None)
    features = compute_market_features(frame, cfg.trading_agent.high_volatility_percentile)
    return evaluate_window(cfg, features, 1750, model, 0.001, 5, 8760.0, 10, 20)


def test_the_mirror_image_negates_every_return_and_keeps_a_valid_frame() -> None:
    frame = generate_planted(PlantedSpec("momentum", 300, seed=2)).candles
    mirror = mirrored(frame)
    validate_candles(mirror, "mirror")  # high >= open, close >= low still hold
    np.testing.assert_allclose(np.diff(np.log(mirror["close"])), -np.diff(np.log(frame["close"])), atol=1e-12)
    np.testing.assert_allclose(np.log(mirror["high"] / mirror["low"]), np.log(frame["high"] / frame["low"]))
    assert mirror["open"].iloc[0] == frame["open"].iloc[0]
    assert mirror["timestamp"].equals(frame["timestamp"]) and mirror["volume"].equals(frame["volume"])
    features = training_features(frame, 0.8, mirror=True)
    assert len(features) == 600 and features.segment is not None and set(features.segment) == {0, 1}
