"""The reference paper trader: runs the 8 strategies on candles, one book each, and writes their closed trades.

    python -m agents.paper_trader --replay --speed 5          # walk stored or synthetic candles, 5 a second
    python -m agents.paper_trader --replay --speed 0 --max-candles 500
    python -m agents.paper_trader --live                      # act on each newly closed exchange candle

Modes. ``--replay`` walks the candles of ``market.data_source`` at ``--speed`` candles per second (0: as fast as
it can). A synthetic replay never ends: at the end of the generated candles it generates more (the synthetic
market is prefix-stable, so the candles already traded do not change); a CSV or ccxt replay stops at its last
candle. ``--live`` polls the exchange through the candle layer every ``trader.live_poll_s`` and acts on each
newly closed candle (after a restart it first catches up on the candles it missed, unpaced).

Books and sizing (the accounting itself is :mod:`agents.books`). Every strategy trades its own book in the
primary symbol (``market.symbols[0]``), sized by its weight in ``runtime/allocations_override.json`` times the
equity; the file is re-checked on every candle and equal weights apply when it is absent or invalid. A
decision on candle k's close is filled at that close plus or minus the slippage. A strategy with weight 0 still
trades on paper with qty 0, so every trade has a ``pnl_pct``.

Files. Closed trades are appended to ``state/pnl_history.csv``; ``runtime/trader_status.json`` shows equity,
cash, open positions, the allocation in force and the last candle; ``state/paper_trader_state.json`` holds what
a restart resumes from.

Crash safety (the protocol). Every trade has a deterministic id, ``symbol|strategy|opened_ms|closed_ms``, which
can be rebuilt from the required history columns. On a candle that closes trades the trader

1. computes the candle in memory (closed trades, new positions),
2. saves the state atomically with those trades listed as ``pending``,
3. appends them to the history.

On start, every pending trade whose id is not in the history yet is appended. A kill before step 2 leaves the
previous state, and the candle is computed again from it (same inputs, same trades); a kill after step 2
leaves the trades pending, and the restart writes those missing. So no trade is lost or written twice. Between
trades the state is saved every ``trader.state_interval_s`` seconds; candles after the last save are simply
computed again after a crash. SIGTERM (or Ctrl-C) finishes the current candle, saves the state and exits 0.

Extra books. Targets come from :class:`SignalSource` objects; the 8 strategies are one source. A trading-PPO
book (``rl_v3_ppo``) joins as one more source, with its weight taken from its rollout file in
:meth:`PaperTrader.book_weights`; the accounting, files and crash protocol need no change.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from agents.books import Costs, Portfolio, iso_ms, trade_id
from agents.ppo_book import BOOK as PPO_BOOK
from agents.ppo_book import Rollout, book_target, book_weight, check_risk_guard, read_rollout
from agents.weights_bridge import OUTPUT_NAME as ALLOCATIONS_NAME
from ai.tabular.learner import sizing_multiplier
from core.atomic import publish_json, read_json
from core.config import STRATEGIES, Config, load_config, replace_section
from core.contracts.pnl_history import append_trades, history_path, read_history
from core.contracts.weights import equal_weights, normalize, validate_weights
from core.daemon import DaemonContext, daemon_context
from core.errors import ConfigError, FatalError, RetryableError
from core.logging_setup import FORMAT, setup_logging
from market.candles import load_candles, timeframe_to_ms
from market.exchange import open_exchange

log = logging.getLogger(__name__)

PRODUCER = "paper_trader"
MODES = ("replay", "live")
STATE_VERSION = 1


# ------------------------------------------------------------------------------------------------ paths



def state_path(cfg: Config) -> Path:
    return cfg.state_dir / cfg.trader.state_file


def status_path(cfg: Config) -> Path:
    return cfg.runtime_dir / "trader_status.json"


def allocations_path(cfg: Config) -> Path:
    return cfg.runtime_dir / ALLOCATIONS_NAME


# ----------------------------------------------------------------------------------------------- config


def check_trader_config(cfg: Config) -> Costs:
    """Reject settings the trader cannot run with (ConfigError naming the key); returns the costs."""
    t = cfg.trader
    if t.mode not in MODES:
        raise ConfigError(f"`trader.mode` is {t.mode!r}; use one of: {', '.join(MODES)}")
    if not (math.isfinite(t.initial_equity) and t.initial_equity > 0):
        raise ConfigError(f"`trader.initial_equity` must be a positive number, got {t.initial_equity!r}")
    if not (math.isfinite(t.replay_speed) and t.replay_speed >= 0):
        raise ConfigError(f"`trader.replay_speed` must be >= 0 candles per second, got {t.replay_speed!r}")
    for key in ("status_interval_s", "state_interval_s", "live_poll_s"):
        value = getattr(t, key)
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"`trader.{key}` must be a positive number of seconds, got {value!r}")
    if t.live_history_candles < 2:
        raise ConfigError(f"`trader.live_history_candles` must be at least 2, got {t.live_history_candles}")
    name = t.state_file
    if not name or Path(name).name != name or name.startswith(".") or "\\" in name:
        raise ConfigError(f"`trader.state_file` must be a plain file name such as paper_trader_state.json, "
                          f"got {name!r}")
    if not cfg.market.symbols:
        raise ConfigError("`market.symbols` is empty; list at least one BASE/QUOTE symbol")
    try:
        return Costs(fee=cfg.costs.fee, slippage=cfg.costs.slippage)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


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


# ------------------------------------------------------------------------------------------- allocation


@dataclass(frozen=True)
class Allocation:
    """Weights in force, who produced them, and the file's read status with the reason it was not used."""

    weights: dict[str, float]
    source: str
    reason: str = ""
    file_status: str = "ok"


