"""Helpers shared by the Q-learning tests, given as fixtures: ISO times, trade rows on the seeded market, and
a config with changed ``[qlearning]`` values."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import pytest

from core.config import STRATEGIES, Config, replace_section
from market.sources import load_candles

TF_MS = 3_600_000
SYMBOL = "BTC/USDT"

Iso = Callable[[int], str]
TradeRows = Callable[..., list[dict[str, object]]]
SmallCfg = Callable[..., Config]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _trade_rows(cfg: Config, starts: list[int], hold: int, pnl: Callable[[int, str], float],
                strategies: tuple[str, ...] = STRATEGIES) -> list[dict[str, object]]:
    """Trades of ``strategies`` opened at the close of candle k (for k in ``starts``), closed ``hold`` later."""
    candles = load_candles(cfg)[SYMBOL]
    ts, close = candles["timestamp"].to_numpy(), candles["close"].to_numpy()
    rows = []
    for k in starts:
        for strategy in strategies:
            rows.append({
                "closed_at": _iso(int(ts[k + hold]) + TF_MS), "opened_at": _iso(int(ts[k]) + TF_MS),
                "symbol": SYMBOL, "strategy": strategy, "side": "long", "qty": 0.01,
                "entry_price": float(close[k]), "exit_price": float(close[k + hold]), "pnl": 1.0,
                "pnl_pct": pnl(k, strategy), "fees": 0.0, "equity_after": 10_000.0,
            })
    return rows


def _small_cfg(cfg: Config, **changes: object) -> Config:
    return replace_section(cfg, "qlearning", **changes)


@pytest.fixture
def iso() -> Iso:
    """Milliseconds since the epoch as ISO-8601 UTC, as the history writes times."""
    return _iso


@pytest.fixture
def trade_rows() -> TradeRows:
    """``trade_rows(cfg, starts, hold, pnl, strategies=STRATEGIES)``: history rows on the configured market."""
    return _trade_rows


@pytest.fixture
def small_cfg() -> SmallCfg:
    """``small_cfg(cfg, **changes)``: ``cfg`` with changed ``[qlearning]`` values."""
    return _small_cfg
