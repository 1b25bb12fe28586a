"""Per-strategy paper books: fills, fees, slippage, open trades and exact equity accounting.

This module is pure (no files, no clock); :mod:`agents.paper_trader` drives it one candle at a time.

The model, in one place:

- Every book (one per strategy, keyed by name) holds at most one open trade in the traded symbol.
- A decision taken on candle k's close is filled at that close moved against the trader by the slippage:
  a buy at ``close * (1 + slippage)``, a sell at ``close * (1 - slippage)``. The fill time is the candle's close
  time (its open timestamp plus one timeframe).
- A book opens a trade when its target goes from 0 to non-zero and closes it when the target goes to 0 or
  changes sign (the opposite trade opens on the same candle, after every close of that candle). A change of
  magnitude with the same sign keeps the trade as it is: its size is fixed when it opens, so its return on
  notional is one well defined number.
- Size: ``notional = weight * equity * |target|``, with the equity marked at the candle's close after that
  candle's closes; ``qty = notional / entry_fill``. A weight of 0 gives qty 0: the book still trades a unit
  notional on paper, so every trade has a ``pnl_pct`` (other weightings can be replayed from it).
- Fees: ``fee * qty * fill_price`` at each fill. ``pnl_pct`` is the return on the trade's own notional net of
  fees and slippage, ``side * (exit - entry) / entry - fee * (entry + exit) / entry``, the same for every size;
  ``pnl`` in currency is the cash the round trip made, ``side * qty * (exit - entry) - fee * qty * (entry + exit)``.
- Cash: opening a long pays ``qty * entry + fee``, opening a short receives ``qty * entry - fee``; closing
  reverses at the exit fill. Equity is ``cash + sum(side * qty * close)`` over the open trades, so once every
  trade is closed it equals the initial equity plus the sum of the trades' ``pnl``. Cash may go below zero
  (a paper margin account): the sizing never exceeds the equity in force at each opening.
- Allocation changes apply to trades opened afterwards; open trades keep their size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

LONG, SHORT = 1, -1


@dataclass(frozen=True)
class Costs:
    """Proportional trading costs: ``fee`` per traded notional, ``slippage`` moving every fill against us."""

    fee: float
    slippage: float

    def __post_init__(self) -> None:
        for name in ("fee", "slippage"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value < 1.0):
                raise ValueError(f"costs.{name} must be in [0, 1), got {value!r}")


def fill_price(close: float, buy: bool, costs: Costs) -> float:
    """The price a market order at ``close`` gets: above it when buying, below it when selling."""
    return close * (1.0 + costs.slippage) if buy else close * (1.0 - costs.slippage)


def unit_return(direction: int, entry: float, exit_: float, fee: float) -> float:
    """Return on one unit of notional of a round trip, net of fees (slippage is inside the fill prices)."""
    return direction * (exit_ - entry) / entry - fee * (entry + exit_) / entry


def direction_of(target: float) -> int:
    """+1, -1 or 0 for a target position; NaN counts as flat."""
    if target is None or not math.isfinite(target) or target == 0.0:
        return 0
    return LONG if target > 0 else SHORT


def iso_ms(ms: int) -> str:
    """Milliseconds since the epoch as ISO-8601 UTC with a ``Z`` suffix."""
    return datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def trade_id(symbol: str, strategy: str, opened_ms: int, closed_ms: int) -> str:
    """Deterministic id of a trade, rebuilt from required history columns (see ``history_trade_ids``)."""
    return f"{symbol}|{strategy}|{opened_ms}|{closed_ms}"


@dataclass(frozen=True)
class OpenTrade:
    """One book's open trade; ``qty``/``notional`` are what the allocation gave it (0 at weight 0)."""

    strategy: str
    symbol: str
    direction: int
    opened_ms: int
    entry_price: float
    qty: float
    notional: float
    entry_fee: float
    weight: float
    target: float

    @property
    def side(self) -> str:
        return "long" if self.direction == LONG else "short"

    def value(self, price: float) -> float:
        """Signed market value at ``price`` (what the position adds to equity)."""
        return self.direction * self.qty * price

    def unrealized_pnl(self, price: float) -> float:
        """Profit at ``price`` before exit costs, net of the entry fee already paid."""
        return self.direction * self.qty * (price - self.entry_price) - self.entry_fee

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> OpenTrade:
        return cls(
            strategy=str(raw["strategy"]), symbol=str(raw["symbol"]), direction=int(raw["direction"]),
            opened_ms=int(raw["opened_ms"]), entry_price=float(raw["entry_price"]), qty=float(raw["qty"]),
            notional=float(raw["notional"]), entry_fee=float(raw["entry_fee"]), weight=float(raw["weight"]),
            target=float(raw["target"]),
        )


