"""One learning pass over the trade history: the greedy policies it learns, each trade learned exactly
once (also across restarts), and trades that are skipped with their reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ai.tabular import learner, state
from ai.tabular.actions import describe_meta, describe_sizing
from ai.tabular.learner import run_pass
from ai.tabular.snapshot import LearnReport, Snapshot, read_snapshot
from ai.tabular.state import EXTEND_MARGIN, WARMUP_CANDLES
from core.config import Config, config_from_dict, replace_section
from core.contracts.pnl_history import append_trades, history_path
from core.contracts.qtables import agent_path
from market.regime import classify_regime
from market.sources import load_candles

TF_MS = 3_600_000
SYMBOL = "BTC/USDT"

# Signatures of the helper fixtures of conftest.py.
Iso = Callable[[int], str]
SmallCfg = Callable[..., Config]
TradeRows = Callable[..., list[dict[str, object]]]


def test_greedy_policy_finds_the_clearly_best_action_in_each_state(cfg: Config, trade_rows: TradeRows,
                                                                   small_cfg: SmallCfg) -> None:
    cfg = small_cfg(cfg, alpha=0.5, gamma=0.3)
    regimes = classify_regime(load_candles(cfg)[SYMBOL]).to_numpy()

    def best(k: int) -> str:
        return "momentum_sma_crossover" if regimes[k] == "TREND" else "mean_reversion_rsi"

    starts = list(range(300, 3300, 9))
    rows = trade_rows(cfg, starts, 3, lambda k, s: 0.02 if s == best(k) else -0.01)
    append_trades(history_path(cfg), rows)
    result = run_pass(cfg)
    meta, sizing = result.agents["meta"], result.agents["sizing"]
    assert meta.updates == sizing.updates == len(rows)
    assert len(meta.table) > 50
    for key in meta.table:  # every state met at an entry; the regime is the key's first part
        expected = "momentum_sma_crossover" if key.startswith("TREND|") else "mean_reversion_rsi"
        assert describe_meta(meta.greedy_action(key)) == {"choice": expected, "aggressiveness": 2.0,
                                                          "level": "maximal"}


def test_sizing_agent_sizes_up_where_trades_win_and_down_where_they_lose(cfg: Config, trade_rows: TradeRows,
                                                                         small_cfg: SmallCfg) -> None:
    cfg = small_cfg(cfg, alpha=0.5, gamma=0.0)
    regimes = classify_regime(load_candles(cfg)[SYMBOL]).to_numpy()
    starts = list(range(300, 2300, 5))
    rows = trade_rows(cfg, starts, 2, lambda k, s: 0.03 if regimes[k] == "TREND" else -0.02,
                      strategies=("turtle_trading",))
    append_trades(history_path(cfg), rows)
    sizing = run_pass(cfg).agents["sizing"]
    winners = {k for k in sizing.table if k.startswith("TREND|")}
    losers = {k for k in sizing.table if not k.startswith("TREND|")}
    assert winners and losers
    assert all(describe_sizing(sizing.greedy_action(k))["multiplier"] == 2.0 for k in winners)
    assert all(describe_sizing(sizing.greedy_action(k))["multiplier"] == 0.25 for k in losers)


def test_each_trade_is_learned_exactly_once_across_restarts(cfg: Config, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            trade_rows: TradeRows) -> None:
    rows = trade_rows(cfg, list(range(300, 600, 10)), 4, lambda k, s: 0.001 * ((k + len(s)) % 7 - 3))
    first, second = rows[:120], rows[120:]
    append_trades(history_path(cfg), first)
    assert run_pass(cfg).report.learned == {"meta": 120, "sizing": 120}
    files = {n: agent_path(cfg, n).read_bytes() for n in ("meta", "sizing")}
    again = run_pass(cfg)  # a restart with nothing new: nothing learned, files untouched
    assert again.report.learned == {"meta": 0, "sizing": 0}
    assert {n: agent_path(cfg, n).read_bytes() for n in ("meta", "sizing")} == files
    append_trades(history_path(cfg), second)
    later = run_pass(cfg)
    assert later.report.learned == {"meta": len(second), "sizing": len(second)}
    assert later.agents["meta"].updates == len(rows)

    # The same trades learned in one go give the same tables: the restart lost and repeated nothing.
    monkeypatch.setenv("RL_SYSTEM_HOME", str(tmp_path / "other"))
    append_trades(history_path(cfg), rows)
    straight = run_pass(cfg)
    for name in ("meta", "sizing"):
        assert straight.agents[name].to_document()["table"] == later.agents[name].to_document()["table"]


def test_a_book_outside_the_strategies_teaches_only_the_sizing_agent(cfg: Config,
                                                                     trade_rows: TradeRows) -> None:
    rows = trade_rows(cfg, [500, 520], 3, lambda k, s: 0.01, strategies=("rl_v3_ppo",))
    append_trades(history_path(cfg), rows)
    report = run_pass(cfg).report
    assert report.learned == {"meta": 0, "sizing": 2} and report.skipped == {"meta": 2, "sizing": 0}
    assert "rl_v3_ppo" in report.reasons[0]


def test_trades_of_a_symbol_without_candles_are_skipped_with_the_reason(cfg: Config,
                                                                        trade_rows: TradeRows) -> None:
    cfg = config_from_dict({"market": {"data_source": "csv", "csv_paths": {}}})
    rows = trade_rows(Config(), [500], 3, lambda k, s: 0.01, strategies=("turtle_trading",))
    append_trades(history_path(cfg), rows)
    result = run_pass(cfg)
    assert result.report.skipped == {"meta": 1, "sizing": 1}
    assert "csv_paths" in result.report.reasons[0]
    assert result.agents["meta"].progress.trades_skipped == 1
    assert run_pass(cfg).report.skipped == {"meta": 0, "sizing": 0}  # skipped once, not retried
    assert result.policy["sizing_multiplier"] == 1.0 and result.policy["state"] is None


def test_trades_beyond_the_generated_candles_extend_the_synthetic_market(cfg: Config, iso: Iso) -> None:
    cfg = config_from_dict({"synthetic": {"n_candles": 600}})
    longer = load_candles(cfg, limit=900)[SYMBOL]
    ts, close = longer["timestamp"].to_numpy(), longer["close"].to_numpy()
    row = {"closed_at": iso(int(ts[805]) + TF_MS), "opened_at": iso(int(ts[800]) + TF_MS), "symbol": SYMBOL,
           "strategy": "turtle_trading", "side": "long", "qty": 1.0, "entry_price": float(close[800]),
           "exit_price": float(close[805]), "pnl": 1.0, "pnl_pct": 0.01, "fees": 0.0, "equity_after": 1e4}
    append_trades(history_path(cfg), [row])
    assert run_pass(cfg).report.learned == {"meta": 1, "sizing": 1}


def _passes_over_a_moving_history(cfg: Config, trade_rows: TradeRows, monkeypatch: pytest.MonkeyPatch,
                                  ) -> tuple[list[int], dict[str, object]]:
    """Six batches of trades, one after the other in the market (as a trader appends them), one pass after
    each: the candles each pass held (largest per symbol) and the learned tables (without their time stamps)."""
    held: list[int] = []
    snapshots: list[Snapshot] = []

    def spy(*args: object, **kwargs: object) -> tuple[Snapshot, LearnReport]:
        snapshot, report = read_snapshot(*args, **kwargs)  # type: ignore[arg-type]
        snapshots.append(snapshot)
        return snapshot, report

    monkeypatch.setattr(learner, "read_snapshot", spy)
    one = ("turtle_trading",)
    rows_market = replace_section(cfg, "synthetic", n_candles=4500)  # the same candles, long enough for the rows
    for first in range(300, 3900, 600):
        append_trades(history_path(cfg), trade_rows(rows_market, list(range(first, first + 600, 5)), 2,
                                                    lambda k, s: 0.01 if k % 3 else -0.01, one))
        run_pass(cfg)
        held.append(max(snapshots[-1].markets.candles_held().values()))
    tables = {name: {k: v for k, v in json.loads(agent_path(cfg, name).read_text()).items() if k != "generated_at"}
              for name in ("meta", "sizing")}
    return held, tables


def test_a_pass_holds_the_candles_of_its_late_window_not_the_whole_market(
        trade_rows: TradeRows, monkeypatch: pytest.MonkeyPatch, rl_home: Path) -> None:
    # A short market extended as the trades move on (as in a replay), a late window of 10 candles.
    settings = {"qlearning": {"late_window_s": 10 * 3600.0}, "synthetic": {"n_candles": 1000}}
    held, tables = _passes_over_a_moving_history(config_from_dict(settings, source=str(rl_home)), trade_rows,
                                                 monkeypatch)
    # Once the market is longer than the warm-up and a batch, a pass holds the warm-up, its batch and the
    # extension margin: the same at every later pass, however far the market has grown.
    assert held[4] == held[5] <= WARMUP_CANDLES + 600 + EXTEND_MARGIN + 50, held
    # The reference: the same passes, each building the whole market (nothing left out).
    monkeypatch.setattr(state, "WARMUP_CANDLES", 10**9)
    monkeypatch.setenv("RL_SYSTEM_HOME", str(rl_home.parent / "whole"))
    held_whole, expected = _passes_over_a_moving_history(config_from_dict(settings, source="whole"), trade_rows,
                                                         monkeypatch)
    assert held_whole[5] > held_whole[4] > held[4] and tables == expected
