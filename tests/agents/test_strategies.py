"""The 8 strategies: range, no look-ahead, alignment, determinism, and each rule on a hand-built price path."""

from __future__ import annotations

import dataclasses
import inspect
import math
import statistics

import numpy as np
import pandas as pd
import pytest

from agents import strategies as st
from core.config import STRATEGIES, StrategiesConfig, config_from_dict
from core.errors import ConfigError, DataError

HOUR_MS = 3_600_000


def candles(close: np.ndarray, high: np.ndarray | None = None, low: np.ndarray | None = None,
            start_ms: int = 0) -> pd.DataFrame:
    close = np.asarray(close, dtype=float)
    open_ = np.r_[close[0], close[:-1]]
    return pd.DataFrame({
        "timestamp": start_ms + np.arange(len(close), dtype=np.int64) * HOUR_MS,
        "open": open_,
        "high": np.maximum(open_, close) if high is None else high,
        "low": np.minimum(open_, close) if low is None else low,
        "close": close,
        "volume": np.full(len(close), 10.0),
    })


def trending_market(n: int, seed: int) -> dict[str, pd.DataFrame]:
    """Two correlated random walks whose drift and volatility change every 100 candles."""
    rng = np.random.default_rng(seed)
    drift = np.repeat(rng.choice([-0.003, 0.0, 0.003], n // 100 + 1), 100)[:n]
    vol = np.repeat(rng.choice([0.004, 0.01, 0.025], n // 100 + 1), 100)[:n]
    common = rng.standard_normal(n)
    frames = {}
    for symbol, p0, own in (("BTC/USDT", 40_000.0, 0.0), ("ETH/USDT", 2_500.0, 0.6)):
        shocks = drift + vol * (math.sqrt(1 - own**2) * common + own * rng.standard_normal(n))
        close = p0 * np.exp(np.cumsum(shocks))
        frame = candles(close)
        frame["high"] *= 1 + np.abs(rng.normal(0, 0.002, n))
        frame["low"] *= 1 - np.abs(rng.normal(0, 0.002, n))
        frames[symbol] = frame
    return frames


@pytest.fixture(scope="module")
def market() -> dict[str, pd.DataFrame]:
    return trending_market(1800, seed=21)


def positions(frames: dict[str, pd.DataFrame], name: str, cfg: StrategiesConfig | None = None,
              primary: str | None = None) -> np.ndarray:
    cfg = cfg or StrategiesConfig()
    return st.compute_signals(frames, primary or next(iter(frames)), cfg)[name].to_numpy()


# ------------------------------------------------------------------------------------ interface and range


def test_interface_order_and_shape(market):
    assert tuple(st.STRATEGY_FUNCS) == STRATEGIES
    signals = st.compute_signals(market, "BTC/USDT", StrategiesConfig())
    assert list(signals.columns) == ["timestamp", *STRATEGIES]
    np.testing.assert_array_equal(signals["timestamp"], market["BTC/USDT"]["timestamp"])
    values = signals[list(STRATEGIES)].to_numpy()
    assert np.isfinite(values).all() and values.min() >= -1.0 and values.max() <= 1.0
    for name in STRATEGIES:  # every strategy trades on this market, and every one but vix both ways
        assert (signals[name] > 0).any(), name
        if name != "vix_strategy":
            assert (signals[name] < 0).any(), name
    assert (signals["vix_strategy"] >= 0).all()


def test_no_shorts_when_not_allowed(market):
    signals = st.compute_signals(market, "BTC/USDT", StrategiesConfig(allow_short=False))
    values = signals[list(STRATEGIES)].to_numpy()
    assert values.min() == 0.0 and values.max() == 1.0


@pytest.mark.parametrize("cut", [120, 333, 700, 1234, 1799])
def test_no_look_ahead(market, cut):
    cfg = StrategiesConfig()
    full = st.compute_signals(market, "BTC/USDT", cfg)
    part = st.compute_signals({s: f.iloc[:cut] for s, f in market.items()}, "BTC/USDT", cfg)
    pd.testing.assert_frame_equal(part, full.iloc[:cut])


def with_shocked_future(frames: dict[str, pd.DataFrame], cut: int, factor: float) -> dict[str, pd.DataFrame]:
    """The same candles up to ``cut``, then every later price of every symbol multiplied by ``factor``."""
    shocked = {}
    for symbol, frame in frames.items():
        frame = frame.copy()
        frame.loc[frame.index[cut:], ["open", "high", "low", "close"]] *= factor
        shocked[symbol] = frame
    return shocked


def test_no_look_ahead_even_when_the_future_is_violent(market):
    # a rule peeking one candle ahead changes only the last row of a prefix; a violent future and many cuts
    # make that row differ
    cfg = StrategiesConfig()
    for cut in range(150, 1800, 41):
        part = st.compute_signals({s: f.iloc[:cut] for s, f in market.items()}, "BTC/USDT", cfg)
        for factor in (0.5, 1.6):
            full = st.compute_signals(with_shocked_future(market, cut, factor), "BTC/USDT", cfg)
            pd.testing.assert_frame_equal(part, full.iloc[:cut])


def test_no_look_ahead_when_the_other_symbol_has_later_candles(market):
    cfg = StrategiesConfig()
    primary = market["BTC/USDT"].iloc[:900]
    short = st.compute_signals({"BTC/USDT": primary, "ETH/USDT": market["ETH/USDT"].iloc[:900]}, "BTC/USDT", cfg)
    longer = st.compute_signals({"BTC/USDT": primary, "ETH/USDT": market["ETH/USDT"]}, "BTC/USDT", cfg)
    pd.testing.assert_frame_equal(short, longer)


def test_deterministic(market):
    cfg = StrategiesConfig()
    first = st.compute_signals(market, "BTC/USDT", cfg)
    again = st.compute_signals(trending_market(1800, seed=21), "BTC/USDT", cfg)
    pd.testing.assert_frame_equal(first, again)


def test_each_symbol_can_be_primary(market):
    eth = st.compute_signals(market, "ETH/USDT", StrategiesConfig())
    np.testing.assert_array_equal(eth["timestamp"], market["ETH/USDT"]["timestamp"])
    btc = st.compute_signals(market, "BTC/USDT", StrategiesConfig())
    # the pair mirrors: ETH cheap against BTC is BTC rich against ETH
    both = (eth["pairs_trading"] != 0) & (btc["pairs_trading"] != 0)
    assert both.sum() > 10 and (eth["pairs_trading"][both] == -btc["pairs_trading"][both]).all()


# ----------------------------------------------------------------------------------------------- alignment


def test_alignment_forward_fills_only():
    primary = candles(np.linspace(100, 110, 10))
    other = candles(np.array([50.0, 51.0, 52.0, 53.0]))
    other["timestamp"] = np.array([2, 3, 6, 20], dtype=np.int64) * HOUR_MS  # starts late, has gaps, runs past
    aligned = st.align_frames({"A": primary, "B": other}, "A")
    assert list(aligned) == ["A", "B"]
    expected = [np.nan, np.nan, 50, 51, 51, 51, 52, 52, 52, 52]  # never the candle at hour 20
    np.testing.assert_array_equal(aligned["B"]["close"], expected)
    np.testing.assert_array_equal(aligned["B"]["timestamp"], primary["timestamp"])


def test_pair_partner_selection(market):
    frames = {"SOL/USDT": market["BTC/USDT"], **market}
    assert list(st.align_frames(frames, "BTC/USDT"))[:2] == ["BTC/USDT", "SOL/USDT"]
    assert list(st.align_frames(frames, "BTC/USDT", "ETH/USDT"))[:2] == ["BTC/USDT", "ETH/USDT"]
    assert st.pair_partner(["BTC/USDT"], "BTC/USDT") is None
    with pytest.raises(DataError, match="pairs_symbol 'XRP/USDT' has no candles"):
        st.align_frames(frames, "BTC/USDT", "XRP/USDT")


def test_pairs_is_flat_without_a_partner(market):
    signals = st.compute_signals({"BTC/USDT": market["BTC/USDT"]}, "BTC/USDT", StrategiesConfig())
    assert (signals["pairs_trading"] == 0).all()
    assert (signals["momentum_sma_crossover"] != 0).any()


def test_bad_input_is_a_clear_error(market):
    with pytest.raises(DataError, match="primary symbol 'DOGE/USDT' has no candles"):
        st.compute_signals(market, "DOGE/USDT", StrategiesConfig())
    broken = {"BTC/USDT": market["BTC/USDT"].drop(columns="close")}
    with pytest.raises(DataError, match="candles of BTC/USDT: candle column\\(s\\) close missing"):
        st.compute_signals(broken, "BTC/USDT", StrategiesConfig())
    shuffled = {"BTC/USDT": market["BTC/USDT"].iloc[::-1]}
    with pytest.raises(DataError, match="ascending"):
        st.compute_signals(shuffled, "BTC/USDT", StrategiesConfig())


def test_short_history_is_flat():
    frames = {"BTC/USDT": candles(np.linspace(100, 90, 14))}  # the RSI (14) needs 15 candles
    signals = st.compute_signals(frames, "BTC/USDT", StrategiesConfig())
    assert (signals[list(STRATEGIES)].to_numpy() == 0).all()
    assert len(st.compute_signals({"BTC/USDT": candles(np.array([1.0]))}, "BTC/USDT", StrategiesConfig())) == 1


# ---------------------------------------------------------------------------------------------- config


def test_config_section_loads_and_validates():
    cfg = config_from_dict({"strategies": {"rsi_period": 7, "allow_short": False}})
    assert cfg.strategies.rsi_period == 7 and cfg.strategies.allow_short is False
    with pytest.raises(ConfigError, match="strategies.sma_fast \\(60\\) must be below strategies.sma_slow"):
        config_from_dict({"strategies": {"sma_fast": 60}})
    with pytest.raises(ConfigError, match="strategies.pairs_window = 1: must be an integer >= 2"):
        config_from_dict({"strategies": {"pairs_window": 1}})
    with pytest.raises(ConfigError, match="unknown key `strategies.rsi_len`"):
        config_from_dict({"strategies": {"rsi_len": 3}})
    with pytest.raises(ConfigError, match="breakout_squeeze_quantile"):
        StrategiesConfig(breakout_squeeze_quantile=0.0)


def test_every_config_field_is_documented():
    section = inspect.getsource(StrategiesConfig)
    for f in dataclasses.fields(StrategiesConfig):
        line = section.index(f"    {f.name}: ")
        assert section[section.index("\n", line) + 1:].lstrip().startswith('"""'), f.name


# ------------------------------------------------------------------------------- each rule on a price path


def ref_atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int) -> list[float]:
    """Wilder's ATR by a plain loop (true range from index 1, seeded with the mean of the first n)."""
    tr = [max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1])) for i in range(1, len(close))]
    out = [math.nan] * len(close)
    prev = sum(tr[:n]) / n
    out[n] = prev
    for i in range(n + 1, len(close)):
        prev = (prev * (n - 1) + tr[i - 1]) / n
        out[i] = prev
    return out


