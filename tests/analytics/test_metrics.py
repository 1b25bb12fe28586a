"""Metrics on small fixed series whose values are worked out by hand below."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analytics import metrics as m

# Five periods: +10 %, -5 %, +2 %, -10 %, +5 %.
R = [0.10, -0.05, 0.02, -0.10, 0.05]
# equity: 1.1, 1.1*0.95 = 1.045, *1.02 = 1.0659, *0.9 = 0.95931, *1.05 = 1.0072755
EQUITY = [1.1, 1.045, 1.0659, 0.95931, 1.0072755]
TOTAL = 0.0072755
# mean = 0.02 / 5 = 0.004; deviations 0.096 -0.054 0.016 -0.104 0.046;
# squares 0.009216 + 0.002916 + 0.000256 + 0.010816 + 0.002116 = 0.02532; / (5 - 1) = 0.00633
MEAN = 0.004
STD = math.sqrt(0.00633)  # 0.0795613
# downside: min(r, 0) = 0 -0.05 0 -0.10 0 -> squares 0.0025 + 0.01 = 0.0125, / 5 = 0.0025, sqrt -> 0.05
DOWNSIDE = 0.05
# deepest point 0.95931 under the 1.1 peak
MDD = 0.95931 / 1.1 - 1  # -0.1279


def test_total_return_and_equity_curve():
    assert m.total_return(R) == pytest.approx(TOTAL)
    np.testing.assert_allclose(m.equity_curve(R), EQUITY)
    np.testing.assert_allclose(m.equity_curve(R, start=100.0), [100 * e for e in EQUITY])


def test_sharpe_ratio_golden():
    assert m.sharpe_ratio(R, 252) == pytest.approx(MEAN / STD * math.sqrt(252))  # 0.79811
    assert m.sharpe_ratio(R, 252) == pytest.approx(0.79811, abs=1e-5)
    assert m.sharpe_ratio(R, 1) == pytest.approx(MEAN / STD)


def test_sharpe_ratio_with_risk_free_rate():
    # 5 % a year over 12 periods: (1.05) ** (1/12) - 1 = 0.0040741 per period
    rf = 1.05 ** (1 / 12) - 1
    assert m.per_period_rate(0.05, 12) == pytest.approx(0.0040741, abs=1e-7)
    assert m.sharpe_ratio(R, 12, risk_free=0.05) == pytest.approx((MEAN - rf) / STD * math.sqrt(12))


def test_sortino_ratio_golden():
    assert m.downside_deviation(R) == pytest.approx(DOWNSIDE)
    assert m.sortino_ratio(R, 252) == pytest.approx(MEAN / DOWNSIDE * math.sqrt(252))  # 1.26996
    assert m.sortino_ratio(R, 252) == pytest.approx(1.26996, abs=1e-5)


def test_drawdowns_golden():
    peak = [1.1, 1.1, 1.1, 1.1, 1.1]
    np.testing.assert_allclose(m.drawdown_series(R), [e / p - 1 for e, p in zip(EQUITY, peak, strict=True)])
    assert m.max_drawdown(R) == pytest.approx(MDD)
    assert m.max_drawdown(R) == pytest.approx(-0.12790, abs=1e-5)
    # the starting equity of 1 is the first peak: a first-period loss is a drawdown
    assert m.max_drawdown([-0.05, 0.10]) == pytest.approx(-0.05)
    assert m.max_drawdown([0.01, 0.02]) == 0.0


def test_annual_volatility_cagr_calmar_golden():
    assert m.annual_volatility(R, 252) == pytest.approx(STD * math.sqrt(252))
    # five periods are one year when periods_per_year = 5: CAGR = total return
    assert m.cagr(R, 5) == pytest.approx(TOTAL)
    # ... and half a year when it is 10: (1.0072755) ** 2 - 1
    assert m.cagr(R, 10) == pytest.approx(1.0072755**2 - 1)
    assert m.calmar_ratio(R, 5) == pytest.approx(TOTAL / abs(MDD))  # 0.0569


def test_win_rate():
    assert m.win_rate([10.0, -5.0, 0.0, 3.0]) == 0.5  # a break-even trade is not a win
    assert m.win_rate([1.0, np.nan, -1.0]) == 0.5
    assert m.win_rate(np.array([2.0, 3.0])) == 1.0


def test_nans_inside_are_dropped():
    with_gaps = [0.10, np.nan, -0.05, 0.02, np.nan, -0.10, 0.05, np.inf]
    for func in (m.sharpe_ratio, m.sortino_ratio, m.annual_volatility, m.calmar_ratio, m.cagr):
        assert func(with_gaps, 252) == pytest.approx(func(R, 252))
    assert m.total_return(with_gaps) == pytest.approx(TOTAL)
    assert m.max_drawdown(with_gaps) == pytest.approx(MDD)


@pytest.mark.parametrize("empty", [[], [np.nan, np.nan], np.array([]), pd.Series([], dtype=float)])
def test_empty_or_all_nan_gives_nan(empty):
    for value in (
        m.total_return(empty), m.sharpe_ratio(empty, 252), m.sortino_ratio(empty, 252), m.max_drawdown(empty),
        m.annual_volatility(empty, 252), m.calmar_ratio(empty, 252), m.cagr(empty, 252), m.win_rate(empty),
        m.downside_deviation(empty),
    ):
        assert math.isnan(value)
    assert m.equity_curve(empty).size == 0 and m.drawdown_series(empty).size == 0


def test_undefined_ratios_are_nan():
    flat = [0.01] * 10
    assert math.isnan(m.sharpe_ratio(flat, 252))  # zero variance
    assert math.isnan(m.sharpe_ratio([0.03], 252))  # one value has no sample std
    assert math.isnan(m.annual_volatility([0.03], 252))
    assert math.isnan(m.sortino_ratio([0.01, 0.02, 0.03], 252))  # no period below the target
    assert math.isnan(m.calmar_ratio([0.01, 0.02], 252))  # no drawdown
    # three equal values of 0.1 have a float mean that differs from 0.1 in the last bit: still zero variance
    assert math.isnan(m.sharpe_ratio([0.1, 0.1, 0.1], 252))


def test_wiped_out_equity():
    assert m.total_return([-1.0, 0.5]) == -1.0
    assert m.cagr([-1.0, 0.5], 252) == -1.0
    assert m.max_drawdown([0.5, -1.0]) == -1.0


def test_series_and_array_inputs_agree():
    series = pd.Series(R, index=pd.date_range("2024-01-01", periods=5, freq="D"))
    assert m.sharpe_ratio(series, 365) == m.sharpe_ratio(np.array(R), 365) == m.sharpe_ratio(R, 365)
    assert m.max_drawdown(series) == m.max_drawdown(np.array(R))
    assert m.total_return(iter(R)) == pytest.approx(TOTAL)


@pytest.mark.parametrize(
    ("timeframe", "calendar", "expected"),
    [
        ("1h", "crypto", 8760), ("1d", "crypto", 365), ("15m", "crypto", 35_040), ("4h", "crypto", 2190),
        ("1m", "crypto", 525_600), ("1w", "crypto", 365 / 7), ("1M", "crypto", 12),
        ("1d", "equity", 252), ("1h", "equity", 1638), ("30m", "equity", 3276), ("1w", "equity", 52),
        ("1M", "equity", 12), ("1y", "equity", 1),
    ],
)
def test_periods_per_year_for(timeframe, calendar, expected):
    assert m.periods_per_year_for(timeframe, calendar) == pytest.approx(expected)


@pytest.mark.parametrize(("timeframe", "calendar"), [("1x", "crypto"), ("h", "crypto"), ("0h", "crypto"),
                                                     ("1h", "forex")])
def test_periods_per_year_for_rejects_unknown_input(timeframe, calendar):
    with pytest.raises(ValueError, match="unknown"):
        m.periods_per_year_for(timeframe, calendar)


def test_summarize():
    s = m.summarize(R, 5, trade_pnls=[1.0, -1.0, 2.0])
    assert s["periods"] == 5
    assert s["total_return"] == pytest.approx(TOTAL)
    assert s["sharpe_ratio"] == pytest.approx(MEAN / STD * math.sqrt(5))
    assert s["max_drawdown"] == pytest.approx(MDD)
    assert s["win_rate"] == pytest.approx(2 / 3)
    assert "win_rate" not in m.summarize(R, 5)
