"""Trade keys: the ``trade_id`` column identifies trades when present, identical rows without one are one trade."""

from __future__ import annotations

from collections.abc import Callable

from ai.tabular.learner import run_pass
from core.config import Config
from core.contracts.pnl_history import COLUMNS, append_trades, history_path

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
