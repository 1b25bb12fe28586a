"""Planted-edge markets: seeded candle frames with a known, tradable edge, and the rule that knows it.

An agent that learns should find an edge that is plainly there; these markets put one there on purpose, so a
learning result can be compared with the best answer (the *planted rule*) instead of only with baselines.
Every market is one symbol's hourly candles in the contract of :mod:`market.frames`
(``timestamp, open, high, low, close, volume``), drawn from one seeded generator: the same
:class:`PlantedSpec` always gives the same frame.

Kinds (log returns ``r_t``, per-candle volatility ``volatility``):

- ``mean_reverting``: ``r_t = phi r_{t-1} + e_t`` with ``phi < 0`` (default -0.35): a move tends to be partly
  undone by the next candle. Rule: go against the last candle's move when it exceeds ``threshold``.
- ``momentum``: the same AR(1) with ``phi > 0`` (default +0.35): a move tends to continue. Rule: follow the
  last candle's move when it exceeds ``threshold``.
- ``regime_switching``: a hidden two-state Markov chain (mean stay ``mean_regime_candles``). The *calm* state
  has low volatility (``volatility`` x 0.6) and momentum (``+|phi|``); the *stormy* state has high volatility
  (``volatility`` x 1.6) and mean reversion (``-|phi|``). The state shows in the candles as the level of
  recent volatility. Rule: estimate the state from the last 24 returns' volatility (above the geometric mean
  of the two levels: stormy) and follow or fade the last move accordingly.
- ``random_walk``: independent returns (``phi = 0``): no edge at all; every rule's result is luck.

The innovations ``e_t`` are scaled so the stationary volatility of returns is ``volatility`` (``e_t`` has
standard deviation ``volatility * sqrt(1 - phi**2)``). Open is the previous close, high and low add a wick
of half-normal size around the body, and volume grows with the size of the move (noise only: no edge).

The rules (:func:`planted_exposures`) use only candles up to each decision: the exposure decided at candle
``k``'s close depends on closes ``0..k``. They are the yardstick of ``scripts/bench_learning.py``: an agent
that finds the edge should reach a good share of the rule's Sharpe ratio on the same test window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.timeframes import timeframe_to_ms
from market.frames import COLUMNS

PLANTED_KINDS: tuple[str, ...] = ("mean_reverting", "momentum", "regime_switching", "random_walk")
"""The planted-edge markets, in the order benchmarks list them."""
DEFAULT_PHI: dict[str, float] = {"mean_reverting": -0.35, "momentum": 0.35, "regime_switching": 0.35,
                                 "random_walk": 0.0}
"""AR(1) coefficient per kind when :attr:`PlantedSpec.phi` is None (``regime_switching``: its size)."""
CALM_VOL, STORMY_VOL = 0.6, 1.6
"""Volatility of the calm and stormy states of ``regime_switching``, in units of ``volatility``."""
REGIME_WINDOW = 24
"""Returns behind the volatility estimate of the ``regime_switching`` rule."""
START_MS = 1_704_067_200_000
"""Open time of the first candle by default (2024-01-01T00:00:00Z)."""


@dataclass(frozen=True)
class PlantedSpec:
    """What to generate (see the module docstring); checked when built."""

    kind: str
    """One of :data:`PLANTED_KINDS`."""
    n_candles: int = 6000
    """Candles in the frame."""
    seed: int = 0
    """Seed of the one generator behind the frame."""
    phi: float | None = None
    """AR(1) coefficient of returns; None takes :data:`DEFAULT_PHI` of the kind."""
    volatility: float = 0.006
    """Stationary per-candle volatility of log returns (0.006 = 0.6 %)."""
    threshold: float = 0.004
    """Smallest last-candle move (absolute log return) the planted rule trades on."""
    mean_regime_candles: float = 300.0
    """Mean stay in one state of ``regime_switching`` (geometric lengths)."""
    timeframe: str = "1h"
    """Candle length in timeframe notation."""
    start_price: float = 100.0
    """Close before the first candle (the first candle's open)."""
    start_ms: int = START_MS
    """Open time of the first candle, ms UTC."""

    def __post_init__(self) -> None:
        problems = []
        if self.kind not in PLANTED_KINDS:
            problems.append(f"kind {self.kind!r} is not one of {', '.join(PLANTED_KINDS)}")
        if self.n_candles < 3:
            problems.append(f"n_candles must be >= 3, got {self.n_candles}")
        if self.phi is not None and not -1.0 < self.phi < 1.0:
            problems.append(f"phi must be in (-1, 1) for a stationary AR(1), got {self.phi}")
        if not 0.0 < self.volatility < 0.2:
            problems.append(f"volatility must be in (0, 0.2), got {self.volatility}")
        if not self.threshold >= 0.0:
            problems.append(f"threshold must be >= 0, got {self.threshold}")
        if not self.mean_regime_candles > 1.0:
            problems.append(f"mean_regime_candles must be > 1, got {self.mean_regime_candles}")
        if not self.start_price > 0.0:
            problems.append(f"start_price must be > 0, got {self.start_price}")
        if problems:
            raise ConfigError("planted market: " + "; ".join(problems))
        timeframe_to_ms(self.timeframe)  # a ConfigError naming the timeframe when it is not one

    @property
    def ar_coefficient(self) -> float:
        """The AR(1) coefficient in force (for ``regime_switching`` its size; the sign follows the state)."""
        return DEFAULT_PHI[self.kind] if self.phi is None else float(self.phi)


@dataclass(frozen=True)
class PlantedMarket:
    """A generated frame with the hidden truth behind it."""

    spec: PlantedSpec
    candles: pd.DataFrame
    """The candle frame (contract of :mod:`market.frames`)."""
    stormy: np.ndarray
    """Per candle, True where ``regime_switching`` is in its stormy (mean-reverting) state; all False otherwise."""


def generate_planted(spec: PlantedSpec) -> PlantedMarket:
    """The market of ``spec`` (pure: the same spec gives the same frame)."""
    rng = np.random.default_rng([spec.seed, PLANTED_KINDS.index(spec.kind)])
    n = spec.n_candles
    shocks = rng.standard_normal(n)
    stormy = _hidden_states(rng, n, spec) if spec.kind == "regime_switching" else np.zeros(n, dtype=bool)
    returns = _ar_returns(shocks, spec, stormy)
    return PlantedMarket(spec, _candles(rng, returns, spec), stormy)


def planted_candles(kind: str, n_candles: int = 6000, seed: int = 0) -> pd.DataFrame:
    """Shorthand for ``generate_planted(PlantedSpec(kind, n_candles, seed)).candles``."""
    return generate_planted(PlantedSpec(kind, n_candles, seed)).candles


def _hidden_states(rng: np.random.Generator, n: int, spec: PlantedSpec) -> np.ndarray:
    """A two-state Markov chain with geometric stays of mean ``mean_regime_candles``, starting calm."""
    switch = rng.random(n) < 1.0 / spec.mean_regime_candles
    return (np.cumsum(switch) % 2).astype(bool)


def _ar_returns(shocks: np.ndarray, spec: PlantedSpec, stormy: np.ndarray) -> np.ndarray:
    size = spec.ar_coefficient
    if spec.kind == "regime_switching":
        phi = np.where(stormy, -abs(size), abs(size))
        vol = spec.volatility * np.where(stormy, STORMY_VOL, CALM_VOL)
    else:
        phi = np.full(shocks.size, size)
        vol = np.full(shocks.size, spec.volatility)
    innovations = shocks * vol * np.sqrt(1.0 - phi ** 2)
    returns = np.empty_like(innovations)
    previous = 0.0
    for t, (p, e) in enumerate(zip(phi, innovations, strict=True)):  # a recursion: no vectorized form
        previous = p * previous + e
        returns[t] = previous
    return returns


def _candles(rng: np.random.Generator, returns: np.ndarray, spec: PlantedSpec) -> pd.DataFrame:
    close = spec.start_price * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[spec.start_price], close[:-1]])
    scale = spec.volatility * 0.5
    high = np.maximum(open_, close) * np.exp(np.abs(rng.standard_normal(close.size)) * scale)
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.standard_normal(close.size)) * scale)
    volume = 1_000.0 * np.exp(0.3 * rng.standard_normal(close.size)) * (1.0 + np.abs(returns) / spec.volatility)
    frame = pd.DataFrame({
        "timestamp": spec.start_ms + timeframe_to_ms(spec.timeframe) * np.arange(close.size, dtype=np.int64),
        "open": open_, "high": high, "low": low, "close": close, "volume": volume,
    })
    return frame[list(COLUMNS)]


