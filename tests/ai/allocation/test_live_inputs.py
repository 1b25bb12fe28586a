"""The inference daemon's kept inputs give exactly the weights of a full read, after appends, with gaps in
the trading, a decision time before the kept trades, and a rewritten history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ai.allocation.agent import StrategyAgent, checkpoint_extra, load_agent, promote_candidate, save_candidate
from ai.allocation.env import load_trades
from ai.allocation.inference import compute_weights, current_state
from ai.allocation.live_inputs import LiveInputs, decision_window
from ai.ppo import PPO, ActionSpec
from core.config import Config, PPOConfig
from core.contracts.pnl_history import history_path
from tests.ai.allocation.support import START, fast, write_trades

DAY = pd.Timedelta(days=1)


@pytest.fixture
def fcfg(cfg: Config) -> Config:
    """A fast configuration (5-period windows of 1 day: 12 days of trades kept) with an untrained model."""
    cfg = fast(cfg)
    ppo = PPO(None, PPOConfig(hidden_sizes=[16, 16], seed=3, device="cpu"), action_spec=ActionSpec("simplex", 8),
              obs_dim=42)
    save_candidate(ppo, cfg, checkpoint_extra(cfg.strategy_agent, 1, {"end": "2024-01-01T00:00:00+00:00"}))
    promote_candidate(cfg)
    return cfg


def model(cfg: Config) -> StrategyAgent:
    agent = load_agent(cfg, numpy_policy=True)
    assert agent is not None
    return agent


def same_as_full_read(cfg: Config, inputs: LiveInputs, now: pd.Timestamp) -> None:
    agent = model(cfg)
    kept = compute_weights(cfg, agent, now.to_pydatetime(), inputs)
    full = compute_weights(cfg, agent, now.to_pydatetime())
    assert kept == full


def test_weights_equal_a_full_read_as_trades_arrive(fcfg: Config) -> None:
    inputs = LiveInputs(fcfg)
    write_trades(fcfg, 300, days=60)
    same_as_full_read(fcfg, inputs, START + 61 * DAY)
    for k in range(4):  # new trades, then a gap of two weeks without any
        write_trades(fcfg, 20, seed=k + 1, start=START + (61 + 3 * k) * DAY, days=3)
        same_as_full_read(fcfg, inputs, START + (64 + 3 * k) * DAY)
    write_trades(fcfg, 5, seed=9, start=START + 90 * DAY, days=1)
    same_as_full_read(fcfg, inputs, START + 91 * DAY)
    assert inputs.full_reads == 0
    assert len(inputs.trades(model(fcfg))) < 100  # the recent days and the oldest trade, not all 385


def test_a_sparse_history_keeps_the_grid_of_a_full_read(fcfg: Config) -> None:
    inputs = LiveInputs(fcfg)
    write_trades(fcfg, 3, days=1)  # three early trades, then nothing for 40 days
    write_trades(fcfg, 30, seed=1, start=START + 40 * DAY, days=8)
    same_as_full_read(fcfg, inputs, START + 48 * DAY)


def test_a_decision_time_before_the_kept_trades_reads_everything(fcfg: Config) -> None:
    inputs = LiveInputs(fcfg)
    write_trades(fcfg, 300, days=60)
    same_as_full_read(fcfg, inputs, START + 61 * DAY)
    same_as_full_read(fcfg, inputs, START + 30 * DAY)  # "now" a month before the newest trade
    assert inputs.full_reads == 1


def test_a_clock_lagging_the_newest_trade_widens_what_is_kept_once(fcfg: Config) -> None:
    # A fast replay: the trader's status (the decision time) lags its newest trades by a few periods.
    inputs = LiveInputs(fcfg)
    write_trades(fcfg, 300, days=60)
    same_as_full_read(fcfg, inputs, START + 57 * DAY)  # 3 days behind: more than the 2-period margin
    assert inputs.full_reads == 1
    for k in range(4):  # the replay goes on, the clock still 3 days behind its trades
        write_trades(fcfg, 15, seed=k + 1, start=START + (60 + 2 * k) * DAY, days=2)
        same_as_full_read(fcfg, inputs, START + (59 + 2 * k) * DAY)
    assert inputs.full_reads == 1  # served from memory again after the first
    assert len(inputs.trades(model(fcfg))) < 150  # still a window, not all 360 trades


def test_a_rewritten_history_is_read_again(fcfg: Config) -> None:
    inputs = LiveInputs(fcfg)
    write_trades(fcfg, 300, days=60)
    same_as_full_read(fcfg, inputs, START + 61 * DAY)
    history_path(fcfg).unlink()
    write_trades(fcfg, 100, seed=5, start=START + 10 * DAY, days=20)
    same_as_full_read(fcfg, inputs, START + 31 * DAY)


def test_the_model_is_read_again_only_when_its_file_changes(fcfg: Config) -> None:
    inputs = LiveInputs(fcfg)
    first = inputs.agent()
    assert inputs.agent() is first
    ppo = PPO(None, PPOConfig(hidden_sizes=[16, 16], seed=4, device="cpu"), action_spec=ActionSpec("simplex", 8),
              obs_dim=42)
    save_candidate(ppo, fcfg, checkpoint_extra(fcfg.strategy_agent, 2, {"end": "2024-01-01T00:00:00+00:00"}))
    promote_candidate(fcfg)
    second = inputs.agent()
    assert second is not first and second is not None and second.model_version == 2


def test_the_one_shot_update_uses_only_the_decision_window(fcfg: Config) -> None:
    write_trades(fcfg, 3, days=1)  # early trades that fix the grid's start, then a long gap
    write_trades(fcfg, 400, seed=2, start=START + 40 * DAY, days=60)
    agent = model(fcfg)
    trades = load_trades(fcfg)
    for now in (START + 101 * DAY, START + 70 * DAY, START + 41 * DAY):
        t_ms = int(now.value // 1_000_000)
        window = decision_window(fcfg, agent, trades, t_ms)
        assert len(window) < len(trades) or now < START + 45 * DAY
        assert window["closed_at"].iloc[0] == trades["closed_at"].iloc[0]
        full_obs, full_range = current_state(fcfg, agent, trades, None, t_ms)
        obs, data_range = current_state(fcfg, agent, window, None, t_ms)
        assert np.array_equal(obs, full_obs) and data_range == full_range
