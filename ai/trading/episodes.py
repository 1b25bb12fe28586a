"""The episode core shared by the trading environments: where episodes start, and ``n`` of them stepped at once.

:class:`Episodes` holds the bounds, positions and accounts of ``n`` episodes over one frame of market features
and steps them together; :class:`ai.trading.env.TradingEnv` runs one, :class:`ai.trading.vector_env.
TradingVectorEnv` many.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from ai.trading.account import Account, StepOutcome
from ai.trading.features import N_FEATURES, OBS_CLIP, assemble
from ai.trading.market_features import MarketFeatures, compute_market_features
from ai.trading.options import TradingEnvOptions
from core.errors import DataError


def features_for(candles: pd.DataFrame | None, features: MarketFeatures | None,
                  opts: TradingEnvOptions) -> MarketFeatures:
    if features is not None:
        return features
    if candles is None:
        raise ValueError("a trading environment needs a candle frame (or precomputed features=)")
    missing = [c for c in ("timestamp", "open", "high", "low", "close", "volume") if c not in candles.columns]
    if missing:
        raise DataError(f"candles lack column(s) {', '.join(missing)}; expected timestamp, open, high, low, "
                        "close, volume")
    return compute_market_features(candles.reset_index(drop=True), opts.high_volatility_percentile)


class Episodes:
    """``n`` episodes over one candle frame: bounds, positions, accounts, observations and the step."""

    def __init__(self, features: MarketFeatures, opts: TradingEnvOptions, n: int) -> None:
        self.features = features
        self.opts = opts
        self.n = n
        self.starts, self.length = episode_starts(features, opts)
        self.account = Account.flat(n, opts.initial_equity)
        self.index = np.zeros(n, dtype=np.int64)
        self.steps = np.zeros(n, dtype=np.int64)

    def start(self, i: int, rng: np.random.Generator | None) -> None:
        """Put episode ``i`` at its first candle with a flat account (random start unless fixed)."""
        if self.starts.size == 1 or rng is None:
            first = int(self.starts[0])
        else:
            first = int(self.starts[rng.integers(self.starts.size)])
        self.index[i] = first
        self.steps[i] = 0
        mask = np.zeros(self.n, dtype=bool)
        mask[i] = True
        self.account.reset(mask, self.opts.initial_equity)

    def observations(self) -> np.ndarray:
        f = self.features
        return assemble(f.values[self.index], self.account.raw_features(f.direction[self.index], self.opts))

    def infos(self, outcome: StepOutcome | None = None) -> dict[str, np.ndarray]:
        zeros = np.zeros(self.n)
        return {
            "index": self.index.copy(),
            "timestamp": self.features.timestamps[self.index],
            "equity": self.account.equity.copy(),
            "exposure": self.account.exposure.copy(),
            "step_return": outcome.step_return if outcome else zeros,
            "fee_paid": outcome.fee_paid if outcome else zeros,
            "drawdown": outcome.drawdown if outcome else zeros,
        }

    def step(self, actions: np.ndarray) -> tuple[StepOutcome, np.ndarray, np.ndarray]:
        """Advance every episode one candle; returns the outcome, terminated and truncated flags."""
        f = self.features
        k = self.index
        outcome = self.account.step(actions, f.closes[k], f.closes[k + 1], f.high_volatility[k], f.direction[k],
                                    self.opts)
        self.index = k + 1
        self.steps += 1
        terminated = outcome.terminated
        truncated = (self.steps >= self.length) & ~terminated
        return outcome, terminated, truncated


def episode_starts(features: MarketFeatures, opts: TradingEnvOptions) -> tuple[np.ndarray, int]:
    """(candles an episode may start at, steps per episode).

    With ``start_index`` the only start is that candle and the episode runs ``episode_length`` steps or to the
    last candle. Otherwise an episode starts at least ``warmup_candles`` into its segment of candles (the whole
    frame unless the features join several stretches) and stays inside it; the length is ``episode_length``
    capped by the longest segment.
    """
    n_candles = len(features)
    if opts.start_index is not None:
        if opts.start_index > n_candles - 2:
            raise ValueError(f"start_index {opts.start_index} leaves no step in {n_candles} candles "
                             f"(at most {n_candles - 2})")
        available = n_candles - 1 - opts.start_index
        length = available if opts.episode_length is None else min(opts.episode_length, available)
        return np.array([opts.start_index]), length
    segment = features.segment if features.segment is not None else np.zeros(n_candles, dtype=np.int64)
    bounds = [(int(first), int(first + count)) for first, count in
              zip(*np.unique(segment, return_index=True, return_counts=True)[1:], strict=True)]
    available = max(stop - 1 - (first + opts.warmup_candles) for first, stop in bounds)
    if available < 1:
        raise DataError(f"{n_candles} candles leave no step after the {opts.warmup_candles} warm-up candles; "
                        f"give at least {opts.warmup_candles + 2} consecutive candles or lower warmup_candles")
    length = available if opts.episode_length is None else min(opts.episode_length, available)
    starts = [np.arange(first + opts.warmup_candles, stop - length) for first, stop in bounds]
    return np.concatenate(starts), length


def scalar_info(infos: dict[str, np.ndarray], i: int) -> dict[str, Any]:
    return {key: (int(v[i]) if v.dtype.kind in "iu" else float(v[i])) for key, v in infos.items()}


def observation_space() -> gym.spaces.Box:
    return gym.spaces.Box(-OBS_CLIP, OBS_CLIP, (N_FEATURES,), np.float32)
