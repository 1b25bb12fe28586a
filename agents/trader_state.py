"""The paper trader's restart-safe state (``trader.state_file`` in ``state/``) and its pending-trades protocol.

Every trade has a deterministic id, ``symbol|strategy|opened_ms|closed_ms``, which can be rebuilt from the
required history columns. On a candle that closes trades the trader

1. computes the candle in memory (closed trades, new positions),
2. saves the state atomically with those trades listed as ``pending`` (:func:`save_state`),
3. appends them to the history.

On start, every pending trade whose id is not in the history yet is appended (:func:`reconcile_pending`). A
kill before step 2 leaves the previous state, and the candle is computed again from it (same inputs, same
trades); a kill after step 2 leaves the trades pending, and the restart writes those missing. So no trade is
lost or written twice. A state belongs to one market (:func:`market_key`) and is never resumed on another;
:func:`single_instance` keeps two traders off one state.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from agents.books import Costs, Portfolio, trade_id
from core import locks
from core.atomic import publish_json, read_json
from core.config import Config
from core.contracts.pnl_history import append_trades, read_history
from core.errors import FatalError

log = logging.getLogger(__name__)

PRODUCER = "paper_trader"
STATE_VERSION = 1


def state_path(cfg: Config) -> Path:
    """The trader's state file: ``trader.state_file`` in ``state/``."""
    return cfg.state_dir / cfg.trader.state_file


def market_key(cfg: Config) -> dict[str, Any]:
    """What identifies the market a state belongs to; a state is never resumed on another market."""
    source = cfg.market.data_source.strip().lower()
    key: dict[str, Any] = {"data_source": source, "symbol": cfg.market.symbols[0],
                           "timeframe": cfg.market.timeframe}
    if source == "synthetic":
        detail = asdict(cfg.synthetic)
        detail.pop("n_candles")  # prefix-stable: more candles are the same market
        key["synthetic"] = detail
    elif source == "ccxt":
        key["exchange"] = cfg.exchange.id
    elif source == "csv":
        key["csv"] = cfg.market.csv_paths.get(cfg.market.symbols[0], "")
    return key


@dataclass
class TraderState:
    """Everything a restart resumes from (see the module docstring for the crash protocol)."""

    market: dict[str, Any]
    portfolio: Portfolio
    initial_equity: float
    last_ts: int | None = None
    last_close: float | None = None
    candles_processed: int = 0
    trades_written: int = 0
    pending: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "state_version": STATE_VERSION,
            "market": self.market,
            "initial_equity": self.initial_equity,
            "last_ts": self.last_ts,
            "last_close": self.last_close,
            "candles_processed": self.candles_processed,
            "trades_written": self.trades_written,
            "portfolio": self.portfolio.to_dict(),
            "pending": self.pending,
        }


def fresh_state(cfg: Config, costs: Costs) -> TraderState:
    portfolio = Portfolio(cfg.market.symbols[0], costs, cash=cfg.trader.initial_equity)
    return TraderState(market_key(cfg), portfolio, initial_equity=cfg.trader.initial_equity)


def save_state(path: Path, state: TraderState) -> None:
    publish_json(path, PRODUCER, state.to_dict())