def test_turtle_enters_on_a_new_20_high_and_exits_on_the_atr_stop():
    # a narrow range, a jump to a new high, then a pullback
    wobble = 100 + 0.2 * np.sin(np.arange(41) * 2 * np.pi / 8)
    close = np.r_[wobble, 103.0, 103.5, 102.8, 102.5, 102.2, 101.8, 101.2, 100.9]
    high, low = close + 0.1, close - 0.1
    high[41] = 103.3
    frames = {"BTC/USDT": candles(close, high, low)}
    pos = positions(frames, "turtle_trading")

    entry = 41
    assert close[entry] > max(high[entry - 20:entry])  # the jump is the first close above the 20-candle high
    assert (pos[:entry] == 0).all() and pos[entry] == 1
    stop = close[entry] - 2.0 * ref_atr(high, low, close, 20)[entry]
    exit_at = next(i for i in range(entry + 1, len(close)) if close[i] <= stop)
    assert (pos[entry:exit_at] == 1).all() and pos[exit_at] == 0
    assert close[exit_at] > min(low[exit_at - 10:exit_at])  # not the Donchian exit: the stop closed it
    # a wider stop keeps the position through the same pullback
    wide = positions(frames, "turtle_trading", StrategiesConfig(turtle_atr_stop=6.0))
    assert (wide[entry:] == 1).all()


