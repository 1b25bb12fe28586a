"""state/pnl_history.csv: locked appends (also across processes), validated tolerant reads, round trips."""

from __future__ import annotations

import csv
import multiprocessing
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.config import STRATEGIES
from core.contracts.pnl_history import COLUMNS, append_trades, locked, read_history, torn_path
from core.errors import DataError
from tests.core.contracts.support import HEADER, START, csv_line, trade


@pytest.fixture
def history(rl_home: Path) -> Path:
    return rl_home / "state" / "pnl_history.csv"


# --- appends ---------------------------------------------------------------------------------------------------


def test_round_trip_keeps_every_value(history: Path) -> None:
    awkward = trade(0, qty=0.1 + 0.2, pnl=-1234.5678901234567, pnl_pct=1e-12, fees=0.0, equity_after=9_876_543.21)
    rows = [awkward, trade(1, symbol="ETH/USDT", side="short"), trade(2)]
    assert append_trades(history, rows) == 3
    got = read_history(history)
    assert got.skipped == 0 and got.problems == []
    assert len(got.trades) == 3
    first = got.trades.iloc[0]
    assert first["qty"] == 0.30000000000000004  # exact float, not a rounded rendering
    assert first["pnl"] == -1234.5678901234567
    assert first["pnl_pct"] == 1e-12
    assert first["equity_after"] == 9_876_543.21
    assert first["closed_at"] == pd.Timestamp("2024-01-01T01:00:00Z")
    assert first["opened_at"] == pd.Timestamp("2024-01-01T00:00:00Z")
    assert list(got.trades["symbol"]) == ["BTC/USDT", "ETH/USDT", "BTC/USDT"]
    assert list(got.trades["strategy"]) == [STRATEGIES[0], STRATEGIES[1], STRATEGIES[2]]
    assert list(got.trades.columns) == list(COLUMNS)
    assert all(got.trades[c].dtype == np.float64 for c in ("qty", "pnl", "equity_after"))
    assert str(got.trades["closed_at"].dt.tz) == "UTC"


def test_header_is_written_once(history: Path) -> None:
    append_trades(history, [trade(0)])
    append_trades(history, [trade(1), trade(2)])
    lines = history.read_text(encoding="utf-8").splitlines()
    assert lines[0] == HEADER
    assert lines.count(HEADER) == 1
    assert len(lines) == 4


def test_rows_are_sorted_by_closing_time(history: Path) -> None:
    append_trades(history, [trade(5), trade(1), trade(3)])
    assert list(read_history(history).trades["equity_after"]) == [10_001.0, 10_003.0, 10_005.0]


def test_datetimes_and_numpy_scalars_are_written_as_plain_values(history: Path) -> None:
    row = trade(0, closed_at=START + timedelta(hours=2), opened_at=pd.Timestamp("2024-01-01T01:00:00Z"),
                qty=np.float64(1.5), pnl=np.float32(0.25), equity_after=np.int64(10_000))
    append_trades(history, [row])
    raw = history.read_text(encoding="utf-8").splitlines()[1].split(",")
    values = dict(zip(COLUMNS, raw, strict=True))
    assert values["qty"] == "1.5" and values["pnl"] == "0.25" and values["equity_after"] == "10000"
    got = read_history(history)
    assert got.skipped == 0
    assert got.trades.loc[0, "closed_at"] == pd.Timestamp("2024-01-01T02:00:00Z")
    assert got.trades.loc[0, "opened_at"] == pd.Timestamp("2024-01-01T01:00:00Z")
    assert got.trades.loc[0, "qty"] == 1.5


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), np.float64("-inf"), np.float32("nan")])
def test_non_finite_value_refuses_the_whole_batch(history: Path, bad: float) -> None:
    append_trades(history, [trade(0)])
    before = history.read_bytes()
    with pytest.raises(ValueError, match="non-finite"):
        append_trades(history, [trade(1), trade(2, pnl=bad)])
    assert history.read_bytes() == before


