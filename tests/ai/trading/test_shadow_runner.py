"""Tests of the shadow runner: decisions on newly closed candles, realized experiences, a replay followed ahead
from the trader's candle, and no decision by a model on a candle it was trained on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from agents.ppo_book import book_target
from ai.trading.account import Action
from ai.trading.common import TradingModel, window_info
from ai.trading.features import N_FEATURES
from ai.trading.shadow_runner import ShadowRunner, save_shadow_state
from analytics.baselines import exposure_returns
from core.config import Config, replace_section
from core.contracts.rollout import write_rollout
from core.contracts.shadow_decisions import decisions_path
from core.contracts.shadow_status import experiences_path
from core.contracts.trading_model import model_path
from core.jsonl import read_jsonl
from core.timeframes import timeframe_to_ms
from market.sources import load_candles


class AlwaysLong(torch.nn.Module):
    """A policy that always prefers LONG (logits), with value 0."""

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = torch.zeros(obs.shape[0], 6)
        logits[:, Action.LONG] = 5.0
        return logits, torch.zeros(obs.shape[0])


def test_the_shadow_runner_records_decisions_and_realized_experiences(set_trader: Callable[..., Any], tcfg: Config) -> None:
    frame = load_candles(tcfg, ["BTC/USDT"])["BTC/USDT"]
    ts, closes = frame["timestamp"].to_numpy(), frame["close"].to_numpy()
    runner = ShadowRunner(tcfg, TradingModel(AlwaysLong(), {}, model_path(tcfg), "stub"))
    set_trader(tcfg, int(ts[1000]))
    assert runner.poll() == 1
    assert runner.poll() == 0  # nothing new until the trader moves
    set_trader(tcfg, int(ts[1004]))
    assert runner.poll() == 4
    decisions = read_jsonl(decisions_path(tcfg))
    assert [d["timestamp"] for d in decisions] == [int(t) for t in ts[1000:1005]]
    assert [d["exposure"] for d in decisions] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert all(d["shadow_mode"] is True and d["action_name"] == "LONG" for d in decisions)
    experiences = read_jsonl(experiences_path(tcfg))
    assert len(experiences) == 4
    fee = tcfg.costs.fee
    expected = exposure_returns(closes[1000:1005], [0.1, 0.2, 0.3, 0.4], fee)
    assert [e["step_return"] for e in experiences] == pytest.approx(expected, rel=1e-12)
    for before, after in zip(experiences, experiences[1:], strict=False):
        assert after["observation"] == before["next_observation"]
        assert after["timestamp"] == before["next_timestamp"]
    assert len(experiences[0]["observation"]) == N_FEATURES
    resumed = ShadowRunner(tcfg, runner.model)  # a restart continues from the saved cursor and account
    set_trader(tcfg, int(ts[1005]))
    assert resumed.poll() == 1
    last = read_jsonl(experiences_path(tcfg))[-1]
    assert last["step_return"] == pytest.approx(exposure_returns(closes[1004:1006], [0.5], fee, 0.4)[0])
    (tcfg.runtime_dir / "trader_status.json").unlink()
    assert resumed.poll() == 0  # the replay's later candles are not raced through without the trader


def test_in_a_replay_the_runner_decides_ahead_so_the_trader_finds_each_candles_decision(set_trader: Callable[..., Any], tcfg: Config) -> None:
    cfg = replace_section(tcfg, "trading_agent", replay_lead_candles=3)
    ts = load_candles(cfg, ["BTC/USDT"])["BTC/USDT"]["timestamp"].to_numpy()
    runner = ShadowRunner(cfg, TradingModel(AlwaysLong(), {}, model_path(cfg), "stub"))
    write_rollout(cfg, 5.0, 1000.0, True)
    set_trader(cfg, int(ts[1000]))
    assert runner.poll() == 4  # the trader's candle and the 3 after it
    assert [d["timestamp"] for d in read_jsonl(decisions_path(cfg))] == [int(t) for t in ts[1000:1004]]
    for k, exposure in zip(range(1000, 1004), [0.1, 0.2, 0.3, 0.4], strict=True):
        assert book_target(cfg, int(ts[k]), 3_600_000) == pytest.approx(exposure)  # each candle its own
    set_trader(cfg, int(ts[1002]))
    assert runner.poll() == 2  # up to 1005
    set_trader(cfg, int(ts[900]))  # the trader's replay was reset: the shadow account starts again there
    assert runner.poll() == 4
    assert read_jsonl(decisions_path(cfg))[-4]["timestamp"] == int(ts[900])
    assert read_jsonl(decisions_path(cfg))[-4]["previous_exposure"] == 0.0


def test_in_a_replay_the_runner_waits_for_the_traders_clock_and_starts_at_its_candle(
        set_trader: Callable[..., Any], tcfg: Config) -> None:
    ts = load_candles(tcfg, ["BTC/USDT"])["BTC/USDT"]["timestamp"].to_numpy()
    runner = ShadowRunner(tcfg, TradingModel(AlwaysLong(), {}, model_path(tcfg), "stub"))
    assert runner.poll() == 0  # no trader status yet: no decision on the last synthetic candle
    assert runner.waiting is not None and "trader's status" in runner.waiting
    assert not decisions_path(tcfg).exists()
    set_trader(tcfg, int(ts[100]))
    assert runner.poll() == 1 and runner.waiting is None
    assert [d["timestamp"] for d in read_jsonl(decisions_path(tcfg))] == [int(ts[100])]


def test_a_saved_cursor_beyond_the_traders_clock_restarts_the_shadow_at_the_traders_candle(
        set_trader: Callable[..., Any], tcfg: Config) -> None:
    ts = load_candles(tcfg, ["BTC/USDT"])["BTC/USDT"]["timestamp"].to_numpy()
    model = TradingModel(AlwaysLong(), {}, model_path(tcfg), "stub")
    stale = ShadowRunner(tcfg, model)
    stale.state.cursor_ts = int(ts[-1])  # what an older version saved: a decision on the last synthetic candle
    save_shadow_state(tcfg, stale.state)
    runner = ShadowRunner(tcfg, model)  # a restart of the daemon, with the trader replaying from the start
    set_trader(tcfg, int(ts[60]))
    assert runner.poll() == 1
    set_trader(tcfg, int(ts[62]))
    assert runner.poll() == 2
    assert [d["timestamp"] for d in read_jsonl(decisions_path(tcfg))] == [int(t) for t in ts[60:63]]
    assert read_jsonl(decisions_path(tcfg))[0]["previous_exposure"] == 0.0  # a fresh shadow account


def test_a_model_never_decides_on_a_candle_it_was_trained_on(set_trader: Callable[..., Any], tcfg: Config) -> None:
    frame = load_candles(tcfg, ["BTC/USDT"])["BTC/USDT"]
    ts = frame["timestamp"].to_numpy()
    trained = {"extra": {"train_range": window_info(frame, 0, 1003)}}  # trained up to candle 1002
    runner = ShadowRunner(tcfg, TradingModel(AlwaysLong(), trained, model_path(tcfg), "stub"))
    set_trader(tcfg, int(ts[1000]))
    assert runner.poll() == 0 and "trained on candles up to" in (runner.waiting or "")
    set_trader(tcfg, int(ts[1002]))
    assert runner.poll() == 0
    set_trader(tcfg, int(ts[1004]))
    assert runner.poll() == 1 and runner.waiting is None
    decisions = read_jsonl(decisions_path(tcfg))
    assert [d["timestamp"] for d in decisions] == [int(ts[1004])]
    assert all(d["timestamp"] > runner.model.trained_until for d in decisions)


def test_polls_on_the_candles_they_need_decide_as_polls_on_the_whole_market(
        set_trader: Callable[..., Any], tcfg: Config, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    tcfg = replace_section(tcfg, "trading_agent", max_catch_up_candles=40, feature_history=300)
    step = timeframe_to_ms(tcfg.market.timeframe)
    first = int(load_candles(tcfg, ["BTC/USDT"])["BTC/USDT"]["timestamp"].iloc[0])
    clocks = [first + k * step for k in (250, 290, 290, 320, 321, 2 * tcfg.synthetic.n_candles + 5)]

    def run(cfg: Config) -> tuple[list[Any], list[Any]]:
        runner = ShadowRunner(cfg, TradingModel(AlwaysLong(), {}, model_path(cfg), "stub"))
        for clock in clocks:  # a replay moving on, then far past the configured market's end
            set_trader(cfg, clock)
            runner.poll()
        return read_jsonl(decisions_path(cfg)), read_jsonl(experiences_path(cfg))

    windowed = run(tcfg)
    assert len(windowed[0]) > 3
    monkeypatch.setenv("RL_SYSTEM_HOME", str(tmp_path_factory.mktemp("whole_market")))  # a second, empty home
    monkeypatch.setattr(ShadowRunner, "candles_needed", lambda self, horizon, first_ts: None)
    everything = run(tcfg)
    for mine, reference in zip(windowed, everything, strict=True):  # the same records but for wall-clock times
        assert [_timeless(r) for r in mine] == [_timeless(r) for r in reference]


def _timeless(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("decided_at", "recorded_at")}
