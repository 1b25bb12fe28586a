"""The numba kernel of :class:`ai.trading.vector_core.VectorEpisodes` (the optional ``fast`` extra).

One loop over the episodes does a whole step: the action's exposure, the accounting, the reward and the next
observation, with no temporary arrays. The arithmetic is the reference's (:mod:`ai.trading.account`,
:mod:`ai.trading.features`) operation for operation, in the same order, without fast-math, so the results
are bit-identical to the numpy kernel's; comparisons mirror numpy's ``maximum``/``minimum``/``sign``/``clip``
(which keep the second operand on ties and map -0.0 to a +0.0 sign). Importing this module compiles nothing:
numba compiles each function at its first call and caches the machine code.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ai.trading.account import N_ACTIONS
from ai.trading.features import OBS_CLIP
from ai.trading.kernel_layout import (
    BANKRUPT,
    CENTER,
    CHANGE,
    DEFAULT,
    DIRECTION,
    DRAWDOWN,
    EQUITY,
    EXPOSURE,
    FEE,
    FEE_PAID,
    GROWTH,
    HIGH_VOLATILITY,
    HOLDING,
    INFO_EQUITY,
    INFO_EXPOSURE,
    INFO_INDEX,
    INFO_TIMESTAMP,
    INITIAL,
    LEAST,
    LENGTH,
    MOST,
    OPEN_EQUITY,
    PEAK,
    RETURN,
    REWARD,
    SCALE,
    SIZE,
    STEP_RETURN,
    TERMINATED,
    TRUNCATED,
    W_DRAWDOWN,
    W_PNL,
    W_REGIME,
    W_SURVIVAL,
    W_VOLATILITY,
)

# error_model="numpy": a float division by zero gives inf/NaN as in numpy instead of a Python exception check
# on every division (the divisions that could hit zero are guarded as the reference guards them).
_FLOAT_MAX = float(np.finfo(np.float64).max)


@njit(cache=True, error_model="numpy", inline="always")
def _sign(x: float) -> float:
    return 1.0 if x > 0.0 else -1.0 if x < 0.0 else 0.0


@njit(cache=True, error_model="numpy", inline="always")
def _next_exposure(p: float, action: int, params: np.ndarray) -> float:
    if action == 0:
        return p
    if action == 1:
        longer = (p if p > 0.0 else 0.0) + params[SIZE]
        return longer if longer < params[MOST] else params[MOST]
    if action == 2:
        shorter = (p if p < 0.0 else 0.0) - params[SIZE]
        return shorter if shorter > -params[MOST] else -params[MOST]
    if action == 3:
        halved = p / 2.0
        return 0.0 if abs(halved) < params[LEAST] else halved
    return 0.0


@njit(cache=True, error_model="numpy", inline="always")
def _observe_one(i: int, row: int, k: int, state: np.ndarray, rows: np.ndarray, market: np.ndarray,
                 params: np.ndarray, slots: np.ndarray, scaling: np.ndarray, obs: np.ndarray,
                 raw: np.ndarray) -> None:
    """Observation of episode ``i`` at candle ``k`` into ``obs[row]``."""
    for j in range(rows.shape[1]):
        obs[row, j] = rows[k, j]
    exposure, equity = state[EXPOSURE, i], state[EQUITY, i]
    open_equity, peak = state[OPEN_EQUITY, i], state[PEAK, i]
    raw[0] = abs(exposure)
    raw[1] = _sign(exposure)
    raw[2] = equity / params[INITIAL] - 1.0
    if exposure != 0.0:
        raw[3] = (equity / open_equity if open_equity != 0.0 else math.nan) - 1.0
    else:
        raw[3] = 0.0
    drawdown = 1.0 - (equity / peak if peak != 0.0 else math.nan)
    if math.isnan(drawdown):  # np.nan_to_num
        drawdown = 0.0
    elif math.isinf(drawdown):
        drawdown = _FLOAT_MAX if drawdown > 0.0 else -_FLOAT_MAX
    raw[4] = drawdown
    raw[5] = state[HOLDING, i]
    raw[6] = state[CHANGE, i]
    raw[7] = market[DIRECTION, k] * exposure / params[MOST]
    for f in range(raw.size):
        value = raw[f] if math.isfinite(raw[f]) else scaling[DEFAULT, f]
        value = (value - scaling[CENTER, f]) / scaling[SCALE, f]
        obs[row, slots[f]] = -OBS_CLIP if value < -OBS_CLIP else OBS_CLIP if value > OBS_CLIP else value


@njit(cache=True, error_model="numpy")
def observe_numba(ids: np.ndarray, index: np.ndarray, state: np.ndarray, rows: np.ndarray, market: np.ndarray,
                  params: np.ndarray, slots: np.ndarray, scaling: np.ndarray, obs: np.ndarray) -> None:
    raw = np.empty(slots.size)
    for row in range(ids.size):
        i = ids[row]
        _observe_one(i, row, index[i], state, rows, market, params, slots, scaling, obs, raw)


@njit(cache=True, error_model="numpy")
def step_numba(actions: np.ndarray, index: np.ndarray, steps: np.ndarray, state: np.ndarray, running: np.ndarray,
               market: np.ndarray, timestamps: np.ndarray, rows: np.ndarray, params: np.ndarray, length: int,
               slots: np.ndarray, scaling: np.ndarray, obs: np.ndarray, floats: np.ndarray, ints: np.ndarray,
               flags: np.ndarray) -> int:
    """One step of every episode: -1 (nothing changed) for an invalid action, else how many episodes ended."""
    for i in range(actions.size):
        if actions[i] < 0 or actions[i] >= N_ACTIONS:
            return -1
    raw = np.empty(slots.size)
    ended = 0
    for i in range(index.size):
        k = index[i]
        previous, equity = state[EXPOSURE, i], state[EQUITY, i]
        new = _next_exposure(previous, actions[i], params)
        opened = new != 0.0 and _sign(new) != _sign(previous)
        if opened:
            state[OPEN_EQUITY, i] = equity
        fee_paid = params[FEE] * abs(new - previous)
        ret = new * market[GROWTH, k] - fee_paid
        equity = equity * (1.0 + ret)
        if equity <= 0.0:  # np.maximum(equity, 0.0): -0.0 becomes 0.0, NaN stays
            equity = 0.0
        peak = state[PEAK, i] if state[PEAK, i] > equity else equity
        drawdown = 1.0 - equity / peak if peak > 0.0 else 1.0
        if new == 0.0:
            state[HOLDING, i] = 0.0
        elif opened:
            state[HOLDING, i] = 1.0
        else:
            state[HOLDING, i] = state[HOLDING, i] + 1.0
        state[CHANGE, i] = new - previous
        state[EXPOSURE, i], state[EQUITY, i], state[PEAK, i] = new, equity, peak
        reward = (params[W_PNL] * ret - params[W_DRAWDOWN] * (drawdown * drawdown)
                  - params[W_VOLATILITY] * abs(new) * market[HIGH_VOLATILITY, k]
                  + params[W_REGIME] * (market[DIRECTION, k] * new / params[MOST]) + params[W_SURVIVAL])
        terminated = equity <= params[BANKRUPT]
        index[i] = k + 1
        steps[i] += 1
        truncated = steps[i] >= length and not terminated
        running[RETURN, i] += reward
        running[LENGTH, i] += 1.0
        ended += terminated or truncated
        floats[REWARD, i], floats[STEP_RETURN, i], floats[FEE_PAID, i] = reward, ret, fee_paid
        floats[DRAWDOWN, i], floats[INFO_EQUITY, i], floats[INFO_EXPOSURE, i] = drawdown, equity, new
        ints[INFO_INDEX, i], ints[INFO_TIMESTAMP, i] = k + 1, timestamps[k + 1]
        flags[TERMINATED, i], flags[TRUNCATED, i] = terminated, truncated
        _observe_one(i, i, k + 1, state, rows, market, params, slots, scaling, obs, raw)
    return ended