def test_missing_field_refuses_the_whole_batch(history: Path) -> None:
    incomplete = trade(1)
    del incomplete["fees"]
    with pytest.raises(ValueError, match="fees"):
        append_trades(history, [trade(0), incomplete])
    with pytest.raises(ValueError, match="pnl_pct"):
        append_trades(history, [trade(0, pnl_pct=None)])
    assert not history.exists()


def test_empty_batch_writes_nothing(history: Path) -> None:
    assert append_trades(history, []) == 0
    assert not history.exists()


def test_lock_is_a_separate_file(history: Path) -> None:
    append_trades(history, [trade(0)])
    assert Path(f"{history}.lock").exists()
    assert history.read_text(encoding="utf-8").startswith(HEADER)


def _append_one(path: str, i: int) -> None:
    append_trades(path, [trade(i)])


def test_append_waits_for_the_lock(history: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    append_trades(history, [trade(0)])
    with locked(history):
        child = ctx.Process(target=_append_one, args=(str(history), 1))
        child.start()
        time.sleep(0.3)
        assert child.is_alive(), "the append did not wait for the lock"
        assert len(history.read_text(encoding="utf-8").splitlines()) == 2
    child.join(10)
    assert child.exitcode == 0
    assert len(read_history(history).trades) == 2


def _append_many(path: str, writer: int, count: int, start: Any) -> None:
    start.wait()
    for seq in range(count):
        # A long symbol makes each row several hundred bytes, so an unlocked append would tear more easily.
        append_trades(path, [trade(writer * 1000 + seq, symbol=f"W{writer}S{seq}" + "X" * 300 + "/USDT")])


def test_concurrent_appends_from_processes_keep_every_row_whole(history: Path) -> None:
    writers, per_writer = 4, 50
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_append_many, args=(str(history), w, per_writer, start)) for w in range(writers)]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    with open(history, newline="", encoding="utf-8") as fh:
        raw_rows = list(csv.reader(fh))
    assert raw_rows[0] == list(COLUMNS)
    assert len(raw_rows) == 1 + writers * per_writer  # one header, even though all started on a missing file
    assert all(len(r) == len(COLUMNS) for r in raw_rows)
    got = read_history(history)
    assert got.skipped == 0
    expected = {f"W{w}S{s}" + "X" * 300 + "/USDT" for w in range(writers) for s in range(per_writer)}
    assert set(got.trades["symbol"]) == expected
    assert len(got.trades) == len(expected)
    # each row kept its own values: equity_after encodes the writer and the sequence number of the symbol
    for symbol, equity in zip(got.trades["symbol"], got.trades["equity_after"], strict=True):
        w, s = symbol[1:symbol.index("X")].split("S")
        assert equity == 10_000 + int(w) * 1000 + int(s)


# --- reads --------------------------------------------------------------------------------------------------------


def test_missing_or_empty_file_is_an_empty_history(history: Path) -> None:
    got = read_history(history)
    assert got.trades.empty and got.skipped == 0
    assert list(got.trades.columns) == list(COLUMNS)
    history.parent.mkdir(parents=True)
    history.write_text("")
    assert read_history(history).trades.empty
    history.write_text(HEADER + "\n")
    assert read_history(history).trades.empty


def test_malformed_rows_are_skipped_and_counted(history: Path) -> None:
    bad_rows = [
        trade(1, qty="abc"),
        trade(2, pnl="nan"),
        trade(3, pnl_pct="NaN"),
        trade(4, fees="inf"),
        trade(5, strategy="moon_shot"),
        trade(6, closed_at="01/02/2024"),
        trade(7, opened_at="yesterday"),
        trade(8, entry_price=""),
        trade(11, side="sideways"),
    ]
    lines = [HEADER, csv_line(trade(0))] + [csv_line(r) for r in bad_rows]
    lines.append(",".join(csv_line(trade(9)).split(",")[:5]))  # too few fields
    lines.append(csv_line(trade(10)))
    history.parent.mkdir(parents=True)
    history.write_text("\n".join(lines) + "\n", encoding="utf-8")
    got = read_history(history)
    assert list(got.trades["equity_after"]) == [10_000.0, 10_010.0]
    assert got.skipped == 10
    assert len(got.problems) == 5  # only the first few reasons are kept
    assert got.problems[0] == "pnl_history.csv row 3: `qty` is not a number: 'abc'"
    assert got.problems[1].startswith("pnl_history.csv row 4: `pnl` is")
    assert "unknown strategy 'moon_shot'" in got.problems[4]


