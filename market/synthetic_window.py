"""Any stretch of the synthetic market without generating it from its first candle.

:func:`market.synthetic.generate_market` draws its randomness block by block (:data:`~market.synthetic.BLOCK`
candles per generator) and carries a small state from one block to the next: the factor's regime, the
stretch's remaining length and direction, the GARCH multiplier, the factor's level, moving average and anchor,
and per symbol its cumulative log return, the pair's spread and the last close. A :class:`MarketStream` keeps
that state at block boundaries (checkpoints), so the candles ``[end - count, end)`` cost the blocks from the
nearest checkpoint at or before them, and memory holds only the blocks of the window plus the checkpoints.

Checkpoints are thinned (every other one dropped) when there are more than :data:`MAX_CHECKPOINTS`, so a
stream's memory is fixed however far a replay runs; at most :data:`MAX_STREAMS` parameter sets are kept. The
candles are those of :func:`~market.synthetic.generate_market` bit for bit: the same draws, the same
operations in the same order (a cumulative sum continued from its last value is the same sequential sum).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from core.atomic import parse_iso
from core.config import Config
from core.errors import ConfigError
from core.timeframes import timeframe_to_ms
from market.frames import COLUMNS, validate_candles
from market.synthetic import (
    _MARKET_STREAM,
    _SPREAD_PHI,
    _SYMBOL_STREAM,
    BLOCK,
    YEAR_MS,
    FactorState,
    SyntheticMarket,
    _block_rng,
    _check_params,
    factor_steps,
)

MAX_CHECKPOINTS = 256
"""Checkpoints one stream keeps; beyond, every other one is dropped (the spacing doubles)."""
MAX_STREAMS = 4
"""Parameter sets (symbols, seed, ...) whose streams are kept, least recently used dropped first."""


@dataclass(frozen=True)
class MarketParams:
    """Everything a generated market depends on (the arguments of :func:`market.synthetic.generate_market`)."""

    symbols: tuple[str, ...]
    timeframe: str = "1h"
    seed: int = 42
    start_ms: int = 1_704_067_200_000
    start_prices: tuple[float, ...] = (40_000.0, 2_500.0, 100.0, 0.5)
    correlation: float = 0.8
    annual_volatility: float = 0.6
    mean_regime_candles: int = 200




@dataclass(frozen=True)
class _SymbolState:
    path: float | None = None
    """Last cumulative log return (None before the first candle)."""
    spread: float = 0.0
    log_close: float | None = None
    close: float | None = None


@dataclass(frozen=True)
class _Checkpoint:
    factor: FactorState
    symbols: tuple[_SymbolState, ...]


@dataclass(frozen=True)
class _Block:
    returns: np.ndarray
    drift: np.ndarray
    sigma: np.ndarray
    regimes: np.ndarray


def _continued_cumsum(values: np.ndarray, last: float | None) -> np.ndarray:
    # np.cumsum adds sequentially, so prepending the last value continues the very same sum.
    if last is None:
        return np.cumsum(values)
    return np.cumsum(np.concatenate(([last], values)))[1:]


class MarketStream:
    """Windows of one parameter set's market, from checkpoints of the generators' state."""

    def __init__(self, params: MarketParams) -> None:
        p = params
        _check_params(p.symbols, 1, p.start_prices, p.correlation, p.annual_volatility, p.mean_regime_candles)
        self.params = p
        self.tf_ms = timeframe_to_ms(p.timeframe)
        self.base_sigma = p.annual_volatility * math.sqrt(self.tf_ms / YEAR_MS)
        self._checkpoints: dict[int, _Checkpoint] = {
            0: _Checkpoint(FactorState(), tuple(_SymbolState() for _ in p.symbols))}
        self._lock = threading.Lock()

    def window(self, end: int, count: int) -> SyntheticMarket:
        """Candles ``[max(0, end - count), end)`` of every symbol, index from 0, as a full generation has them."""
        if end <= 0 or count <= 0:
            raise ConfigError(f"a market window needs a positive end and count, got end={end}, count={count}")
        first = max(0, end - count)
        b0, b1 = first // BLOCK, -(-end // BLOCK)
        with self._lock:
            state = self._state_at(b0)
        parts: list[list[dict[str, np.ndarray]]] = [[] for _ in self.params.symbols]
        regimes = []
        for b in range(b0, b1):
            block, factor = self._factor_block(b, state.factor)
            symbols, frames = self._symbol_blocks(b, block, state.symbols, frames=True)
            state = _Checkpoint(factor, symbols)
            with self._lock:
                self._remember(b + 1, state)
            regimes.append(block.regimes)
            for k, frame in enumerate(frames):
                parts[k].append(frame)
        lo, hi = first - b0 * BLOCK, end - b0 * BLOCK
        candles = {}
        for k, symbol in enumerate(self.params.symbols):
            frame = pd.DataFrame({c: np.concatenate([part[c] for part in parts[k]])[lo:hi] for c in COLUMNS})
            candles[symbol] = validate_candles(frame, f"synthetic {symbol}")[0]
        return SyntheticMarket(candles=candles, regime_codes=np.concatenate(regimes)[lo:hi])

    def checkpoints(self) -> list[int]:
        """The blocks whose starting state is kept."""
        with self._lock:
            return sorted(self._checkpoints)

    def _state_at(self, target: int) -> _Checkpoint:
        """The state at the start of block ``target``, rolled forward from the nearest checkpoint before it
        without building candles."""
        start = max(b for b in self._checkpoints if b <= target)
        state = self._checkpoints[start]
        for b in range(start, target):
            block, factor = self._factor_block(b, state.factor)
            symbols, _ = self._symbol_blocks(b, block, state.symbols, frames=False)
            state = _Checkpoint(factor, symbols)
            self._remember(b + 1, state)
        return state

    def _remember(self, block: int, state: _Checkpoint) -> None:
        self._checkpoints[block] = state
        if len(self._checkpoints) > MAX_CHECKPOINTS:
            ordered = sorted(self._checkpoints)
            keep = set(ordered[::2]) | {0, ordered[-1]}
            self._checkpoints = {b: self._checkpoints[b] for b in ordered if b in keep}

    def _draws(self, b: int) -> tuple[list[float], list[float], list[float], list[float]]:
        rng = _block_rng(self.params.seed, b, _MARKET_STREAM)
        z, u_next = rng.standard_normal(BLOCK), rng.random(BLOCK)
        u_len, u_dir = rng.random(BLOCK), rng.random(BLOCK)
        return z.tolist(), u_next.tolist(), u_len.tolist(), u_dir.tolist()

    def _factor_block(self, b: int, s: FactorState) -> tuple[_Block, FactorState]:
        """The factor over block ``b`` from the state at its start (the recursion of ``_simulate_factor``)."""
        (returns, drifts, sigmas, regimes), after = factor_steps(
            s, self._draws(b), self.base_sigma, self.params.mean_regime_candles, starts_market=b == 0)
        block = _Block(np.array(returns), np.array(drifts), np.array(sigmas), np.array(regimes, dtype=np.int8))
        return block, after

    def _symbol_blocks(self, b: int, block: _Block, states: tuple[_SymbolState, ...], frames: bool
                       ) -> tuple[tuple[_SymbolState, ...], list[dict[str, np.ndarray]]]:
        p = self.params
        factor_path = _continued_cumsum(block.returns, states[0].path if states else None)
        new_states, out = [], []
        for k, state in enumerate(states):
            noise = self._noise(b, k)
            start_price = p.start_prices[k % len(p.start_prices)]
            path, spread = self._symbol_path(k, block, factor_path, noise["z"], state)
            log_close = math.log(start_price) + path
            close = np.exp(log_close)
            if frames:
                out.append(self._candles(b, log_close, close, block.sigma, noise, start_price, state))
            new_states.append(replace(state, path=float(path[-1]), spread=spread, log_close=float(log_close[-1]),
                                      close=float(close[-1])))
        return tuple(new_states), out

    def _noise(self, b: int, k: int) -> dict[str, np.ndarray]:
        rng = _block_rng(self.params.seed, b, _SYMBOL_STREAM + k)
        z = rng.standard_normal(BLOCK)
        wick_hi = np.abs(rng.standard_normal(BLOCK))
        wick_lo = np.abs(rng.standard_normal(BLOCK))
        return {"z": z, "wick_hi": wick_hi, "wick_lo": wick_lo, "volume": rng.standard_normal(BLOCK)}

    def _symbol_path(self, k: int, block: _Block, factor_path: np.ndarray, z: np.ndarray, state: _SymbolState
                     ) -> tuple[np.ndarray, float]:
        """Symbol ``k``'s cumulative log return over the block and its spread at the end (``_symbol_log_path``)."""
        rho = self.params.correlation
        if k == 0:
            return factor_path, 0.0
        if k == 1:
            kk = math.sqrt((1.0 / (rho * rho) - 1.0) * (1.0 + _SPREAD_PHI) / 2.0)
            shocks = (kk * block.sigma * z).tolist()
            out, s = [0.0] * len(shocks), state.spread
            for t, e in enumerate(shocks):
                s = _SPREAD_PHI * s + e
                out[t] = s
            return factor_path + np.array(out), s
        factor_shock = block.returns - block.drift
        own_shock = block.sigma * z
        mixed = block.drift + rho * factor_shock + math.sqrt(1.0 - rho * rho) * own_shock
        return _continued_cumsum(mixed, state.path), 0.0

    def _candles(self, b: int, log_close: np.ndarray, close: np.ndarray, sigma: np.ndarray,
                 noise: dict[str, np.ndarray], start_price: float, state: _SymbolState) -> dict[str, np.ndarray]:
        """One block's candles (``_candles_from_path`` continued from the previous block's close)."""
        timestamps = self.params.start_ms + self.tf_ms * np.arange(b * BLOCK, (b + 1) * BLOCK, dtype=np.int64)
        prev_close = start_price if state.close is None else state.close
        prev_log = math.log(start_price) if state.log_close is None else state.log_close
        open_ = np.concatenate(([prev_close], close[:-1]))
        high = np.maximum(open_, close) * np.exp(0.5 * sigma * noise["wick_hi"])
        low = np.minimum(open_, close) * np.exp(-0.5 * sigma * noise["wick_lo"])
        move = np.abs(np.diff(np.concatenate(([prev_log], log_close))))
        volume = (1e6 / start_price) * np.exp(0.3 * noise["volume"]) * (0.5 + move / self.base_sigma)
        return {COLUMNS[0]: timestamps, "open": open_, "high": high, "low": low, "close": close, "volume": volume}