# ---------------------------------------------------------------------------------------------- the rules


def planted_rule(spec: PlantedSpec, closes: np.ndarray) -> np.ndarray:
    """Exposure (-1, 0 or +1) decided at every candle's close by the rule that knows the generator.

    The value at candle ``k`` uses ``closes[0..k]`` only; it is 0 where the last move is below ``threshold``
    or not defined yet (the first candle; the first :data:`REGIME_WINDOW` for ``regime_switching``).
    """
    c = np.asarray(closes, dtype=np.float64)
    last = np.concatenate([[0.0], np.diff(np.log(c))])
    moved = np.abs(last) > spec.threshold
    if spec.kind == "regime_switching":
        volatility = rolling_volatility(c, REGIME_WINDOW)
        side = np.where(volatility > regime_volatility_cut(spec), -1.0, 1.0)
        side = np.where(np.isnan(volatility), 0.0, side)
    else:
        side = np.full(c.size, math.copysign(1.0, spec.ar_coefficient) if spec.ar_coefficient else 0.0)
    return np.where(moved, side * np.sign(last), 0.0)


def planted_exposures(spec: PlantedSpec, closes: np.ndarray, start: int, stop: int) -> np.ndarray:
    """The rule's exposures at the decisions ``start..stop-1`` (closes before ``start`` warm it up), in the
    layout of :func:`analytics.baselines.ma_crossover_exposures`."""
    c = np.asarray(closes, dtype=np.float64)
    if not 0 <= start <= stop <= c.size:
        raise ValueError(f"decision range {start}..{stop} is outside the {c.size} closes")
    return planted_rule(spec, c[:stop])[start:stop]


def rolling_volatility(closes: np.ndarray, window: int) -> np.ndarray:
    """Standard deviation (ddof 1) of the last ``window`` log returns at every candle, NaN before."""
    returns = pd.Series(np.concatenate([[np.nan], np.diff(np.log(np.asarray(closes, dtype=np.float64)))]))
    return np.asarray(returns.rolling(window, min_periods=window).std().to_numpy(), dtype=np.float64)


def regime_volatility_cut(spec: PlantedSpec) -> float:
    """Volatility above which ``regime_switching`` is read as stormy: the geometric mean of the two levels."""
    return spec.volatility * math.sqrt(CALM_VOL * STORMY_VOL)


def ar1_coefficient(returns: np.ndarray) -> float:
    """Least-squares AR(1) coefficient of a return series (``sum r_t r_{t-1} / sum r_{t-1}**2``, demeaned)."""
    r = np.asarray(returns, dtype=np.float64)
    r = r - r.mean()
    return float(np.dot(r[1:], r[:-1]) / np.dot(r[:-1], r[:-1]))
