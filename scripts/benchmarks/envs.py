"""Environment and backtest rows: one ``TradingEnv`` and ``TradingVectorEnv`` against gym-anytrading
(:mod:`ai.trading.speed`), the Buy & Hold + MA crossover baselines against backtesting.py
(:mod:`analytics.backtest_speed`).

Both environments are stepped bare (no Gymnasium wrappers on either side) with pre-drawn random actions on the
same EURUSD hourly candles, ours and the peer's runs interleaved, so the figures are the environments' own cost
per step; each is the best of ``repeats`` runs (the least disturbed by other work on the machine).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ai.trading.speed import env_speed, eurusd_hourly, vector_env_speed
from analytics.backtest_speed import backtest_speed
from benchmarks.rows import INSTALL_PEERS, Row, at_least, rate_text
from benchmarks.stats import ratio
from market.synthetic import generate_market

VECTOR_ENVS = 256


@dataclass(frozen=True)
class EnvSizes:
    single_steps: int
    vector_steps: int
    """Vector steps (each ``VECTOR_ENVS`` transitions); enough that the reset of 256 episodes is not the cost."""
    peer_steps: int
    backtest_bars: int
    peer_bars: int


QUICK_ENV_SIZES = EnvSizes(single_steps=3_000, vector_steps=200, peer_steps=5_000, backtest_bars=100_000,
                           peer_bars=5_000)
FULL_ENV_SIZES = EnvSizes(single_steps=30_000, vector_steps=1_000, peer_steps=100_000, backtest_bars=1_000_000,
                          peer_bars=1_000_000)


def eurusd_candles() -> tuple[pd.DataFrame, str]:
    """EURUSD hourly candles (the dataset gym-anytrading ships), or the synthetic market's BTC/USDT hourly
    candles when gym-anytrading is not installed; with the name of the data."""
    try:
        return eurusd_hourly(), "EURUSD hourly candles"
    except ImportError:
        return generate_market(["BTC/USDT"], 6_000, seed=7).candles["BTC/USDT"], "synthetic hourly candles"


def env_rows(sizes: EnvSizes, repeats: int) -> list[Row]:
    """The single-environment and vector-environment rows."""
    candles, data_name = eurusd_candles()
    one = env_speed(candles, steps=sizes.single_steps, repeat=repeats)
    many = vector_env_speed(candles, num_envs=VECTOR_ENVS, vector_steps=sizes.vector_steps, repeat=repeats,
                            peer_steps=sizes.peer_steps)
    peer = one["peer_steps_per_s"]
    single = one["ours_steps_per_s"]
    vector = max(many["numba_steps_per_s"] or 0.0, many["numpy_steps_per_s"])
    kernel = "numba kernel" if many["numba"] else "numpy core (numba not installed)"
    peer_text = INSTALL_PEERS if peer is None else rate_text(peer, "steps/s")
    single_ratio, vector_ratio = ratio(single, peer, True), ratio(vector, many["peer_steps_per_s"], True)
    return [
        Row("single_env", f"one `TradingEnv`, random actions, {data_name}", "gym-anytrading stocks-v0", peer,
            peer_text, single, rate_text(single, "steps/s"), "steps/s", single_ratio,
            ">= 1x, with all 64 features and the seed reward", at_least(single_ratio, 1.0),
            _gap(single_ratio, 1.0)),
        Row("vector_env", f"`TradingVectorEnv`, {VECTOR_ENVS} envs, {data_name}, {kernel}",
            "gym-anytrading stocks-v0 (one env)", many["peer_steps_per_s"],
            INSTALL_PEERS if many["peer_steps_per_s"] is None else rate_text(many["peer_steps_per_s"], "steps/s"),
            vector, rate_text(vector, "steps/s"), "steps/s", vector_ratio, ">= 20x",
            at_least(vector_ratio, 20.0), _gap(vector_ratio, 20.0)),
    ]


def _gap(value: float | None, goal: float) -> str:
    if value is None:
        return "peer missing"
    return "" if value >= goal else f"{value:.2f}x of the {goal:g}x asked"


# ------------------------------------------------------------------------------------------------- backtests


def backtest_rows(sizes: EnvSizes, repeats: int) -> list[Row]:
    """The baselines row, timed by :func:`analytics.backtest_speed.backtest_speed` (best of ``repeats`` runs of
    each side on the same random-walk closes)."""
    speed = backtest_speed(sizes.backtest_bars, repeat=repeats, peer_bars=sizes.peer_bars)
    peer, ours = speed["peer_bars_per_s"], speed["ours_bars_per_s"]
    value = ratio(ours, peer, True)
    note = _gap(value, 100.0)
    if peer is not None and speed["peer_bars"] != speed["bars"]:
        note = (note + "; " if note else "") + f"peer timed on {speed['peer_bars']:,} bars"
    return [Row("baselines", f"Buy & Hold + MA crossover backtest with metrics, {sizes.backtest_bars:,} candles",
                "backtesting.py SMA(10/20)", peer, INSTALL_PEERS if peer is None else rate_text(peer, "bars/s"),
                ours, rate_text(ours, "bars/s"), "bars/s", value, ">= 100x at 1M candles",
                at_least(value, 100.0), note)]
