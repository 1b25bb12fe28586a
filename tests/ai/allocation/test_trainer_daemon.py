"""The ``rl_trainer`` daemon: the retraining triggers (first at the minimum of trades, then after enough new
ones), cron weekdays as crontab reads them, the scheduled job, SIGTERM, and no trade after the trader's clock."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from ai.allocation import trainer_daemon
from ai.allocation.inference import update_once
from ai.allocation.trainer_daemon import TrainerDaemon, retrain_due
from core.atomic import publish_json
from core.config import Config
from core.contracts.allocation_model import latest_path
from core.contracts.pnl_history import HistoryTail, history_path
from core.contracts.training_log import append_training_record, read_training_records
from core.daemon import DaemonContext
from core.errors import ConfigError
from core.schedule import cron_trigger
from tests.ai.allocation.support import REPO, START, daemon_process, fast_toml, wait_for

DAY = pd.Timedelta(days=1)

# Signatures of the helper fixtures of conftest.py.
WriteTrades = Callable[..., None]
Fast = Callable[..., Config]


def test_retraining_is_due_first_at_the_minimum_then_after_enough_new_trades(fast: Fast,
                                                                             write_trades: WriteTrades,
                                                                             cfg: Config) -> None:
    cfg = fast(cfg)
    write_trades(cfg, 49)
    assert retrain_due(cfg) is None
    write_trades(cfg, 1, seed=1, start=START + 31 * DAY)
    assert retrain_due(cfg) == "first training: 50 trades"
    append_training_record(cfg, {"completed": True, "trades": 50, "model_version": 1})
    assert retrain_due(cfg) is None
    write_trades(cfg, 49, seed=2, start=START + 32 * DAY, days=5)
    assert retrain_due(cfg) is None
    append_training_record(cfg, {"completed": False, "trades": 99, "model_version": 2})  # interrupted: ignored
    write_trades(cfg, 1, seed=3, start=START + 40 * DAY)
    assert retrain_due(cfg) == "50 new trades since the last training"


def test_the_incremental_count_agrees_with_a_full_read(fast: Fast, write_trades: WriteTrades, cfg: Config) -> None:
    cfg = fast(cfg, min_trades=20, retrain_after_new_trades=10)
    history = HistoryTail(history_path(cfg))
    write_trades(cfg, 30)
    append_training_record(cfg, {"completed": True, "trades": 20, "model_version": 1})
    assert retrain_due(cfg, history) == retrain_due(cfg) == "10 new trades since the last training"
    write_trades(cfg, 5, seed=1, start=START + 31 * DAY)
    append_training_record(cfg, {"completed": True, "trades": 35, "model_version": 2})
    assert retrain_due(cfg, history) is None and history.trades_read == 35
    history_path(cfg).unlink()  # a new replay over a shorter history: all of it is new
    write_trades(cfg, 25, seed=2)
    assert retrain_due(cfg, history) == retrain_due(cfg) == "25 new trades since the last training"



def test_the_bounded_count_agrees_with_a_full_read_at_any_clock(write_trades: WriteTrades, cfg: Config) -> None:
    history = HistoryTail(history_path(cfg), keep_span=trainer_daemon.COUNT_SPAN)
    write_trades(cfg, 60)
    write_trades(cfg, 40, seed=1, start=START + 30 * DAY)
    first = trainer_daemon.trades_by(cfg, None, history)
    assert first == trainer_daemon.trades_by(cfg, None) == 100
    assert history.dropped_before is not None and len(history.trades) < 20  # only the latest day is in memory
    ends = [START + 60 * DAY, START + 59 * DAY + pd.Timedelta(hours=12), START + 45 * DAY, START + 10 * DAY]
    for clock in ends:  # the last two lie before the kept trades: a full read counts them
        clock_ms = int(clock.value // 1_000_000)
        assert trainer_daemon.trades_by(cfg, clock_ms, history) == trainer_daemon.trades_by(cfg, clock_ms)

def test_a_clock_lagging_the_newest_trades_widens_the_kept_span_once(write_trades: WriteTrades, cfg: Config,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    history = HistoryTail(history_path(cfg), keep_span=trainer_daemon.COUNT_SPAN)
    full_reads: list[int] = []
    real_load = trainer_daemon.load_trades
    monkeypatch.setattr(trainer_daemon, "load_trades", lambda c: full_reads.append(1) or real_load(c))
    write_trades(cfg, 60)
    for k in range(5):  # a replay: new trades every step, the trader's clock 3 days behind the newest
        write_trades(cfg, 10, seed=k + 1, start=START + (30 + 2 * k) * DAY, days=2)
        clock_ms = int((START + (29 + 2 * k) * DAY).value // 1_000_000)
        counted = trainer_daemon.trades_by(cfg, clock_ms, history)
        monkeypatch.setattr(trainer_daemon, "load_trades", real_load)
        assert counted == trainer_daemon.trades_by(cfg, clock_ms)
        monkeypatch.setattr(trainer_daemon, "load_trades", lambda c: full_reads.append(1) or real_load(c))
    assert full_reads == []  # the first lagging count read the file again with a wider span, not twice
    assert trainer_daemon.COUNT_SPAN < history.keep_span <= trainer_daemon.MAX_COUNT_SPAN
    assert len(history.trades) < 110


def test_cron_weekdays_follow_crontab_not_apscheduler_numbering() -> None:
    monday = datetime(2024, 1, 1, tzinfo=timezone.utc)
    fire = cron_trigger("0 3 * * 0", "strategy_agent.retrain_cron").get_next_fire_time(None, monday)
    assert fire == datetime(2024, 1, 7, 3, 0, tzinfo=timezone.utc)  # Sunday, as crontab(5) reads 0
    saturday = datetime(2024, 1, 6, tzinfo=timezone.utc)
    assert cron_trigger("30 1 * * 1-5", "strategy_agent.retrain_cron").get_next_fire_time(None, saturday) \
        == datetime(2024, 1, 8, 1, 30, tzinfo=timezone.utc)  # the next Monday
    assert cron_trigger("0 */6 * * *", "strategy_agent.retrain_cron").get_next_fire_time(None, monday) == monday
    with pytest.raises(ConfigError, match="five fields"):
        cron_trigger("0 3 * *", "strategy_agent.retrain_cron")


def test_the_daemon_trains_then_retrains_after_new_trades_and_stops_on_sigterm(write_trades: WriteTrades,
                                                                               cfg: Config, tmp_path: Path) -> None:
    config = tmp_path / "fast.toml"
    config.write_text(fast_toml(min_trades=20, retrain_after_new_trades=10, debounce_s=0.2,
                                check_interval_s=1.0))
    write_trades(cfg, 30)
    out = tmp_path / "trainer.out"
    with daemon_process(out, "ai.allocation.trainer", "--loop", "--config", str(config)) as proc:
        wait_for(lambda: len(read_training_records(cfg)) == 1, 40, "first training")
        assert read_training_records(cfg)[0]["trigger"] == "first training: 30 trades"
        assert latest_path(cfg).exists()
        write_trades(cfg, 9, seed=1, start=START + 31 * DAY, days=2)
        time.sleep(1.5)  # a check has run since: 9 new trades are not enough
        assert len(read_training_records(cfg)) == 1
        write_trades(cfg, 1, seed=2, start=START + 34 * DAY, days=1)
        wait_for(lambda: len(read_training_records(cfg)) == 2, 30, "retraining after 10 new trades")
        second = read_training_records(cfg)[1]
        assert second["trigger"] == "10 new trades since the last training" and second["model_version"] == 2
        beat = json.loads((cfg.runtime_dir / "heartbeats" / "rl_trainer.json").read_text())
        assert beat["pid"] == proc.pid
    assert proc.returncode == 0, out.read_text()
    assert not (cfg.runtime_dir / "pids" / "rl_trainer.pid").exists()


def test_the_daemons_cron_job_follows_the_config_and_retrains_when_it_fires(fast: Fast,
                                                                            write_trades: WriteTrades,
                                                                            cfg: Config) -> None:
    cfg = fast(cfg, retrain_cron="0 3 * * 0", check_interval_s=3600.0)
    write_trades(cfg, 300)
    append_training_record(cfg, {"completed": True, "trades": 300, "model_version": 1})  # no new trades: not due
    ctx = DaemonContext("rl_trainer", cfg)
    daemon = TrainerDaemon(cfg, ctx)
    thread = threading.Thread(target=daemon.run, name="trainer-under-test")
    thread.start()
    try:
        wait_for(lambda: daemon.scheduler.running and daemon.scheduler.get_job("scheduled_retrain") is not None,
                 10, "scheduler start")
        job = daemon.scheduler.get_job("scheduled_retrain")
        now = datetime.now(timezone.utc)
        expected = cron_trigger("0 3 * * 0", "strategy_agent.retrain_cron").get_next_fire_time(None, now)
        assert job.next_run_time == expected and job.next_run_time.weekday() == 6  # the coming Sunday, 03:00 UTC
        grace = cfg.strategy_agent.misfire_grace_s
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, grace)
        # Were the start-up check to train without new trades, the next record's trigger would say so.
        daemon.scheduler.modify_job("scheduled_retrain", next_run_time=datetime.now(timezone.utc))  # a week later
        # The promotion's record is announced as pending first, then completed: wait for the completed one.
        wait_for(lambda: len(records := read_training_records(cfg)) == 2 and not records[-1].get("promotion_pending"),
                 30, "scheduled retraining")
        record = read_training_records(cfg)[-1]
        assert record["trigger"] == "scheduled retraining" and record["promoted"] and record["model_version"] == 2
        assert daemon.scheduler.get_job("scheduled_retrain").next_run_time.weekday() == 6  # and again next week
    finally:
        ctx.stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()


def test_the_daemon_trains_only_on_trades_closed_by_the_traders_clock(fast: Fast, write_trades: WriteTrades,
                                                                      cfg: Config) -> None:
    cfg = fast(cfg, min_trades=20)
    write_trades(cfg, 300)  # 30 days of trades; the trader's replay is back at day 20 (a new replay)
    clock = START + 20 * DAY
    publish_json(cfg.runtime_dir / "trader_status.json", "paper_trader",
                 {"timeframe": "1h", "last_candle": {"timestamp": int(clock.value // 1_000_000) - 3_600_000}})
    closed = pd.DatetimeIndex(pd.read_csv(cfg.state_dir / "pnl_history.csv")["closed_at"])
    by_clock = int((closed <= clock).sum())
    assert 150 < by_clock < 250
    assert retrain_due(cfg) == f"first training: {by_clock} trades"
    daemon = TrainerDaemon(cfg, DaemonContext("rl_trainer", cfg))
    daemon.train("first training")
    record = read_training_records(cfg)[-1]
    assert record["trades"] == by_clock and record["promoted"] is True
    assert pd.Timestamp(record["data_range"]["end"]) <= clock  # nothing after the clock was seen
    assert update_once(cfg)["decision_time"] == "2024-01-22T00:00:00Z"  # so inference at the clock uses it


HOLD_JOB_LOCK = """
import sys, time
from core.config import load_config
from core.jobs import try_lock
handle = try_lock(load_config(None), "trainer")
print("locked" if handle else "busy", flush=True)
time.sleep(60)
"""


def test_the_daemon_and_the_crontabs_trainer_job_never_train_at_once(cfg: Config, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # A training runs in a child process: it says so through files the test can see.
    started, release = tmp_path / "started", tmp_path / "release"

    def slow_training(*_args: object, **kwargs: object) -> dict[str, object]:
        with started.open("a") as fh:
            fh.write(f"{kwargs['trigger']}\n")
        deadline = time.monotonic() + 30
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return {"finished_at": "-", "model_version": 1, "promoted": False}

    def trained() -> list[str]:
        return started.read_text().splitlines() if started.exists() else []

    monkeypatch.setattr(trainer_daemon, "train_once", slow_training)
    daemon = TrainerDaemon(cfg, DaemonContext("rl_trainer", cfg))
    # The daemon trains: a crontab run finds the lock taken and exits 0 at once, doing nothing.
    worker = threading.Thread(target=daemon.train, args=("scheduled retraining",))
    worker.start()
    try:
        wait_for(lambda: trained() == ["scheduled retraining"], 30, "the daemon's training")
        job = subprocess.run([sys.executable, str(REPO / "scripts" / "rl_system.py"), "job", "trainer"],
                             capture_output=True, text=True, timeout=60)
        assert job.returncode == 0 and "trainer: already running" in job.stdout, job.stdout + job.stderr
    finally:
        release.touch()
        worker.join(30)
    # A crontab run trains (a process holding the job's lock): the daemon does not train meanwhile.
    holder = subprocess.Popen([sys.executable, "-c", HOLD_JOB_LOCK], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        daemon.train("5 new trades since the last training")
        assert trained() == ["scheduled retraining"]
    finally:
        holder.kill()
        holder.wait()
    daemon.train("5 new trades since the last training")  # the lock died with its holder
    assert trained() == ["scheduled retraining", "5 new trades since the last training"]
