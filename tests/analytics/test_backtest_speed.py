"""The backtest speed measurement: both rates, or the peer reported as missing."""

from __future__ import annotations

import sys

import pytest

from analytics.backtest_speed import backtest_speed


def test_backtest_speed_reports_both_rates_or_a_missing_peer(monkeypatch: pytest.MonkeyPatch) -> None:
    result = backtest_speed(2_000, repeat=1, peer_bars=300)
    assert result["bars"] == 2_000 and result["ours_bars_per_s"] > 0
    if result["peer_missing"] is None:
        assert result["peer_bars_per_s"] > 0 and result["ratio"] == result["ours_bars_per_s"] / result[
            "peer_bars_per_s"]
    monkeypatch.setitem(sys.modules, "backtesting", None)  # as without the bench extra
    missing = backtest_speed(2_000, repeat=1)
    assert missing["peer_bars_per_s"] is None and missing["ratio"] is None
    assert "backtesting.py is not installed" in missing["peer_missing"]
