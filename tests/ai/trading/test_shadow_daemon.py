"""Tests of the shadow_ppo daemon: a bootstrap model trained before the trader's clock only; as a process:
bootstrap, decisions, experiences, resume and SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ai.trading.common import load_model
from ai.trading.features import N_FEATURES
from ai.trading.shadow_daemon import bootstrap_candles
from core.atomic import read_json
from core.config import load_config
from core.contracts.shadow_decisions import decisions_path
from core.contracts.shadow_status import experiences_path
from core.contracts.trading_model import model_path
from core.jsonl import read_jsonl
from market.sources import load_candles

REPO = Path(__file__).resolve().parents[3]


def wait_for(predicate: Any, timeout: float, what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited with {proc.returncode} before {what}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_daemon_decides_collects_experiences_and_stops_on_sigterm(set_trader: Callable[..., Any], tiny: Path, rl_home: Path) -> None:
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
    # The bootstrap model saw only candles before the first one it decided on (the replay's later candles exist).
    trained = load_model(model_path(cfg)).train_range
    assert trained is not None and trained["end"] == int(ts[1999]) and trained["bars"] == 300
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


def test_the_bootstrap_model_trains_only_on_candles_before_the_traders_clock(
        set_trader: Callable[..., Any], tiny: Path, rl_home: Path) -> None:
    cfg = load_config(tiny)
    ts = load_candles(cfg, ["BTC/USDT"])["BTC/USDT"]["timestamp"].to_numpy()
    waiting = bootstrap_candles(cfg)  # a replay and no trader yet: its clock is unknown
    assert isinstance(waiting, str) and "waiting for the paper trader's status" in waiting
    set_trader(cfg, int(ts[50]))  # the replay has just started: 50 candles before it, 78 needed
    waiting = bootstrap_candles(cfg)
    assert isinstance(waiting, str) and "50 candle(s) before the trader's clock" in waiting and "needs 78" in waiting
    set_trader(cfg, int(ts[1200]))
    candles = bootstrap_candles(cfg)
    assert not isinstance(candles, str)
    assert candles.frame["timestamp"].tolist() == [int(t) for t in ts[900:1200]]
