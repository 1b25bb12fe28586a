"""One training of the strategy-weight agent: only the 8 strategies' trades count, promotion only of valid
candidates, the training record, a stop request, same-seed determinism, learning a regime-dependent allocation."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import ai.allocation.training as training
from ai.allocation.agent import load_agent, save_candidate
from ai.allocation.env import history_from_frames
from ai.allocation.trainer import main
from ai.allocation.trainer_daemon import retrain_due
from ai.allocation.training import fit, train_once
from ai.allocation.training_data import TrainingData
from ai.allocation.validation import replay
from core.config import STRATEGIES, Config, PPOConfig, replace_section
from core.contracts.allocation_model import candidate_path, latest_path
from core.contracts.pnl_history import append_trades
from core.contracts.training_log import read_training_records

START = pd.Timestamp("2024-01-02", tz="UTC")
DAY = pd.Timedelta(days=1)
FAST_PPO = PPOConfig(n_steps=16, batch_size=32, n_epochs=2, hidden_sizes=[16, 16], threads=1, device="cpu")

# Signatures of the helper fixtures of conftest.py.
TradeRows = Callable[..., list[dict[str, Any]]]
WriteTrades = Callable[..., None]
Fast = Callable[..., Config]


def book_rows(trade_rows: TradeRows, n: int, seed: int, start: pd.Timestamp = START,
              days: float = 30) -> list[dict[str, Any]]:
    """Trades of the trading agent's own book (``rl_v3_ppo``), which shares the history file."""
    return [dict(row, strategy="rl_v3_ppo") for row in trade_rows(n, seed, start, days)]


def test_only_the_8_strategies_trades_count_towards_training(fast: Fast, trade_rows: TradeRows, cfg: Config,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    cfg = fast(cfg)
    history = cfg.state_dir / "pnl_history.csv"
    append_trades(history, trade_rows(40) + book_rows(trade_rows, 30, seed=1))  # 70 rows, 40 of the 8 strategies
    assert main(["--train", "--quiet"]) == 3
    assert "holds 40 closed trade(s) of the 8 strategies" in capsys.readouterr().err
    assert retrain_due(cfg) is None
    append_trades(history, trade_rows(10, seed=2, start=START + 31 * DAY, days=2))
    assert retrain_due(cfg) == "first training: 50 trades"
    record = train_once(cfg)
    assert record["trades"] == 50 and record["data_range"]["trades"] == 50
    append_trades(history, book_rows(trade_rows, 80, seed=3, start=START + 34 * DAY, days=3))  # the other book trades a lot
    append_trades(history, trade_rows(49, seed=4, start=START + 38 * DAY, days=3))
    assert retrain_due(cfg) is None  # 49 new trades of ours, however many of the other book
    append_trades(history, trade_rows(1, seed=5, start=START + 42 * DAY, days=1))
    assert retrain_due(cfg) == "50 new trades since the last training"


def test_training_promotes_a_valid_model_and_logs_the_record(fast: Fast, write_trades: WriteTrades,
                                                             cfg: Config) -> None:
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
def test_a_corrupted_candidate_is_not_promoted(fast: Fast, write_trades: WriteTrades, cfg: Config,
                                               monkeypatch: pytest.MonkeyPatch,
                                               corrupt: Callable[[Path], None], expected: str) -> None:
    cfg = fast(cfg)
    write_trades(cfg, 300)
    assert train_once(cfg)["promoted"]
    good = latest_path(cfg).read_bytes()

    def save_then_corrupt(*args: Any, **kwargs: Any) -> Path:
        path = save_candidate(*args, **kwargs)
        corrupt(path)
        return path

    monkeypatch.setattr(training, "save_candidate", save_then_corrupt)
    record = train_once(cfg)
    assert record["promoted"] is False and record["completed"] is True
    assert expected in record["reason"] and record["reason"].startswith("candidate rejected")
    assert latest_path(cfg).read_bytes() == good  # the old model stays
    assert candidate_path(cfg).exists() and record["candidate"] == "state/rl_model/checkpoint_candidate.pt"
    records = read_training_records(cfg)
    assert [r["promoted"] for r in records] == [True, False]
    assert [r["model_version"] for r in records] == [1, 2]
    assert train_once(cfg)["model_version"] == 3  # a rejected candidate's version is never reused


def test_a_stop_request_ends_training_without_promoting_anything(fast: Fast, write_trades: WriteTrades,
                                                                 cfg: Config) -> None:
    cfg = fast(cfg, episodes=50)
    write_trades(cfg, 300)
    stop = threading.Event()
    stop.set()  # SIGTERM arrived: training ends after the update in progress
    record = train_once(cfg, stop=stop)
    assert record["completed"] is False and record["promoted"] is False and "stopped" in record["reason"]
    assert record["updates"] == 1 and record["total_steps"] < 50 * 10
    assert not latest_path(cfg).exists() and not candidate_path(cfg).exists()
    assert retrain_due(cfg) == "first training: 300 trades"  # an interrupted training does not count


def test_training_twice_with_one_seed_gives_identical_parameters(fast: Fast, write_trades: WriteTrades,
                                                                 cfg: Config, tmp_path: Path,
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


class Killed(BaseException):
    """Stands for a SIGKILL between two steps of a promotion (nothing after it runs)."""


@pytest.mark.parametrize("kill_after_promotion", [True, False])
def test_a_kill_between_promotion_and_record_never_leaves_a_promoted_model_without_its_record(
        fast: Fast, write_trades: WriteTrades, cfg: Config, monkeypatch: pytest.MonkeyPatch,
        kill_after_promotion: bool) -> None:
    cfg = fast(cfg)
    write_trades(cfg, 300)
    real_promote = training.promote_candidate

    def promote_then_die(c: Config) -> Path:
        if kill_after_promotion:
            real_promote(c)
        raise Killed

    monkeypatch.setattr(training, "promote_candidate", promote_then_die)
    with pytest.raises(Killed):
        train_once(cfg)
    (pending,) = read_training_records(cfg)  # what a reader sees right after the kill
    assert pending["promotion_pending"] is True and pending["model_version"] == 1
    agent = load_agent(cfg)
    assert (agent is not None) == kill_after_promotion  # a promoted model is never without its record

    assert training.settle_pending_promotions(cfg) == 1  # what the next start of the trainer does
    (settled,) = read_training_records(cfg)
    assert "promotion_pending" not in settled and settled["promoted"] is kill_after_promotion
    assert training.settle_pending_promotions(cfg) == 0
    monkeypatch.setattr(training, "promote_candidate", real_promote)
    record = train_once(cfg)
    assert record["promoted"] and record["model_version"] == 2
    assert [r.get("promotion_pending") for r in read_training_records(cfg)] == [None, None]