class AllocationReader:
    """Reads ``runtime/allocations_override.json`` again whenever its bytes changed.

    The bytes are compared rather than the mtime: two atomic replacements within one mtime tick (with a
    reused inode and the same size) would otherwise go unnoticed, and the file is small.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: bytes | None = None
        self._read_once = False
        self.current = Allocation(equal_weights(), "equal", "not read yet", "absent")

    def poll(self) -> tuple[Allocation, bool]:
        """The allocation in force and whether it changed since the last call."""
        raw = self._bytes()
        if self._read_once and raw == self._seen:
            return self.current, False
        self._seen, self._read_once = raw, True
        fresh = self._read()
        changed = fresh != self.current
        self.current = fresh
        if changed:
            if fresh.reason:
                # No file is the normal offline start (no bridge yet); a broken one deserves a warning.
                level = logging.INFO if fresh.file_status == "absent" else logging.WARNING
                log.log(level, "allocation: equal weights (%s)", fresh.reason)
            else:
                log.info("allocation from %s: %s", fresh.source,
                         ", ".join(f"{k}={v:.3f}" for k, v in fresh.weights.items()))
        return fresh, changed

    def _bytes(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except OSError:
            return None

    def _read(self) -> Allocation:
        result = read_json(self.path, validate=validate_weights)
        if not result.ok or result.data is None:
            return Allocation(equal_weights(), "equal", result.reason, result.status)
        doc = result.data
        weights = normalize({s: float(doc["weights"][s]) for s in STRATEGIES})
        source = doc.get("source")
        return Allocation(weights, str(source) if source else self.path.name)


# ------------------------------------------------------------------------------------------ market data


class SignalSource(Protocol):
    """Gives target positions in [-1, 1] for some books on every candle of the primary symbol."""

    books: tuple[str, ...]

    def targets(self, frames: Mapping[str, pd.DataFrame], primary: str) -> pd.DataFrame:
        """A frame with ``timestamp`` and one column per book; row k may use candles up to k only."""
        ...


@dataclass
class StrategySignals:
    """The 8 strategies of :mod:`agents.strategies` as one signal source."""

    cfg: Config
    books: tuple[str, ...] = STRATEGIES

    def targets(self, frames: Mapping[str, pd.DataFrame], primary: str) -> pd.DataFrame:
        from agents.strategies import compute_signals

        return compute_signals(frames, primary, self.cfg.strategies)


@dataclass(frozen=True)
class MarketWindow:
    """Candles of the primary symbol (open timestamps in ms, closes) with every book's target on each."""

    timestamps: np.ndarray
    closes: np.ndarray
    targets: np.ndarray
    books: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.timestamps)

    def after(self, last_ts: int | None) -> MarketWindow:
        """The candles strictly after ``last_ts`` (all of them when None)."""
        start = 0 if last_ts is None else int(np.searchsorted(self.timestamps, last_ts, side="right"))
        return self.slice(start, len(self))

    def slice(self, start: int, stop: int) -> MarketWindow:
        return MarketWindow(self.timestamps[start:stop], self.closes[start:stop], self.targets[start:stop],
                            self.books)

    def targets_at(self, i: int) -> dict[str, float]:
        return {book: float(self.targets[i, j]) for j, book in enumerate(self.books)}


