"""Inference: nothing written without a model, a valid weight document with the state it saw, the trader's
clock as decision time without look-ahead, the model's own feature settings, and the daemon."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ai.allocation.agent import load_agent
from ai.allocation.inference import (
    InferenceDaemon,
    ModelAfterDecisionTimeError,
    main,
    output_path,
    update_once,
)
from ai.allocation.training import train_once
from core.atomic import publish_json
from core.config import STRATEGIES, Config, replace_section
from core.contracts.allocation_model import latest_path
from core.contracts.pnl_history import read_history
from core.contracts.weights import read_weights
from core.daemon import DaemonContext
from tests.ai.allocation.support import START, daemon_process, fast, fast_toml, wait_for, write_trades

DAY = pd.Timedelta(days=1)


def trained(cfg: Config) -> Config:
    """``cfg`` with 300 trades written and a model trained on them (window of 5 periods, 24 candles)."""
    write_trades(cfg, 300)
    assert train_once(fast(cfg))["promoted"]
    return cfg


def set_trader_clock(cfg: Config, when: pd.Timestamp) -> None:
    publish_json(cfg.runtime_dir / "trader_status.json", "paper_trader", {
        "timeframe": "1h", "last_candle": {"timestamp": int(when.value // 1_000_000) - 3_600_000, "close": 1.0}})


# ---------------------------------------------------------------------------------------------- --update


def test_without_a_model_nothing_is_written_and_update_exits_3(cfg: Config,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    write_trades(cfg, 100)
    assert main(["--update"]) == 3
    assert "no model" in capsys.readouterr().err
    assert not output_path(cfg).exists()


def test_update_publishes_valid_weights_with_the_model_version_and_the_state(cfg: Config) -> None:
    trained(cfg)
    assert main(["--update"]) == 0
    result = read_weights(output_path(cfg))
    assert result.ok, result.reason
    doc = result.data
    assert doc["producer"] == "rl_inference" and doc["generated_at"] and doc["model_version"] == 1
    assert list(doc["weights"]) == list(STRATEGIES) and sum(doc["weights"].values()) == pytest.approx(1.0, abs=1e-9)
    assert len(doc["state"]) == 42 and all(abs(v) <= 5.0 for v in doc["state"].values())
    agent, network = load_agent(cfg, numpy_policy=True), load_agent(cfg)
    assert agent is not None and network is not None
    state = np.array(list(doc["state"].values()), dtype=np.float32)
    assert agent.weights(state) == pytest.approx(doc["weights"], abs=1e-12)  # the weights are those of the state shown
    assert network.weights(state) == pytest.approx(doc["weights"], abs=1e-6)  # and the torch network's (float32)


def test_decision_time_is_the_trader_clock_and_later_trades_are_not_used(cfg: Config) -> None:
    trained(cfg)  # on trades up to day 30: a clock after them (an earlier one is refused, see below)
    clock = START + 30 * DAY + pd.Timedelta(hours=5)
    set_trader_clock(cfg, clock)
    first = update_once(cfg)
    assert first["decision_time"] == "2024-02-01T05:00:00Z"
    write_trades(cfg, 50, seed=9, start=clock + pd.Timedelta(minutes=1), days=2)  # beyond the trader's clock
    second = update_once(cfg)
    assert second["state"] == first["state"] and second["weights"] == first["weights"]
    set_trader_clock(cfg, clock + 2 * DAY)  # once the clock passes them they count
    assert update_once(cfg)["state"] != first["state"]


def test_a_model_trained_on_data_after_the_decision_time_is_refused(
        cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    trained(cfg)  # on trades up to day 30
    agent = load_agent(cfg)
    assert agent is not None
    end = pd.Timestamp(agent.training_data["end"])
    last_trade = pd.Timestamp(read_history(cfg.state_dir / "pnl_history.csv").trades["closed_at"].max())
    assert end == last_trade.floor("ms")  # the metadata records the last trade's close (to the millisecond)
    set_trader_clock(cfg, end + pd.Timedelta(hours=1))
    assert update_once(cfg)["decision_time"] > agent.training_data["end"]
    set_trader_clock(cfg, START + 20 * DAY)  # a new replay: the trader is back at day 20
    with pytest.raises(ModelAfterDecisionTimeError, match="trained on trades up to .* after the decision time"):
        update_once(cfg)
    assert not output_path(cfg).exists()  # the weights decided for day 30 were withdrawn
    assert main(["--update"]) == 3
    assert "after the decision time 2024-01-22T00:00:00Z" in capsys.readouterr().err


def test_the_features_use_the_settings_the_model_was_trained_with(cfg: Config) -> None:
    trained(cfg)
    set_trader_clock(cfg, START + 31 * DAY)
    with_training_settings = update_once(fast(cfg))
    other = replace_section(cfg, "strategy_agent", window_periods=30, market_window_candles=168)
    assert update_once(other)["state"] == with_training_settings["state"]


def test_unusable_model_files_exit_2(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    write_trades(cfg, 100)
    latest_path(cfg).parent.mkdir(parents=True)
    latest_path(cfg).write_bytes(b"garbage")
    assert main(["--update"]) == 2
    assert "checkpoint_latest.pt" in capsys.readouterr().err
    assert not output_path(cfg).exists()


# ---------------------------------------------------------------------------------------------- daemon


def read_doc(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_the_daemon_waits_for_a_model_then_follows_new_checkpoints_and_trades(cfg: Config, tmp_path: Path) -> None:
    config = tmp_path / "fast.toml"
    config.write_text(fast_toml(debounce_s=0.2))
    write_trades(cfg, 300)
    set_trader_clock(cfg, START + 42 * DAY)
    heartbeat = cfg.runtime_dir / "heartbeats" / "rl_inference.json"
    out = tmp_path / "inference.out"
    command = ("--loop", "--interval", "60", "--config", str(config))
    with daemon_process(out, "ai.allocation.inference", *command) as proc:
        wait_for(lambda: read_doc(heartbeat)["state"] == "waiting for a model", 30, "waiting state")
        assert not output_path(cfg).exists()
        assert train_once(fast(cfg))["promoted"]  # a checkpoint appears: weights follow within the debounce
        wait_for(lambda: read_doc(output_path(cfg))["model_version"] == 1, 10, "weights after the checkpoint")
        before = read_doc(output_path(cfg))["state"]
        write_trades(cfg, 5, seed=4, start=START + 40 * DAY, days=1)  # the history grows: a new state
        wait_for(lambda: read_doc(output_path(cfg))["state"] != before, 10, "weights after new trades")
        assert read_doc(heartbeat)["state"] == "running"
    assert proc.returncode == 0, out.read_text()
    assert not (cfg.runtime_dir / "pids" / "rl_inference.pid").exists()


def test_the_daemon_repeats_the_update_every_interval(cfg: Config) -> None:
    trained(cfg)
    set_trader_clock(cfg, START + 31 * DAY)
    ctx = DaemonContext("rl_inference", cfg)
    daemon = InferenceDaemon(cfg, ctx)
    thread = threading.Thread(target=daemon.run, args=(0.2,), name="inference-under-test")
    thread.start()
    try:
        heartbeat = cfg.runtime_dir / "heartbeats" / "rl_inference.json"
        # No file changes after the start: only the timer can make the second and third updates.
        wait_for(lambda: read_doc(heartbeat)["updates"] >= 3, 30, "three timed updates")
        assert read_weights(output_path(cfg)).ok
        beat = read_doc(heartbeat)
        assert beat["state"] == "running" and beat["model_version"] == 1
    finally:
        ctx.stop.set()
        thread.join(timeout=20)
    assert not thread.is_alive()


def test_a_write_error_keeps_the_previous_weights_degrades_the_heartbeat_and_is_retried(
        cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    from core import atomic
    from core.daemon import WriteErrors, read_heartbeat

    trained(cfg)
    now = [0.0]
    ctx = DaemonContext(name="rl_inference", cfg=cfg, writes=WriteErrors(clock=lambda: now[0]))
    daemon = InferenceDaemon(cfg, ctx)
    daemon.update("start")
    before = output_path(cfg).read_bytes()
    real_write = atomic.atomic_write_text
    attempts = []

    def full_disk(path: str | os.PathLike[str], text: str) -> None:
        if Path(path).name == output_path(cfg).name:
            attempts.append(path)
            raise OSError(28, "No space left on device")
        real_write(path, text)

    with monkeypatch.context() as patch:
        patch.setattr(atomic, "atomic_write_text", full_disk)
        daemon.update("trades")  # must not raise: the daemon keeps running
        beat = read_heartbeat(cfg, "rl_inference")
        assert beat is not None and beat["state"] == "degraded" and "No space left" in beat["degraded_reason"]
        assert output_path(cfg).read_bytes() == before  # the previous weights stay whole
        daemon.update("timer")  # within the backoff: no new attempt
        assert len(attempts) == 1
    now[0] += 10.0
    written = []
    monkeypatch.setattr(atomic, "atomic_write_text", lambda path, text: (written.append(path), real_write(path, text)))
    daemon.update("timer")  # after the backoff: tried again, and it works
    assert read_heartbeat(cfg, "rl_inference")["state"] == "running" and daemon.updates == 2
    assert output_path(cfg) in map(Path, written) and read_weights(output_path(cfg)).ok