def test_unknown_side_is_skipped_with_its_reason(history: Path) -> None:
    lines = [HEADER, csv_line(trade(0, side="flat")), csv_line(trade(1, side="short"))]
    history.parent.mkdir(parents=True)
    history.write_text("\n".join(lines) + "\n", encoding="utf-8")
    got = read_history(history)
    assert list(got.trades["side"]) == ["short"] and got.skipped == 1
    assert got.problems == ["pnl_history.csv row 2: `side` is 'flat', expected one of long, short"]


def test_unknown_side_refuses_the_whole_batch(history: Path) -> None:
    with pytest.raises(ValueError, match="side 'buy'"):
        append_trades(history, [trade(0), trade(1, side="buy")])
    assert not history.exists()


def test_bad_timestamps_are_skipped_not_fatal(history: Path) -> None:
    lines = [HEADER, csv_line(trade(0)), csv_line(trade(1, closed_at="01/02/2024")),
             csv_line(trade(2, opened_at="1700000000000"))]
    history.parent.mkdir(parents=True)
    history.write_text("\n".join(lines) + "\n", encoding="utf-8")
    got = read_history(history)
    assert len(got.trades) == 1 and got.skipped == 2
    assert "`closed_at`" in got.problems[0] and "`opened_at`" in got.problems[1]


def test_offsets_are_converted_to_utc(history: Path) -> None:
    append_trades(history, [trade(0, closed_at="2024-01-01T05:00:00+02:00", opened_at="2024-01-01T01:00:00")])
    row = read_history(history).trades.iloc[0]
    assert row["closed_at"] == pd.Timestamp("2024-01-01T03:00:00Z")
    assert row["opened_at"] == pd.Timestamp("2024-01-01T01:00:00Z")  # naive means UTC


def test_other_books_and_custom_strategy_sets(history: Path) -> None:
    append_trades(history, [trade(0), trade(1, strategy="rl_v3_ppo")])
    assert len(read_history(history).trades) == 2
    only_turtle = read_history(history, allowed_strategies=["turtle_trading"])
    assert list(only_turtle.trades["strategy"]) == ["turtle_trading"]
    assert only_turtle.skipped == 1