def build_window(frames: Mapping[str, pd.DataFrame], primary: str,
                 sources: Sequence[SignalSource]) -> MarketWindow:
    """Align every source's targets on the primary symbol's candles; a missing or NaN target is flat (0)."""
    if primary not in frames:
        raise FatalError(f"no candles for the primary symbol {primary}; check market.symbols")
    base = frames[primary]
    ts = base["timestamp"].to_numpy(dtype=np.int64)
    books: list[str] = []
    columns: list[np.ndarray] = []
    for source in sources:
        signals = source.targets(frames, primary)
        missing = [b for b in ("timestamp", *source.books) if b not in signals.columns]
        if missing:
            raise FatalError(f"signals of {type(source).__name__} lack column `{missing[0]}`; "
                             f"expected timestamp and {', '.join(source.books)}")
        aligned = signals.set_index("timestamp")[list(source.books)].reindex(ts)
        values = aligned.to_numpy(dtype=float)
        values = np.clip(np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0)
        books.extend(source.books)
        columns.append(values)
    targets = np.hstack(columns) if columns else np.zeros((len(ts), 0))
    return MarketWindow(ts, base["close"].to_numpy(dtype=float), targets, tuple(books))


class ReplayFeed:
    """Stored or synthetic candles; a synthetic market grows at its end, other sources end there."""

    def __init__(self, cfg: Config, sources: Sequence[SignalSource]) -> None:
        self.cfg = cfg
        self.sources = sources
        self.source = cfg.market.data_source.strip().lower()
        self.extendable = self.source == "synthetic" and cfg.trader.extend_synthetic
        self.n_candles = cfg.synthetic.n_candles
        self.window = self._load()

    def candles_after(self, last_ts: int | None) -> MarketWindow | None:
        """The candles after ``last_ts``; None at the end of a source that cannot grow."""
        rest = self.window.after(last_ts)
        if len(rest) or not self.extendable:
            return rest if len(rest) else None
        self.n_candles = self._candles_needed(last_ts)
        log.info("end of the synthetic candles: extending the market to %d candles", self.n_candles)
        self.window = self._load()
        rest = self.window.after(last_ts)
        return rest if len(rest) else None

    def _candles_needed(self, last_ts: int | None) -> int:
        chunk = max(1, self.cfg.synthetic.n_candles)
        if last_ts is None or not len(self.window):
            return self.n_candles + chunk
        step = timeframe_to_ms(self.cfg.market.timeframe)
        index_of_last = (last_ts - int(self.window.timestamps[0])) // step
        return max(self.n_candles, index_of_last + 1) + chunk

    def _load(self) -> MarketWindow:
        cfg = self.cfg
        if self.source == "synthetic":
            cfg = replace_section(cfg, "synthetic", n_candles=self.n_candles)
        frames = load_candles(cfg, cfg.market.symbols, source=self.source)
        return build_window(frames, cfg.market.symbols[0], self.sources)


