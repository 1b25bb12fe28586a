"""The learning daemon holds only recent trades: the account states after them, and what a run of passes
learns, equal those of the whole history read each time; a pass that needs older trades reads them all."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from ai.tabular import snapshot
from ai.tabular.learner import run_pass
from ai.tabular.snapshot import held_history
from ai.tabular.state import AccountCarry, account_states
from ai.tabular.store import HeldAgents
from core.config import Config
from core.contracts.pnl_history import append_trades, history_path
from core.contracts.qtables import AGENT_NAMES, agent_path

TradeRows = Callable[..., list[dict[str, object]]]
SmallCfg = Callable[..., Config]


def history(n: int, seed: int = 0) -> pd.DataFrame:
    """Trades with streaks of wins and losses and an equity that sets new peaks and falls below them."""
    rng = np.random.default_rng(seed)
    pnl = np.where(rng.random(n) < 0.45, rng.uniform(0.0001, 0.03, n), -rng.uniform(0.0, 0.02, n))
    pnl[rng.random(n) < 0.05] = 0.0  # a flat trade counts as a loss for the streak
    return pd.DataFrame({
        "closed_at": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
        "pnl_pct": pnl,
        "equity_after": 10_000.0 * np.cumprod(1.0 + pnl),
    })


@pytest.mark.parametrize("split", [1, 7, 19, 20, 21, 150, 299])
def test_states_after_the_held_trades_equal_those_of_the_whole_history(split: int) -> None:
    trades, recent = history(300), 20
    whole = account_states(trades, recent)
    carry = AccountCarry(recent)
    for chunk in np.array_split(np.arange(split), 3):  # dropped in a few batches, oldest first
        carry.add(trades.iloc[chunk])
    held = account_states(trades.iloc[split:].reset_index(drop=True), recent, carry)
    for name in ("drawdown", "win_rate", "recent_pnl", "loss_streak"):
        assert list(getattr(held, name)) == list(getattr(whole, name)[split:]), name
    assert carry.count == split
    carry.clear()
    assert account_states(trades, recent, carry).loss_streak.tolist() == whole.loss_streak.tolist()


def agent_docs(cfg: Config) -> dict[str, dict[str, object]]:
    docs = {}
    for name in AGENT_NAMES:
        doc = json.loads(agent_path(cfg, name).read_text())
        docs[name] = {k: v for k, v in doc.items() if k != "generated_at"}
    return docs


def test_passes_over_held_trades_learn_what_full_reads_learn(cfg: Config, trade_rows: TradeRows,
                                                             small_cfg: SmallCfg, monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    cfg = small_cfg(cfg, late_window_s=86_400.0)
    monkeypatch.setattr(snapshot, "HELD_SPAN", pd.Timedelta(days=2))  # drop trades after 3 days, not 97
    rng = np.random.default_rng(4)
    batches = [trade_rows(cfg, list(range(start, start + 24, 6)), 3, lambda k, s: float(rng.normal(0, 0.01)))
               for start in range(300, 900, 24)]  # a day of trades a pass
    equity = 10_000.0
    for batch in batches:
        for row in batch:
            equity *= 1.0 + float(row["pnl_pct"])  # type: ignore[arg-type]
            row["equity_after"] = equity

    def run(held: bool) -> dict[str, dict[str, object]]:
        tail, agents = (held_history(cfg), HeldAgents()) if held else (None, None)
        for batch in batches:
            append_trades(history_path(cfg), batch)
            run_pass(cfg, history=tail, held=agents)
        if tail is not None:
            assert tail.dropped_before is not None and len(tail.trades) < sum(map(len, batches)) // 4
        return agent_docs(cfg)

    with_held = run(held=True)
    assert "reading the whole history" not in caplog.text  # every pass was served by the held trades
    history_path(cfg).unlink()
    for name in AGENT_NAMES:
        agent_path(cfg, name).unlink()
    assert run(held=False) == with_held


def test_a_pass_that_needs_older_trades_reads_the_whole_history(cfg: Config, trade_rows: TradeRows,
                                                                small_cfg: SmallCfg, monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    cfg = small_cfg(cfg, late_window_s=86_400.0)
    monkeypatch.setattr(snapshot, "HELD_SPAN", pd.Timedelta(days=1))
    tail = held_history(cfg)
    append_trades(history_path(cfg), trade_rows(cfg, list(range(300, 700, 10)), 3, lambda k, s: 0.001))
    run_pass(cfg, history=tail)
    assert tail.dropped_before is not None
    for name in AGENT_NAMES:  # the agents start afresh: they need every trade again
        agent_path(cfg, name).unlink()
    caplog.set_level("INFO")
    result = run_pass(cfg, history=tail)
    assert "reading the whole history" in caplog.text
    assert result.agents["meta"].updates == 40 * 8  # all of them, not only the held ones
