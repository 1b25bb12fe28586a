"""Tests of :mod:`ai.sweeps.sweep` on the sequential backend: records and leaderboard, a failing trial recorded
while the sweep goes on, a sweep killed part-way (a real process, SIGKILL) resumed without rerunning what it
finished, same-seed determinism, and each trial's TensorBoard curve in its own folder."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from core.config import REPO_ROOT
from core.contracts.experiments import sweep_dir
from core.errors import ExitCode
from tests.ai.sweeps.support import comparable, records, sweep, tiny_config, write_tiny


def test_a_sweep_writes_one_record_per_trial_and_a_ranked_leaderboard(tmp_path: Path) -> None:
    config = write_tiny(tmp_path)
    cfg = tiny_config(config)
    code = sweep(config, "--symbols", "BTC/USDT", "ETH/USDT", "--seeds", "0", "1", "--backend", "sequential",
                 "--id", "seq", "--tensorboard")
    assert code == ExitCode.OK
    found = records(cfg, "seq")
    assert sorted(found) == ["BTC-USDT-seed0", "BTC-USDT-seed1", "ETH-USDT-seed0", "ETH-USDT-seed1"]
    for record in found.values():
        assert record["status"] == "ok" and record["error"] is None
        assert Path(record["checkpoint"]).is_file() and record["wall_s"] > 0
        assert set(record["metrics"]) >= {"sharpe", "buy_hold_sharpe", "moving_avg_sharpe", "random_sharpe",
                                          "gate_passed"}
    with open(sweep_dir(cfg, "seq") / "leaderboard.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    sharpes = [float(r["sharpe"]) for r in rows]
    assert sharpes == sorted(sharpes, reverse=True)
    assert {float(r["sharpe"]) for r in rows} == {r["metrics"]["sharpe"] for r in found.values()}
    btc = [r for r in found.values() if r["symbol"] == "BTC/USDT"]
    mean = sum(r["metrics"]["sharpe"] for r in btc) / 2
    assert all(float(r["seed_sharpe_mean"]) == pytest.approx(mean, rel=1e-5) for r in rows if r["symbol"] == "BTC/USDT")
    assert "BTC/USDT" in (sweep_dir(cfg, "seq") / "leaderboard.md").read_text()
    assert (sweep_dir(cfg, "seq") / "leaderboard.png").read_bytes().startswith(b"\x89PNG")


def test_each_trials_tensorboard_curve_is_in_its_folder_and_matches_its_csv(tmp_path: Path) -> None:
    config = write_tiny(tmp_path)
    cfg = tiny_config(config)
    assert sweep(config, "--symbols", "BTC/USDT", "--seeds", "3", "--backend", "sequential", "--id", "tb",
                 "--tensorboard") == ExitCode.OK
    folder = sweep_dir(cfg, "tb") / "BTC-USDT-seed3"
    assert list(folder.glob("events.out.tfevents.*"))
    events = EventAccumulator(str(folder))
    events.Reload()
    with open(folder / "training_metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows
    for column in ("policy_loss", "value_loss", "approx_kl", "entropy", "explained_variance", "learning_rate"):
        scalars = events.Scalars(f"ppo/{column}")
        assert [s.step for s in scalars] == [int(r["num_timesteps"]) for r in rows]
        assert [s.value for s in scalars] == pytest.approx([float(r[column]) for r in rows], rel=1e-4, abs=1e-6)


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_tiny(tmp_path)
    cfg = tiny_config(config)
    missing = tmp_path / "nowhere" / "candles.csv"
    code = sweep(config, "--symbols", str(missing), "BTC/USDT", "--seeds", "0", "--backend", "sequential", "--id", "f")
    assert code == ExitCode.FAILURE  # some trials failed; the others are there
    found = records(cfg, "f")
    assert found["candles-seed0"]["status"] == "failed"
    assert "candles.csv" in found["candles-seed0"]["error"] and found["candles-seed0"]["checkpoint"] is None
    assert found["BTC-USDT-seed0"]["status"] == "ok"
    with open(sweep_dir(cfg, "f") / "leaderboard.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["status"] for r in rows] == ["ok", "failed"]  # a failed trial ranks last
    assert "1 failed" in capsys.readouterr().out


def test_same_seed_same_metrics_and_another_seed_other_metrics(tmp_path: Path) -> None:
    config = write_tiny(tmp_path)
    cfg = tiny_config(config)
    for sweep_id in ("a", "b"):
        assert sweep(config, "--symbols", "ETH/USDT", "--seeds", "0", "1", "--backend", "sequential",
                     "--id", sweep_id) == ExitCode.OK
    a, b = records(cfg, "a"), records(cfg, "b")
    assert [comparable(r) for r in a.values()] == [comparable(r) for r in b.values()]
    assert a["ETH-USDT-seed0"]["metrics"] != a["ETH-USDT-seed1"]["metrics"]


def test_a_sweep_killed_part_way_resumes_without_rerunning_finished_trials(
        tmp_path: Path, rl_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_tiny(tmp_path)
    cfg = tiny_config(config)
    args = ["--symbols", "BTC/USDT", "ETH/USDT", "SOL/USDT", "--seeds", "0", "1", "--backend", "sequential",
            "--set", "train_episodes=20", "--id", "k"]
    env = {**os.environ, "RL_SYSTEM_HOME": str(rl_home)}
    proc = subprocess.Popen([sys.executable, "ai/experiments.py", "--config", str(config), "sweep", *args, "--quiet"],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = sweep_dir(cfg, "k")
    deadline = time.monotonic() + 120
    while not list(folder.glob("*/trial.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    before = {p.parent.name: p.read_bytes() for p in folder.glob("*/trial.json")}
    assert 1 <= len(before) < 6, "the kill should land after the first trial and before the last"
    assert sweep(config, *args) == ExitCode.OK
    after = records(cfg, "k")
    assert len(after) == 6 and all(r["status"] == "ok" for r in after.values())
    for name, data in before.items():  # finished trials were not run again: their records are byte for byte the same
        assert (folder / name / "trial.json").read_bytes() == data
    assert f"{6 - len(before)} trial(s) run on sequential, {len(before)} already finished" in capsys.readouterr().out
    with open(folder / "leaderboard.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 6


def test_tensorboard_asked_for_without_the_package_stops_the_sweep_before_any_trial(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_tiny(tmp_path)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as when it is not installed
    assert sweep(config, "--symbols", "BTC/USDT", "--backend", "sequential", "--id", "nb", "--tensorboard") == 2
    err = capsys.readouterr().err
    assert "pip install -e .[tensorboard]" in err and len(err.strip().splitlines()) == 1
    assert not sweep_dir(tiny_config(config), "nb").exists()