class LiveFeed:
    """Closed exchange candles through the candle layer (which updates its cache first)."""

    def __init__(self, cfg: Config, sources: Sequence[SignalSource]) -> None:
        self.cfg = cfg
        self.sources = sources
        self.exchange: Any = None  # one ccxt client for every poll: markets are loaded once, not per candle

    def candles_after(self, last_ts: int | None) -> MarketWindow:
        """The closed candles after ``last_ts``; on a first start only the newest one (no trading the past)."""
        if self.exchange is None:
            self.exchange = open_exchange(self.cfg)
        frames = load_candles(self.cfg, self.cfg.market.symbols, source="ccxt",
                              limit=self.cfg.trader.live_history_candles, exchange=self.exchange)
        window = build_window(frames, self.cfg.market.symbols[0], self.sources)
        if last_ts is None:
            return window.slice(max(0, len(window) - 1), len(window))
        rest = window.after(last_ts)
        if len(rest) and len(rest) == len(window) and len(window) > 1:
            log.warning("more than %d candles since the last one processed (%s): trading only those loaded",
                        len(window), iso_ms(last_ts))
        return rest


# ------------------------------------------------------------------------------------------------ state


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


def reconcile_pending(state: TraderState, history: Path) -> int:
    """Append the pending trades the history does not hold yet (step 3 of the protocol); returns how many."""
    if not state.pending:
        return 0
    written = history_trade_ids(history)
    missing = [row for row in state.pending if row["trade_id"] not in written]
    if missing:
        append_trades(history, missing)
        log.info("restart: wrote %d pending trade(s) a stopped run had not written yet", len(missing))
    state.pending = []
    return len(missing)


@contextmanager
def single_instance(path: Path) -> Iterator[None]:
    """Hold ``<state file>.lock`` so two traders never write one history twice."""
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FatalError(f"another paper trader is running with the state {path}; stop it first "
                             "(bash scripts/stop_rl_system.sh)") from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# ----------------------------------------------------------------------------------------------- trader


