"""Candle sources: the one place that turns ``market.data_source`` into candles (:func:`load_candles`).

``synthetic`` generates the seeded market of :mod:`market.synthetic`; ``csv`` reads ``market.csv_paths``
through :mod:`market.csv_import`; ``ccxt`` brings the candle cache (:mod:`market.cache`) up to date through
:mod:`market.exchange` and reads it, falling back to the cache as it is when the exchange cannot be reached.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from core.config import DATA_SOURCES, Config
from core.errors import ConfigError, DataError, RetryableError
from core.timeframes import timeframe_to_ms
from market.cache import cache_path, read_cached_candles
from market.csv_import import read_csv_candles
from market.gaps import describe_gaps, find_gaps
from market.synthetic_window import synthetic_window

if TYPE_CHECKING:
    import ccxt

log = logging.getLogger(__name__)


def load_candles(
    cfg: Config, symbols: Sequence[str] | None = None, *, source: str | None = None, limit: int | None = None,
    exchange: ccxt.Exchange | None = None, keep_last: int | None = None,
) -> dict[str, pd.DataFrame]:
    """Candles per symbol from the configured source; the one call strategies, environments and trainers use.

    ``source`` overrides ``cfg.market.data_source``: ``synthetic`` (seeded, offline; ``synthetic.n_candles``
    candles), ``csv`` (``market.csv_paths``; relative paths are taken from the home folder) or ``ccxt`` (the
    candle cache of :mod:`market.cache`, updated first with only the candles newer than its last one;
    when the exchange cannot be reached the cache is used as it is). ``limit`` keeps the last ``limit``
    candles of each symbol. Symbols default to ``market.symbols``. ``exchange``: a ccxt client to reuse (a
    poller keeps one, so the exchange's market list is loaded once rather than at every poll). ``keep_last``:
    of those candles return only the last ``keep_last`` (the same candles; a synthetic market generates only
    these, so a reader that needs the end of a long market does not pay for all of it).
    """
    wanted = list(symbols) if symbols is not None else list(cfg.market.symbols)
    if not wanted:
        raise ConfigError("no symbols given and `market.symbols` is empty; list at least one BASE/QUOTE symbol")
    kind = (source or cfg.market.data_source).strip().lower()
    for name, value in (("limit", limit), ("keep_last", keep_last)):
        if value is not None and value <= 0:
            raise ConfigError(f"{name} must be a positive number of candles, got {value}")
    timeframe_to_ms(cfg.market.timeframe)  # a bad timeframe is reported before any work
    if kind == "synthetic":
        frames = _load_synthetic(cfg, wanted, limit, keep_last)
    elif kind == "csv":
        frames = {s: _load_csv(cfg, s) for s in wanted}
    elif kind == "ccxt":
        frames = _load_ccxt(cfg, wanted, limit, exchange)
    else:
        raise ConfigError(
            f"market.data_source `{kind}` is not known; use one of: {', '.join(DATA_SOURCES)}"
        )
    for last in (limit, keep_last):
        if last is not None:
            frames = {s: f.tail(last).reset_index(drop=True) for s, f in frames.items()}
    return frames


def _load_synthetic(cfg: Config, symbols: list[str], limit: int | None,
                    keep_last: int | None) -> dict[str, pd.DataFrame]:
    # Only the candles returned are generated (from the stream's checkpoints), not the whole market first.
    end = max(cfg.synthetic.n_candles, limit or 0)
    count = min(limit or end, keep_last or end)
    return synthetic_window(cfg, symbols, end=end, count=count)


def _load_csv(cfg: Config, symbol: str) -> pd.DataFrame:
    paths = cfg.market.csv_paths
    if symbol not in paths:
        raise ConfigError(
            f"market.csv_paths has no file for {symbol}; add e.g. `csv_paths = {{\"{symbol}\" = \"data/file.csv\"}}` "
            "under [market]"
        )
    file = Path(paths[symbol]).expanduser()
    if not file.is_absolute():
        file = cfg.home / file
    if not file.exists():
        raise DataError(f"{file}: candle file for {symbol} not found; fix market.csv_paths")
    frame = read_csv_candles(file)
    gaps = find_gaps(frame, cfg.market.timeframe)
    if gaps:
        log.warning("%s (%s, %s): %s", file, symbol, cfg.market.timeframe, describe_gaps(gaps))
    return frame


def _load_ccxt(cfg: Config, symbols: list[str], limit: int | None, exchange: ccxt.Exchange | None = None
               ) -> dict[str, pd.DataFrame]:
    # Imported here, not at the top: ccxt takes about 0.4 s to import and only this source needs it.
    from market.exchange import open_exchange, update_cache

    frames: dict[str, pd.DataFrame] = {}
    for symbol in symbols:
        path = cache_path(cfg, symbol)
        try:
            if exchange is None:
                exchange = open_exchange(cfg)
            history = max(cfg.exchange.history_candles, limit or 0)
            update_cache(cfg, symbol, exchange=exchange, history_candles=history)
        except RetryableError as exc:
            if not path.exists():
                raise
            log.warning("%s: update failed, using the cached candles as they are: %s", symbol, exc)
        frames[symbol] = read_cached_candles(path)
    return frames