def test_turtle_exits_on_the_donchian_low_and_goes_short_on_a_new_low():
    close = np.r_[np.linspace(100, 101, 30), np.linspace(103, 120, 30), np.linspace(119, 90, 30)]
    pos = positions({"BTC/USDT": candles(close)}, "turtle_trading", StrategiesConfig(turtle_atr_stop=50.0))
    assert pos[30] == 1  # jump above the range
    low = np.minimum(np.r_[close[0], close[:-1]], close)
    first_flat = 30 + int(np.argmax(pos[30:] != 1))
    assert close[first_flat] < min(low[first_flat - 10:first_flat])  # the 10-candle low exit
    assert pos[-1] == -1  # the slide makes new 20-candle lows


def test_rsi_buys_after_a_sharp_fall_and_sells_after_a_sharp_rise():
    wobble = 100 * (1 + 0.001 * np.tile([1, -1], 30))
    fall = wobble[-1] * 0.98 ** np.arange(1, 9)
    rise = fall[-1] * 1.02 ** np.arange(1, 21)
    close = np.r_[wobble, fall, rise]
    pos = positions({"BTC/USDT": candles(close)}, "mean_reversion_rsi")
    assert (pos[:60] == 0).all()
    assert pos[67] == 1  # end of the fall: oversold
    after = pos[68:]
    first_flat = int(np.argmax(after == 0))
    assert (after[:first_flat] == 1).all() and first_flat > 0  # held until the RSI recovered to 50
    assert pos[-1] == -1  # the long rise ends overbought
    assert positions({"BTC/USDT": candles(close)}, "mean_reversion_rsi", StrategiesConfig(allow_short=False))[-1] == 0