class PaperTrader:
    """One candle at a time: targets and weights in, trades, state, status and heartbeat out."""

    def __init__(self, cfg: Config, mode: str, state: TraderState, ctx: DaemonContext | None = None,
                 clock: Any = time.monotonic) -> None:
        self.cfg = cfg
        self.mode = mode
        self.state = state
        self.ctx = ctx
        self.clock = clock
        self.allocations = AllocationReader(allocations_path(cfg))
        self.step_ms = timeframe_to_ms(cfg.market.timeframe)
        self.history = history_path(cfg)
        self.state_file = state_path(cfg)
        self._last_save = self._last_status = clock()
        self.sizing_multiplier = 1.0
        self.rollout: Rollout | None = None

    def book_weights(self, allocation: Allocation) -> dict[str, float]:
        """Share of equity per book; books outside the allocation (a future PPO book) trade at weight 0.

        With ``qlearning.apply_sizing`` on, the sizing agent's multiplier scales every new position (1.0, i.e.
        shadow mode, by default); ``pnl_pct`` stays independent of it.
        """
        self.sizing_multiplier = sizing_multiplier(self.cfg)
        return {book: w * self.sizing_multiplier for book, w in allocation.weights.items()}

    def process(self, ts: int, close: float, targets: Mapping[str, float]) -> list[dict[str, Any]]:
        """Act on the candle opened at ``ts`` and closed at ``close``; closed trades are saved, then written."""
        allocation, _ = self.allocations.poll()
        targets, weights = self.with_ppo_book(ts, close, targets, self.book_weights(allocation))
        closed = self.state.portfolio.step(ts + self.step_ms, close, targets, weights)
        self.state.last_ts, self.state.last_close = int(ts), float(close)
        self.state.candles_processed += 1
        if closed:
            self.state.pending = closed
            self.state.trades_written += len(closed)
            self.save()
            append_trades(self.history, closed)
            self.state.pending = []
            for row in closed:
                log.debug("closed %s %s: pnl_pct %.5f pnl %.2f", row["strategy"], row["side"], row["pnl_pct"],
                          row["pnl"])
            if any(row["strategy"] == PPO_BOOK for row in closed):
                self.guard_ppo_book(ts + self.step_ms, close)
        if self.mode == "live":
            # One line per closed exchange candle (one an hour by default) shows a live trader is alive.
            log.info("candle %s closed at %.8g: %d trade(s) closed, equity %.2f", iso_ms(ts), close, len(closed),
                     self.state.portfolio.equity(close))
        return closed

    def with_ppo_book(self, ts: int, close: float, targets: Mapping[str, float],
                      weights: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
        """Add the trading PPO's book when a rollout above 0 % is in force (``runtime/rl_v3_rollout.json``).

        The book follows the shadow daemon's latest decision with ``capital_percentage`` of equity, capped at
        ``max_position_size`` notional. Without a live rollout it has no target, so an open PPO trade closes.
        """
        self.rollout = read_rollout(self.cfg)
        if self.rollout is None or not self.rollout.live:
            return dict(targets), weights
        target = book_target(self.cfg, ts, self.step_ms)
        equity = self.state.portfolio.equity(close)
        return {**targets, PPO_BOOK: target}, {**weights, PPO_BOOK: book_weight(self.rollout, equity, target)}

    def guard_ppo_book(self, now_ms: int, close: float) -> None:
        """After a PPO trade closes: the risk guard may send the rollout back to Stage 0 (by itself, logged)."""
        if self.rollout is None:
            return
        capital = self.rollout.capital_percentage / 100.0 * self.state.portfolio.equity(close)
        verdict = check_risk_guard(self.cfg, capital, now=datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc))
        if verdict is not None and verdict.trip:
            log.warning("risk guard tripped the PPO rollout back to Stage 0: %s", verdict.reason)

    def save(self) -> None:
        save_state(self.state_file, self.state)
        self._last_save = self.clock()

    def tick(self, force: bool = False) -> None:
        """Save the state and publish status and heartbeat when their intervals have passed (or ``force``)."""
        now = self.clock()
        if force or now - self._last_save >= self.cfg.trader.state_interval_s:
            self.save()
        if force or now - self._last_status >= self.cfg.trader.status_interval_s:
            # Between candles (an hour in live mode) the status still shows the allocation now in force.
            self.allocations.poll()
            self.publish_status()

    def publish_status(self, state: str = "running") -> dict[str, Any]:
        self._last_status = self.clock()
        doc = publish_json(status_path(self.cfg), PRODUCER, self.status(state))
        if self.ctx is not None:
            self.ctx.beat(state=state, last_candle=doc["last_candle"], equity=doc["equity"],
                          candles_processed=self.state.candles_processed)
        return doc

    def status(self, state: str = "running") -> dict[str, Any]:
        """The payload of ``runtime/trader_status.json``."""
        s = self.state
        price = s.last_close
        allocation = self.allocations.current
        portfolio = s.portfolio
        equity = portfolio.equity(price) if price is not None else portfolio.cash
        books = sorted(set(STRATEGIES) | set(portfolio.positions), key=_book_order)
        return {
            "state": state,
            "mode": self.mode,
            "data_source": self.cfg.market.data_source,
            "symbol": portfolio.symbol,
            "timeframe": self.cfg.market.timeframe,
            "initial_equity": s.initial_equity,
            "equity": equity,
            "cash": portfolio.cash,
            "positions": {book: _position_status(portfolio, book, price) for book in books},
            "allocation": {"weights": allocation.weights, "source": allocation.source,
                           "file_status": allocation.file_status, "reason": allocation.reason},
            "sizing_multiplier": self.sizing_multiplier,
            "ppo_rollout": None if self.rollout is None else {
                "stage": self.rollout.stage, "capital_percentage": self.rollout.capital_percentage,
                "max_position_size": self.rollout.max_position_size},
            "last_candle": None if s.last_ts is None else {
                "timestamp": s.last_ts, "time": iso_ms(s.last_ts), "close": price},
            "candles_processed": s.candles_processed,
            "trades_written": s.trades_written,
        }


