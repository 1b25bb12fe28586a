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

import pytest
import torch

from ai.trading import shadow_daemon
from ai.trading.account import Action
from ai.trading.common import DAEMON_NAME, TradingModel, load_model
from ai.trading.features import N_FEATURES
from ai.trading.shadow_daemon import bootstrap_candles
from ai.trading.shadow_runner import ShadowRunner
from core.atomic import read_json
from core.config import Config, load_config
from core.contracts import shadow_decisions
from core.contracts.shadow_decisions import decisions_path
from core.contracts.shadow_status import experiences_path
from core.contracts.trading_model import model_path
from core.daemon import DaemonContext, WriteErrors, read_heartbeat
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


class _AlwaysLong(torch.nn.Module):
    """A policy that always prefers LONG (logits), with value 0: decisions without training a model."""

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = torch.zeros(obs.shape[0], 6)
        logits[:, Action.LONG] = 5.0
        return logits, torch.zeros(obs.shape[0])


def _full_disk_then_recovery(set_trader: Callable[..., Any], tcfg: Config,
                             monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[int], Any]:
    """Decisions and experiences timestamps after the decisions log could not be written for a while."""
    ts = load_candles(tcfg, ["BTC/USDT"])["BTC/USDT"]["timestamp"].to_numpy()
    runner = ShadowRunner(tcfg, TradingModel(_AlwaysLong(), {}, model_path(tcfg), "stub"))
    now = [0.0]
    ctx = DaemonContext(name=DAEMON_NAME, cfg=tcfg, writes=WriteErrors(clock=lambda: now[0]))
    set_trader(tcfg, int(ts[1000]))
    assert shadow_daemon._poll_safely(runner, None, ctx) == 1
    before = decisions_path(tcfg).read_bytes()
    attempts = []

    def full_disk(*_args: object, **_kw: object) -> None:
        attempts.append(1)
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(shadow_decisions, "append_jsonl", full_disk)
        patch.setattr(shadow_daemon, "publish_status", full_disk)
        set_trader(tcfg, int(ts[1002]))
        assert shadow_daemon._poll_safely(runner, None, ctx) == 0  # no exception: the daemon keeps running
        shadow_daemon._publish_status_safely(tcfg, ctx)
        ctx.beat(state="running")
        beat = read_heartbeat(tcfg, DAEMON_NAME)
        assert beat is not None and beat["state"] == "degraded" and "No space left" in beat["degraded_reason"]
        assert set(beat["write_errors"]) == {shadow_daemon.DECISIONS_WRITE, shadow_daemon.STATUS_WRITE}
        assert decisions_path(tcfg).read_bytes() == before
        tries = len(attempts)
        assert shadow_daemon._poll_safely(runner, None, ctx) == 0 and len(attempts) == tries  # within the backoff

    # the disk has room again
    now[0] += 10.0
    made = shadow_daemon._poll_safely(runner, None, ctx)
    set_trader(tcfg, int(ts[1003]))
    made += shadow_daemon._poll_safely(runner, None, ctx)
    assert made >= 2  # at the latest when the trader moves on
    shadow_daemon._publish_status_safely(tcfg, ctx)
    ctx.beat(state="running")
    assert read_heartbeat(tcfg, DAEMON_NAME)["state"] == "running"
    decided = [d["timestamp"] for d in read_jsonl(decisions_path(tcfg))]
    return decided, [e["timestamp"] for e in read_jsonl(experiences_path(tcfg))], ts


def test_a_write_error_keeps_the_decisions_degrades_the_heartbeat_and_is_retried(
        set_trader: Callable[..., Any], tcfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    decided, _, ts = _full_disk_then_recovery(set_trader, tcfg, monkeypatch)
    # the candles the failure held back are decided once each: no gap, no duplicate decision
    assert decided == sorted(set(decided)) and decided[-1] == int(ts[1003])
    assert all(b - a == 3_600_000 for a, b in zip(decided, decided[1:], strict=False))


def test_a_failed_decision_write_does_not_repeat_an_experience(
        set_trader: Callable[..., Any], tcfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    decided, experienced, _ = _full_disk_then_recovery(set_trader, tcfg, monkeypatch)
    assert experienced == decided[:-1]