def test_sma_crossover_follows_the_trend():
    up = np.linspace(100, 200, 120)
    down = np.linspace(200, 120, 120)
    pos = positions({"BTC/USDT": candles(np.r_[up, down])}, "momentum_sma_crossover")
    assert (pos[:49] == 0).all()  # the slow SMA is not defined yet
    assert (pos[49:120] == 1).all()
    assert (pos[-60:] == -1).all()


def test_macd_momentum_follows_the_trend():
    close = np.r_[100 * 1.005 ** np.arange(80), 100 * 1.005**79 * 0.995 ** np.arange(1, 81)]
    pos = positions({"BTC/USDT": candles(close)}, "macd_momentum")
    assert (pos[:33] == 0).all()  # signal line undefined before index 33
    assert (pos[33:80] == 1).all()
    assert (pos[80:94] == 0).all()  # below the signal line but still above zero: no momentum either way
    assert (pos[94:130] == -1).all()
    assert pos[-1] == 0  # a steady decline loses its acceleration: the line climbs back over its signal


def test_bollinger_buys_below_the_lower_band_and_exits_at_the_middle():
    wobble = 100 * (1 + 0.002 * np.sin(np.arange(60) * 2 * np.pi / 8))
    close = np.r_[wobble, 97.0, 98.0, 99.0, 100.0, 100.5, 101.0]
    pos = positions({"BTC/USDT": candles(close)}, "bollinger_bands")
    assert (pos[:60] == 0).all()  # a sine never closes outside its 2-sigma bands
    assert pos[60] == 1
    middle = pd.Series(close).rolling(20).mean().to_numpy()
    back = next(i for i in range(61, len(close)) if close[i] >= middle[i])
    assert (pos[60:back] == 1).all() and pos[back] == 0


def test_breakout_after_a_squeeze():
    rng = np.random.default_rng(5)
    wild = 100 * np.exp(np.cumsum(0.02 * rng.standard_normal(150)))
    quiet = wild[-1] * (1 + 0.001 * np.sin(np.arange(60) * 2 * np.pi / 10))
    jump = quiet[-1] * np.array([1.03, 1.035, 1.04])
    close = np.r_[wild, quiet, jump, np.linspace(jump[-1], wild[-1], 10)]  # back, but inside the old range
    pos = positions({"BTC/USDT": candles(close)}, "breakout_trading")
    assert (pos[150:210] == 0).all()
    assert pos[210] == 1
    middle = pd.Series(close).rolling(20).mean().to_numpy()
    back = next(i for i in range(211, len(close)) if close[i] < middle[i])
    assert (pos[210:back] == 1).all() and (pos[back:] == 0).all()
    # the same jump out of the wild market (no squeeze) is not traded
    no_squeeze = np.r_[wild, wild[-1] * 1.03]
    assert positions({"BTC/USDT": candles(no_squeeze)}, "breakout_trading")[-1] == 0


