"""The array layout shared by the kernels of :mod:`ai.trading.vector_core` and :mod:`ai.trading.numba_kernel`:
which row of which block holds what, and the blocks made once per frame of features and set of options."""

from __future__ import annotations

import numpy as np

from ai.trading.features import ACCOUNT_FEATURES, ACCOUNT_INDEX
from ai.trading.market_features import MarketFeatures
from ai.trading.options import TradingEnvOptions

EXPOSURE, EQUITY, PEAK, OPEN_EQUITY, HOLDING, CHANGE = range(6)
"""Rows of the ``(6, n)`` account state."""
SIZE, MOST, LEAST, FEE, W_PNL, W_DRAWDOWN, W_VOLATILITY, W_REGIME, W_SURVIVAL, INITIAL, BANKRUPT = range(11)
"""Entries of the parameter vector (:func:`parameters`)."""
GROWTH, HIGH_VOLATILITY, DIRECTION = range(3)
"""Rows of the ``(3, candles)`` market block: ``close_{k+1} / close_k - 1``, the high-volatility flag (0/1) and
the regime direction of each candle."""
CENTER, SCALE, DEFAULT = range(3)
"""Rows of the ``(3, 8)`` scaling of the account features."""
REWARD, STEP_RETURN, FEE_PAID, DRAWDOWN, INFO_EQUITY, INFO_EXPOSURE = range(6)
"""Rows of a step's float results."""
INFO_INDEX, INFO_TIMESTAMP = range(2)
"""Rows of a step's integer results."""
TERMINATED, TRUNCATED = range(2)
"""Rows of a step's flags."""
RETURN, LENGTH = range(2)
"""Rows of the running episode totals (return and steps so far)."""

SLOTS = np.array(ACCOUNT_INDEX, dtype=np.int64)
"""Observation positions of the account features."""
SCALING = np.array([[s.center for s in ACCOUNT_FEATURES], [s.scale for s in ACCOUNT_FEATURES],
                    [s.default for s in ACCOUNT_FEATURES]], dtype=np.float64)


def parameters(opts: TradingEnvOptions) -> np.ndarray:
    """The options a step needs, as float64 in the order of the ``SIZE ... BANKRUPT`` constants."""
    w = opts.reward
    return np.array([opts.position_size, opts.max_exposure, opts.min_exposure, opts.fee, w.pnl, w.drawdown,
                     w.volatility_penalty, w.regime, w.survival, opts.initial_equity,
                     opts.bankrupt_fraction * opts.initial_equity], dtype=np.float64)


def market_block(features: MarketFeatures) -> np.ndarray:
    """The ``(3, candles)`` market block (the growth of the last candle is NaN: no step starts there)."""
    closes = np.asarray(features.closes, dtype=np.float64)
    block = np.full((3, len(features)), np.nan)
    block[GROWTH, :-1] = closes[1:] / closes[:-1] - 1.0  # the reference step's operations, so the same bits
    block[HIGH_VOLATILITY] = np.asarray(features.high_volatility, dtype=np.float64)
    block[DIRECTION] = np.asarray(features.direction, dtype=np.float64)
    return block
