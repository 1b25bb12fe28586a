"""The state features: bins at their edges and the account state after each prefix of trades."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ai.tabular.state import FEATURES, account_states, bin_drawdown, bin_rsi, bin_trend, bin_win_rate


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
