"""Planted trade histories: the 8 strategies' closed trades with known, regime-dependent edges, plus candles.

A known answer for the strategy-weight agent. The candles are the seeded synthetic market of
:mod:`market.synthetic`, whose regimes (trending, ranging, breakout, mean reverting) show in the candles'
trend and volatility. Each strategy closes trades at random times (a Poisson process, ``trades_per_day`` on
average); a trade's ``pnl_pct`` is its strategy's *edge* in the regime of the candle it closes in, plus
Gaussian noise of ``trade_noise``. The edges are :data:`REGIME_EDGES` times ``edge``:

- trend followers (turtle, SMA crossover, breakout, MACD) earn in trending and breakout stretches and lose in
  ranging and mean-reverting ones;
- mean-reversion strategies (RSI, Bollinger bands, pairs, VIX) do the opposite.

With ``edge = 0`` the history has no edge at all (random ``pnl_pct``): nothing an agent could learn.

:meth:`PlantedHistory.expected_returns` gives, for any grid of periods, each strategy's expected return in
each period (the sum of its expected ``pnl_pct`` there): what the regime-aware oracle allocation of
:mod:`analytics.oracle` knows and no agent can.

    planted = planted_history(days=365, seed=0)
    planted.trades                    # a frame with the columns of state/pnl_history.csv
    planted.candles["BTC/USDT"]       # the primary symbol's hourly candles
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.config import STRATEGIES
from core.contracts.pnl_history import COLUMNS
from core.errors import ConfigError
from market.synthetic import REGIMES, generate_market

REGIME_EDGES: dict[str, tuple[float, ...]] = {
    # turtle  rsi   sma   breakout pairs macd  bollinger vix   (order of core.config.STRATEGIES)
    "trending":       (1.0, -1.0, 1.0, 0.5, -0.5, 1.0, -1.0, -0.5),
    "ranging":        (-1.0, 1.0, -1.0, -0.5, 0.5, -1.0, 1.0, 0.5),
    "breakout":       (1.0, -1.0, 0.5, 1.0, -0.5, 0.5, -1.0, -0.5),
    "mean_reverting": (-1.0, 1.0, -1.0, -1.0, 1.0, -1.0, 1.0, 0.5),
}
"""Each strategy's edge per trade in each regime, in units of ``edge``."""
SYMBOLS: tuple[str, str] = ("BTC/USDT", "ETH/USDT")
HOUR_MS = 3_600_000
_TRADE_STREAM = 7919
"""Seed offset of the trades' generator, so the trades never reuse the candles' random numbers."""


@dataclass(frozen=True)
class PlantedHistory:
    """Trades with planted edges, the candles they were planted on, and each candle's expected edges."""

    trades: pd.DataFrame
    """Closed trades in the columns of ``state/pnl_history.csv``, sorted by ``closed_at``."""
    candles: dict[str, pd.DataFrame]
    regime_codes: np.ndarray
    """Index into :data:`market.synthetic.REGIMES` per candle."""
    hourly_edges: np.ndarray
    """``(n_candles, 8)``: each strategy's expected ``pnl_pct`` summed over the trades closing in the candle."""
    close_ms: np.ndarray
    """Close time of every candle (its open time plus one hour)."""

    def expected_returns(self, boundaries_ms: np.ndarray) -> np.ndarray:
        """``(n, 8)``: each strategy's expected return in period ``(t_k, t_{k+1}]`` for boundaries ``t_0..t_n``.

        A trade closing in candle ``i`` closes at a random time within it; it counts in the period holding
        the candle's close (boundaries on whole hours make this exact).
        """
        b = np.asarray(boundaries_ms, dtype=np.int64)
        cumulative = np.vstack([np.zeros((1, len(STRATEGIES))), np.cumsum(self.hourly_edges, axis=0)])
        idx = np.searchsorted(self.close_ms, b, side="right")  # candles closed at or before each boundary
        totals: np.ndarray = cumulative[idx]
        return np.diff(totals, axis=0)


def planted_history(
    *, days: int = 365, seed: int = 0, edge: float = 0.004, trade_noise: float = 0.01,
    trades_per_day: float = 4.0, mean_regime_candles: int = 240, start_ms: int = 1_704_067_200_000,
) -> PlantedHistory:
    """A seeded planted history of ``days`` days of hourly candles and trades (see the module docstring)."""
    if days < 2:
        raise ConfigError(f"a planted history needs at least 2 days, got {days}")
    if edge < 0 or trade_noise < 0 or trades_per_day <= 0:
        raise ConfigError(f"edge ({edge}) and trade_noise ({trade_noise}) must be >= 0 and trades_per_day "
                          f"({trades_per_day}) > 0")
    n = days * 24
    market = generate_market(list(SYMBOLS), n, seed=seed, start_ms=start_ms, mean_regime_candles=mean_regime_candles)
    table = np.array([REGIME_EDGES[name] for name in REGIMES]) * edge
    per_trade = table[market.regime_codes.astype(np.int64)]
    rate = trades_per_day / 24.0
    close_ms = market.candles[SYMBOLS[0]]["timestamp"].to_numpy(np.int64) + HOUR_MS
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _TRADE_STREAM])
    trades = _trades(rng, per_trade, rate, trade_noise, close_ms, market.candles[SYMBOLS[0]])
    return PlantedHistory(trades, market.candles, market.regime_codes, per_trade * rate, close_ms)


def _trades(rng: np.random.Generator, per_trade: np.ndarray, rate: float, noise: float, close_ms: np.ndarray,
            candles: pd.DataFrame) -> pd.DataFrame:
    """Poisson many trades per candle and strategy; each closes at a random instant inside its candle."""
    counts = rng.poisson(rate, size=per_trade.shape)
    candle, strategy = np.nonzero(counts)
    repeat = counts[candle, strategy]
    candle, strategy = np.repeat(candle, repeat), np.repeat(strategy, repeat)
    pnl_pct = per_trade[candle, strategy] + noise * rng.standard_normal(len(candle))
    closed = close_ms[candle] - rng.integers(0, HOUR_MS, len(candle))
    held_h = 1 + rng.integers(0, 24, len(candle))
    side = np.where(rng.random(len(candle)) < 0.5, "long", "short")
    entry = candles["close"].to_numpy(np.float64)[candle]
    direction = np.where(side == "long", 1.0, -1.0)
    qty = 100.0 / entry
    frame = pd.DataFrame({
        "closed_at": pd.to_datetime(closed, unit="ms", utc=True),
        "opened_at": pd.to_datetime(closed - held_h * HOUR_MS, unit="ms", utc=True),
        "symbol": SYMBOLS[0],
        "strategy": np.asarray(STRATEGIES, dtype=object)[strategy],
        "side": side,
        "qty": qty,
        "entry_price": entry,
        "exit_price": entry * (1.0 + direction * pnl_pct),
        "pnl": 100.0 * pnl_pct,
        "pnl_pct": pnl_pct,
        "fees": np.zeros(len(candle)),
    })
    frame = frame.sort_values("closed_at", kind="stable").reset_index(drop=True)
    frame["equity_after"] = 10_000.0 + frame["pnl"].cumsum()
    return frame[list(COLUMNS)]