def _book_order(name: str) -> tuple[int, str]:
    return (STRATEGIES.index(name) if name in STRATEGIES else len(STRATEGIES), name)


def _position_status(portfolio: Portfolio, book: str, price: float | None) -> dict[str, Any] | None:
    pos = portfolio.positions.get(book)
    if pos is None:
        return None
    return {
        "side": pos.side, "qty": pos.qty, "notional": pos.notional, "entry_price": pos.entry_price,
        "opened_at": iso_ms(pos.opened_ms), "target": pos.target, "weight": pos.weight,
        "unrealized_pnl": pos.unrealized_pnl(price) if price is not None else 0.0,
    }


# ------------------------------------------------------------------------------------------------- loop


class Pacer:
    """Spaces candles ``1 / speed`` seconds apart on a steady schedule (0: no waiting)."""

    def __init__(self, speed: float, ctx: DaemonContext) -> None:
        self.interval = 1.0 / speed if speed > 0 else 0.0
        self.ctx = ctx
        self.due: float | None = None

    def wait_turn(self) -> bool:
        """Wait for the next candle's turn; True when asked to stop meanwhile."""
        if self.interval <= 0:
            return self.ctx.stop.is_set()
        now = time.monotonic()
        if self.due is None or self.due < now - self.interval:
            self.due = now  # first candle, or fallen behind: restart the schedule rather than burst
        stopped = self.ctx.wait(max(0.0, self.due - now))
        self.due += self.interval
        return stopped


def run_loop(trader: PaperTrader, feed: ReplayFeed | LiveFeed, ctx: DaemonContext, speed: float,
             max_candles: int | None) -> str:
    """Feed candles to ``trader`` until the end of the data, ``max_candles`` or a stop; returns why it ended."""
    pacer = Pacer(speed, ctx)
    done = 0
    backoff = 0.0
    while True:
        if ctx.stop.is_set():
            return "stop requested"
        if max_candles is not None and done >= max_candles:
            return f"{max_candles} candles processed"
        try:
            window = feed.candles_after(trader.state.last_ts)
            backoff = 0.0
        except RetryableError as exc:
            backoff = min(max(2.0 * backoff, trader.cfg.exchange.backoff_s), trader.cfg.trader.live_poll_s * 4)
            log.warning("candles unavailable (%s); retrying in %.0f s", exc, backoff)
            _idle(trader, ctx, backoff)
            continue
        if window is None:
            last = trader.state.last_ts
            log.info("replay reached the end of the available candles (last %s); stopping",
                     iso_ms(last) if last is not None else "none")
            return "end of data"
        if not len(window):
            _idle(trader, ctx, trader.cfg.trader.live_poll_s)
            continue
        for i in range(len(window)):
            if max_candles is not None and done >= max_candles:
                break
            if pacer.wait_turn():
                return "stop requested"
            trader.process(int(window.timestamps[i]), float(window.closes[i]), window.targets_at(i))
            done += 1
            trader.tick()


def _idle(trader: PaperTrader, ctx: DaemonContext, seconds: float) -> None:
    """Wait up to ``seconds`` while keeping status and heartbeat fresh."""
    deadline = time.monotonic() + seconds
    while not ctx.stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        ctx.wait(min(left, trader.cfg.trader.status_interval_s))
        trader.tick()


def make_feed(cfg: Config, mode: str, sources: Sequence[SignalSource]) -> ReplayFeed | LiveFeed:
    return ReplayFeed(cfg, sources) if mode == "replay" else LiveFeed(cfg, sources)


