"""Incremental reads of state/pnl_history.csv: equal to a full read after appends, torn lines, rewrites."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from core.contracts import pnl_history
from core.contracts.pnl_history import HistoryTail, append_trades, read_history
from core.errors import DataError
from tests.core.contracts.support import HEADER, csv_line, trade


@pytest.fixture
def history(rl_home: Path) -> Path:
    return rl_home / "state" / "pnl_history.csv"


def assert_same_as_full_read(tail: HistoryTail, path: Path) -> None:
    full = read_history(path)
    assert_frame_equal(tail.trades, full.trades)
    assert (tail.skipped, tail.duplicates, tail.problems) == (full.skipped, full.duplicates, full.problems)


def test_many_appends_equal_a_full_read(history: Path) -> None:
    rng = np.random.default_rng(7)
    tail = HistoryTail(history)
    assert tail.poll().new.empty  # no file yet: an empty history
    i = 0
    for _ in range(40):
        batch = []
        for _ in range(int(rng.integers(1, 6))):
            # Out-of-order closes, equal closes and exact duplicates of earlier rows all occur.
            j = int(rng.integers(0, i + 1)) if rng.random() < 0.1 else i + int(rng.integers(-3, 2))
            batch.append(trade(max(j, 0), equity_after=10_000.0 + (j if rng.random() < 0.1 else i)))
            i += 1
        append_trades(history, batch)
        update = tail.poll()
        assert not update.reset
        assert_same_as_full_read(tail, history)
    assert tail.duplicates > 0 and tail.trades_read == len(tail.trades)


def test_poll_returns_only_the_new_trades(history: Path) -> None:
    append_trades(history, [trade(0), trade(1)])
    tail = HistoryTail(history)
    assert len(tail.poll().new) == 2
    assert tail.poll().new.empty
    append_trades(history, [trade(2)])
    new = tail.poll().new
    assert list(new["equity_after"]) == [10_002.0]


def test_malformed_rows_are_skipped_as_in_a_full_read(history: Path) -> None:
    append_trades(history, [trade(0)])
    with open(history, "a") as fh:
        fh.write(csv_line(trade(1, pnl_pct="x")) + "\n" + csv_line(trade(2, strategy="nope")) + "\n")
    append_trades(history, [trade(3), trade(0)])  # trade(0) again: an exact duplicate
    tail = HistoryTail(history)
    update = tail.poll()
    assert update.skipped == 3 and len(update.problems) == 3
    assert "row 6: exact duplicate of row 2" in update.problems[-1]
    assert_same_as_full_read(tail, history)


def test_torn_last_line_waits_for_its_newline(history: Path) -> None:
    append_trades(history, [trade(0)])
    tail = HistoryTail(history)
    tail.poll()
    line = csv_line(trade(1, exit_price=10002.0)) + "\n"
    with open(history, "a") as fh:
        fh.write(line[:-8])  # "10002.0" cut to "10": would parse, as a wrong trade
    assert tail.poll().new.empty and tail.skipped == 0
    with open(history, "a") as fh:
        fh.write(line[-8:])
    new = tail.poll().new
    assert list(new["exit_price"]) == [10002.0]
    assert_same_as_full_read(tail, history)


def test_torn_tail_set_aside_by_the_next_append_is_never_read(history: Path) -> None:
    append_trades(history, [trade(0)])
    tail = HistoryTail(history)
    tail.poll()
    with open(history, "a") as fh:
        fh.write(csv_line(trade(1))[:20])  # a writer killed mid-append
    tail.poll()
    append_trades(history, [trade(2)])  # cuts the torn part off (the file gets shorter) and appends
    update = tail.poll()
    assert not update.reset and list(update.new["equity_after"]) == [10_002.0]
    assert_same_as_full_read(tail, history)


def test_truncation_reads_again_from_the_start(history: Path) -> None:
    append_trades(history, [trade(i) for i in range(5)])
    tail = HistoryTail(history)
    tail.poll()
    history.write_text(HEADER + "\n" + csv_line(trade(0)) + "\n")
    update = tail.poll()
    assert update.reset and len(update.new) == 1
    assert_same_as_full_read(tail, history)


def test_replacement_by_a_new_file_reads_again(history: Path) -> None:
    append_trades(history, [trade(i) for i in range(3)])
    tail = HistoryTail(history)
    tail.poll()
    replacement = history.with_name("new.csv")
    append_trades(replacement, [trade(i) for i in range(3, 9)])
    os.replace(replacement, history)
    update = tail.poll()
    assert update.reset and list(update.new["equity_after"]) == [10_000.0 + i for i in range(3, 9)]
    assert_same_as_full_read(tail, history)


def test_rewrite_in_place_with_the_same_length_is_noticed(history: Path) -> None:
    append_trades(history, [trade(i) for i in range(3)])
    tail = HistoryTail(history)
    tail.poll()
    text = history.read_text()
    with open(history, "r+") as fh:  # same inode, same size, same first bytes: only the last row differs
        fh.write(text.replace("10002.0", "10009.0"))
    assert tail.poll().reset
    assert_same_as_full_read(tail, history)


def test_deleted_file_is_an_empty_history(history: Path) -> None:
    append_trades(history, [trade(0)])
    tail = HistoryTail(history)
    tail.poll()
    history.unlink()
    assert tail.poll().reset and tail.trades.empty


def test_missing_column_is_an_error_on_every_poll(history: Path) -> None:
    history.parent.mkdir(parents=True, exist_ok=True)
    history.write_text("closed_at,symbol\n2024-01-01T00:00:00Z,BTC/USDT\n")
    tail = HistoryTail(history)
    for _ in range(2):
        with pytest.raises(DataError, match="column `opened_at` missing"):
            tail.poll()


def test_keep_span_keeps_only_the_recent_trades(history: Path) -> None:
    tail = HistoryTail(history, keep_span=pd.Timedelta(hours=10))
    for start in range(0, 50, 7):
        append_trades(history, [trade(i) for i in range(start, start + 7)])
        tail.poll()
    full = read_history(history).trades
    recent = full[full["closed_at"] >= full["closed_at"].iloc[-1] - pd.Timedelta(hours=10)].reset_index(drop=True)
    assert_frame_equal(tail.trades, recent)
    assert tail.trades_read == 56 and tail.dropped_before is not None
    append_trades(history, [trade(3)])  # a duplicate of a trade no longer in memory is still recognised
    assert tail.poll().new.empty and tail.duplicates == 1


def test_widen_reads_again_and_keeps_the_longer_span_and_the_fold(history: Path) -> None:
    class Summary:
        """A fold that remembers what it was told."""

        def __init__(self) -> None:
            self.rows: list[int] = []

        def add(self, dropped: pd.DataFrame) -> None:
            self.rows += [int(round(e)) - 10_000 for e in dropped["equity_after"]]

        def clear(self) -> None:
            self.rows = []

    summary = Summary()
    tail = HistoryTail(history, keep_span=pd.Timedelta(hours=10), fold=summary)
    for start in range(0, 50, 7):
        append_trades(history, [trade(i) for i in range(start, start + 7)])
        tail.poll()
    assert summary.rows == list(range(45))  # the dropped trades, oldest first (trades 45..55 are kept)
    tail.widen(pd.Timedelta(hours=5))  # shorter: nothing changes
    assert tail.keep_span == pd.Timedelta(hours=10) and len(tail.trades) == 11
    tail.widen(pd.Timedelta(hours=30))
    assert tail.poll().reset is False and len(tail.trades) == 31  # read again from the first row
    full = read_history(history).trades
    assert_frame_equal(tail.trades, full.iloc[-31:].reset_index(drop=True))
    assert summary.rows == list(range(25)) and tail.trades_read == 56


def test_keep_span_bounds_the_digests_and_still_drops_duplicates_inside_the_window(
        history: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pnl_history, "DIGEST_ROWS", 20)
    tail = HistoryTail(history, keep_span=pd.Timedelta(hours=10))
    for start in range(0, 600, 30):
        append_trades(history, [trade(i) for i in range(start, start + 30)])
        tail.poll()
        # Window: the 11 trades closed within 10 h of the newest; digests: 20 latest rows (+ in-window ones).
        assert len(tail._seen) <= 20 + 11
    assert tail.trades_read == 600 and len(tail.trades) == 11
    append_trades(history, [trade(595), trade(599)])  # copies of rows inside the window
    update = tail.poll()
    assert update.new.empty and tail.duplicates == 2
    full = read_history(history).trades
    assert_frame_equal(tail.trades, full[full["closed_at"] >= tail.dropped_before].reset_index(drop=True))
    assert sum(tail.dropped_by_strategy.values()) == 600 - 11
    assert tail.dropped_by_strategy == Counter(full["strategy"].iloc[:589])


def test_a_late_copy_of_a_forgotten_row_never_enters_the_window(history: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pnl_history, "DIGEST_ROWS", 5)
    tail = HistoryTail(history, keep_span=pd.Timedelta(hours=3))
    append_trades(history, [trade(i) for i in range(50)])
    tail.poll()
    append_trades(history, [trade(0)])  # its digest is forgotten: counted as read, but closed before the window
    tail.poll()
    full = read_history(history).trades
    assert_frame_equal(tail.trades, full[full["closed_at"] >= tail.dropped_before].reset_index(drop=True))
    assert tail.trades_read == 51 and len(tail.trades) == 4
