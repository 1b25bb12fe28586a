"""End to end: the start script's daemons on an empty RL_SYSTEM_HOME, offline, as a user runs them.

Replays synthetic candles through the paper trader with the weights bridge watching, then shows trades in the
history, the performance tracker publishing the fallback sources from them, allocations following a new RL
weights file, and the portfolio optimizer taking over (with reasons) when the RL file is corrupted, stale or
deleted. Finally the stop command ends every daemon cleanly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.atomic import atomic_write_json, atomic_write_text
from core.config import REPO_ROOT, STRATEGIES
from core.contracts.pnl_history import read_history
from core.contracts.weights import publish_weights

SCRIPT = REPO_ROOT / "scripts" / "rl_system.py"
CONFIG = """
[trader]
replay_speed = 200.0
status_interval_s = 0.5
[bridge]
rl_max_age_s = 3600.0
recheck_interval_s = 1.0
[performance]
track_interval_s = 1
[qlearning]
debounce_s = 0.2
[strategy_agent]
episodes = 10
retrain_after_new_trades = 1000000
gate_confidence = 0.0  # the plumbing of RL weights is tested here; the performance gate in tests/ai/allocation
[trading_agent]
bootstrap_episodes = 2
episode_length = 128
retrain_candles = 1000
[dashboard]
port = 0  # any free port: the start command prints the URL
"""
# The replay closes hundreds of trades a second: the trainer trains its first model only (not one every 50
# trades) and the shadow PPO bootstraps a small one, so the test stays well under a minute on two cores.
FIRST_PHASE = ("weights_bridge", "paper_trader", "qlearning")
"""Started first; the performance tracker joins once there is a history, and phase two adds the rest."""


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())


def _wait(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _allocations(home: Path) -> dict[str, Any]:
    return json.loads((home / "runtime" / "allocations_override.json").read_text())


def _history_days(history: Path) -> int:
    trades = read_history(history).trades
    return 0 if trades.empty else (trades["closed_at"].max() - trades["closed_at"].min()).days


@pytest.mark.slow
def test_whole_loop_offline(rl_home: Path, tmp_path: Path) -> None:
    config = tmp_path / "e2e.toml"
    config.write_text(CONFIG)
    runtime = rl_home / "runtime"
    started = _cli(config, "start", "--only", *FIRST_PHASE)
    assert started.returncode == 0, started.stderr
    try:
        # Trades flow into the history.
        history = rl_home / "state" / "pnl_history.csv"
        _wait(lambda: len(read_history(history).trades) >= 20, "closed trades in state/pnl_history.csv")
        trades = read_history(history).trades
        assert set(trades["strategy"]) <= set(STRATEGIES)
        # Nothing published yet: equal weights, with the reasons the sources were passed over.
        first = _wait(lambda: _allocations(rl_home), "the first allocations file")
        assert first["source"] == "equal"
        assert set(first["fallback_reasons"]) == {"rl", "portfolio_optimizer", "strategy_lab"}

        # The performance tracker runs the fallback sources as its jobs once there are weeks of (replayed) trades.
        _wait(lambda: _history_days(history) >= 30, "30 days of trades", 30)
        tracker = _cli(config, "start", "--only", "performance_tracker")
        assert tracker.returncode == 0, tracker.stderr
        optimizer = _wait(lambda: (a := _allocations(rl_home))["source"] == "portfolio_optimizer" and a,
                          "allocations from the portfolio optimizer", 20)
        assert optimizer["fallback_reasons"] == {"rl": "rl_strategy_weights.json: file not found"}
        lab = _wait(lambda: json.loads((runtime / "strategy_lab_weights.json").read_text()),
                    "the strategy lab's weights", 10)
        assert lab["producer"] == "strategy_lab" and sum(lab["weights"].values()) == pytest.approx(1.0, abs=1e-9)

        # A new RL weights file wins, the trader sizes by it and the tracker records it.
        rl_weights = {s: (0.44 if i == 0 else 0.08) for i, s in enumerate(STRATEGIES)}
        rl_file = runtime / "rl_strategy_weights.json"
        publish_weights(rl_file, "test", rl_weights, model_version="e2e")
        doc = _wait(lambda: (a := _allocations(rl_home))["source"] == "rl" and a, "allocations from RL", 10)
        assert doc["weights"]["turtle_trading"] == pytest.approx(0.44) and doc["fallback_reasons"] == {}
        status = _wait(lambda: (s := json.loads((runtime / "trader_status.json").read_text()))
                       ["allocation"]["source"] == "rl" and s, "the trader using the RL allocation", 10)
        assert status["allocation"]["weights"]["turtle_trading"] == pytest.approx(0.44)
        weight_history = rl_home / "state" / "rl_weight_history.jsonl"
        _wait(lambda: any(json.loads(line).get("source") == "rl"
                          for line in weight_history.read_text().splitlines() if line.strip()),
              "the weight history recording the RL source", 10)

        # Corrupted: the portfolio optimizer takes over, with the reason RL was passed over.
        atomic_write_text(rl_file, '{"weights": {"turtle_trading": 0.5,')
        doc = _wait(lambda: (a := _allocations(rl_home))["source"] != "rl" and a, "fallback after corruption", 10)
        assert doc["source"] == "portfolio_optimizer"
        assert "not valid JSON" in doc["fallback_reasons"]["rl"]

        # Stale: generated long ago with a one-hour limit.
        stale = {"schema_version": 1, "generated_at": "2000-01-01T00:00:00Z", "producer": "test",
                 "weights": rl_weights}
        atomic_write_json(rl_file, stale)
        doc = _wait(lambda: "old" in (a := _allocations(rl_home))["fallback_reasons"].get("rl", "") and a,
                    "fallback after staleness", 10)
        assert doc["source"] == "portfolio_optimizer"

        # Back to fresh, then deleted.
        publish_weights(rl_file, "test", rl_weights)
        _wait(lambda: _allocations(rl_home)["source"] == "rl", "allocations from RL again", 10)
        rl_file.unlink()
        doc = _wait(lambda: (a := _allocations(rl_home))["source"] != "rl" and a, "fallback after deletion", 10)
        assert doc["source"] == "portfolio_optimizer"
        assert "not found" in doc["fallback_reasons"]["rl"]
        assert (rl_home / "state" / "rl_performance_report.json").exists()

        # The Q-learning daemon learns from the trades as they arrive, and the monitor shows it.
        def q_updates() -> int:
            monitor = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "monitor_qlearning.py"),
                                      "--config", str(config), "--json"],
                                     capture_output=True, text=True, timeout=60, env=os.environ.copy())
            return json.loads(monitor.stdout)["agents"]["meta"]["updates"] if monitor.returncode == 0 else 0

        first_updates = _wait(q_updates, "the Q-learning tables learning from trades", 20)
        _wait(lambda: q_updates() > first_updates, "the Q-learning tables growing", 20)

        # Phase two: the rest of the suite. The trainer trains on the trades so far, inference publishes the
        # RL weights, and the bridge puts them in force.
        rest = _cli(config, "start")
        assert rest.returncode == 0, rest.stderr
        assert rest.stdout.count("already running") == len(FIRST_PHASE) + 1
        # The dashboard started with the rest and answers at the URL the start command printed.
        url = next(line.split(": ", 1)[1] for line in rest.stdout.splitlines() if line.startswith("dashboard: "))
        with urllib.request.urlopen(url + "api/health", timeout=10) as answer:
            names = {row["name"] for row in json.loads(answer.read())["daemons"]}
        assert {"dashboard", "paper_trader", "weights_bridge"} <= names
        checkpoint = rl_home / "state" / "rl_model" / "checkpoint_latest.pt"
        _wait(checkpoint.exists, "the trainer's first checkpoint", 60)
        _wait(lambda: json.loads(rl_file.read_text())["producer"] == "rl_inference",
              "weights published by the inference daemon", 30)
        doc = _wait(lambda: (a := _allocations(rl_home))["source"] == "rl" and a, "RL weights in force", 10)
        assert sum(doc["weights"].values()) == pytest.approx(1.0, abs=1e-9)
        log = json.loads((rl_home / "state" / "rl_training_log.json").read_text())
        assert log["records"] and log["records"][-1]["promoted"] is True

        # The trading PPO runs in shadow mode: a decision per closed candle, then the realized experiences.
        decisions = runtime / "rl_v3_decisions.jsonl"
        _wait(lambda: len(decisions.read_text().splitlines()) >= 3, "shadow decisions", 90)
        assert all(json.loads(line)["shadow_mode"] is True for line in decisions.read_text().splitlines())
        experiences = rl_home / "state" / "rl_v3" / "experiences.jsonl"
        _wait(lambda: experiences.read_text().strip(), "shadow experiences", 30)

        status = json.loads(_cli(config, "status", "--json").stdout)
        assert all(row["running"] and not row["heartbeat_stale"] for row in status["daemons"]), status
        assert status["loop"]["allocation_source"] == "rl" and status["loop"]["strategy_model_version"]
        assert status["loop"]["trader"]["trades_written"] > 0
    finally:
        stopped = _cli(config, "stop")
    assert stopped.returncode == 0
    assert "killed" not in stopped.stdout, stopped.stdout
    assert not any((runtime / "pids").glob("*.pid"))
    # The trader saved its state on SIGTERM and the history is intact.
    assert (rl_home / "state" / "paper_trader_state.json").exists()
    assert read_history(rl_home / "state" / "pnl_history.csv").skipped == 0
