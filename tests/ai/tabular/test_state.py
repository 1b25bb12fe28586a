"""The state features: bins at their edges and the account state after each prefix of trades."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ai.tabular.state import (
    FEATURES,
    WARMUP_CANDLES,
    MarketStates,
    SymbolMarket,
    account_states,
    bin_drawdown,
    bin_rsi,
    bin_trend,
    bin_win_rate,
)
from core.config import Config
from market.sources import load_candles


def test_bins_at_their_edges() -> None:
    trend = bin_trend(np.array([-0.61, -0.6, -0.21, -0.2, 0.2, 0.21, 0.6, 0.61, np.nan]))
    assert list(trend) == ["strong_down", "down", "down", "flat", "flat", "up", "up", "strong_up", "flat"]
    rsi = bin_rsi(np.array([29.9, 30, 45, 55, 55.1, 70, 70.1, np.nan]))
    assert list(rsi) == ["oversold", "weak", "neutral", "neutral", "strong", "strong", "overbought", "neutral"]
    assert list(bin_drawdown(np.array([0.0, 0.005, 0.02, 0.05]))) == ["none", "small", "medium", "large"]
    assert list(bin_win_rate(np.array([0.39, 0.4, 0.6, 0.61, np.nan]))) == ["low", "mid", "mid", "high", "mid"]
    assert len(FEATURES) == 11
    assert math.prod(len(bins) for _, bins in FEATURES) == 874_800


def test_account_states_after_each_prefix_by_hand() -> None:
    trades = pd.DataFrame({
        "closed_at": pd.to_datetime(["2024-01-01T01:00Z", "2024-01-01T02:00Z", "2024-01-01T03:00Z",
                                     "2024-01-01T04:00Z"], utc=True),
        "pnl_pct": [0.01, -0.004, -0.01, -0.002],
        "equity_after": [101.0, 99.0, 98.0, 97.0],
    })
    acc = account_states(trades, recent=2)
    assert acc.bins(0) == ("none", "mid", "flat", "0")
    assert acc.bins(1) == ("none", "high", "winning", "0")  # 1 of 1 won, mean +1 %
    assert acc.bins(2) == ("small", "mid", "winning", "1-2")  # 1 - 99/101 = 1.98 %; 1 of 2; mean +0.3 %
    assert acc.bins(4) == ("medium", "low", "losing", "3+")  # 1 - 97/101 = 3.96 %; mean -0.6 %
    assert acc.known_at(int(pd.Timestamp("2024-01-01T02:00Z").value // 1_000_000)) == 2


def test_a_market_built_from_the_warm_up_on_has_the_bins_of_the_whole_market(cfg: Config) -> None:
    tf_ms = 3_600_000
    frame = load_candles(cfg, ["BTC/USDT"], limit=6000)["BTC/USDT"]
    whole = SymbolMarket.from_candles(frame, cfg, tf_ms)
    earliest = int(whole.close_ms[4000])
    part = SymbolMarket.from_candles(frame, cfg, tf_ms, earliest)
    assert len(part.close_ms) == 2000 + WARMUP_CANDLES and part.trimmed_before_ms == earliest
    assert part.origin_ms == int(whole.close_ms[0])
    cut = len(whole.close_ms) - len(part.close_ms) + WARMUP_CANDLES
    assert part.bins[WARMUP_CANDLES:] == whole.bins[cut:]
    assert np.array_equal(part.atr[WARMUP_CANDLES:], whole.atr[cut:])  # bit for bit


def test_a_state_asked_before_the_announced_time_uses_the_whole_market(cfg: Config) -> None:
    markets = MarketStates(cfg, earliest_ms=None)
    whole = markets.market_bins("BTC/USDT", 1_704_067_200_000 + 100 * 3_600_000)
    late = MarketStates(cfg, earliest_ms=1_704_067_200_000 + 4000 * 3_600_000)
    assert late.market_bins("BTC/USDT", 1_704_067_200_000 + 100 * 3_600_000)[:1] == whole[:1]
    assert late.candles_held() == markets.candles_held()


def test_a_late_pass_generates_only_the_end_of_a_long_synthetic_market(cfg: Config) -> None:
    hour = 3_600_000
    origin = int(load_candles(cfg, ["BTC/USDT"], limit=1)["BTC/USDT"]["timestamp"].iloc[0]) + hour
    # A replay far past the configured market: a pass over its late trades from candle 9,000 to 11,000.
    earliest, late = origin + 9000 * hour, origin + 11_000 * hour
    asked: list[tuple[dict[str, int], int]] = []

    def spy(cfg: Config, symbols: list[str], **kw: int) -> dict[str, pd.DataFrame]:
        frames = load_candles(cfg, symbols, **kw)
        asked.append((kw, len(frames[symbols[0]])))
        return frames

    part = MarketStates(cfg, spy, earliest_ms=earliest)
    whole = MarketStates(cfg, earliest_ms=None)
    for t in (earliest, earliest + 700 * hour, late):
        got, want = part.market_bins("BTC/USDT", t), whole.market_bins("BTC/USDT", t)
        assert not isinstance(got, str) and not isinstance(want, str)
        assert got[0] == want[0]
        assert got[1].atr[got[2]] == want[1].atr[want[2]]  # bit for bit
    extension = asked[-1]
    assert "keep_last" in extension[0] and extension[1] == extension[0]["keep_last"]
    assert extension[1] <= (late - earliest) // hour + WARMUP_CANDLES + 600  # not the 11,000 candles before
    assert part.candles_held()["BTC/USDT"] < whole.candles_held()["BTC/USDT"] // 2
