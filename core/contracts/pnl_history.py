"""``state/pnl_history.csv``: the closed-trade history every learner reads.

The trader appends under an exclusive lock on a separate ``.lock`` file, so readers and other writers never
see two appends interleaved. Reading is tolerant: a malformed row (a bad number, NaN, a price <= 0, a ``pnl_pct``
beyond ±1000 %, an unknown strategy, the truncated last line of a writer caught mid-append) is skipped and
counted, and an exact duplicate of an earlier row is dropped and counted, never fatal; a missing required
column or an unreadable file is a :class:`~core.errors.DataError` naming it.

Daemons that react to every append read it with :class:`HistoryTail` instead: the same rules, applied only to
the bytes appended since the previous read, so a reaction costs the same at 1k or 100k trades. One-shot commands
keep a tail's state between runs (:mod:`core.contracts.pnl_history_cache`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
import numbers
import os
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from core.atomic import parse_iso
from core.config import STRATEGIES, Config
from core.errors import DataError
from core.locks import locked as locked  # re-exported: the history's appenders lock through it

log = logging.getLogger(__name__)

HISTORY_NAME = "pnl_history.csv"
"""File name of the history inside ``state/``."""

COLUMNS: tuple[str, ...] = (
    "closed_at", "opened_at", "symbol", "strategy", "side", "qty",
    "entry_price", "exit_price", "pnl", "pnl_pct", "fees", "equity_after",
)
NUMERIC_COLUMNS: tuple[str, ...] = ("qty", "entry_price", "exit_price", "pnl", "pnl_pct", "fees", "equity_after")
TIME_COLUMNS: tuple[str, ...] = ("closed_at", "opened_at")
PRICE_COLUMNS: tuple[str, ...] = ("entry_price", "exit_price")
"""Columns that must be > 0 (a zero price makes every return infinite)."""
MAX_ABS_PNL_PCT = 10.0
"""Largest ``|pnl_pct|`` a row may have (10 = 1000 %): beyond it the row is a data error, not a trade."""
SIDES: tuple[str, ...] = ("long", "short")
"""Values of ``side``: the pnl's sign depends on it, so a row with any other side is malformed."""
EXTRA_STRATEGIES: tuple[str, ...] = ("rl_v3_ppo",)
"""Books that are not one of the 8 strategies but may write trades (the weights bridge ignores them)."""


def history_path(cfg: Config) -> Path:
    """``state/pnl_history.csv`` of the configured home."""
    return cfg.state_dir / HISTORY_NAME


@dataclass
class HistoryRead:
    """The valid trades (sorted by ``closed_at``) and what was skipped, with the first few reasons."""

    trades: pd.DataFrame
    skipped: int = 0
    problems: list[str] = field(default_factory=list)
    path: Path | None = None
    duplicates: int = 0
    """Rows dropped as exact copies of an earlier row (counted in ``skipped`` too): a trade counts once."""


def _format(value: Any) -> str:
    # numbers.Real catches numpy scalars too: numpy 2's repr(np.float64(1.5)) is "np.float64(1.5)", not a number.
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"non-finite value {value!r} in a trade row")
        return repr(number)
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def append_trades(path: str | os.PathLike[str], trades: Iterable[Mapping[str, Any]]) -> int:
    """Append trades (mappings with at least :data:`COLUMNS`) under the lock; writes the header on a new file.

    A NaN or missing field refuses the whole batch before anything is written. Returns rows written.
    """
    rows = []
    for trade in trades:
        missing = [c for c in COLUMNS if trade.get(c) is None]
        if missing:
            raise ValueError(f"trade is missing {', '.join(missing)}; expected columns: {', '.join(COLUMNS)}")
        if trade["side"] not in SIDES:
            raise ValueError(f"trade side {trade['side']!r} is not one of {', '.join(SIDES)}")
        rows.append([_format(trade[c]) for c in COLUMNS])
    if not rows:
        return 0
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows(rows)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with locked(p):
        new = not p.exists() or p.stat().st_size == 0
        if not new and not _ends_with_newline(p):
            _set_aside_torn_tail(p)
        with open(p, "a", encoding="utf-8", newline="") as fh:
            if new:
                fh.write(",".join(COLUMNS) + "\n")
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
    return len(rows)


