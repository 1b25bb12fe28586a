"""Indicators against plain-loop references written here, hand-checked golden numbers, and no look-ahead."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import DataError
from market import indicators as ind

NAN = math.nan


# ------------------------------------------------------------------------------- references (plain loops)


def ref_sma(x: list[float], n: int) -> list[float]:
    return [NAN if i < n - 1 else sum(x[i - n + 1 : i + 1]) / n for i in range(len(x))]


def ref_smoothed(x: list[float], n: int, alpha: float) -> list[float]:
    """Seed with the mean of the first n non-NaN values, then prev + alpha * (x - prev)."""
    out = [NAN] * len(x)
    first = next((i for i, v in enumerate(x) if not math.isnan(v)), len(x))
    start = first + n - 1
    if start >= len(x):
        return out
    prev = sum(x[first : start + 1]) / n
    out[start] = prev
    for i in range(start + 1, len(x)):
        prev = prev + alpha * (x[i] - prev)
        out[i] = prev
    return out


def ref_ema(x: list[float], n: int) -> list[float]:
    return ref_smoothed(x, n, 2 / (n + 1))


def ref_rsi(close: list[float], n: int) -> list[float]:
    out = [NAN] * len(close)
    if len(close) <= n:
        return out
    gains = [max(close[i] - close[i - 1], 0.0) for i in range(1, len(close))]
    losses = [max(close[i - 1] - close[i], 0.0) for i in range(1, len(close))]
    avg_g, avg_l = sum(gains[:n]) / n, sum(losses[:n]) / n
    for i in range(n, len(close)):
        if i > n:
            avg_g = (avg_g * (n - 1) + gains[i - 1]) / n
            avg_l = (avg_l * (n - 1) + losses[i - 1]) / n
        if avg_l == 0:
            out[i] = 50.0 if avg_g == 0 else 100.0
        else:
            out[i] = 100 - 100 / (1 + avg_g / avg_l)
    return out


def ref_true_range(h: list[float], lo: list[float], c: list[float]) -> list[float]:
    return [NAN] + [max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])) for i in range(1, len(c))]


def ref_atr(h: list[float], lo: list[float], c: list[float], n: int) -> list[float]:
    tr = ref_true_range(h, lo, c)
    out = [NAN] * len(c)
    if len(c) <= n:
        return out
    prev = sum(tr[1 : n + 1]) / n
    out[n] = prev
    for i in range(n + 1, len(c)):
        prev = (prev * (n - 1) + tr[i]) / n
        out[i] = prev
    return out


def ref_adx(h: list[float], lo: list[float], c: list[float], n: int) -> tuple[list[float], list[float], list[float]]:
    m = len(c)
    tr = ref_true_range(h, lo, c)
    pdm, mdm = [NAN], [NAN]
    for i in range(1, m):
        up, down = h[i] - h[i - 1], lo[i - 1] - lo[i]
        pdm.append(up if up > down and up > 0 else 0.0)
        mdm.append(down if down > up and down > 0 else 0.0)
    s_tr, s_p, s_m = (ref_smoothed(v, n, 1 / n) for v in (tr, pdm, mdm))
    pdi = [NAN if math.isnan(t) else 100 * p / t for p, t in zip(s_p, s_tr, strict=True)]
    mdi = [NAN if math.isnan(t) else 100 * q / t for q, t in zip(s_m, s_tr, strict=True)]
    dx = []
    for p, q in zip(pdi, mdi, strict=True):
        if math.isnan(p):
            dx.append(NAN)
        else:
            dx.append(0.0 if p + q == 0 else 100 * abs(p - q) / (p + q))
    return pdi, mdi, ref_smoothed(dx, n, 1 / n)


def ref_bollinger(x: list[float], n: int, k: float) -> tuple[list[float], list[float], list[float]]:
    mid, up, low = [], [], []
    for i in range(len(x)):
        if i < n - 1:
            mid.append(NAN), up.append(NAN), low.append(NAN)
            continue
        window = x[i - n + 1 : i + 1]
        m, s = statistics.fmean(window), statistics.pstdev(window)
        mid.append(m), up.append(m + k * s), low.append(m - k * s)
    return mid, up, low


def ref_realized_vol(close: list[float], n: int) -> list[float]:
    rets = [NAN] + [math.log(close[i] / close[i - 1]) for i in range(1, len(close))]
    return [NAN if i < n else statistics.stdev(rets[i - n + 1 : i + 1]) for i in range(len(close))]


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ohlc() -> tuple[list[float], list[float], list[float]]:
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0005, 0.01, 400)))
    spread = np.abs(rng.normal(0, 0.004, 400))
    high = close * (1 + spread)
    low = close * (1 - np.abs(rng.normal(0, 0.004, 400)))
    return high.tolist(), low.tolist(), close.tolist()


def assert_close(actual: np.ndarray | pd.Series, expected: list[float], rtol: float = 1e-9) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=rtol,
                               atol=1e-9, equal_nan=True)


# ----------------------------------------------------------------------------------- against the loops


@pytest.mark.parametrize("n", [1, 5, 20])
def test_sma_and_ema_match_loops(ohlc, n):
    close = ohlc[2]
    assert_close(ind.sma(np.array(close), n), ref_sma(close, n))
    assert_close(ind.ema(np.array(close), n), ref_ema(close, n))


@pytest.mark.parametrize("n", [2, 14])
def test_rsi_matches_loop(ohlc, n):
    close = ohlc[2]
    assert_close(ind.rsi(np.array(close), n), ref_rsi(close, n))


def test_macd_matches_loop(ohlc):
    close = ohlc[2]
    fast, slow = ref_ema(close, 12), ref_ema(close, 26)
    line = [f - s for f, s in zip(fast, slow, strict=True)]
    signal = ref_smoothed(line, 9, 2 / 10)
    result = ind.macd(np.array(close))
    assert_close(result.line, line)
    assert_close(result.signal, signal)
    assert_close(result.histogram, [a - b for a, b in zip(line, signal, strict=True)])
    assert np.isnan(result.signal[32]) and not np.isnan(result.signal[33])


def test_bollinger_matches_loop(ohlc):
    close = ohlc[2]
    mid, up, low = ref_bollinger(close, 20, 2.0)
    bands = ind.bollinger_bands(np.array(close), 20, 2.0)
    assert_close(bands.middle, mid)
    assert_close(bands.upper, up, rtol=1e-8)
    assert_close(bands.lower, low, rtol=1e-8)
    width = [(u - lo) / m for u, lo, m in zip(up, low, mid, strict=True)]
    pct_b = [(c - lo) / (u - lo) for c, u, lo in zip(close, up, low, strict=True)]
    assert_close(bands.width, width, rtol=1e-6)
    assert_close(bands.percent_b, pct_b, rtol=1e-6)


@pytest.mark.parametrize("n", [3, 14])
def test_atr_and_adx_match_loops(ohlc, n):
    h, lo, c = ohlc
    assert_close(ind.true_range(np.array(h), np.array(lo), np.array(c)), ref_true_range(h, lo, c))
    assert_close(ind.atr(np.array(h), np.array(lo), np.array(c), n), ref_atr(h, lo, c, n))
    pdi, mdi, adx = ref_adx(h, lo, c, n)
    dm = ind.directional_movement(np.array(h), np.array(lo), np.array(c), n)
    assert_close(dm.plus_di, pdi)
    assert_close(dm.minus_di, mdi)
    assert_close(dm.adx, adx)
    assert_close(ind.adx(np.array(h), np.array(lo), np.array(c), n), adx)
    assert np.isnan(dm.adx[2 * n - 2]) and not np.isnan(dm.adx[2 * n - 1])


def test_realized_volatility_matches_loop_and_annualizes(ohlc):
    close = ohlc[2]
    expected = ref_realized_vol(close, 24)
    assert_close(ind.realized_volatility(np.array(close), 24), expected)
    annual = ind.realized_volatility(np.array(close), 24, periods_per_year=8760)
    assert_close(annual, [v * math.sqrt(8760) for v in expected])


def test_ewma_volatility_matches_loop(ohlc):
    close = ohlc[2]
    rets = [math.log(close[i] / close[i - 1]) for i in range(1, len(close))]
    var = ref_smoothed([NAN] + [r * r for r in rets], 10, 2 / 11)
    assert_close(ind.ewma_volatility(np.array(close), 10), [math.sqrt(v) for v in var])
    assert np.isnan(ind.ewma_volatility(np.array(close), 10)[9])


def test_donchian_and_zscore_match_loops(ohlc):
    h, lo, c = ohlc
    upper, lower = ind.donchian_channel(np.array(h), np.array(lo), 10)
    assert_close(upper, [NAN if i < 9 else max(h[i - 9 : i + 1]) for i in range(len(h))])
    assert_close(lower, [NAN if i < 9 else min(lo[i - 9 : i + 1]) for i in range(len(lo))])
    z = [NAN if i < 29 else (c[i] - statistics.fmean(c[i - 29 : i + 1])) / statistics.stdev(c[i - 29 : i + 1])
         for i in range(len(c))]
    assert_close(ind.rolling_zscore(np.array(c), 30), z, rtol=1e-7)


# ------------------------------------------------------------------------------------ golden numbers


def test_golden_sma_ema():
    x = np.array([2.0, 4.0, 6.0, 8.0, 12.0])
    # SMA(3): (2+4+6)/3 = 4, (4+6+8)/3 = 6, (6+8+12)/3 = 8.667
    assert_close(ind.sma(x, 3), [NAN, NAN, 4.0, 6.0, 26 / 3])
    # EMA(3): alpha 0.5, seed 4; 4 + 0.5*(8-4) = 6; 6 + 0.5*(12-6) = 9
    assert_close(ind.ema(x, 3), [NAN, NAN, 4.0, 6.0, 9.0])


def test_golden_rsi():
    close = np.array([1.0, 2.0, 3.0, 2.0, 3.0, 4.0])
    # changes +1 +1 -1 +1 +1. index 3: gain 2/3, loss 1/3, RS 2 -> 66.667
    # index 4: gain (2/3*2 + 1)/3 = 7/9, loss (1/3*2)/3 = 2/9, RS 3.5 -> 77.778
    # index 5: gain (7/9*2 + 1)/3 = 23/27, loss (2/9*2)/3 = 4/27, RS 5.75 -> 85.185
    assert_close(ind.rsi(close, 3), [NAN, NAN, NAN, 100 - 100 / 3, 100 - 100 / 4.5, 100 - 100 / 6.75])


def test_rsi_edge_cases():
    assert_close(ind.rsi(np.arange(1.0, 21.0), 14)[14:], [100.0] * 6)
    assert_close(ind.rsi(np.full(20, 5.0), 14)[14:], [50.0] * 6)
    assert_close(ind.rsi(np.arange(20.0, 0.0, -1.0), 14)[14:], [0.0] * 6)


def test_golden_bollinger_and_volatility():
    bands = ind.bollinger_bands(np.array([1.0, 2.0, 3.0]), 3, 2.0)
    # mean 2, population std sqrt(2/3) = 0.81650
    assert bands.middle[2] == pytest.approx(2.0)
    assert bands.upper[2] == pytest.approx(2 + 2 * 0.816496580927726)
    assert bands.lower[2] == pytest.approx(2 - 2 * 0.816496580927726)
    # log returns ln(1.1) = 0.0953102, ln(0.9) = -0.1053605; sample std of two = |a - b| / sqrt(2) = 0.2006707 / 1.4142136 = 0.1418956
    vol = ind.realized_volatility(np.array([100.0, 110.0, 99.0]), 2)
    assert np.isnan(vol[1]) and vol[2] == pytest.approx(0.1418956, rel=1e-6)


def test_golden_adx_on_a_staircase():
    # high = i + 1, low = i, close = i + 0.5: +DM = 1 and -DM = 0 every candle, TR = 1.5
    i = np.arange(40.0)
    dm = ind.directional_movement(i + 1, i, i + 0.5, 5)
    assert dm.plus_di[5:] == pytest.approx(np.full(35, 100 / 1.5))
    assert dm.minus_di[5:] == pytest.approx(np.zeros(35))
    assert dm.adx[9:] == pytest.approx(np.full(31, 100.0))
    assert ind.atr(i + 1, i, i + 0.5, 5)[5:] == pytest.approx(np.full(35, 1.5))


# --------------------------------------------------------------------------- shapes, types, bad input


def test_series_in_series_out_and_warmup_lengths():
    s = pd.Series(np.linspace(10, 20, 50), index=pd.RangeIndex(100, 150))
    out = ind.sma(s, 10)
    assert isinstance(out, pd.Series) and out.index.equals(s.index)
    assert out.isna().sum() == 9
    assert int(np.isnan(ind.rsi(s.to_numpy(), 14)).sum()) == 14
    assert int(np.isnan(ind.atr(s.to_numpy(), s.to_numpy(), s.to_numpy(), 14)).sum()) == 14
    assert isinstance(ind.macd(s).line, pd.Series)


def test_short_inputs_are_all_nan():
    x = np.array([1.0, 2.0, 3.0])
    for values in (ind.sma(x, 5), ind.ema(x, 5), ind.rsi(x, 5), ind.realized_volatility(x, 5)):
        assert np.isnan(values).all() and len(values) == 3
    assert len(ind.ema(np.array([]), 3)) == 0


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_period_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="period must be a positive integer"):
        ind.sma(np.ones(5), bad)


def test_other_bad_arguments():
    with pytest.raises(ValueError, match="shorter than the slow"):
        ind.macd(np.ones(50), 26, 12)
    with pytest.raises(ValueError, match="look ahead"):
        ind.shift(np.ones(5), -1)
    with pytest.raises(ValueError, match="1-D"):
        ind.sma(np.ones((3, 3)), 2)


def test_check_candle_frame_names_the_problem():
    good = pd.DataFrame({c: [1.0, 2.0] for c in ind.CANDLE_COLUMNS})
    ind.check_candle_frame(good, "x")
    with pytest.raises(DataError, match="BTC: candle column\\(s\\) volume missing"):
        ind.check_candle_frame(good.drop(columns="volume"), "BTC")
    with pytest.raises(DataError, match="strictly ascending"):
        ind.check_candle_frame(good.iloc[::-1], "BTC")


def test_chained_indicators_skip_leading_nans():
    x = np.r_[np.full(5, np.nan), np.arange(1.0, 11.0)]
    assert_close(ind.ema(x, 3), [NAN] * 7 + ref_ema(list(np.arange(1.0, 11.0)), 3)[2:])


# ------------------------------------------------------------------------------------------ no look-ahead


def _all_indicators(h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> list[np.ndarray]:
    return [
        ind.sma(c, 5), ind.ema(c, 5), ind.wilder_smoothing(c, 4), ind.rsi(c, 6), *ind.macd(c, 3, 7, 4),
        *ind.bollinger_bands(c, 6, 2.0), ind.true_range(h, lo, c), ind.atr(h, lo, c, 5),
        *ind.directional_movement(h, lo, c, 4), ind.realized_volatility(c, 5), ind.ewma_volatility(c, 5), ind.log_returns(c),
        *ind.donchian_channel(h, lo, 5), ind.rolling_zscore(c, 6), ind.shift(c, 2),
    ]


@settings(max_examples=60, deadline=None)
@given(
    closes=st.lists(st.floats(1.0, 1000.0, allow_nan=False), min_size=2, max_size=120),
    spreads=st.lists(st.floats(0.0, 0.05), min_size=120, max_size=120),
    data=st.data(),
)
def test_appending_future_data_never_changes_the_past(closes, spreads, data):
    c = np.array(closes)
    h = c * (1 + np.array(spreads[: len(c)]))
    lo = c * (1 - np.array(spreads[: len(c)]) / 2)
    cut = data.draw(st.integers(1, len(c)))
    full = _all_indicators(h, lo, c)
    prefix = _all_indicators(h[:cut], lo[:cut], c[:cut])
    for whole, part in zip(full, prefix, strict=True):
        np.testing.assert_array_equal(np.asarray(whole)[:cut], np.asarray(part))