def run(cfg: Config, mode: str, speed: float, max_candles: int | None,
        sources: Sequence[SignalSource] | None = None, reset: bool = False) -> str:
    """Run the trader under the daemon context until it ends; returns why it ended.

    ``speed`` paces a replay only: a live candle is acted on as soon as it closes, and the catch-up after a
    restart runs at full speed. ``reset`` first moves the saved state aside (to ``<state file>.bak``) for a
    fresh account.
    """
    costs = check_trader_config(cfg)
    speed = speed if mode == "replay" else 0.0
    sources = list(sources) if sources is not None else [StrategySignals(cfg)]
    path = state_path(cfg)
    with single_instance(path), daemon_context(PRODUCER, cfg) as ctx:
        if reset:
            backup = reset_state(path)
            if backup is not None:
                log.info("previous state kept as %s; starting a fresh account", backup)
        state = load_state(path, cfg, costs)
        if state is None:
            state = fresh_state(cfg, costs)
            log.info("fresh paper account: equity %.2f on %s", state.initial_equity, state.portfolio.symbol)
        else:
            log.info("resuming after %s (%d candles, %d trades so far)",
                     iso_ms(state.last_ts) if state.last_ts is not None else "no candle", state.candles_processed,
                     state.trades_written)
            reconcile_pending(state, history_path(cfg))
        trader = PaperTrader(cfg, mode, state, ctx)
        trader.allocations.poll()
        trader.save()
        trader.publish_status()
        try:
            feed = make_feed(cfg, mode, sources)
            reason = run_loop(trader, feed, ctx, speed, max_candles)
        finally:
            trader.save()
            trader.publish_status(state="stopped")
        log.info("stopped: %s; equity %.2f after %d candles, %d trades written", reason,
                 trader.status()["equity"], state.candles_processed, state.trades_written)
        return reason


# -------------------------------------------------------------------------------------------------- cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paper_trader",
        description="Reference paper trader: runs the 8 strategies, one book each, sized by "
                    "runtime/allocations_override.json, and appends closed trades to state/pnl_history.csv.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--replay", dest="mode", action="store_const", const="replay",
                      help="walk stored or synthetic candles (default unless trader.mode says live)")
    mode.add_argument("--live", dest="mode", action="store_const", const="live",
                      help="poll the exchange and act on each newly closed candle")
    parser.add_argument("--speed", type=float, metavar="N",
                        help="replay pace in candles per second, 0 for as fast as possible "
                             "(--replay only; default: trader.replay_speed)")
    parser.add_argument("--max-candles", type=int, metavar="N",
                        help="stop after processing N candles in this run")
    parser.add_argument("--reset", action="store_true",
                        help="start a fresh account: move the saved state aside (kept as <state file>.bak)")
    parser.add_argument("--config", metavar="PATH",
                        help="TOML configuration file (default: rl_system.toml or $RL_SYSTEM_CONFIG)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        logging.basicConfig(format=FORMAT)
        log.error("%s", exc)
        return 2
    setup_logging(cfg, PRODUCER)
    mode = args.mode or cfg.trader.mode
    speed = cfg.trader.replay_speed if args.speed is None else args.speed
    try:
        if not (math.isfinite(speed) and speed >= 0):
            raise ConfigError(f"--speed must be >= 0 candles per second, got {speed!r}")
        if mode == "live" and args.speed is not None:
            raise ConfigError("--speed paces --replay only; --live acts on each candle as soon as it closes")
        if args.max_candles is not None and args.max_candles < 1:
            raise ConfigError(f"--max-candles must be at least 1, got {args.max_candles}")
        check_trader_config(cfg)
        log.info("paper trader: mode %s, speed %s, max candles %s", mode, speed if mode == "replay" else "-",
                 args.max_candles)
        run(cfg, mode, speed, args.max_candles, reset=args.reset)
    except FatalError as exc:
        log.error("%s", exc)
        return 2
    except RetryableError as exc:
        log.error("gave up: %s", exc)
        return 1
    except OSError as exc:
        log.error("file error: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
