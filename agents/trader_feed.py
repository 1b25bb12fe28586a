"""The paper trader's candle feeds: every book's target on each candle of the primary symbol.

Targets come from :class:`SignalSource` objects; the 8 strategies of :mod:`agents.strategies` are one source
(:class:`StrategySignals`), and :func:`build_window` aligns every source on the primary symbol's candles.

``replay`` (:class:`ReplayFeed`) walks the candles of ``market.data_source``: a synthetic replay never ends (at
the end of the generated candles it generates more; the synthetic market is prefix-stable, so the candles
already traded do not change), a CSV or ccxt replay stops at its last candle. ``live`` (:class:`LiveFeed`)
loads the closed exchange candles through the candle layer, with one exchange client for every poll.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from agents.books import iso_ms
from core.config import STRATEGIES, Config, replace_section
from core.daemon import release_free_memory
from core.errors import FatalError
from core.timeframes import timeframe_to_ms
from market.sources import load_candles

log = logging.getLogger(__name__)


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
        release_free_memory()  # the regenerated market and its signals are freed: their peak is not kept resident
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
            from market.exchange import open_exchange  # ccxt (~50 MB) only for a live trader, not a replay

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


def make_feed(cfg: Config, mode: str, sources: Sequence[SignalSource]) -> ReplayFeed | LiveFeed:
    """The candle feed of ``mode``: ``replay`` (stored or synthetic candles) or ``live`` (the exchange)."""
    return ReplayFeed(cfg, sources) if mode == "replay" else LiveFeed(cfg, sources)
