"""The trading agent's actions, exposure accounting and reward: the arithmetic of one step, vectorized.

A decision at candle k's close sets the exposure ``p_k`` (a signed fraction of equity, see :class:`Action`);
the step's return on equity is ``p_k * (close_{k+1} / close_k - 1) - fee * |p_k - p_{k-1}|``
(:func:`analytics.baselines.step_return`) and its reward is :func:`compute_reward`. :class:`Account` holds
the simulated accounts of ``n`` episodes side by side; the environments and the shadow daemon step it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

from ai.trading.features import account_raw
from ai.trading.options import TradingEnvOptions
from analytics.baselines import step_return


class Action(IntEnum):
    """The six actions; exposures are signed fractions of equity."""

    HOLD = 0
    """Keep the exposure as it is."""
    LONG = 1
    """Add ``position_size`` of long exposure, up to ``max_exposure``; a short is closed first (the result is
    a long of ``position_size``)."""
    SHORT = 2
    """Mirror of LONG: add ``position_size`` of short exposure, up to ``max_exposure``; a long is closed first."""
    REDUCE = 3
    """Halve the exposure; what would fall below ``min_exposure`` is closed."""
    CLOSE = 4
    """Go flat."""
    EMERGENCY_FLATTEN = 5
    """Go flat now whatever the state; with one asset the same as CLOSE, in multi-asset use (the trader's PPO
    book) it flattens every position at once."""


ACTION_NAMES: tuple[str, ...] = tuple(a.name for a in Action)
N_ACTIONS = len(Action)


def next_exposure(exposure: np.ndarray, actions: np.ndarray, opts: TradingEnvOptions) -> np.ndarray:
    """The exposure each action leads to from ``exposure`` (see :class:`Action`)."""
    p = np.asarray(exposure, dtype=np.float64)
    a = np.asarray(actions, dtype=np.int64)
    if a.size and (a.min() < 0 or a.max() >= N_ACTIONS):
        raise ValueError(f"actions must be integers in 0..{N_ACTIONS - 1}, got {a.tolist()}")
    longer = np.minimum(np.maximum(p, 0.0) + opts.position_size, opts.max_exposure)
    shorter = np.maximum(np.minimum(p, 0.0) - opts.position_size, -opts.max_exposure)
    halved = p / 2.0
    halved = np.where(np.abs(halved) < opts.min_exposure, 0.0, halved)
    return np.select([a == Action.HOLD, a == Action.LONG, a == Action.SHORT, a == Action.REDUCE],
                     [p, longer, shorter, halved], default=0.0)


def compute_reward(step_ret: np.ndarray, drawdown: np.ndarray, exposure: np.ndarray, high_volatility: np.ndarray,
                   direction: np.ndarray, opts: TradingEnvOptions) -> np.ndarray:
    """The reward of a step (the original design's shaping, every weight from the options):

    ``pnl * step_return - drawdown_w * drawdown**2 - volatility_penalty * |exposure| * high_volatility
    + regime * direction * exposure / max_exposure + survival``

    ``step_return`` is the step's net return on equity (the P&L delta), ``drawdown`` the fall of equity from the
    episode's peak after the step (0..1), ``high_volatility`` the flag at the decision candle and ``direction``
    its regime direction (+1, -1 or 0), so the regime term is the exposure's alignment with the regime in [-1, 1].
    """
    w = opts.reward
    alignment = np.asarray(direction) * np.asarray(exposure) / opts.max_exposure
    penalty = w.volatility_penalty * np.abs(exposure) * np.asarray(high_volatility, dtype=np.float64)
    return w.pnl * step_ret - w.drawdown * np.square(drawdown) - penalty + w.regime * alignment + w.survival


@dataclass
class StepOutcome:
    """What one step did, per episode."""

    step_return: np.ndarray
    fee_paid: np.ndarray
    reward: np.ndarray
    drawdown: np.ndarray
    terminated: np.ndarray


@dataclass
class Account:
    """The simulated account of ``n`` episodes side by side (arrays of shape ``(n,)``).

    ``exposure`` is the signed fraction of equity held, ``open_equity`` the equity when the open position was
    opened (its P&L reference), ``holding`` the candles it has been held, ``exposure_change`` the last change.
    """

    exposure: np.ndarray
    equity: np.ndarray
    peak: np.ndarray
    open_equity: np.ndarray
    holding: np.ndarray
    exposure_change: np.ndarray

    @classmethod
    def flat(cls, n: int, initial_equity: float) -> Account:
        equity = np.full(n, float(initial_equity))
        return cls(np.zeros(n), equity, equity.copy(), equity.copy(), np.zeros(n), np.zeros(n))

    def reset(self, mask: np.ndarray, initial_equity: float) -> None:
        """Flat accounts with the initial equity where ``mask`` is True."""
        for name in ("exposure", "holding", "exposure_change"):
            getattr(self, name)[mask] = 0.0
        for name in ("equity", "peak", "open_equity"):
            getattr(self, name)[mask] = initial_equity

    def step(self, actions: np.ndarray, close_now: np.ndarray, close_next: np.ndarray, high_volatility: np.ndarray,
             direction: np.ndarray, opts: TradingEnvOptions) -> StepOutcome:
        """Apply decisions taken at ``close_now`` and hold them until ``close_next`` (the module's accounting)."""
        previous = self.exposure
        new = next_exposure(previous, actions, opts)
        opened = (new != 0) & (np.sign(new) != np.sign(previous))
        self.open_equity = np.where(opened, self.equity, self.open_equity)
        ret = step_return(previous, new, close_now, close_next, opts.fee)
        fee_paid = opts.fee * np.abs(new - previous)
        self.equity = np.maximum(self.equity * (1.0 + ret), 0.0)
        self.peak = np.maximum(self.peak, self.equity)
        drawdown = np.where(self.peak > 0, 1.0 - self.equity / self.peak, 1.0)
        self.holding = np.where(new == 0, 0.0, np.where(opened, 1.0, self.holding + 1.0))
        self.exposure_change = new - previous
        self.exposure = new
        reward = compute_reward(ret, drawdown, new, high_volatility, direction, opts)
        terminated = self.equity <= opts.bankrupt_fraction * opts.initial_equity
        return StepOutcome(ret, fee_paid, reward, drawdown, terminated)

    def raw_features(self, direction: np.ndarray, opts: TradingEnvOptions) -> np.ndarray:
        """Unscaled account features ``(n, 8)`` given the regime direction of the current candle."""
        return account_raw(self.exposure, self.equity, opts.initial_equity, self.open_equity, self.peak,
                           self.holding, self.exposure_change, direction, opts.max_exposure)

    def row(self, i: int = 0) -> dict[str, float]:
        """Episode ``i``'s account as plain data (the shadow daemon persists it)."""
        return {f.name: float(getattr(self, f.name)[i]) for f in dataclasses.fields(self)}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Account:
        """The one-episode account saved by :meth:`row`; a KeyError names a missing field."""
        return cls(**{f.name: np.array([float(row[f.name])]) for f in dataclasses.fields(cls)})
