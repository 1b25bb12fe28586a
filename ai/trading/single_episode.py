"""One trading episode in plain Python floats: the fast path of :class:`ai.trading.env.TradingEnv`.

The vectorised :class:`ai.trading.episodes.Episodes` pays numpy's call overhead a dozen times a step, which
dominates when it steps a single episode. :class:`SingleEpisode` keeps the account in Python floats, reads
closes, regime directions and high-volatility flags from lists made once, and builds an observation by copying
a precomputed row (market features in place, account slots empty) and writing the 8 account features.

It performs the arithmetic of :mod:`ai.trading.account` and :mod:`ai.trading.features` operation for
operation in the same order, so its transitions are bit-identical to the reference core's; where numpy's
``maximum``, ``sign`` or ``clip`` treat signed zeros in a particular way, the conditionals below mirror them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ai.trading.account import ACTION_NAMES, N_ACTIONS, Action
from ai.trading.episodes import episode_starts
from ai.trading.features import ACCOUNT_FEATURES, ACCOUNT_INDEX, MARKET_INDEX, N_FEATURES, OBS_CLIP
from ai.trading.market_features import MarketFeatures
from ai.trading.options import TradingEnvOptions


def observation_rows(features: MarketFeatures) -> np.ndarray:
    """``(n, 64)`` float32 observations with the market features in place and the account features 0."""
    rows = np.zeros((len(features), N_FEATURES), dtype=np.float32)
    rows[:, MARKET_INDEX] = features.values
    return rows


_ACCOUNT_ORDER = ("position_size", "position_side", "equity_ratio", "pnl_ratio", "drawdown", "holding_candles",
                  "exposure_change", "regime_alignment")
assert tuple(spec.name for spec in ACCOUNT_FEATURES) == _ACCOUNT_ORDER, "account features were reordered"
_ACCOUNT_SCALING = tuple((int(i), spec.center, spec.scale, spec.default)
                         for spec, i in zip(ACCOUNT_FEATURES, ACCOUNT_INDEX, strict=True))
"""(observation slot, center, scale, default) of each account feature, in :data:`ACCOUNT_FEATURES` order."""
_P0, _P1, _P2, _P3, _P4, _P5, _P6, _P7 = (int(i) for i in ACCOUNT_INDEX)
_CENTERED = all(spec.center == 0.0 for spec in ACCOUNT_FEATURES)
"""The account features are centered at 0, so ``(raw - 0.0) / scale`` is ``raw / scale`` to the bit."""
_S0, _S1, _S2, _S3, _S4, _S5, _S6, _S7 = (spec.scale for spec in ACCOUNT_FEATURES)
_LO, _HI = -OBS_CLIP, OBS_CLIP
_FLOAT_MAX = float(np.finfo(np.float64).max)
_HOLD, _LONG, _SHORT, _REDUCE = int(Action.HOLD), int(Action.LONG), int(Action.SHORT), int(Action.REDUCE)


def _nan_to_num(x: float) -> float:
    """``np.nan_to_num`` of a float: NaN is 0, infinities the largest finite floats."""
    if x != x:
        return 0.0
    return _FLOAT_MAX if x == math.inf else -_FLOAT_MAX if x == -math.inf else x


def _write_account(obs: np.ndarray, raw: tuple[float, ...]) -> None:
    """Scale raw account features into their slots: :func:`ai.trading.features.scale_raw`, value by value
    (``raw - raw`` is 0 exactly for finite values, NaN for NaN and infinities)."""
    for (slot, center, scale, default), value in zip(_ACCOUNT_SCALING, raw, strict=True):
        value = (value - center if value - value == 0.0 else default - center) / scale
        obs[slot] = _LO if value < _LO else _HI if value > _HI else value


class SingleEpisode:
    """One episode over a frame of market features: start, step, observation and info in plain floats."""

    __slots__ = ("features", "opts", "starts", "length", "_rows", "_growth", "_direction", "_high_vol",
                 "_timestamps", "_weights", "_limits", "_most", "_initial", "_bankrupt", "index", "steps", "running",
                 "exposure", "equity", "peak", "open_equity", "holding", "exposure_change")

    def __init__(self, features: MarketFeatures, opts: TradingEnvOptions) -> None:
        self.features = features
        self.opts = opts
        self.starts, self.length = episode_starts(features, opts)
        self._rows = observation_rows(features)
        closes = np.asarray(features.closes, dtype=np.float64)
        # close_{k+1} / close_k - 1 of every candle (the same operations as the reference step)
        self._growth: list[float] = (closes[1:] / closes[:-1] - 1.0).tolist()
        self._direction: list[float] = np.asarray(features.direction, dtype=np.float64).tolist()
        self._high_vol: list[float] = np.asarray(features.high_volatility, dtype=np.float64).tolist()
        self._timestamps: list[int] = features.timestamps.tolist()
        w = opts.reward
        self._weights = (float(w.pnl), float(w.drawdown), float(w.volatility_penalty), float(w.regime),
                         float(w.survival))
        self._limits = (float(opts.position_size), float(opts.max_exposure), float(opts.min_exposure),
                        float(opts.fee))
        self._most = float(opts.max_exposure)
        self._initial = float(opts.initial_equity)
        self._bankrupt = opts.bankrupt_fraction * opts.initial_equity
        self.index = 0
        self.steps = 0
        self.running = False
        self.exposure = self.equity = self.peak = self.open_equity = 0.0
        self.holding = self.exposure_change = 0.0

    def start(self, rng: np.random.Generator | None) -> tuple[np.ndarray, dict[str, Any]]:
        """A flat account at the first candle (random unless fixed); the first observation and info."""
        if self.starts.size == 1 or rng is None:
            first = int(self.starts[0])
        else:
            first = int(self.starts[rng.integers(self.starts.size)])
        self.index, self.steps, self.running = first, 0, True
        self.exposure = self.holding = self.exposure_change = 0.0
        self.equity = self.peak = self.open_equity = self._initial
        info = {"index": first, "timestamp": self._timestamps[first], "equity": self.equity,
                "exposure": self.exposure, "step_return": 0.0, "fee_paid": 0.0, "drawdown": 0.0}
        return self.observation(), info

    def observation(self) -> np.ndarray:
        """The current candle's observation (a new array)."""
        return self._observe(self.index, self.exposure, self.equity, self.open_equity, self.peak, self.holding,
                             self.exposure_change)

    def _observe(self, k: int, e: float, equity: float, open_equity: float, peak: float, holding: float,
                 change: float) -> np.ndarray:
        obs = self._rows[k].copy()
        if e != 0.0:
            r3 = equity / open_equity - 1.0 if open_equity != 0.0 else math.nan
        else:
            r3 = 0.0
        r2 = equity / self._initial - 1.0
        r4 = 1.0 - equity / peak if peak != 0.0 else 0.0
        r7 = self._direction[k] * e / self._most
        check = r2 + r3 + r4 + r7  # position, side, holding and change are finite by construction
        if check - check != 0.0 or not _CENTERED:  # an undefined value (the table's default): the slow way
            _write_account(obs, (abs(e), 1.0 if e > 0.0 else -1.0 if e < 0.0 else 0.0, r2, r3, _nan_to_num(r4),
                                 holding, change, r7))
            return obs
        # Scaled and clipped as scale_raw does, written through a memoryview (the float32 rounding of a
        # numpy assignment, without its per-item overhead).
        m: Any = memoryview(obs)
        lo, hi = _LO, _HI
        v = abs(e) / _S0
        m[_P0] = lo if v < lo else hi if v > hi else v
        v = (1.0 if e > 0.0 else -1.0 if e < 0.0 else 0.0) / _S1
        m[_P1] = lo if v < lo else hi if v > hi else v
        v = r2 / _S2
        m[_P2] = lo if v < lo else hi if v > hi else v
        v = r3 / _S3
        m[_P3] = lo if v < lo else hi if v > hi else v
        v = r4 / _S4
        m[_P4] = lo if v < lo else hi if v > hi else v
        v = holding / _S5
        m[_P5] = lo if v < lo else hi if v > hi else v
        v = change / _S6
        m[_P6] = lo if v < lo else hi if v > hi else v
        v = r7 / _S7
        m[_P7] = lo if v < lo else hi if v > hi else v
        return obs

    def step(self, action: int | np.integer) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Hold the decision ``action`` (0..5) from the current close to the next (see
        :mod:`ai.trading.account`). RuntimeError before :meth:`start` or after the episode's end."""
        if not self.running:
            raise RuntimeError("call reset() before step()")
        chosen = int(action)
        if not 0 <= chosen < N_ACTIONS:
            raise ValueError(f"action {action!r} is not one of 0..{N_ACTIONS - 1} ({', '.join(ACTION_NAMES)})")
        k, previous, equity, open_equity = self.index, self.exposure, self.equity, self.open_equity
        size, most, least, fee = self._limits
        if chosen == _HOLD:
            new = previous
        elif chosen == _LONG:  # np.minimum(np.maximum(p, 0) + size, most)
            new = (previous if previous > 0.0 else 0.0) + size
            new = new if new < most else most
        elif chosen == _SHORT:
            new = (previous if previous < 0.0 else 0.0) - size
            new = new if new > -most else -most
        elif chosen == _REDUCE:
            new = previous / 2.0
            new = 0.0 if abs(new) < least else new
        else:
            new = 0.0
        # opened: the new exposure is not flat and its sign differs from the previous one's
        if (new > 0.0 and not previous > 0.0) or (new < 0.0 and not previous < 0.0):
            open_equity = equity
            holding = 1.0
        else:
            holding = 0.0 if new == 0.0 else self.holding + 1.0
        fee_paid = fee * abs(new - previous)
        ret = new * self._growth[k] - fee_paid
        equity = equity * (1.0 + ret)
        if equity <= 0.0:  # np.maximum(equity, 0.0): -0.0 becomes 0.0, NaN stays
            equity = 0.0
        peak = self.peak
        if not peak > equity:
            peak = equity
        drawdown = 1.0 - equity / peak if peak > 0.0 else 1.0
        change = new - previous
        w_pnl, w_drawdown, w_volatility, w_regime, w_survival = self._weights
        reward = (w_pnl * ret - w_drawdown * (drawdown * drawdown) - w_volatility * abs(new) * self._high_vol[k]
                  + w_regime * (self._direction[k] * new / most) + w_survival)
        terminated = equity <= self._bankrupt
        steps = self.steps + 1
        truncated = steps >= self.length and not terminated
        if terminated or truncated:
            self.running = False
        self.index, self.steps = k + 1, steps
        self.exposure, self.equity, self.peak, self.open_equity = new, equity, peak, open_equity
        self.holding, self.exposure_change = holding, change
        info = {"index": k + 1, "timestamp": self._timestamps[k + 1], "equity": equity, "exposure": new,
                "step_return": ret, "fee_paid": fee_paid, "drawdown": drawdown}
        return self._observe(k + 1, new, equity, open_equity, peak, holding, change), reward, terminated, truncated, info
