"""Tests of the trading PPO's training: the train command, the single-training lock, progress and its file."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ai.trading.common import load_model
from ai.trading.training import ProgressReporter, read_progress, reported_training, training_lock
from core.atomic import publish_json, read_json
from core.config import Config, load_config
from core.contracts.trading_model import model_path
from core.contracts.trading_reports import progress_path


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
