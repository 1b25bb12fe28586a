"""Windows of the synthetic market equal a full generation bit for bit, extended step by step or asked for at
once, and cost memory for the window only."""

from __future__ import annotations

import random
import tracemalloc

import numpy as np
import pandas as pd
import pytest

import market.synthetic_window as sw
from core.config import Config
from core.errors import ConfigError
from market.synthetic import BLOCK, generate_market, synthetic_candles
from market.synthetic_window import (
    MarketParams,
    MarketStream,
    market_window,
    params_from_config,
    synthetic_window,
)

CASES = [
    (42, ("BTC/USDT", "ETH/USDT")),
    (7, ("A", "B", "C", "D")),
    (2**40 + 3, ("X",)),
]


def same_frame(mine: pd.DataFrame, reference: pd.DataFrame) -> None:
    """Equal to the last bit: columns, dtypes, index and every value's bytes."""
    assert list(mine.columns) == list(reference.columns)
    assert mine.index.equals(reference.index)
    for column in reference.columns:
        a, b = mine[column].to_numpy(), reference[column].to_numpy()
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), column


@pytest.mark.parametrize(("seed", "symbols"), CASES)
def test_windows_grown_step_by_step_equal_a_full_generation(seed: int, symbols: tuple[str, ...]) -> None:
    full = generate_market(list(symbols), 2_000, seed=seed)
    stream = MarketStream(MarketParams(symbols, seed=seed))
    rng = random.Random(seed)
    ends = [*range(1, 2_001, 97), BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK, 2_000]
    for end in ends:  # a replay's growing market, windows of any size (across block edges)
        count = rng.randint(1, 700)
        window = stream.window(end, count)
        first = max(0, end - count)
        for symbol in symbols:
            same_frame(window.candles[symbol], full.candles[symbol].iloc[first:end].reset_index(drop=True))
        assert window.regime_codes.tobytes() == full.regime_codes[first:end].tobytes()


@pytest.mark.parametrize(("seed", "symbols"), CASES)
def test_a_window_asked_for_at_once_equals_the_generation_of_that_length(seed: int, symbols: tuple[str, ...]) -> None:
    for end in (1, 300, 1_111, 1_800):
        fresh = MarketStream(MarketParams(symbols, seed=seed, timeframe="15m", mean_regime_candles=40))
        reference = generate_market(list(symbols), end, seed=seed, timeframe="15m", mean_regime_candles=40)
        window = fresh.window(end, end)
        for symbol in symbols:
            same_frame(window.candles[symbol], reference.candles[symbol])


def test_the_configured_window_is_the_tail_of_the_configured_market(cfg: Config) -> None:
    wanted = ["ETH/USDT", "SOL/USDT"]  # a configured symbol alone keeps its place; another comes after
    full = synthetic_candles(cfg, wanted, n_candles=1_500)
    tail = synthetic_window(cfg, wanted, end=1_500, count=200)
    for symbol in wanted:
        same_frame(tail[symbol], full[symbol].tail(200).reset_index(drop=True))
    assert params_from_config(cfg, wanted).symbols[:len(cfg.market.symbols)] == tuple(cfg.market.symbols)


def test_checkpoints_are_thinned_so_a_long_replay_keeps_a_fixed_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sw, "MAX_CHECKPOINTS", 8)
    params = MarketParams(("BTC/USDT", "ETH/USDT"), seed=3)
    stream = MarketStream(params)
    for end in range(BLOCK, 40 * BLOCK + 1, BLOCK):
        stream.window(end, 10)
        assert len(stream.checkpoints()) <= 8
    assert stream.checkpoints()[0] == 0
    # An old window whose checkpoint was dropped is still the same candles (rolled forward from an earlier one).
    full = generate_market(list(params.symbols), 40 * BLOCK, seed=3)
    for end in (5 * BLOCK + 17, 33 * BLOCK - 1):
        same_frame(stream.window(end, 300).candles["ETH/USDT"],
                   full.candles["ETH/USDT"].iloc[end - 300:end].reset_index(drop=True))


def test_a_window_costs_memory_for_the_window_not_the_market() -> None:
    params = MarketParams(("BTC/USDT", "ETH/USDT", "SOL/USDT"), seed=11)
    stream = MarketStream(params)
    stream.window(60_000, 1)  # the checkpoints up to there (time, not memory, is what a first call costs)
    tracemalloc.start()
    try:
        peaks = []
        for end in (60_000, 60_000 + 5 * BLOCK):
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            stream.window(end, 500)
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        generate_market(list(params.symbols), 20_000, seed=11)
        full_peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert max(peaks) < 1_500_000  # three symbols, about three blocks each
    assert max(peaks) * 5 < full_peak  # a third of the market's length generated whole costs far more


def test_streams_are_kept_for_a_few_parameter_sets_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sw, "_STREAMS", type(sw._STREAMS)())
    for seed in range(sw.MAX_STREAMS + 3):
        market_window(MarketParams(("BTC/USDT",), seed=seed), 10, 5)
    assert len(sw._STREAMS) == sw.MAX_STREAMS
    assert [p.seed for p in sw._STREAMS] == list(range(3, sw.MAX_STREAMS + 3))


def test_bad_windows_and_parameters_are_refused() -> None:
    stream = MarketStream(MarketParams(("BTC/USDT",)))
    with pytest.raises(ConfigError, match="positive end and count"):
        stream.window(0, 10)
    with pytest.raises(ConfigError, match="correlation"):
        MarketStream(MarketParams(("BTC/USDT",), correlation=1.5))
    assert np.array_equal(stream.window(5, 100).candles["BTC/USDT"]["timestamp"],
                          generate_market(["BTC/USDT"], 5).candles["BTC/USDT"]["timestamp"])