def test_missing_required_column_is_a_clear_error(history: Path) -> None:
    columns = tuple(c for c in COLUMNS if c != "pnl_pct")
    history.parent.mkdir(parents=True)
    history.write_text(",".join(columns) + "\n" + csv_line(trade(0), columns) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_history(history)
    message = str(info.value)
    assert message.startswith(f"column `pnl_pct` missing in {history}")
    assert "expected columns: " + ", ".join(COLUMNS) in message


def test_several_missing_columns_are_all_named(history: Path) -> None:
    history.parent.mkdir(parents=True)
    history.write_text("closed_at,symbol,strategy,qty,pnl,pnl_pct,fees,equity_after\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"column `opened_at` missing .* \(also side, entry_price, exit_price\)"):
        read_history(history)


def test_extra_columns_and_other_order_are_fine(history: Path) -> None:
    columns = ("note",) + tuple(reversed(COLUMNS)) + ("exchange",)
    row = dict(trade(0), note="hello, world", exchange="paper")
    history.parent.mkdir(parents=True)
    with open(history, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerow([row[c] for c in columns])
    got = read_history(history)
    assert got.skipped == 0
    assert list(got.trades.columns) == list(COLUMNS)
    assert got.trades.loc[0, "equity_after"] == 10_000.0
    assert got.trades.loc[0, "strategy"] == STRATEGIES[0]


def test_spreadsheet_bom_and_crlf_are_accepted(history: Path) -> None:
    history.parent.mkdir(parents=True)
    text = "\r\n".join([HEADER, csv_line(trade(0)), csv_line(trade(1))]) + "\r\n"
    history.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    got = read_history(history)
    assert len(got.trades) == 2 and got.skipped == 0


def test_unterminated_last_line_counts_as_truncated(history: Path) -> None:
    # A writer caught mid-append: the last line looks complete (12 fields, numbers parse) but "10" is
    # the start of "10002.0". Without a final newline it cannot be trusted.
    append_trades(history, [trade(0), trade(1)])
    partial = csv_line(trade(2))
    with open(history, "a", encoding="utf-8") as fh:
        fh.write(partial[: partial.rindex(",") + 3])
    got = read_history(history)
    assert list(got.trades["equity_after"]) == [10_000.0, 10_001.0]
    assert got.skipped == 1
    assert "truncated last line" in got.problems[0]


def test_append_after_a_truncated_line_sets_it_aside(history: Path) -> None:
    append_trades(history, [trade(0)])
    half = csv_line(trade(1))[:40]
    with open(history, "a", encoding="utf-8") as fh:
        fh.write(half)  # a crashed writer's half row
    append_trades(history, [trade(2), trade(3)])
    got = read_history(history)
    assert list(got.trades["equity_after"]) == [10_000.0, 10_002.0, 10_003.0]
    assert got.skipped == 0
    assert torn_path(history).read_text(encoding="utf-8") == half + "\n"  # kept, not lost


def test_a_torn_line_that_would_parse_never_becomes_a_trade(history: Path) -> None:
    # Cut inside equity_after, the half line has every field and "10" parses: completing it would invent a trade.
    append_trades(history, [trade(0)])
    partial = csv_line(trade(1))
    with open(history, "a", encoding="utf-8") as fh:
        fh.write(partial[: partial.rindex(",") + 3])
    append_trades(history, [trade(1)])  # the writer's restart writes the whole trade again
    got = read_history(history)
    assert list(got.trades["equity_after"]) == [10_000.0, 10_001.0] and got.skipped == 0


# --- bad values and duplicates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"entry_price": 0.0}, "`entry_price` is 0; a price must be > 0"),
    ({"exit_price": -5.0}, "`exit_price` is -5; a price must be > 0"),
    ({"pnl_pct": 1e300}, "`pnl_pct` is 1e+300, beyond"),
    ({"pnl_pct": -10.5}, "`pnl_pct` is -10.5, beyond"),
])
def test_impossible_prices_and_returns_are_skipped_and_counted(
        history: Path, overrides: dict[str, Any], reason: str) -> None:
    history.parent.mkdir(parents=True, exist_ok=True)
    history.write_text("\n".join([HEADER, csv_line(trade(0)), csv_line(trade(1, **overrides)), csv_line(trade(2))])
                       + "\n")
    got = read_history(history)
    assert len(got.trades) == 2 and got.skipped == 1 and got.duplicates == 0
    assert len(got.problems) == 1 and got.problems[0].startswith(f"pnl_history.csv row 3: {reason}")
    assert list(got.trades["equity_after"]) == [10_000.0, 10_002.0]


def test_exact_duplicate_rows_are_dropped_and_counted(history: Path) -> None:
    history.parent.mkdir(parents=True, exist_ok=True)
    lines = [csv_line(trade(0)), csv_line(trade(1)), csv_line(trade(0)), csv_line(trade(1)), csv_line(trade(0))]
    history.write_text("\n".join([HEADER, *lines]) + "\n")
    got = read_history(history)
    assert len(got.trades) == 2 and got.duplicates == 3 and got.skipped == 3
    assert got.problems[0] == "pnl_history.csv row 4: exact duplicate of row 2, dropped"
    # The same trade at another price is not a duplicate: only exact copies are dropped.
    history.write_text("\n".join([HEADER, csv_line(trade(0)), csv_line(trade(0, exit_price=102.0))]) + "\n")
    assert len(read_history(history).trades) == 2


def test_an_unreadable_history_is_a_read_error_naming_the_file(history: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    append_trades(history, [trade(0)])

    def denied(self: Path, *args: Any, **kwargs: Any) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_text", denied)
    with pytest.raises(DataError, match="cannot read the trade history.*fix its permissions") as info:
        read_history(history)
    assert str(history) in str(info.value)
