"""The trading agent's sandbox: the four steps run for real in a temporary home, out of sample, seeded, and the
user's home is never written."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from scripts import rl_v3_sandbox as sandbox

FAST = ["--episodes", "4", "--json", "--quiet"]


def run(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    code = sandbox.main([*FAST, *extra])
    return code, json.loads(capsys.readouterr().out)


def test_sandbox_trains_predicts_and_benchmarks_without_touching_the_home(
        rl_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run(capsys)
    assert code == 0 and doc["ok"] is True, doc
    steps = {s["name"]: s for s in doc["steps"]}
    assert list(steps) == ["data", "train", "predict", "benchmark"] and all(s["ok"] for s in steps.values())
    data, train = steps["data"]["details"], steps["train"]["details"]
    assert data["candles"] == sandbox.CANDLES and data["split"] == round(sandbox.CANDLES * 0.7)
    assert train["metrics"]["timesteps"] >= 4 * sandbox.EPISODE_LENGTH
    # trained on the training window only: its last candle is the one before the first test candle
    predictions = steps["predict"]["details"]["predictions"]
    assert train["train_range"]["bars"] == data["split"]
    assert train["train_range"]["end_time"] < predictions[0]["candle_time"]
    assert len(predictions) == sandbox.PREDICTIONS
    assert all(math.isclose(sum(p["probs"].values()), 1.0, abs_tol=1e-4) for p in predictions)
    bench = steps["benchmark"]["details"]
    assert bench["in_sample"] is False
    assert set(bench["metrics"]) == {"rl_v3", "buy_hold", "moving_avg", "random"}
    assert "passed" in bench["gate"] and "out of sample after fees" in steps["benchmark"]["verdict"]
    assert list(rl_home.iterdir()) == []  # nothing written to the user's home
    assert os.environ["RL_SYSTEM_HOME"] == str(rl_home)  # and the home is the user's again afterwards


def test_same_seed_same_outcome(rl_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, first = run(capsys, "--seed", "3")
    _, second = run(capsys, "--seed", "3")

    def outcome(doc: dict[str, Any]) -> list[Any]:
        steps = {s["name"]: s["details"] for s in doc["steps"]}
        return [steps["predict"]["predictions"], steps["benchmark"]["metrics"]]

    assert first["ok"] and outcome(first) == outcome(second)


def test_a_failing_step_stops_the_sandbox_with_exit_1(rl_home: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def no_disk(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sandbox, "train_and_install", no_disk)
    code, doc = run(capsys)
    assert code == 1 and doc["ok"] is False
    assert [(s["name"], s["ok"]) for s in doc["steps"]] == [("data", True), ("train", False)]
    assert "No space left on device" in doc["steps"][1]["verdict"]


def test_keep_leaves_the_sandbox_home_for_inspection(rl_home: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "run_sandbox", lambda *_args, **_kw: [])  # the folder handling only
    code, doc = run(capsys, "--keep")
    kept = Path(doc["home"])
    try:
        assert code == 1 and kept.is_dir() and kept != rl_home
    finally:
        kept.rmdir()
