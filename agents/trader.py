"""The paper trader's per-candle step: allocation in, fills, trades, state and status out.

:class:`PaperTrader` acts on one candle at a time. Every book (one per strategy, plus the trading PPO's book
``rl_v3_ppo`` while a rollout above 0 % is in force) trades the primary symbol, sized by its weight in the
allocations file times the equity (:class:`AllocationReader` re-reads the file on every candle; equal weights
apply when it is absent or invalid), times the Q-learning sizing multiplier when ``qlearning.apply_sizing`` is
on. The accounting is :mod:`agents.books`; the crash protocol of :meth:`PaperTrader.process` (save the closed
trades as pending, then append them) is described in :mod:`agents.trader_state`. The status it publishes is
:mod:`core.contracts.trader_status`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agents.books import Portfolio, iso_ms
from agents.ppo_book import BOOK as PPO_BOOK
from agents.ppo_book import book_target, book_weight
from agents.trader_state import TraderState, reconcile_pending, save_state, state_path
from core.config import STRATEGIES, Config
from core.contracts.pnl_history import append_trades, history_path
from core.contracts.qlearning_policy import sizing_multiplier
from core.contracts.rollout import Rollout, check_risk_guard, read_rollout
from core.contracts.trader_status import PositionStatus, TraderStatus, publish_trader_status
from core.contracts.weights import allocations_path, equal_weights, normalize, read_weights
from core.daemon import DaemonContext
from core.timeframes import timeframe_to_ms

log = logging.getLogger(__name__)

STATE_WRITE, HISTORY_WRITE, STATUS_WRITE = "trader state", "trade history", "trader status"
"""How failed writes of the state file, ``state/pnl_history.csv`` and the status are reported."""


@dataclass(frozen=True)
class Allocation:
    """Weights in force, who produced them, and the file's read status with the reason it was not used."""

    weights: dict[str, float]
    source: str
    reason: str = ""
    file_status: str = "ok"


class AllocationReader:
    """Reads the allocations file (:func:`core.contracts.weights.allocations_path`) again whenever its bytes changed.

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
        result = read_weights(self.path)
        if not result.ok or result.data is None:
            return Allocation(equal_weights(), "equal", result.reason, result.status)
        doc = result.data
        weights = normalize({s: float(doc["weights"][s]) for s in STRATEGIES})
        source = doc.get("source")
        return Allocation(weights, str(source) if source else self.path.name)


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
        # Trades still pending at start (their append failed at the restart) may be partly in the history.
        self._append_failed = bool(state.pending)

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
            # Trades a failed write left pending (a read-only state/, a full disk) go out with these.
            self.state.pending = [*self.state.pending, *closed]
            self.state.trades_written += len(closed)
            self.flush_pending()
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
        """Add the trading PPO's book when a rollout above 0 % is in force (:mod:`core.contracts.rollout`).

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

    def save(self) -> bool:
        """Save the state now (atomically); whether it was saved.

        Under a daemon a failed write (read-only folder, full disk) keeps the previous file, is reported by the
        context (logged once, heartbeat degraded) and tried again after its backoff; without one it raises.
        """
        if self.ctx is not None and not self.ctx.retry_due(STATE_WRITE):
            return False
        try:
            save_state(self.state_file, self.state)
        except OSError as exc:
            if self.ctx is None:
                raise
            self.ctx.write_failed(STATE_WRITE, exc)
            return False
        if self.ctx is not None:
            self.ctx.write_ok(STATE_WRITE)
        self._last_save = self.clock()
        return True

    def flush_pending(self) -> None:
        """Steps 2 and 3 of the protocol: save the state listing the pending trades, then append them.

        Nothing is appended unless the state listing them was saved, so a restart never writes a trade twice;
        after a failed append the next flush appends only the trades the history does not hold yet.
        """
        if not self.state.pending or not self.save():
            return
        try:
            if self._append_failed:
                reconcile_pending(self.state, self.history)
            else:
                append_trades(self.history, self.state.pending)
                self.state.pending = []
        except OSError as exc:
            if self.ctx is None:
                raise
            self._append_failed = True
            self.ctx.write_failed(HISTORY_WRITE, exc)
            return
        self._append_failed = False
        if self.ctx is not None:
            self.ctx.write_ok(HISTORY_WRITE)

    def tick(self, force: bool = False) -> None:
        """Save the state and publish status and heartbeat when their intervals have passed (or ``force``)."""
        now = self.clock()
        if self.state.pending:
            self.flush_pending()  # retried here too: in live mode the next candle is an hour away
        if force or now - self._last_save >= self.cfg.trader.state_interval_s:
            self.save()
        if force or now - self._last_status >= self.cfg.trader.status_interval_s:
            # Between candles (an hour in live mode) the status still shows the allocation now in force.
            self.allocations.poll()
            self.publish_status()

    def publish_status(self, state: str = "running") -> dict[str, Any]:
        """Publish the status now (and beat the heartbeat under a daemon); returns the document written."""
        self._last_status = self.clock()
        payload = self.status(state)
        try:
            doc: dict[str, Any] = publish_trader_status(self.cfg, payload)
        except OSError as exc:
            if self.ctx is None:
                raise
            self.ctx.write_failed(STATUS_WRITE, exc)  # the previous status stays; the heartbeat says why
            doc = dict(payload)
        else:
            if self.ctx is not None:
                self.ctx.write_ok(STATUS_WRITE)
        if self.ctx is not None:
            self.ctx.beat(state=state, last_candle=doc["last_candle"], equity=doc["equity"],
                          candles_processed=self.state.candles_processed)
        return doc

    def status(self, state: str = "running") -> TraderStatus:
        """The payload of the trader status (:mod:`core.contracts.trader_status`)."""
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


def _position_status(portfolio: Portfolio, book: str, price: float | None) -> PositionStatus | None:
    pos = portfolio.positions.get(book)
    if pos is None:
        return None
    return {
        "side": pos.side, "qty": pos.qty, "notional": pos.notional, "entry_price": pos.entry_price,
        "opened_at": iso_ms(pos.opened_ms), "target": pos.target, "weight": pos.weight,
        "unrealized_pnl": pos.unrealized_pnl(price) if price is not None else 0.0,
    }
