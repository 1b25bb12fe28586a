"""Q-learning agents: the update rule against closed-form values, binning, rewards, stop replay, learning from
the trade history exactly once (also across restarts), the published policy, the sizing multiplier the trader
reads, and the real ``--loop`` daemon in a subprocess."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from watchdog.events import (
    DirModifiedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
)

from ai.tabular import learner as ql
from ai.tabular.actions import (
    META_CHOICES,
    N_META_ACTIONS,
    N_SIZING_ACTIONS,
    STOP_ATR,
    describe_meta,
    describe_sizing,
    meta_action,
    meta_rewards,
    sizing_rewards,
    stop_returns,
)
from ai.tabular.agent import Progress, QAgent, agent_path
from ai.tabular.state import (
    FEATURES,
    account_states,
    bin_drawdown,
    bin_rsi,
    bin_trend,
    bin_win_rate,
)
from core.config import REPO_ROOT, STRATEGIES, Config, config_from_dict, replace_section
from core.contracts.pnl_history import COLUMNS, append_trades
from core.errors import DataError
from market.candles import load_candles
from market.regime import classify_regime

TF_MS = 3_600_000
SYMBOL = "BTC/USDT"


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def agent(n_actions: int = 2, default: int = 0, **kw: float) -> QAgent:
    params = {"alpha": 0.1, "gamma": 0.9, "epsilon": 0.1, "epsilon_decay": 1.0, "epsilon_min": 0.0, **kw}
    return QAgent("meta", n_actions, default, **params)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- the update rule


def test_one_update_matches_the_formula_by_hand() -> None:
    a = agent(alpha=0.5, gamma=0.9)
    a.update("s2", 1, 2.0, next_value=0.0)  # Q(s2,1) = 0.5 * 2 = 1
    assert a.q_value("s2", 1) == pytest.approx(1.0)
    a.learn("s1", {0: 1.0}, "s2")  # 0 + 0.5 * (1 + 0.9 * 1 - 0) = 0.95
    assert a.q_value("s1", 0) == pytest.approx(0.95)
    a.learn("s1", {0: 1.0}, "s2")  # 0.95 + 0.5 * (1.9 - 0.95) = 1.425
    assert a.q_value("s1", 0) == pytest.approx(1.425)
    assert a.table["s1"].visits == 2 and a.table["s1"].q[0][1] == 2 and a.updates == 2


def test_two_state_chain_converges_to_the_closed_form_values() -> None:
    # A -> B earns 1, B -> A earns 0, forever: V(A) = 1 / (1 - g^2), V(B) = g / (1 - g^2).
    gamma = 0.9
    a = agent(n_actions=1, alpha=0.1, gamma=gamma)
    for _ in range(3000):
        a.learn("A", {0: 1.0}, "B")
        a.learn("B", {0: 0.0}, "A")
    assert a.q_value("A", 0) == pytest.approx(1 / (1 - gamma**2), rel=1e-3)
    assert a.q_value("B", 0) == pytest.approx(gamma / (1 - gamma**2), rel=1e-3)


def test_two_state_chain_with_choices_converges_to_value_iteration() -> None:
    # A: action 0 -> B (+1), action 1 -> A (+0.5); B: action 0 -> A (0), action 1 -> B (+0.2).
    gamma = 0.8
    moves = {("A", 0): ("B", 1.0), ("A", 1): ("A", 0.5), ("B", 0): ("A", 0.0), ("B", 1): ("B", 0.2)}
    q_star = {k: 0.0 for k in moves}
    for _ in range(2000):  # value iteration, independent of the agent
        q_star = {k: r + gamma * max(q_star[(s2, 0)], q_star[(s2, 1)]) for k, (s2, r) in moves.items()}
    a = agent(alpha=0.05, gamma=gamma)
    for _ in range(6000):
        for (s, act), (s2, r) in moves.items():
            a.learn(s, {act: r}, s2)
    for (s, act), value in q_star.items():
        assert a.q_value(s, act) == pytest.approx(value, rel=2e-3)
    assert a.greedy_action("A") == 0 and a.greedy_action("B") == 0


def test_greedy_ties_prefer_the_default_and_unknown_states_get_it() -> None:
    a = agent(n_actions=4, default=2)
    assert a.greedy_action("unknown") == 2
    a.update("s", 3, 1.0, 0.0)
    a.update("s", 1, 1.0, 0.0)
    assert a.greedy_action("s") == 1  # tie between 1 and 3: the lowest index
    a.update("s", 2, 1.0, 0.0)
    assert a.greedy_action("s") == 2  # tie including the default: the default
    a.update("s", 0, 5.0, 0.0)
    assert a.greedy_action("s") == 0


def test_epsilon_decays_to_its_floor_and_epsilon_greedy_explores_at_that_rate() -> None:
    a = agent(n_actions=10, epsilon=0.5, epsilon_decay=0.5, epsilon_min=0.1)
    for _ in range(5):
        a.learn("s", {3: 1.0}, None)
    assert a.epsilon == pytest.approx(0.1)
    rng = np.random.default_rng(7)
    picks = [a.select_action("s", rng) for _ in range(4000)]
    explored = sum(flag for _, flag in picks) / len(picks)
    assert explored == pytest.approx(0.1, abs=0.02)
    assert all(act == 3 for act, flag in picks if not flag)
    assert len({a.select_action("s", np.random.default_rng(3)) for _ in range(5)}) == 1  # one seed, one draw


def test_invalid_values_are_refused() -> None:
    with pytest.raises(ValueError, match="alpha"):
        agent(alpha=0.0)
    with pytest.raises(ValueError, match="gamma"):
        agent(gamma=1.0)
    a = agent()
    with pytest.raises(ValueError, match="not finite"):
        a.update("s", 0, math.nan, 0.0)
    with pytest.raises(ValueError, match="outside"):
        a.update("s", 5, 1.0, 0.0)


# ------------------------------------------------------------------------------------------- features


def test_bins_at_their_edges() -> None:
    trend = bin_trend(np.array([-0.61, -0.6, -0.21, -0.2, 0.2, 0.21, 0.6, 0.61, np.nan]))
    assert list(trend) == ["strong_down", "down", "down", "flat", "flat", "up", "up", "strong_up", "flat"]
    rsi = bin_rsi(np.array([29.9, 30, 45, 55, 55.1, 70, 70.1, np.nan]))
    assert list(rsi) == ["oversold", "weak", "neutral", "neutral", "strong", "strong", "overbought", "neutral"]
    assert list(bin_drawdown(np.array([0.0, 0.005, 0.02, 0.05]))) == ["none", "small", "medium", "large"]
    assert list(bin_win_rate(np.array([0.39, 0.4, 0.6, 0.61, np.nan]))) == ["low", "mid", "mid", "high", "mid"]
    assert len(FEATURES) == 11
    assert math.prod(len(bins) for _, bins in FEATURES) == 874_800


def test_account_states_after_each_prefix_by_hand() -> None:
    trades = pd.DataFrame({
        "closed_at": pd.to_datetime(["2024-01-01T01:00Z", "2024-01-01T02:00Z", "2024-01-01T03:00Z",
                                     "2024-01-01T04:00Z"], utc=True),
        "pnl_pct": [0.01, -0.004, -0.01, -0.002],
        "equity_after": [101.0, 99.0, 98.0, 97.0],
    })
    acc = account_states(trades, recent=2)
    assert acc.bins(0) == ("none", "mid", "flat", "0")
    assert acc.bins(1) == ("none", "high", "winning", "0")  # 1 of 1 won, mean +1 %
    assert acc.bins(2) == ("small", "mid", "winning", "1-2")  # 1 - 99/101 = 1.98 %; 1 of 2; mean +0.3 %
    assert acc.bins(4) == ("medium", "low", "losing", "3+")  # 1 - 97/101 = 3.96 %; mean -0.6 %
    assert acc.known_at(int(pd.Timestamp("2024-01-01T02:00Z").value // 1_000_000)) == 2


# ------------------------------------------------------------------------------------------- actions and rewards


def test_action_spaces_and_their_meaning() -> None:
    assert N_META_ACTIONS == 60 and N_SIZING_ACTIONS == 40
    assert len(META_CHOICES) == 12 and META_CHOICES[:8] == STRATEGIES
    assert describe_meta(meta_action("stand_aside", 4)) == {"choice": "stand_aside", "aggressiveness": 2.0,
                                                             "level": "maximal"}
    assert describe_sizing(0) == {"multiplier": 0.25, "stop_atr": 1.0}
    assert describe_sizing(39) == {"multiplier": 2.0, "stop_atr": None}


def test_meta_rewards_of_one_trade_by_hand() -> None:
    rewards = meta_rewards("momentum_sma_crossover", 0.01, reward_scale=100.0, risk_aversion=5.0)
    assert len(rewards) == 20  # the strategy, its group and all_equal at 5 levels, plus stand_aside
    top = meta_action("momentum_sma_crossover", 4)  # x2: 100 * (0.02 - 2.5 * 0.0004) = 1.9
    assert rewards[top] == pytest.approx(1.9)
    assert rewards[meta_action("trend_group", 4)] == pytest.approx(1.9)
    assert rewards[meta_action("all_equal", 0)] == pytest.approx(100 * (0.0025 - 2.5 * 0.0025**2))
    assert rewards[meta_action("stand_aside", 2)] == 0.0
    assert meta_action("mean_reversion_group", 2) not in rewards
    assert meta_rewards("rl_v3_ppo", 0.01, 100.0, 5.0) == {}


def test_sizing_rewards_prefer_a_finite_size_with_risk_aversion() -> None:
    rewards = sizing_rewards([0.01] * len(STOP_ATR), reward_scale=100.0, risk_aversion=5.0)
    assert len(rewards) == 40
    # 100 * (m * 0.01 - 2.5 * (m * 0.01) ** 2) grows with m up to m = 20: the largest multiplier wins here,
    # while a risk-neutral reward is just linear.
    assert rewards[39] == pytest.approx(100 * (0.02 - 2.5 * 0.0004))
    losing = sizing_rewards([-0.01] * 5, 100.0, 5.0)
    assert max(losing, key=lambda k: losing[k]) in range(0, 5)  # the smallest multiplier loses least


def test_stop_replay_by_hand() -> None:
    opens = np.array([99.5, 99.0, 96.0, 97.0])
    highs = np.array([100.5, 99.5, 97.0, 98.0])
    lows = np.array([99.0, 97.5, 95.0, 96.5])
    got = stop_returns("long", 100.0, 0.03, 2.0, opens, highs, lows, fee=0.0, slippage=0.0)
    # 1 ATR = 98: the 2nd candle (low 97.5) reaches it -> exit 98; 1.5 ATR = 97 and 2 ATR = 96: the 3rd candle
    # opens at 96, through 97 -> exit 96, at 96 -> exit 96; 3 ATR = 94: never reached; no stop: the logged 3 %.
    assert got == pytest.approx((-0.02, -0.04, -0.04, 0.03, 0.03))
    fee = stop_returns("long", 100.0, 0.03, 2.0, opens, highs, lows, fee=0.001, slippage=0.001)
    assert fee[0] == pytest.approx((98 * 0.999 - 100) / 100 - 0.001 * (100 + 98 * 0.999) / 100)
    short = stop_returns("short", 100.0, -0.01, 1.0, np.array([100.5]), np.array([102.0]), np.array([100.0]),
                         fee=0.0, slippage=0.0)
    assert short == pytest.approx((-0.01, -0.015, -0.02, -0.01, -0.01))  # 101, 101.5, 102 reached; 103 not
    assert stop_returns("long", 100.0, 0.03, math.nan, opens, highs, lows, 0.0, 0.0) == (0.03,) * 5


# ------------------------------------------------------------------------------------------- learning from trades


def trade_rows(cfg: Config, starts: list[int], hold: int, pnl: Callable[[int, str], float],
               strategies: tuple[str, ...] = STRATEGIES) -> list[dict[str, object]]:
    """Trades of ``strategies`` opened at the close of candle k (for k in ``starts``), closed ``hold`` later."""
    candles = load_candles(cfg)[SYMBOL]
    ts, close = candles["timestamp"].to_numpy(), candles["close"].to_numpy()
    rows = []
    for k in starts:
        for strategy in strategies:
            rows.append({
                "closed_at": iso(int(ts[k + hold]) + TF_MS), "opened_at": iso(int(ts[k]) + TF_MS),
                "symbol": SYMBOL, "strategy": strategy, "side": "long", "qty": 0.01,
                "entry_price": float(close[k]), "exit_price": float(close[k + hold]), "pnl": 1.0,
                "pnl_pct": pnl(k, strategy), "fees": 0.0, "equity_after": 10_000.0,
            })
    return rows


def small_cfg(cfg: Config, **changes: object) -> Config:
    return replace_section(cfg, "qlearning", **changes)


def test_greedy_policy_finds_the_clearly_best_action_in_each_state(cfg: Config) -> None:
    cfg = small_cfg(cfg, alpha=0.5, gamma=0.3)
    regimes = classify_regime(load_candles(cfg)[SYMBOL]).to_numpy()

    def best(k: int) -> str:
        return "momentum_sma_crossover" if regimes[k] == "TREND" else "mean_reversion_rsi"

    starts = list(range(300, 3300, 9))
    rows = trade_rows(cfg, starts, 3, lambda k, s: 0.02 if s == best(k) else -0.01)
    append_trades(ql.history_path(cfg), rows)
    result = ql.run_pass(cfg)
    meta, sizing = result.agents["meta"], result.agents["sizing"]
    assert meta.updates == sizing.updates == len(rows)
    assert len(meta.table) > 50
    for key in meta.table:  # every state met at an entry; the regime is the key's first part
        expected = "momentum_sma_crossover" if key.startswith("TREND|") else "mean_reversion_rsi"
        assert describe_meta(meta.greedy_action(key)) == {"choice": expected, "aggressiveness": 2.0,
                                                          "level": "maximal"}


def test_sizing_agent_sizes_up_where_trades_win_and_down_where_they_lose(cfg: Config) -> None:
    cfg = small_cfg(cfg, alpha=0.5, gamma=0.0)
    regimes = classify_regime(load_candles(cfg)[SYMBOL]).to_numpy()
    starts = list(range(300, 2300, 5))
    rows = trade_rows(cfg, starts, 2, lambda k, s: 0.03 if regimes[k] == "TREND" else -0.02,
                      strategies=("turtle_trading",))
    append_trades(ql.history_path(cfg), rows)
    sizing = ql.run_pass(cfg).agents["sizing"]
    winners = {k for k in sizing.table if k.startswith("TREND|")}
    losers = {k for k in sizing.table if not k.startswith("TREND|")}
    assert winners and losers
    assert all(describe_sizing(sizing.greedy_action(k))["multiplier"] == 2.0 for k in winners)
    assert all(describe_sizing(sizing.greedy_action(k))["multiplier"] == 0.25 for k in losers)


def test_each_trade_is_learned_exactly_once_across_restarts(cfg: Config, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    rows = trade_rows(cfg, list(range(300, 600, 10)), 4, lambda k, s: 0.001 * ((k + len(s)) % 7 - 3))
    first, second = rows[:120], rows[120:]
    append_trades(ql.history_path(cfg), first)
    assert ql.run_pass(cfg).report.learned == {"meta": 120, "sizing": 120}
    files = {n: agent_path(cfg, n).read_bytes() for n in ("meta", "sizing")}
    again = ql.run_pass(cfg)  # a restart with nothing new: nothing learned, files untouched
    assert again.report.learned == {"meta": 0, "sizing": 0}
    assert {n: agent_path(cfg, n).read_bytes() for n in ("meta", "sizing")} == files
    append_trades(ql.history_path(cfg), second)
    later = ql.run_pass(cfg)
    assert later.report.learned == {"meta": len(second), "sizing": len(second)}
    assert later.agents["meta"].updates == len(rows)

    # The same trades learned in one go give the same tables: the restart lost and repeated nothing.
    monkeypatch.setenv("RL_SYSTEM_HOME", str(tmp_path / "other"))
    append_trades(ql.history_path(cfg), rows)
    straight = ql.run_pass(cfg)
    for name in ("meta", "sizing"):
        assert straight.agents[name].to_document()["table"] == later.agents[name].to_document()["table"]


def test_trade_id_column_identifies_trades_when_present(cfg: Config) -> None:
    row = trade_rows(cfg, [400], 3, lambda k, s: 0.01, strategies=("turtle_trading",))[0]
    path = ql.history_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = [*COLUMNS, "trade_id"]
    lines = [",".join(header)] + [",".join([*(str(row[c]) for c in COLUMNS), tid]) for tid in ("t-1", "t-2")]
    path.write_text("\n".join(lines) + "\n")
    # Two rows with identical content but their own ids are two trades; without ids they would be one.
    assert ql.run_pass(cfg).report.learned["meta"] == 2
    path.write_text("\n".join([*lines, lines[1].replace("t-1", "t-3")]) + "\n")
    assert ql.run_pass(cfg).report.learned["meta"] == 1


def test_identical_rows_without_an_id_are_one_trade(cfg: Config) -> None:
    row = trade_rows(cfg, [400], 3, lambda k, s: 0.01, strategies=("turtle_trading",))[0]
    append_trades(ql.history_path(cfg), [row, row])
    assert ql.run_pass(cfg).report.learned["meta"] == 1


def test_progress_recognises_late_trades_within_the_window_only() -> None:
    p = Progress()
    p.mark("a", 10_000)
    p.mark("b", 20_000)
    p.prune(late_window_ms=5_000, max_keys=100)
    assert p.learned_before_ms == 15_000 and set(p.recent_keys) == {"b"}
    assert p.is_learned("a", 10_000)  # before the cut-off: learned by construction
    assert not p.is_learned("c", 16_000)  # a late arrival inside the window is still new
    for i in range(10):
        p.mark(f"k{i}", 20_000 + i)
    p.prune(late_window_ms=5_000, max_keys=4)
    assert len(p.recent_keys) == 4 and p.learned_before_ms == 20_006
    assert p.is_learned("k0", 20_000)


def test_a_book_outside_the_strategies_teaches_only_the_sizing_agent(cfg: Config) -> None:
    rows = trade_rows(cfg, [500, 520], 3, lambda k, s: 0.01, strategies=("rl_v3_ppo",))
    append_trades(ql.history_path(cfg), rows)
    report = ql.run_pass(cfg).report
    assert report.learned == {"meta": 0, "sizing": 2} and report.skipped == {"meta": 2, "sizing": 0}
    assert "rl_v3_ppo" in report.reasons[0]


def test_trades_of_a_symbol_without_candles_are_skipped_with_the_reason(cfg: Config) -> None:
    cfg = config_from_dict({"market": {"data_source": "csv", "csv_paths": {}}})
    rows = trade_rows(Config(), [500], 3, lambda k, s: 0.01, strategies=("turtle_trading",))
    append_trades(ql.history_path(cfg), rows)
    result = ql.run_pass(cfg)
    assert result.report.skipped == {"meta": 1, "sizing": 1}
    assert "csv_paths" in result.report.reasons[0]
    assert result.agents["meta"].progress.trades_skipped == 1
    assert ql.run_pass(cfg).report.skipped == {"meta": 0, "sizing": 0}  # skipped once, not retried
    assert result.policy["sizing_multiplier"] == 1.0 and result.policy["state"] is None


def test_trades_beyond_the_generated_candles_extend_the_synthetic_market(cfg: Config) -> None:
    cfg = config_from_dict({"synthetic": {"n_candles": 600}})
    longer = load_candles(cfg, limit=900)[SYMBOL]
    ts, close = longer["timestamp"].to_numpy(), longer["close"].to_numpy()
    row = {"closed_at": iso(int(ts[805]) + TF_MS), "opened_at": iso(int(ts[800]) + TF_MS), "symbol": SYMBOL,
           "strategy": "turtle_trading", "side": "long", "qty": 1.0, "entry_price": float(close[800]),
           "exit_price": float(close[805]), "pnl": 1.0, "pnl_pct": 0.01, "fees": 0.0, "equity_after": 1e4}
    append_trades(ql.history_path(cfg), [row])
    assert ql.run_pass(cfg).report.learned == {"meta": 1, "sizing": 1}


# ------------------------------------------------------------------------------------------- files and policy


def test_agent_file_round_trip_keeps_everything(cfg: Config) -> None:
    append_trades(ql.history_path(cfg), trade_rows(cfg, [400, 420, 440], 3, lambda k, s: 0.005))
    result = ql.run_pass(cfg)
    for name, learned in result.agents.items():
        doc = json.loads(agent_path(cfg, name).read_text())
        assert doc["schema_version"] == 1 and doc["producer"] == "ai.tabular.learner" and "generated_at" in doc
        assert doc["hyperparameters"] == {"alpha": 0.02, "gamma": 0.95, "epsilon_decay": 0.9998, "epsilon_min": 0.01}
        assert doc["progress"]["last_trade"]["closed_at"]
        loaded = ql.load_agent(cfg, name)
        assert loaded.to_document()["table"] == learned.to_document()["table"]
        assert (loaded.epsilon, loaded.updates, loaded.q_updates) == (learned.epsilon, learned.updates,
                                                                     learned.q_updates)
        assert loaded.epsilon == pytest.approx(0.1 * 0.9998**24)


def test_a_corrupt_agent_file_is_a_clear_error_not_a_fresh_start(cfg: Config,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = agent_path(cfg, "meta")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(DataError, match="meta_agent.json: not valid JSON"):
        ql.run_pass(cfg)
    assert path.read_text() == "{not json"
    assert ql.main(["--once"]) == 1
    assert "move it aside" in capsys.readouterr().err


def test_policy_file_names_the_state_and_both_choices(cfg: Config) -> None:
    rows = trade_rows(cfg, list(range(300, 500, 5)), 3, lambda k, s: 0.01)
    append_trades(ql.history_path(cfg), rows)
    ql.run_pass(cfg)
    doc = json.loads(ql.policy_path(cfg).read_text())
    assert doc["producer"] == "ai.tabular.learner" and doc["schema_version"] == 1
    assert doc["state_time"] == rows[-1]["closed_at"] and doc["state_time_source"] == "last_trade"
    assert list(doc["state"]) == [name for name, _ in FEATURES]
    assert doc["state_key"] == "|".join(doc["state"].values())
    for name in ("meta", "sizing"):
        assert {"known_state", "greedy", "epsilon", "epsilon_greedy", "updates"} <= set(doc["agents"][name])
    assert doc["sizing_multiplier"] == doc["agents"]["sizing"]["greedy"]["multiplier"]
    assert doc["apply_sizing"] is False


def test_policy_follows_the_traders_last_candle(cfg: Config) -> None:
    candles = load_candles(cfg)[SYMBOL]
    stamp = int(candles["timestamp"].iloc[1234])
    write_status(cfg, stamp)
    doc = ql.run_pass(cfg).policy
    assert doc["state_time"] == iso(stamp + TF_MS) and doc["state_time_source"] == "trader_status"


def write_status(cfg: Config, candle_ms: int) -> None:
    status = ql.policy_path(cfg).with_name("trader_status.json")
    status.parent.mkdir(parents=True, exist_ok=True)
    status.write_text(json.dumps({"last_candle": {"timestamp": candle_ms, "close": 1.0}}))


def write_policy(cfg: Config, payload: dict[str, object], generated_at: str | None = None) -> None:
    path = ql.policy_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = generated_at or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    path.write_text(json.dumps({"schema_version": 1, "generated_at": stamp, "producer": "x", **payload}))


def test_sizing_multiplier_is_tolerant_and_off_by_default(cfg: Config) -> None:
    on = small_cfg(cfg, apply_sizing=True)
    assert ql.sizing_multiplier(on) == 1.0  # absent
    write_policy(cfg, {"sizing_multiplier": 1.5})
    assert ql.sizing_multiplier(cfg) == 1.0  # shadow mode: published, not applied
    assert ql.sizing_multiplier(on) == 1.5
    write_policy(cfg, {"sizing_multiplier": 1.5}, generated_at="2020-01-01T00:00:00Z")
    assert ql.sizing_multiplier(on) == 1.0  # stale
    for bad in ("x", 7.0, None, True):
        write_policy(cfg, {"sizing_multiplier": bad})
        assert ql.sizing_multiplier(on) == 1.0
    ql.policy_path(cfg).write_text('{"sizing_multiplier": NaN')
    assert ql.sizing_multiplier(on) == 1.0


def test_published_multiplier_reaches_the_trader_when_sizing_is_applied(cfg: Config) -> None:
    cfg = small_cfg(cfg, alpha=0.5, gamma=0.0, apply_sizing=True)
    # Trades closing on the candle they open (hold 0): "now", the newest close, is a state learned at an entry.
    append_trades(ql.history_path(cfg), trade_rows(cfg, list(range(300, 900, 3)), 0, lambda k, s: 0.03,
                                                   strategies=("turtle_trading",)))
    policy = ql.run_pass(cfg).policy
    assert policy["agents"]["sizing"]["known_state"]
    assert ql.sizing_multiplier(cfg) == policy["sizing_multiplier"] == 2.0


# ------------------------------------------------------------------------------------------- command and daemon


def test_once_and_bad_inputs(cfg: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    append_trades(ql.history_path(cfg), trade_rows(cfg, [400, 410], 3, lambda k, s: 0.01))
    assert ql.main(["--once"]) == 0
    assert "meta: +16 trade(s)" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text("[qlearning]\nalpha = 2.0\n")
    assert ql.main(["--once", "--config", str(bad)]) == 2
    assert "qlearning.alpha = 2.0: must be in (0, 1]" in capsys.readouterr().err
    ql.history_path(cfg).write_text("closed_at,opened_at\n")
    assert ql.main(["--once"]) == 1
    assert "column `symbol` missing" in capsys.readouterr().err


def test_help_runs_as_a_script() -> None:
    out = subprocess.run([sys.executable, "ai/qlearning.py", "--help"], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "--loop" in out.stdout and "--once" in out.stdout


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def updates(cfg: Config) -> int:
    try:
        return int(json.loads(agent_path(cfg, "meta").read_text())["updates"])
    except (FileNotFoundError, ValueError, KeyError):
        return -1


def test_history_events_are_filtered_by_name(tmp_path: Path) -> None:
    calls: list[int] = []
    handler = ql.HistoryFileHandler("pnl_history.csv", lambda: calls.append(1))
    target = str(tmp_path / "pnl_history.csv")
    for event in (FileModifiedEvent(target), FileCreatedEvent(target),
                  FileMovedEvent(str(tmp_path / ".pnl_history.csv.x.tmp"), target)):
        handler.dispatch(event)
    assert len(calls) == 3
    for event in (FileModifiedEvent(target + ".lock"), FileModifiedEvent(str(tmp_path / "other.csv")),
                  FileDeletedEvent(target), DirModifiedEvent(str(tmp_path)), FileOpenedEvent(target)):
        handler.dispatch(event)
    assert len(calls) == 3


def heartbeat(cfg: Config) -> dict[str, object]:
    try:
        return json.loads((cfg.runtime_dir / "heartbeats" / "qlearning.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


@pytest.mark.parametrize("mode", [[], ["--polling"]], ids=["os-events", "polling"])
def test_loop_learns_appended_trades_and_exits_0_on_sigterm(cfg: Config, tmp_path: Path, mode: list[str]) -> None:
    toml = tmp_path / "q.toml"
    toml.write_text("[qlearning]\ndebounce_s = 0.1\nrecheck_interval_s = 60.0\npoll_interval_s = 0.2\n")
    rows = trade_rows(cfg, list(range(300, 400, 10)), 3, lambda k, s: 0.01)
    log = open(tmp_path / "loop.out", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "ai.tabular.learner", "--loop", "--config", str(toml), *mode],
                            cwd=REPO_ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: updates(cfg) == 0), (tmp_path / "loop.out").read_text()
        append_trades(ql.history_path(cfg), rows[:40])
        assert wait_for(lambda: updates(cfg) == 40), (tmp_path / "loop.out").read_text()
        append_trades(ql.history_path(cfg), rows[40:])
        assert wait_for(lambda: updates(cfg) == len(rows)), (tmp_path / "loop.out").read_text()
        # The heartbeat follows the pass that saved the tables.
        assert wait_for(lambda: heartbeat(cfg).get("trades_learned", {}).get("meta") == len(rows))
        assert heartbeat(cfg)["state"] == "running"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
        log.close()
    assert code == 0
    assert heartbeat(cfg)["state"] == "stopped"