@dataclass
class Portfolio:
    """Cash plus the open trade of every book, all in one symbol; see the module docstring for the model."""

    symbol: str
    costs: Costs
    cash: float
    positions: dict[str, OpenTrade] = field(default_factory=dict)

    def equity(self, price: float) -> float:
        """Cash plus the open trades marked at ``price``."""
        return self.cash + sum(pos.value(price) for pos in self.positions.values())

    def step(self, fill_ms: int, close: float, targets: Mapping[str, float],
             weights: Mapping[str, float]) -> list[dict[str, Any]]:
        """Act on one candle: close the trades whose target went flat or flipped, then open the new ones.

        ``targets`` maps book name to target position in [-1, 1] (a book with an open trade but no target
        is flat); ``weights`` maps book name to its share of equity (missing means 0). Returns the closed
        trades as history rows, in book order.
        """
        if not (math.isfinite(close) and close > 0):
            raise ValueError(f"close price must be a positive number, got {close!r}")
        wanted = {name: direction_of(t) for name, t in targets.items()}
        closed = []
        for name in _ordered(targets, self.positions):
            pos = self.positions.get(name)
            if pos is not None and pos.direction != wanted.get(name, 0):
                closed.append(self._close(pos, fill_ms, close))
        sizing_equity = max(0.0, self.equity(close))
        for name, target in targets.items():
            if wanted[name] != 0 and name not in self.positions:
                self._open(name, wanted[name], abs(target), fill_ms, close,
                           float(weights.get(name, 0.0)), sizing_equity)
        return closed

    def _open(self, name: str, direction: int, size: float, fill_ms: int, close: float, weight: float,
              sizing_equity: float) -> None:
        entry = fill_price(close, buy=direction == LONG, costs=self.costs)
        notional = max(0.0, weight) * sizing_equity * min(1.0, size)
        qty = notional / entry
        entry_fee = self.costs.fee * qty * entry
        self.cash -= direction * qty * entry + entry_fee
        self.positions[name] = OpenTrade(
            strategy=name, symbol=self.symbol, direction=direction, opened_ms=fill_ms, entry_price=entry,
            qty=qty, notional=notional, entry_fee=entry_fee, weight=weight, target=direction * min(1.0, size),
        )

    def _close(self, pos: OpenTrade, fill_ms: int, close: float) -> dict[str, Any]:
        exit_ = fill_price(close, buy=pos.direction == SHORT, costs=self.costs)
        exit_fee = self.costs.fee * pos.qty * exit_
        self.cash += pos.direction * pos.qty * exit_ - exit_fee
        del self.positions[pos.strategy]
        pnl = pos.direction * pos.qty * (exit_ - pos.entry_price) - pos.entry_fee - exit_fee
        return {
            "closed_at": iso_ms(fill_ms),
            "opened_at": iso_ms(pos.opened_ms),
            "symbol": pos.symbol,
            "strategy": pos.strategy,
            "side": pos.side,
            "qty": pos.qty,
            "entry_price": pos.entry_price,
            "exit_price": exit_,
            "pnl": pnl,
            "pnl_pct": unit_return(pos.direction, pos.entry_price, exit_, self.costs.fee),
            "fees": pos.entry_fee + exit_fee,
            "equity_after": self.equity(close),
            "trade_id": trade_id(pos.symbol, pos.strategy, pos.opened_ms, fill_ms),
            "notional": pos.notional,
            "weight": pos.weight,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the state file (floats round-trip exactly through JSON)."""
        return {
            "symbol": self.symbol,
            "cash": self.cash,
            "positions": {name: pos.to_dict() for name, pos in self.positions.items()},
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], costs: Costs) -> Portfolio:
        positions = {str(name): OpenTrade.from_dict(pos) for name, pos in dict(raw["positions"]).items()}
        return cls(symbol=str(raw["symbol"]), costs=costs, cash=float(raw["cash"]), positions=positions)


def _ordered(targets: Mapping[str, float], positions: Mapping[str, OpenTrade]) -> Iterable[str]:
    """Book names in target order, then open books that have no target any more."""
    yield from targets
    yield from (name for name in list(positions) if name not in targets)
