"""Tests of the scheduled retraining: a better candidate replaces the model, a worse one does not; no candle
after the trader's clock; the job."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from ai.trading.common import file_sha256, load_model
from ai.trading.retrain import retrain
from ai.trading.retrain_job import RETRAIN_JOB_ID, start_scheduler
from ai.trading.shadow_runner import ShadowState, save_shadow_state
from core.atomic import read_json
from core.config import Config
from core.contracts.shadow_status import experiences_path
from core.contracts.trading_model import model_path
from core.contracts.trading_reports import benchmark_path, retrain_path
from core.jsonl import append_jsonl
from market.sources import load_candles


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


def test_a_retrain_in_a_replay_uses_no_candle_after_the_traders_clock(
        tcfg: Config, set_trader: Callable[..., Any]) -> None:
    ts = load_candles(tcfg, ["BTC/USDT"])["BTC/USDT"]["timestamp"].to_numpy()
    set_trader(tcfg, int(ts[2000]))  # the replay's later candles exist already: none of them may be used
    record = retrain(tcfg)
    assert record["test_window"]["end"] == int(ts[2000]) and record["test_window"]["start"] == int(ts[1911])
    assert record["train_window"]["end"] == int(ts[1910]) and record["train_window"]["start"] == int(ts[1701])
    assert load_model(model_path(tcfg)).trained_until == int(ts[1910])
    (tcfg.runtime_dir / "trader_status.json").unlink()  # the trader paused: the clock it was last seen at holds
    save_shadow_state(tcfg, ShadowState("BTC/USDT", "1h", followed_trader=True, trader_ts=int(ts[1500])))
    assert retrain(tcfg)["test_window"]["end"] == int(ts[1500])
