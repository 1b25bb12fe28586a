"""The candle feeds: targets aligned on the primary symbol's candles, and one exchange client for live polls."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents.trader_feed import LiveFeed, StrategySignals, build_window
from core.config import config_from_dict
from core.errors import FatalError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "market"))
from fake_binance import HOUR_MS, FakeBinance  # noqa: E402 - the exchange stand-in of the candle tests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trader_fixtures import HOUR, T0  # noqa: E402


def test_build_window_aligns_cleans_and_checks_targets() -> None:
    frames = {"BTC/USDT": pd.DataFrame({"timestamp": [T0, T0 + HOUR, T0 + 2 * HOUR], "close": [1.0, 2.0, 3.0]})}

    class Source:
        books = ("a", "b")

        def targets(self, frames, primary):  # type: ignore[no-untyped-def]
            return pd.DataFrame({"timestamp": [T0 + 2 * HOUR, T0], "a": [3.0, np.nan], "b": [-0.5, 1.0]})

    window = build_window(frames, "BTC/USDT", [Source()])
    assert window.books == ("a", "b")
    assert window.targets.tolist() == [[0.0, 1.0], [0.0, 0.0], [1.0, -0.5]]  # NaN and missing flat, 3 clipped
    assert window.after(T0).timestamps.tolist() == [T0 + HOUR, T0 + 2 * HOUR]
    assert len(window.after(T0 + 2 * HOUR)) == 0

    class Broken(Source):
        books = ("a", "c")

    with pytest.raises(FatalError, match="lack column `c`"):
        build_window(frames, "BTC/USDT", [Broken()])

def test_live_polls_reuse_one_exchange_client(rl_home: Path) -> None:
    # Binance's market list is a heavy request: a live trader loads it once, not at every poll.
    listed = (int(time.time() * 1000) - 20 * 86_400_000) // HOUR_MS * HOUR_MS
    with FakeBinance(lambda: int(time.time() * 1000), listed_from_ms=listed) as exchange:
        live = config_from_dict({"market": {"data_source": "ccxt"}, "trader": {"live_history_candles": 50},
                                 "exchange": {"url": exchange.url, "history_candles": 100, "backoff_s": 0.01}})
        feed_ = LiveFeed(live, [StrategySignals(live)])
        for _ in range(3):
            feed_.candles_after(None)
            for cached in (rl_home / "state" / "candles").rglob("*.csv"):
                cached.unlink()  # so every poll really asks the exchange
        assert len(exchange.klines_requests()) >= 3 * len(live.market.symbols)
        assert exchange.count("/api/v3/exchangeInfo") == 1