_STREAMS: OrderedDict[MarketParams, MarketStream] = OrderedDict()
_STREAMS_LOCK = threading.Lock()


def stream_for(params: MarketParams) -> MarketStream:
    """The kept stream of ``params`` (created on first use; the least recently used is dropped beyond
    :data:`MAX_STREAMS`)."""
    with _STREAMS_LOCK:
        stream = _STREAMS.pop(params, None) or MarketStream(params)
        _STREAMS[params] = stream
        while len(_STREAMS) > MAX_STREAMS:
            _STREAMS.popitem(last=False)
        return stream


def market_window(params: MarketParams, end: int, count: int) -> SyntheticMarket:
    """Candles ``[max(0, end - count), end)`` of the market of ``params``: the same values as
    ``generate_market(..., n_candles=end)`` sliced there, with memory for the window only."""
    return stream_for(params).window(end, count)


def params_from_config(cfg: Config, symbols: Sequence[str], *, timeframe: str | None = None,
                       start_ms: int | None = None) -> MarketParams:
    """The :class:`MarketParams` of the ``[synthetic]`` and ``[market]`` settings for ``symbols`` (the market's
    symbols first, as :func:`market.synthetic.synthetic_candles` places them)."""
    s = cfg.synthetic
    if start_ms is None:
        try:
            start_ms = int(parse_iso(s.start).timestamp() * 1000)
        except ValueError as exc:
            raise ConfigError(f"synthetic.start `{s.start}` is not ISO-8601 (e.g. 2024-01-01T00:00:00Z)") from exc
    market = list(cfg.market.symbols) + [x for x in dict.fromkeys(symbols) if x not in cfg.market.symbols]
    return MarketParams(tuple(market), timeframe or cfg.market.timeframe, s.seed, start_ms, tuple(s.start_prices),
                        s.correlation, s.annual_volatility, s.mean_regime_candles)


def synthetic_window(cfg: Config, symbols: Sequence[str], *, end: int, count: int) -> dict[str, pd.DataFrame]:
    """:func:`market.synthetic.synthetic_candles` of ``end`` candles, keeping only the last ``count``."""
    candles = market_window(params_from_config(cfg, symbols), end, count).candles
    return {s: candles[s] for s in symbols}