def torn_path(path: str | os.PathLike[str]) -> Path:
    """``<history>.torn``: where the half lines of crashed writers are kept."""
    return Path(f"{os.fspath(path)}.torn")


def _set_aside_torn_tail(p: Path) -> None:
    """Move an unterminated last line (a writer killed mid-append) to ``<history>.torn`` and cut it off.

    Left in place, the next append would complete it into a row that may parse (``10`` for ``10002.0``) and
    count a wrong trade; moved aside, nothing is lost and the history stays correct. The trader rewrites the
    trade itself from its pending list.
    """
    data = p.read_bytes()
    keep = data.rfind(b"\n") + 1
    with open(torn_path(p), "ab") as torn:
        torn.write(data[keep:] + b"\n")
        torn.flush()
        os.fsync(torn.fileno())
    with open(p, "r+b") as fh:
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    log.warning("%s: an unterminated last line (a writer stopped mid-append) was moved to %s",
                p.name, torn_path(p).name)


def _ends_with_newline(p: Path) -> bool:
    with open(p, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def read_history(path: str | os.PathLike[str], allowed_strategies: Iterable[str] | None = None) -> HistoryRead:
    """Read the history; a missing file is an empty history. See the module docstring for the rules."""
    p = Path(path)
    allowed = set(allowed_strategies) if allowed_strategies is not None else set(STRATEGIES) | set(EXTRA_STRATEGIES)
    if not p.exists():
        return HistoryRead(_empty_frame(), path=p)
    try:
        with locked(p, exclusive=False):
            text = p.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise DataError(f"{p}: cannot read the trade history ({exc.strerror or exc}); fix its permissions") from exc
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return HistoryRead(_empty_frame(), path=p)
    header = [h.strip() for h in header]
    index = _header_index(header, p)
    complete = text.endswith("\n")
    lines = text.count("\n")
    good: list[dict[str, Any]] = []
    seen: dict[tuple[str, ...], int] = {}
    result = HistoryRead(_empty_frame(), path=p)
    for lineno, row in enumerate(reader, start=2):
        if not row:
            continue
        parsed = _parse_row(row, index, len(header), allowed)
        if not isinstance(parsed, str) and not complete and lineno > lines:
            parsed = "truncated last line (a writer may be mid-append)"
        if not isinstance(parsed, str):
            key = tuple(cell.strip() for cell in row)
            if key in seen:
                # The same trade twice would be learned from twice (and weigh twice in every statistic).
                parsed = f"exact duplicate of row {seen[key]}, dropped"
                result.duplicates += 1
            seen.setdefault(key, lineno)
        if isinstance(parsed, str):
            result.skipped += 1
            if len(result.problems) < 5:
                result.problems.append(f"{p.name} row {lineno}: {parsed}")
            continue
        good.append(parsed)
    result.trades = _to_frame(good)
    return result


def _header_index(header: list[str], path: Path) -> dict[str, int]:
    """Position of each required column in ``header``; a missing one is a :class:`DataError` naming it."""
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DataError(
            f"column `{missing[0]}` missing in {path}"
            + (f" (also {', '.join(missing[1:])})" if len(missing) > 1 else "")
            + f"; expected columns: {', '.join(COLUMNS)}"
        )
    return {c: header.index(c) for c in COLUMNS}


def _parse_row(row: list[str], index: dict[str, int], width: int, allowed: set[str]) -> dict[str, Any] | str:
    """The row's values, parsed, or why it is malformed.

    The frame is built from these parsed values, so whatever passes validation cannot fail later (a second,
    stricter parse of the raw strings would make one odd row fatal for the whole file).
    """
    if len(row) < width:
        return f"{len(row)} fields, expected {width} (truncated row)"
    record: dict[str, Any] = {c: row[i].strip() for c, i in index.items()}
    for col in NUMERIC_COLUMNS:
        raw = record[col]
        try:
            value = float(raw)
        except ValueError:
            return f"`{col}` is not a number: {raw!r}"
        if not math.isfinite(value):
            return f"`{col}` is {raw}"
        record[col] = value
    for col in PRICE_COLUMNS:
        if record[col] <= 0:
            return f"`{col}` is {record[col]:g}; a price must be > 0"
    if abs(record["pnl_pct"]) > MAX_ABS_PNL_PCT:
        return (f"`pnl_pct` is {record['pnl_pct']:g}, beyond ±{MAX_ABS_PNL_PCT:g} "
                f"(±{MAX_ABS_PNL_PCT * 100:.0f} %); a fraction of the entry is expected")
    if record["strategy"] not in allowed:
        return f"unknown strategy {record['strategy']!r}"
    if record["side"] not in SIDES:
        return f"`side` is {record['side']!r}, expected one of {', '.join(SIDES)}"
    for col in TIME_COLUMNS:
        raw = record[col]
        try:
            record[col] = pd.Timestamp(parse_iso(raw))
        except ValueError:
            return f"`{col}` is not an ISO-8601 timestamp: {raw!r}"
    return record


def _empty_frame() -> pd.DataFrame:
    return _to_frame([])


def _to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for col in NUMERIC_COLUMNS:
        frame[col] = frame[col].astype(float)
    for col in TIME_COLUMNS:
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame.sort_values("closed_at", kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------- incremental reads

PREFIX_BYTES = 4096
"""Leading bytes remembered to notice a rewritten file (a replacement usually starts with the same header)."""
LAST_LINE_BYTES = 512
"""Bytes of the last row read that are remembered: a file rewritten to the same length or longer changes them."""
DIGEST_ROWS = 10_000
"""With ``keep_span``, the digests of at least this many of the latest rows read are kept, whatever they closed."""


@dataclass
class TailUpdate:
    """What one :meth:`HistoryTail.poll` found: the valid trades appended since the previous poll (sorted by
    ``closed_at``; all of them, whatever ``keep_span`` keeps in memory), whether the file was rewritten (then
    ``new`` is the whole re-read history), and the problems of the rows read."""

    new: pd.DataFrame
    reset: bool = False
    skipped: int = 0
    problems: list[str] = field(default_factory=list)


class DroppedFold(Protocol):
    """What a reader keeps of the trades :class:`HistoryTail` drops from memory (a running summary)."""

    def add(self, dropped: pd.DataFrame) -> None:
        """Fold in ``dropped`` (rows of the history frame, sorted by ``closed_at``)."""

    def clear(self) -> None:
        """Forget everything (the history was rewritten and is read again from the start)."""


class HistoryTail:
    """Reads the history incrementally: each :meth:`poll` parses only the bytes appended since the last one.

    The rules are :func:`read_history`'s (same validation, exact duplicates of any earlier row dropped), so
    after a poll :attr:`trades` equals ``read_history(path).trades`` whenever the file ends with a newline; an
    unterminated last line (a writer mid-append) is left unread until its newline arrives instead of being
    counted as skipped. A file that was rewritten (another inode, shorter than what was read, or different
    leading or last-read bytes) is read again from the start.

    With ``keep_span`` only the trades closed within that span before the newest one are kept in memory, and
    so are the row digests that recognise duplicates: a digest is forgotten once its row closed before the kept
    window and at least :data:`DIGEST_ROWS` later rows were read (copies of the trader's rows arrive close to
    the original). :attr:`trades` still equals the full read's trades inside the window, since a copy of a
    forgotten row closed before the window too; only such a late copy is counted as a trade (in ``new`` and
    :attr:`trades_read`) instead of a duplicate. Without ``keep_span`` every digest is kept.
    """

    def __init__(self, path: str | os.PathLike[str], allowed_strategies: Iterable[str] | None = None,
                 keep_span: pd.Timedelta | None = None, fold: DroppedFold | None = None) -> None:
        self.path = Path(path)
        self.allowed = (set(allowed_strategies) if allowed_strategies is not None
                        else set(STRATEGIES) | set(EXTRA_STRATEGIES))
        self.keep_span = keep_span
        self.fold = fold
        """Told of every trade dropped from memory (``keep_span``), oldest first, and cleared with the tail."""
        self._clear()

    def _clear(self) -> None:
        if self.fold is not None:
            self.fold.clear()
        self.trades = _empty_frame()
        self.skipped = 0
        self.duplicates = 0
        self.problems: list[str] = []
        self.rows_read = 0
        """Data rows parsed so far (valid or not); the next row's number is this plus 2."""
        self.trades_read = 0
        """Valid trades read so far, including those dropped from memory by ``keep_span``."""
        self.dropped_before: pd.Timestamp | None = None
        """Trades closed before this time were dropped from memory (``keep_span``); None while none were."""
        self.dropped_by_strategy: Counter[str] = Counter()
        """Trades dropped from memory by ``keep_span``, per strategy: with :attr:`trades`, counts by any time
        at or after :attr:`dropped_before`."""
        self._offset = 0
        self._identity: tuple[int, int] | None = None
        self._prefix = b""
        self._last_line = b""
        self._index: dict[str, int] | None = None
        self._width = 0
        self._seen: dict[int, int] = {}
        """Row digest -> its first row number."""
        self._seen_order: deque[tuple[int, int]] = deque()
        """With ``keep_span``: (digest, close time in ns) of the rows in :attr:`_seen`, in reading order."""

    def widen(self, keep_span: pd.Timedelta) -> None:
        """Keep ``keep_span`` from now on (when longer than the span kept so far); the trades already dropped
        are gone, so the next :meth:`poll` reads the file again from the start."""
        if self.keep_span is not None and keep_span > self.keep_span:
            self.keep_span = keep_span
            self._clear()

    def as_read(self) -> HistoryRead:
        """The trades in memory and the counts so far, as :func:`read_history` reports them."""
        return HistoryRead(self.trades, self.skipped, list(self.problems), self.path, self.duplicates)

    def poll(self) -> TailUpdate:
        """Read what was appended since the last poll (everything on the first one or after a rewrite).

        A missing file is an empty history; a missing required column or an unreadable file is a
        :class:`~core.errors.DataError`.
        """
        try:
            with locked(self.path, exclusive=False), open(self.path, "rb") as fh:
                reset = self._rewritten(fh)
                if reset:
                    self._clear()
                data = self._read_complete_lines(fh)
        except FileNotFoundError:
            reset = self._offset > 0
            self._clear()
            return TailUpdate(_empty_frame(), reset=reset)
        except OSError as exc:
            raise DataError(f"{self.path}: cannot read the trade history ({exc.strerror or exc}); "
                            "fix its permissions") from exc
        if not data:
            return TailUpdate(_empty_frame(), reset=reset)
        try:
            update = self._consume(data)
        except DataError:
            self._clear()  # a bad header is reported again on every poll until the file is fixed
            raise
        update.reset = reset
        return update

    def _rewritten(self, fh: io.BufferedReader) -> bool:
        if self._identity is None:
            return False
        stat = os.fstat(fh.fileno())
        if (stat.st_dev, stat.st_ino) != self._identity or stat.st_size < self._offset:
            return True
        fh.seek(0)
        if fh.read(len(self._prefix)) != self._prefix:
            return True
        fh.seek(self._offset - len(self._last_line))
        return fh.read(len(self._last_line)) != self._last_line

    def _read_complete_lines(self, fh: io.BufferedReader) -> bytes:
        stat = os.fstat(fh.fileno())
        self._identity = (stat.st_dev, stat.st_ino)
        if stat.st_size <= self._offset:
            return b""
        fh.seek(self._offset)
        data = fh.read(stat.st_size - self._offset)
        return data[:data.rfind(b"\n") + 1]  # an unterminated last line waits for the rest of it

    def _consume(self, data: bytes) -> TailUpdate:
        start = self._offset
        self._offset += len(data)
        if len(self._prefix) < PREFIX_BYTES:
            self._prefix += data[:PREFIX_BYTES - len(self._prefix)]
        self._last_line = data[data.rfind(b"\n", 0, len(data) - 1) + 1:][-LAST_LINE_BYTES:]
        reader = csv.reader(io.StringIO(data.decode("utf-8-sig" if start == 0 else "utf-8", errors="replace")))
        if self._index is None:
            header = [h.strip() for h in next(reader, [])]
            self._index, self._width = _header_index(header, self.path), len(header)
        update = TailUpdate(_empty_frame())
        good: list[dict[str, Any]] = []
        for row in reader:
            self.rows_read += 1
            if not row:
                continue
            problem = self._accept(row, self.rows_read + 1, good)
            if problem is not None:
                update.skipped += 1
                self.skipped += 1
                if len(update.problems) < 5:
                    update.problems.append(problem)
                if len(self.problems) < 5:
                    self.problems.append(problem)
        update.new = _to_frame(good)
        self.trades_read += len(good)
        self._merge(update.new)
        return update

    def _accept(self, row: list[str], lineno: int, good: list[dict[str, Any]]) -> str | None:
        """Parse one row into ``good``; the reason when it is skipped."""
        assert self._index is not None
        parsed = _parse_row(row, self._index, self._width, self.allowed)
        if isinstance(parsed, str):
            return f"{self.path.name} row {lineno}: {parsed}"
        digest = int.from_bytes(hashlib.blake2b("\x1f".join(cell.strip() for cell in row).encode(),
                                                digest_size=8).digest(), "little")
        first = self._seen.setdefault(digest, lineno)
        if first != lineno:
            self.duplicates += 1
            return f"{self.path.name} row {lineno}: exact duplicate of row {first}, dropped"
        if self.keep_span is not None:
            self._seen_order.append((digest, int(parsed["closed_at"].value)))
        good.append(parsed)
        return None

    def _merge(self, new: pd.DataFrame) -> None:
        if new.empty:
            return
        if self.trades.empty:
            merged = new
        else:
            merged = pd.concat([self.trades, new], ignore_index=True)
            if new["closed_at"].iloc[0] < self.trades["closed_at"].iloc[-1]:
                # Out of order: a stable sort keeps file order among equal times, as the full read does.
                merged = merged.sort_values("closed_at", kind="stable").reset_index(drop=True)
        if self.keep_span is not None:
            cutoff = merged["closed_at"].iloc[-1] - self.keep_span
            keep = merged["closed_at"] >= cutoff
            if not bool(keep.all()):
                self.dropped_before = cutoff
                self.dropped_by_strategy.update(merged.loc[~keep, "strategy"].value_counts().to_dict())
                if self.fold is not None:
                    self.fold.add(merged.loc[~keep])
                merged = merged.loc[keep].reset_index(drop=True)
            self._forget_digests(cutoff)
        self.trades = merged

    def _forget_digests(self, cutoff: pd.Timestamp) -> None:
        """Forget the oldest-read digests of rows closed before ``cutoff``, keeping :data:`DIGEST_ROWS` latest.

        The cutoff never moves back (it follows the newest trade), so a forgotten row's copy falls outside
        the window too. A row read early that closed inside the window stops the sweep until it leaves it.
        """
        cutoff_ns = int(cutoff.value)
        while len(self._seen_order) > DIGEST_ROWS and self._seen_order[0][1] < cutoff_ns:
            del self._seen[self._seen_order.popleft()[0]]
