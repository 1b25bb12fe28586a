"""Trade keys: the ``trade_id`` column identifies trades when present, identical rows without one are one trade;
a pass holds only the trades it may still have to learn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ai.tabular import learner
from ai.tabular.learner import run_pass
from ai.tabular.snapshot import LearnReport, Snapshot, read_snapshot
from core.config import Config, replace_section
from core.contracts.pnl_history import COLUMNS, HistoryTail, append_trades, history_path

# Signatures of the helper fixtures of conftest.py.
TradeRows = Callable[..., list[dict[str, object]]]


def test_trade_id_column_identifies_trades_when_present(cfg: Config, trade_rows: TradeRows) -> None:
    row = trade_rows(cfg, [400], 3, lambda k, s: 0.01, strategies=("turtle_trading",))[0]
    path = history_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = [*COLUMNS, "trade_id"]
    lines = [",".join(header)] + [",".join([*(str(row[c]) for c in COLUMNS), tid]) for tid in ("t-1", "t-2")]
    path.write_text("\n".join(lines) + "\n")
    # Two rows with identical content but their own ids are two trades; without ids they would be one.
    assert run_pass(cfg).report.learned["meta"] == 2
    path.write_text("\n".join([*lines, lines[1].replace("t-1", "t-3")]) + "\n")
    assert run_pass(cfg).report.learned["meta"] == 1


def test_identical_rows_without_an_id_are_one_trade(cfg: Config, trade_rows: TradeRows) -> None:
    row = trade_rows(cfg, [400], 3, lambda k, s: 0.01, strategies=("turtle_trading",))[0]
    append_trades(history_path(cfg), [row, row])
    assert run_pass(cfg).report.learned["meta"] == 1


def test_a_pass_holds_the_late_window_not_the_whole_history(cfg: Config, trade_rows: TradeRows,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = replace_section(cfg, "qlearning", late_window_s=10 * 3600.0)  # 10 candles of trade time
    held: list[int] = []

    def spy(*args: Any, **kwargs: Any) -> tuple[Snapshot, LearnReport]:
        snapshot, report = read_snapshot(*args, **kwargs)
        held.append(len(snapshot.trades))
        return snapshot, report

    monkeypatch.setattr(learner, "read_snapshot", spy)
    one = ("turtle_trading",)
    append_trades(history_path(cfg), trade_rows(cfg, list(range(300, 900, 5)), 2, lambda k, s: 0.01, one))
    assert run_pass(cfg).report.learned["meta"] == 120
    assert run_pass(cfg).report.new_trades == 0
    append_trades(history_path(cfg), trade_rows(cfg, list(range(900, 1500, 5)), 2, lambda k, s: -0.01, one))
    assert run_pass(cfg).report.learned["meta"] == 120  # the new trades are all there to learn
    last = run_pass(cfg)
    assert last.report.trades == 240 and last.report.new_trades == 0
    # first pass: everything (nothing learned yet); later ones only the trades of the late window
    assert held[0] == 120 and held[1] <= 3 and held[3] == held[1]


def test_passes_with_the_incremental_reader_learn_what_full_reads_learn(cfg: Config, trade_rows: TradeRows) -> None:
    one = ("turtle_trading",)
    history = HistoryTail(history_path(cfg))
    append_trades(history_path(cfg), trade_rows(cfg, list(range(300, 600, 5)), 2, lambda k, s: 0.01, one))
    first = run_pass(cfg, history=history)
    assert first.report.learned["meta"] == 60 and first.report.trades == 60
    rows = trade_rows(cfg, list(range(600, 700, 5)), 2, lambda k, s: -0.01, one)
    append_trades(history_path(cfg), [*rows, rows[0]])  # and one exact duplicate
    second = run_pass(cfg, history=history)
    assert second.report.learned["meta"] == 20 and second.report.trades == 80
    assert second.report.history_skipped_rows == 1 and history.duplicates == 1
    full, _ = read_snapshot(cfg)
    kept, _ = read_snapshot(cfg, history=history)
    assert full.keys == kept.keys and full.trades.equals(kept.trades)
