"""The trainer: refusal below the minimum of trades, promotion only of valid candidates, the training log,
same-seed determinism, learning a regime-dependent allocation, the retraining triggers and the daemon."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import ai.allocation.trainer as trainer
from ai.allocation.agent import candidate_path, latest_path, load_agent, save_candidate
from ai.allocation.env import history_from_frames
from ai.allocation.trainer import (
    TrainerDaemon,
    TrainingData,
    append_training_record,
    fit,
    main,
    read_training_records,
    replay,
    retrain_due,
    train_once,
    weights_problem,
)
from core.config import STRATEGIES, Config, PPOConfig, StrategyAgentConfig, load_config, replace_section
from core.contracts.pnl_history import append_trades
from core.daemon import DaemonContext
from core.errors import ConfigError
from core.schedule import cron_trigger

REPO = Path(__file__).resolve().parents[3]
START = pd.Timestamp("2024-01-02", tz="UTC")
DAY = pd.Timedelta(days=1)
FAST_PPO = PPOConfig(n_steps=16, batch_size=32, n_epochs=2, hidden_sizes=[16, 16], threads=1, device="cpu")
FAST_TOML = """
[strategy_agent]
min_trades = 20
retrain_after_new_trades = 10
episodes = 2
episode_length = 10
window_periods = 5
market_window_candles = 24
num_envs = 2
debounce_s = 0.2
check_interval_s = 1.0

[strategy_agent.ppo]
n_steps = 16
batch_size = 32
n_epochs = 2
hidden_sizes = [16, 16]
"""


def fast(cfg: Config, **changes: Any) -> Config:
    agent = {"episodes": 2, "episode_length": 10, "window_periods": 5, "market_window_candles": 24, "num_envs": 2,
             "ppo": FAST_PPO, **changes}
    return replace_section(cfg, "strategy_agent", **agent)


def trade_rows(n: int, seed: int = 0, start: pd.Timestamp = START, days: float = 30) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = []
    for hours in np.sort(rng.uniform(0, days * 24, n)):
        closed = start + pd.Timedelta(hours=float(hours))
        pct = float(rng.normal(0.001, 0.01))
        rows.append({"closed_at": closed.isoformat(), "opened_at": (closed - pd.Timedelta(hours=2)).isoformat(),
                     "symbol": "BTC/USDT", "strategy": STRATEGIES[int(rng.integers(0, 8))], "side": "long",
                     "qty": 0.01, "entry_price": 40_000.0, "exit_price": 40_000.0 * (1 + pct), "pnl": 400.0 * pct,
                     "pnl_pct": pct, "fees": 0.4, "equity_after": 10_000.0})
    return rows


def write_trades(cfg: Config, n: int, seed: int = 0, start: pd.Timestamp = START, days: float = 30) -> None:
    append_trades(cfg.state_dir / "pnl_history.csv", trade_rows(n, seed, start, days))


# ---------------------------------------------------------------------------------------------- refusal


def test_fewer_than_50_trades_is_refused_with_exit_3(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    write_trades(cfg, 49)
    assert main(["--train", "--episodes", "1", "--quiet"]) == 3
    err = capsys.readouterr().err
    assert "49 closed trade(s)" in err and "at least 50" in err and "strategy_agent.min_trades" in err
    assert not (cfg.state_dir / "rl_model").exists()
    assert not (cfg.state_dir / "rl_training_log.json").exists()


def test_a_missing_history_is_refused_by_name(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--train", "--quiet"]) == 3
    err = capsys.readouterr().err
    assert "pnl_history.csv not found" in err and "paper trader" in err and len(err.strip().splitlines()) == 1


def book_rows(n: int, seed: int, start: pd.Timestamp = START, days: float = 30) -> list[dict[str, Any]]:
    """Trades of the trading agent's own book (``rl_v3_ppo``), which shares the history file."""
    return [dict(row, strategy="rl_v3_ppo") for row in trade_rows(n, seed, start, days)]