def test_pairs_goes_long_the_primary_when_it_is_cheap():
    n = 400
    partner = 2500 * np.exp(np.cumsum(0.01 * np.random.default_rng(2).standard_normal(n)))
    wiggle = 0.001 * np.sin(np.arange(n) * 0.7)  # the spread's z-score stays within +-1.5
    primary = 16 * partner * np.exp(wiggle)
    primary[250:] *= 0.97  # the primary drops 3 % against the partner
    frames = {"BTC/USDT": candles(primary), "ETH/USDT": candles(partner)}
    pos = positions(frames, "pairs_trading")
    spread = np.log(primary) - np.log(partner)
    z = (spread[250] - statistics.fmean(spread[151:251])) / statistics.stdev(spread[151:251])
    assert z < -2.0
    assert (pos[:250] == 0).all() and pos[250] == 1
    # the rolling mean catches up with the new level: the position closes once |z| < 0.5
    assert pos[-1] == 0
    # the same drop in the partner makes the primary expensive: short
    frames = {"BTC/USDT": candles(16 * partner * np.exp(wiggle)), "ETH/USDT": candles(partner * np.r_[
        np.ones(250), np.full(150, 0.97)])}
    assert positions(frames, "pairs_trading")[250] == -1


def ref_ewma_vol(close: np.ndarray, span: int) -> list[float]:
    rets = [math.log(close[i] / close[i - 1]) for i in range(1, len(close))]
    alpha = 2 / (span + 1)
    out = [math.nan] * len(close)
    var = sum(r * r for r in rets[:span]) / span
    out[span] = math.sqrt(var)
    for i in range(span + 1, len(close)):
        var = var + alpha * (rets[i - 1] ** 2 - var)
        out[i] = math.sqrt(var)
    return out


def test_vix_buys_a_fear_spike_as_it_reverts():
    rng = np.random.default_rng(6)
    calm = 0.003 * rng.standard_normal(500)
    crash = -0.02 + 0.04 * rng.standard_normal(12)
    after = 0.003 * rng.standard_normal(150)
    btc = 40_000 * np.exp(np.cumsum(np.r_[calm, crash, after]))
    eth = 2_500 * np.exp(np.cumsum(np.r_[calm, crash, after] + 0.001 * rng.standard_normal(662)))
    frames = {"BTC/USDT": candles(btc), "ETH/USDT": candles(eth)}
    cfg = StrategiesConfig()
    pos = positions(frames, "vix_strategy", cfg)
    assert (pos[:500] == 0).all()
    held = np.flatnonzero(pos == 1)
    assert held.size > 0 and held[0] >= 512  # bought once the crash was over, not into it
    assert held.size <= cfg.vix_max_hold and (np.diff(held) == 1).all()
    assert pos[-1] == 0

    # the entry candle, checked against the rule with an index computed here
    index = np.mean([ref_ewma_vol(btc, 24), ref_ewma_vol(eth, 24)], axis=0)
    ratio = [index[i] / statistics.median(index[i - 239:i + 1]) if i >= 263 else math.nan for i in range(662)]
    entry = held[0]
    recent = ratio[entry - cfg.vix_spike_memory + 1:entry + 1]
    assert max(recent) >= cfg.vix_spike_ratio
    assert cfg.vix_exit_ratio < ratio[entry] <= max(recent) * (1 - cfg.vix_revert)
    assert btc[entry] < btc[entry - 24]
    assert all(ratio[i] > max(ratio[i - 23:i + 1]) * (1 - cfg.vix_revert) or btc[i] >= btc[i - 24]
               for i in range(500, entry))  # no earlier candle met the rule
    exit_at = held[-1] + 1
    assert ratio[exit_at] <= cfg.vix_exit_ratio or exit_at - entry == cfg.vix_max_hold


def test_volatility_index_is_the_mean_of_the_symbols(market):
    aligned = st.align_frames(market, "BTC/USDT")
    index = st.volatility_index(aligned, 24)
    refs = [ref_ewma_vol(frame["close"].to_numpy(), 24) for frame in aligned.values()]
    for i in (24, 100, 800, 1799):
        assert index[i] == pytest.approx(statistics.fmean(ref[i] for ref in refs), rel=1e-9)
    assert np.isnan(index[:24]).all()