def load_state(path: Path, cfg: Config, costs: Costs) -> TraderState | None:
    """The saved state, None when there is none; FatalError when it is unreadable or for another market.

    A state for another market that never processed a candle (a start that failed on its candles, e.g. a
    wrong CSV path) holds nothing to lose: it counts as none, so fixing the config needs no ``--reset``.
    """
    result = read_json(path)
    if result.status == "absent":
        return None
    fix = "restore it, or start fresh with --reset (the old file is kept as .bak)"
    if not result.ok or result.data is None:
        raise FatalError(f"{path}: {result.reason}; {fix}")
    raw = result.data
    expected = market_key(cfg)
    if raw.get("market") != expected and _untouched(raw):
        log.info("%s was saved for another market before any candle was processed; starting fresh", path)
        return None
    if raw.get("market") != expected:
        raise FatalError(f"{path} belongs to another market ({json.dumps(raw.get('market'))}), "
                         f"not the configured one ({json.dumps(expected)}); {fix}")
    try:
        return TraderState(
            market=expected,
            portfolio=Portfolio.from_dict(raw["portfolio"], costs),
            initial_equity=float(raw["initial_equity"]),
            last_ts=None if raw["last_ts"] is None else int(raw["last_ts"]),
            last_close=None if raw["last_close"] is None else float(raw["last_close"]),
            candles_processed=int(raw["candles_processed"]),
            trades_written=int(raw["trades_written"]),
            pending=[dict(row) for row in raw["pending"]],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise FatalError(f"{path}: malformed state ({type(exc).__name__}: {exc}); {fix}") from exc


def _untouched(raw: Mapping[str, Any]) -> bool:
    """True for a saved state without a processed candle, an open position or a pending trade."""
    portfolio = raw.get("portfolio")
    positions = portfolio.get("positions") if isinstance(portfolio, dict) else None
    return raw.get("last_ts") is None and not raw.get("pending") and not positions


def reset_state(path: Path) -> Path | None:
    """Move the state aside to ``<name>.bak`` so the next start is fresh; returns the backup's path."""
    if not path.exists():
        return None
    backup = path.with_name(path.name + ".bak")
    os.replace(path, backup)
    return backup


def history_trade_ids(path: Path) -> set[str]:
    """Ids of the valid trades in the history (a row cut short by a crash does not count as written)."""
    trades = read_history(path).trades
    if trades.empty:
        return set()
    epoch = pd.Timestamp(0, tz="UTC")
    opened = (trades["opened_at"] - epoch) // pd.Timedelta(milliseconds=1)
    closed = (trades["closed_at"] - epoch) // pd.Timedelta(milliseconds=1)
    return {trade_id(sym, strat, int(o), int(c))
            for sym, strat, o, c in zip(trades["symbol"], trades["strategy"], opened, closed, strict=True)}


def reconcile_pending(state: TraderState, history: Path,
                      on_write_error: Callable[[OSError], None] | None = None) -> int:
    """Append the pending trades the history does not hold yet (step 3 of the protocol); returns how many.

    When the history cannot be written (a read-only folder, a full disk) and ``on_write_error`` is given, the
    error goes to it, the trades stay pending and 0 is returned, so a daemon keeps running (degraded) and
    retries later through this same function, which writes only the trades still missing; without it the
    OSError is raised.
    """
    if not state.pending:
        return 0
    written = history_trade_ids(history)
    missing = [row for row in state.pending if row["trade_id"] not in written]
    if missing:
        try:
            append_trades(history, missing)
        except OSError as exc:
            if on_write_error is None:
                raise
            on_write_error(exc)
            return 0  # nothing is dropped: the state still lists every pending trade
        log.info("restart: wrote %d pending trade(s) a stopped run had not written yet", len(missing))
    state.pending = []
    return len(missing)


@contextmanager
def single_instance(path: Path, fallback_dir: Path | None = None) -> Iterator[Path | None]:
    """Hold ``<state file>.lock`` so two traders never write one history twice; yields the lock file held.

    When it cannot be created (a read-only state folder) the lock is ``<fallback_dir>/<state file>.lock``
    instead (the runtime's ``locks/``); when neither can be, the trader runs without one (logged), as it
    would run degraded anyway, rather than die.
    """
    lock = path.with_name(path.name + ".lock")
    fallback = (fallback_dir or lock.parent) / lock.name
    try:
        with locks.single_instance(lock, fallback) as held:
            yield held
    except locks.AlreadyLocked:
        raise FatalError(f"another paper trader is running with the state {path}; stop it first "
                         "(bash scripts/stop_rl_system.sh)") from None
