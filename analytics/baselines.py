"""Baseline strategies and the step accounting every strategy of the trading benchmark shares.

The accounting (the trading environment uses the same function, :func:`step_return`): a decision at candle
k's close sets the exposure ``p_k``, a signed fraction of equity (negative for short). The step's return on
equity is::

    r_k = p_k * (close_{k+1} / close_k - 1) - fee * |p_k - p_{k-1}|

so the exposure is held at a constant fraction of equity from one close to the next and every change of
exposure pays ``fee`` on the notional traded. A window of ``m + 1`` closes gives ``m`` decisions and ``m``
returns; it starts flat (``p_{-1} = 0``) and the position still open at its end is not closed (no exit fee).

Trades of an exposure series: a trade is a maximal run of consecutive decisions with non-zero exposure of one
sign. Its return compounds, over its steps, ``p_k * (close_{k+1} / close_k - 1)`` minus the fee on the
exposure it added or removed at that step (its entry and resizes), then its exit fee ``fee * |last p|`` when it
is closed inside the window (a sign flip closes one trade and opens the next: the exit part of the fee goes to
the old trade, the entry part to the new one). A trade still open at the end of the window has no exit fee.
``n_trades`` counts the runs, ``win_rate`` is the share of trades with a return > 0
(:func:`analytics.metrics.win_rate`) and ``avg_return`` is the mean trade return.

Baselines on a test window ``[start, stop)`` of a longer close series (decisions at candles ``start..stop-2``):

- Buy & Hold: exposure 1 at every decision.
- MA crossover: +1 while the fast SMA of closes is above the slow one, -1 while below, 0 while they are equal
  or either is undefined. The SMAs use every close up to the candle, those before the window included.
- Random: uniform random actions stepped through the trading environment (see :func:`env_exposures`),
  averaged over several seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.metrics import max_drawdown, sharpe_ratio, total_return, win_rate
from market.indicators import sma

METRIC_KEYS: tuple[str, ...] = ("total_return", "sharpe_ratio", "max_drawdown", "win_rate", "avg_return", "n_trades")
"""The metrics reported for every strategy of the benchmark, in order."""


# ------------------------------------------------------------------------------------------------ accounting


def step_return(prev_exposure: Any, exposure: Any, close_now: Any, close_next: Any, fee: float) -> Any:
    """``exposure * (close_next / close_now - 1) - fee * |exposure - prev_exposure|`` (scalars or arrays)."""
    return exposure * (close_next / close_now - 1.0) - fee * np.abs(exposure - prev_exposure)


def exposure_returns(closes: Sequence[float] | np.ndarray, exposures: Sequence[float] | np.ndarray,
                     fee: float, initial_exposure: float = 0.0) -> np.ndarray:
    """Step returns of ``exposures`` (``m`` decisions) over ``closes`` (``m + 1`` closes), starting from
    ``initial_exposure`` (flat by default)."""
    c = np.asarray(closes, dtype=np.float64)
    p = np.asarray(exposures, dtype=np.float64)
    if c.shape != (p.size + 1,):
        raise ValueError(f"{p.size} exposures need {p.size + 1} closes, got {c.size}")
    previous = np.concatenate([[initial_exposure], p[:-1]])
    return step_return(previous, p, c[:-1], c[1:], fee)


def equity_from_returns(returns: Sequence[float] | np.ndarray, start: float = 1.0) -> np.ndarray:
    """Equity after each step and the starting value first (``len(returns) + 1`` points)."""
    r = np.asarray(returns, dtype=np.float64)
    return start * np.concatenate([[1.0], np.cumprod(1.0 + r)])


# ---------------------------------------------------------------------------------------------------- trades


@dataclass(frozen=True)
class Trade:
    """One run of same-sign exposure: decisions ``first..last`` (positions in the series), its side and return."""

    first: int
    last: int
    side: int
    ret: float
    closed: bool


def trades_from_exposures(closes: Sequence[float] | np.ndarray, exposures: Sequence[float] | np.ndarray,
                          fee: float) -> list[Trade]:
    """The trades of an exposure series (see the module docstring for the definition)."""
    c = np.asarray(closes, dtype=np.float64)
    p = np.asarray(exposures, dtype=np.float64)
    if c.shape != (p.size + 1,):
        raise ValueError(f"{p.size} exposures need {p.size + 1} closes, got {c.size}")
    trades: list[Trade] = []
    side, first, growth, previous = 0, 0, 1.0, 0.0
    for k in range(p.size):
        current = float(np.sign(p[k]))
        if side != 0 and current != side:
            trades.append(Trade(first, k - 1, side, growth * (1.0 - fee * abs(previous)) - 1.0, True))
            side = 0
        if current != 0:
            if side == 0:
                side, first, growth, turnover = int(current), k, 1.0, abs(p[k])
            else:
                turnover = abs(p[k] - previous)
            growth *= 1.0 + p[k] * (c[k + 1] / c[k] - 1.0) - fee * turnover
        previous = float(p[k])
    if side != 0:
        trades.append(Trade(first, p.size - 1, side, growth - 1.0, False))
    return trades


def strategy_metrics(closes: Sequence[float] | np.ndarray, exposures: Sequence[float] | np.ndarray, fee: float,
                     periods_per_year: float, returns: Sequence[float] | np.ndarray | None = None) -> dict[str, float]:
    """The benchmark metrics of one exposure series (returns computed with :func:`exposure_returns` unless given).

    Undefined values (a Sharpe ratio of constant returns, a win rate without trades) are NaN.
    """
    r = exposure_returns(closes, exposures, fee) if returns is None else np.asarray(returns, dtype=np.float64)
    trades = trades_from_exposures(closes, exposures, fee)
    trade_returns = [t.ret for t in trades]
    return {
        "total_return": total_return(r),
        "sharpe_ratio": sharpe_ratio(r, periods_per_year),
        "max_drawdown": max_drawdown(r),
        "win_rate": win_rate(trade_returns),
        "avg_return": float(np.mean(trade_returns)) if trade_returns else math.nan,
        "n_trades": float(len(trades)),
    }


def mean_metrics(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    """Each metric averaged over runs, ignoring the runs where it is undefined (NaN when it is for all)."""
    out: dict[str, float] = {}
    for key in METRIC_KEYS:
        values = np.array([run[key] for run in runs], dtype=np.float64)
        finite = values[np.isfinite(values)]
        out[key] = float(finite.mean()) if finite.size else math.nan
    return out


# ------------------------------------------------------------------------------------------------ baselines


def buy_and_hold_exposures(decisions: int) -> np.ndarray:
    """Exposure 1 at every decision."""
    return np.ones(decisions, dtype=np.float64)


def ma_crossover_exposures(closes: Sequence[float] | np.ndarray, start: int, stop: int, fast: int = 10,
                           slow: int = 20) -> np.ndarray:
    """Exposures at the decisions ``start..stop-1`` of the close series: sign(SMA_fast - SMA_slow), 0 if undefined.

    The SMAs are computed on the whole series up to each candle, so closes before ``start`` warm them up.
    """
    if not 1 <= fast < slow:
        raise ValueError(f"MA crossover needs 1 <= fast < slow, got fast={fast}, slow={slow}")
    c = np.asarray(closes, dtype=np.float64)
    if not 0 <= start <= stop <= c.size:
        raise ValueError(f"decision range {start}..{stop} is outside the {c.size} closes")
    difference = np.asarray(sma(c[:stop], fast)) - np.asarray(sma(c[:stop], slow))
    return np.nan_to_num(np.sign(difference[start:stop]), nan=0.0)


def env_exposures(env: Any, choose_action: Callable[[np.ndarray], int], seed: int | None = None,
                  steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exposures and step returns of one episode of a trading environment driven by ``choose_action(obs)``.

    The environment reports ``info["exposure"]`` and ``info["step_return"]`` after every step (as
    :class:`ai.trading.env.TradingEnv` does). When the episode terminates early (equity wiped out), the
    remaining ``steps`` are flat with zero return.
    """
    obs, _ = env.reset(seed=seed)
    exposures: list[float] = []
    returns: list[float] = []
    while True:
        obs, _, terminated, truncated, info = env.step(choose_action(obs))
        exposures.append(float(info["exposure"]))
        returns.append(float(info["step_return"]))
        if terminated or truncated:
            break
    if steps is not None and len(exposures) < steps:
        missing = steps - len(exposures)
        exposures += [0.0] * missing
        returns += [0.0] * missing
    return np.array(exposures), np.array(returns)


def random_action_chooser(n_actions: int, seed: int) -> Callable[[np.ndarray], int]:
    """A policy choosing uniformly among ``n_actions`` with its own seeded generator."""
    rng = np.random.default_rng(seed)
    return lambda _obs: int(rng.integers(n_actions))