def test_only_the_8_strategies_trades_count_towards_training(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = fast(cfg)
    history = cfg.state_dir / "pnl_history.csv"
    append_trades(history, trade_rows(40) + book_rows(30, seed=1))  # 70 rows, 40 of the 8 strategies
    assert main(["--train", "--quiet"]) == 3
    assert "holds 40 closed trade(s) of the 8 strategies" in capsys.readouterr().err
    assert retrain_due(cfg) is None
    append_trades(history, trade_rows(10, seed=2, start=START + 31 * DAY, days=2))
    assert retrain_due(cfg) == "first training: 50 trades"
    record = train_once(cfg)
    assert record["trades"] == 50 and record["data_range"]["trades"] == 50
    append_trades(history, book_rows(80, seed=3, start=START + 34 * DAY, days=3))  # the other book trades a lot
    append_trades(history, trade_rows(49, seed=4, start=START + 38 * DAY, days=3))
    assert retrain_due(cfg) is None  # 49 new trades of ours, however many of the other book
    append_trades(history, trade_rows(1, seed=5, start=START + 42 * DAY, days=1))
    assert retrain_due(cfg) == "50 new trades since the last training"


def test_a_bad_cron_expression_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[strategy_agent]\nretrain_cron = "0 99 * * *"\n')
    assert main(["--train", "--config", str(config)]) == 2
    assert "strategy_agent.retrain_cron" in capsys.readouterr().err


def test_a_partial_ppo_table_keeps_the_agents_own_defaults(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text("[strategy_agent]\nmin_trades = 20\n\n[strategy_agent.ppo]\nn_epochs = 3\n")
    acfg = load_config(config).strategy_agent
    assert acfg.min_trades == 20 and acfg.ppo.n_epochs == 3
    assert acfg.ppo.n_steps == StrategyAgentConfig().ppo.n_steps == 128  # not PPOConfig's 2048
    assert acfg.ppo.hidden_sizes == [64, 64] and acfg.retrain_cron == "0 3 * * 0"
    config.write_text("[strategy_agent]\nretrain_after_trades = 5\n")
    with pytest.raises(ConfigError, match="strategy_agent.retrain_after_trades"):
        load_config(config)
    config.write_text("[strategy_agent]\nholdout_fraction = 0.9\n")
    with pytest.raises(ConfigError, match="strategy_agent.holdout_fraction"):
        load_config(config)


# ---------------------------------------------------------------------------------------------- promotion


def test_training_promotes_a_valid_model_and_logs_the_record(cfg: Config) -> None:
    cfg = fast(cfg)
    write_trades(cfg, 300)
    record = train_once(cfg)
    assert record["promoted"] is True and record["completed"] is True and "valid" in record["reason"]
    agent = load_agent(cfg)
    assert agent is not None and agent.model_version == record["model_version"] == 1
    assert agent.training_data["trades"] == 300
    (logged,) = read_training_records(cfg)
    assert logged == record
    for key in ("started_at", "finished_at", "data_range", "episodes", "mean_episode_reward", "losses",
                "duration_s", "model_version", "promoted", "reason", "holdout"):
        assert key in record, key
    assert record["data_range"]["holdout_periods"] >= 1 and record["episodes"] == 2
    assert set(record["holdout"]) == {"periods", "model", "equal_weights"}
    doc = json.loads((cfg.state_dir / "rl_training_log.json").read_text())
    assert doc["producer"] == "rl_trainer" and doc["schema_version"] == 1 and len(doc["records"]) == 1


def corrupt_with_nan(path: Path) -> None:
    payload = torch.load(path, weights_only=True)
    name = next(k for k, v in payload["state_dict"].items() if v.is_floating_point())
    payload["state_dict"][name].view(-1)[0] = float("nan")
    torch.save(payload, path)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("corrupt, expected", [(corrupt_with_nan, "NaN"), (truncate, "not a loadable")])
def test_a_corrupted_candidate_is_not_promoted(cfg: Config, monkeypatch: pytest.MonkeyPatch,
                                               corrupt: Callable[[Path], None], expected: str) -> None:
    cfg = fast(cfg)
    write_trades(cfg, 300)
    assert train_once(cfg)["promoted"]
    good = latest_path(cfg).read_bytes()

    def save_then_corrupt(*args: Any, **kwargs: Any) -> Path:
        path = save_candidate(*args, **kwargs)
        corrupt(path)
        return path

    monkeypatch.setattr(trainer, "save_candidate", save_then_corrupt)
    record = train_once(cfg)
    assert record["promoted"] is False and record["completed"] is True
    assert expected in record["reason"] and record["reason"].startswith("candidate rejected")
    assert latest_path(cfg).read_bytes() == good  # the old model stays
    assert candidate_path(cfg).exists() and record["candidate"] == "state/rl_model/checkpoint_candidate.pt"
    records = read_training_records(cfg)
    assert [r["promoted"] for r in records] == [True, False]
    assert [r["model_version"] for r in records] == [1, 2]
    assert train_once(cfg)["model_version"] == 3  # a rejected candidate's version is never reused


def test_a_stop_request_ends_training_without_promoting_anything(cfg: Config) -> None:
    cfg = fast(cfg, episodes=50)
    write_trades(cfg, 300)
    stop = threading.Event()
    stop.set()  # SIGTERM arrived: training ends after the update in progress
    record = train_once(cfg, stop=stop)
    assert record["completed"] is False and record["promoted"] is False and "stopped" in record["reason"]
    assert record["updates"] == 1 and record["total_steps"] < 50 * 10
    assert not latest_path(cfg).exists() and not candidate_path(cfg).exists()
    assert retrain_due(cfg) == "first training: 300 trades"  # an interrupted training does not count


def test_weights_problem_spots_every_invalid_vector() -> None:
    assert weights_problem(np.full(8, 0.125)) is None
    assert "NaN" in weights_problem(np.array([np.nan] + [1 / 7] * 7))
    assert "negative" in weights_problem(np.array([-0.1, 0.3] + [0.8 / 6] * 6))
    assert "sum to" in weights_problem(np.full(8, 0.1))


def test_the_training_log_is_bounded(cfg: Config) -> None:
    cfg = fast(cfg, training_log_max_records=2)
    for i in range(3):
        append_training_record(cfg, {"model_version": i})
    assert [r["model_version"] for r in read_training_records(cfg)] == [1, 2]


@pytest.mark.parametrize("garbage", ['{"records": [{"model_version": 1}', '{"records": "oops"}'])
def test_an_unreadable_training_log_is_moved_aside_not_overwritten(cfg: Config, garbage: str) -> None:
    path = cfg.state_dir / "rl_training_log.json"
    path.parent.mkdir(parents=True)
    path.write_text(garbage)
    append_training_record(cfg, {"model_version": 7})
    assert [r["model_version"] for r in read_training_records(cfg)] == [7]
    (aside,) = path.parent.glob("rl_training_log.json.unreadable-*")
    assert aside.read_text() == garbage
    append_training_record(cfg, {"model_version": 8})  # a readable log is simply extended
    assert [r["model_version"] for r in read_training_records(cfg)] == [7, 8]
    assert len(list(path.parent.glob("rl_training_log.json.unreadable-*"))) == 1


# ---------------------------------------------------------------------------------------------- determinism


def test_training_twice_with_one_seed_gives_identical_parameters(cfg: Config, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def trained(home: Path, seed: int) -> dict[str, torch.Tensor]:
        monkeypatch.setenv("RL_SYSTEM_HOME", str(home))
        local = fast(replace_section(cfg, "paths", home=str(home)), ppo=dataclasses.replace(FAST_PPO, seed=seed))
        write_trades(local, 300)
        train_once(local)
        return torch.load(latest_path(local), weights_only=True)["state_dict"]

    first, second, other = trained(tmp_path / "a", 7), trained(tmp_path / "b", 7), trained(tmp_path / "c", 8)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


# ---------------------------------------------------------------------------------------------- learning


def regime_market(days: int, block: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Bull and bear blocks of ``block`` days: turtle_trading earns in bull markets, mean_reversion_rsi in
    bear markets, the others earn nothing. Returns trades, hourly candles and the regime of each day."""
    rng = np.random.default_rng(seed)
    regime = (np.arange(days) // block) % 2  # 0 bull, 1 bear
    hourly = np.repeat(regime, 24)
    log_close = np.log(100.0) + np.cumsum(np.where(hourly == 0, 0.002, -0.002) + rng.normal(0, 0.003, days * 24))
    close = np.exp(log_close)
    open_ = np.r_[close[0], close[:-1]]
    candles = pd.DataFrame({
        "timestamp": START.value // 1_000_000 + np.arange(days * 24, dtype=np.int64) * 3_600_000,
        "open": open_, "high": np.maximum(open_, close) * 1.001, "low": np.minimum(open_, close) * 0.999,
        "close": close, "volume": rng.uniform(1.0, 2.0, days * 24)})
    rows = []
    for day in range(days):
        for i, name in enumerate(STRATEGIES):
            edge = {0: 0.01, 1: -0.01}.get(i, 0.0) * (1 if regime[day] == 0 else -1)
            for _ in range(2):
                closed = START + day * DAY + pd.Timedelta(hours=float(rng.uniform(1, 23)))
                rows.append((closed, name, float(rng.normal(edge, 0.005))))
    trades = pd.DataFrame(rows, columns=["closed_at", "strategy", "pnl_pct"]).sort_values("closed_at")
    return trades.reset_index(drop=True), candles, regime


def test_a_trained_agent_favours_the_strategy_that_wins_in_each_regime(cfg: Config) -> None:
    days, block = 160, 20
    cfg = replace_section(cfg, "strategy_agent", window_periods=10, market_window_candles=24, episode_length=40)
    acfg = cfg.strategy_agent
    trades, candles, _ = regime_market(days, block)
    history = history_from_frames(cfg, trades, candles, end=START + days * DAY)  # periods are the days
    data = TrainingData(history, history.n_periods, len(trades))
    result = fit(data, acfg, episodes=150)
    # Judged on a market it never saw (other draws of the same process): a rule learned, not days memorized.
    trades, candles, regime = regime_market(days, block, seed=100)
    unseen = history_from_frames(cfg, trades, candles, end=START + days * DAY)
    start = acfg.window_periods
    weights, _, _ = replay(unseen, acfg, start, unseen.n_periods - start, result.ppo.predict)
    weights = np.array(weights)
    labels = regime[start:unseen.n_periods]
    bull, bear = weights[labels == 0].mean(axis=0), weights[labels == 1].mean(axis=0)
    turtle, mean_reversion = STRATEGIES.index("turtle_trading"), STRATEGIES.index("mean_reversion_rsi")
    assert bull[turtle] > 0.125 + 0.03, bull  # more than equal weighting gives it
    assert bear[mean_reversion] > 0.125 + 0.03, bear
    assert bull[turtle] > bear[turtle] and bear[mean_reversion] > bull[mean_reversion]  # it follows the regime


# ---------------------------------------------------------------------------------------------- triggers


def test_retraining_is_due_first_at_the_minimum_then_after_enough_new_trades(cfg: Config) -> None:
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


# ---------------------------------------------------------------------------------------------- daemon


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout}s")


def test_the_daemon_trains_then_retrains_after_new_trades_and_stops_on_sigterm(cfg: Config, tmp_path: Path) -> None:
    config = tmp_path / "fast.toml"
    config.write_text(FAST_TOML)
    write_trades(cfg, 30)
    out = tmp_path / "trainer.out"
    with open(out, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "ai.allocation.trainer", "--loop", "--config", str(config)],
                                cwd=REPO, env=os.environ.copy(), stdout=sink, stderr=subprocess.STDOUT)
    try:
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
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0, out.read_text()
    assert not (cfg.runtime_dir / "pids" / "rl_trainer.pid").exists()


def test_the_daemons_cron_job_follows_the_config_and_retrains_when_it_fires(cfg: Config) -> None:
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
        wait_for(lambda: len(read_training_records(cfg)) == 2, 30, "scheduled retraining")
        record = read_training_records(cfg)[-1]
        assert record["trigger"] == "scheduled retraining" and record["promoted"] and record["model_version"] == 2
        assert daemon.scheduler.get_job("scheduled_retrain").next_run_time.weekday() == 6  # and again next week
    finally:
        ctx.stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
