"""The inputs of one learning pass: the trade history, a stable key per trade, and the states around it.

A trade is learned from exactly once, also across restarts: its key is the ``trade_id`` column when the file
has one, else a hash of (closed_at, opened_at, symbol, strategy, side, entry_price, exit_price).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ai.tabular.state import AccountCarry, AccountStates, CandleLoader, MarketStates, account_states, to_ms
from core.atomic import parse_iso
from core.config import Config
from core.contracts.pnl_history import HistoryRead, HistoryTail, history_path, locked, read_history
from market.sources import load_candles

log = logging.getLogger(__name__)

KEY_COLUMN = "trade_id"


# ------------------------------------------------------------------------------------------------ trade keys


def _material(closed: pd.Timestamp, opened: pd.Timestamp, symbol: str, strategy: str, side: str,
              entry: float, exit_: float) -> str:
    return "|".join((closed.isoformat(), opened.isoformat(), symbol, strategy, side, repr(float(entry)),
                     repr(float(exit_))))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def trade_keys(path: Path, trades: pd.DataFrame) -> list[str]:
    """A stable key per trade of ``trades`` (as read by :func:`core.contracts.pnl_history.read_history` from ``path``).

    The ``trade_id`` column when the file has one (read from the raw rows, since the parsed frame keeps only the
    contract's columns), else a hash of (closed_at, opened_at, symbol, strategy, side, entry_price, exit_price).
    """
    ids = _trade_ids_by_material(path)
    keys = []
    for row in trades.itertuples(index=False):
        material = _material(row.closed_at, row.opened_at, row.symbol, row.strategy, row.side,
                             row.entry_price, row.exit_price)
        queue = ids.get(material)
        keys.append(_digest("id:" + queue.pop(0)) if queue else _digest("row:" + material))
    return keys


def _trade_ids_by_material(path: Path) -> dict[str, list[str]]:
    """``trade_id`` values of the raw file keyed by their row's material (in file order); empty without one."""
    try:
        with locked(path, exclusive=False), open(path, encoding="utf-8-sig", errors="replace") as fh:
            header = [h.strip() for h in next(csv.reader([fh.readline()]), [])]
            # Without the column there is nothing to look up: a pass does not read the whole file for it.
            text = fh.read() if KEY_COLUMN in header else ""
    except FileNotFoundError:
        return {}
    if KEY_COLUMN not in header:
        return {}
    reader = csv.reader(io.StringIO(text))
    cols = ("closed_at", "opened_at", "symbol", "strategy", "side", "entry_price", "exit_price", KEY_COLUMN)
    if any(c not in header for c in cols):
        return {}
    index = [header.index(c) for c in cols]
    found: dict[str, list[str]] = {}
    for row in reader:
        if len(row) < len(header):
            continue
        closed, opened, symbol, strategy, side, entry, exit_, tid = (row[i].strip() for i in index)
        try:
            material = _material(pd.Timestamp(parse_iso(closed)), pd.Timestamp(parse_iso(opened)), symbol, strategy,
                                 side, float(entry), float(exit_))
        except ValueError:
            continue  # read_history skips (and reports) the same malformed row
        if tid:
            found.setdefault(material, []).append(tid)
    return found


# ------------------------------------------------------------------------------------------------ snapshot


@dataclass
class LearnReport:
    """What one pass did: trades in the history, per agent the trades learned and skipped."""

    trades: int = 0
    history_skipped_rows: int = 0
    learned: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    @property
    def new_trades(self) -> int:
        return max(self.learned.values(), default=0)


@dataclass
class Snapshot:
    """The inputs of one pass, shared by learning and publishing."""

    trades: pd.DataFrame
    keys: list[str]
    account: AccountStates
    markets: MarketStates


def read_snapshot(cfg: Config, loader: CandleLoader = load_candles, since_ms: int | None = None,
                  history: HistoryTail | None = None) -> tuple[Snapshot, LearnReport]:
    """Read the history (DataError when a column is missing), key its trades, prepare the states.

    ``since_ms``: trades closing before it are learned by every agent (the agents' cut-off, see
    :func:`learned_cutoff_ms`), so only the newer trades are kept and keyed: what a pass holds is the late
    window, not the whole history, however long the history grows. The account states still cover every trade
    (the drawdown's peak, the recent trades and the loss streak look back past the cut-off).
    ``history``: the daemon's incremental reader (only the rows appended since its last poll are parsed).
    """
    path = history_path(cfg)
    read, problems, carry = _read(path, history, since_ms)
    for problem in problems:
        log.warning("skipped a malformed history row: %s", problem)
    trades = read.trades
    account = account_states(trades, cfg.qlearning.recent_trades, carry)
    earliest = None
    if since_ms is not None and len(trades):
        trades = trades[account.closed_ms >= since_ms].reset_index(drop=True)
        # The states asked for: the kept trades' entries and exits, and "now" (after the last trade closed).
        earliest = int(to_ms(trades["opened_at"]).min()) if len(trades) else int(account.closed_ms.max())
    markets = MarketStates(cfg, loader, earliest_ms=earliest)
    snapshot = Snapshot(trades, trade_keys(path, trades), account, markets)
    held_before = carry.count if carry is not None else 0
    return snapshot, LearnReport(trades=held_before + len(read.trades), history_skipped_rows=read.skipped)


HELD_SPAN = pd.Timedelta(days=90)
"""What the learning daemon holds of the history beyond the agents' late window (``qlearning.late_window_s``,
within which trades are still looked up by key): the trades closed within both spans before the newest one
(:func:`held_history`), so a position held up to this long still finds its entry's account state. Older trades
live on only in the account summary (:class:`AccountCarry`)."""


def held_history(cfg: Config) -> HistoryTail:
    """The learning daemon's incremental reader: a pass's memory stays bounded however long the history grows."""
    span = HELD_SPAN + pd.Timedelta(seconds=cfg.qlearning.late_window_s)
    return HistoryTail(history_path(cfg), keep_span=span, fold=AccountCarry(cfg.qlearning.recent_trades))


def _read(path: Path, history: HistoryTail | None,
          since_ms: int | None) -> tuple[HistoryRead, list[str], AccountCarry | None]:
    """The history (in full, or what the incremental reader holds), the problems not reported yet and the
    summary of the trades the reader no longer holds. A pass that needs one of those (an agent that has not
    learned them yet, a trade opened before them) reads the whole history instead."""
    if history is None:
        read = read_history(path)
        return read, read.problems, None
    update = history.poll()
    dropped = history.dropped_before
    if dropped is None:
        return history.as_read(), update.problems, None
    carry = history.fold if isinstance(history.fold, AccountCarry) else None
    if carry is None or not _held_covers(history.trades, since_ms, int(dropped.value // 1_000_000)):
        log.info("this pass needs trades closed before %s, older than those held in memory: reading the whole "
                 "history", dropped.isoformat())
        return read_history(path), update.problems, None
    return history.as_read(), update.problems, carry


def _held_covers(trades: pd.DataFrame, since_ms: int | None, dropped_ms: int) -> bool:
    """True when every trade the agents still lack, and every account state they need, is held in memory."""
    if since_ms is None or since_ms < dropped_ms:
        return False
    unlearned = trades[to_ms(trades["closed_at"]) >= since_ms] if len(trades) else trades
    return unlearned.empty or int(to_ms(unlearned["opened_at"]).min()) >= dropped_ms


def learned_cutoff_ms(cutoffs: Iterable[int | None]) -> int | None:
    """The earliest of the agents' ``learned_before_ms`` (None when one agent has none yet: it needs them all)."""
    values = list(cutoffs)
    if not values or any(v is None for v in values):
        return None
    return min(v for v in values if v is not None)
