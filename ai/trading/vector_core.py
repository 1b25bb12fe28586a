"""The fast core of :class:`ai.trading.vector_env.TradingVectorEnv`: ``n`` episodes in preallocated arrays.

The reference core (:class:`ai.trading.episodes.Episodes` with :class:`ai.trading.account.Account`) allocates a
few dozen arrays per step and recomputes every observation from scratch. :class:`VectorEpisodes` keeps the
account of every episode in one ``(6, n)`` array, steps it in place (numpy ``out=`` arguments and reused
scratch buffers, or the numba kernel of :mod:`ai.trading.numba_kernel` when numba is installed, the ``fast``
extra) and builds observations by taking precomputed rows (market features in place) and writing the 8 account
features. Both kernels repeat the reference arithmetic operation for operation, in the same order, so the
transitions are bit-identical to the reference core's (the tests compare all three).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ai.trading import kernel_layout as layout
from ai.trading.account import N_ACTIONS
from ai.trading.episodes import episode_starts
from ai.trading.features import ACCOUNT_FEATURES, OBS_CLIP
from ai.trading.market_features import MarketFeatures
from ai.trading.options import TradingEnvOptions
from ai.trading.single_episode import observation_rows


class StepResult:
    """Fresh arrays of one step (the rows of three blocks): observations, floats, integers and flags."""

    __slots__ = ("observations", "floats", "ints", "flags")

    def __init__(self, n: int, n_features: int) -> None:
        self.observations = np.empty((n, n_features), dtype=np.float32)
        self.floats = np.empty((6, n))
        self.ints = np.empty((2, n), dtype=np.int64)
        self.flags = np.empty((2, n), dtype=bool)


class VectorEpisodes:
    """``n`` episodes over one frame of market features, stepped in place by the numpy or the numba kernel."""

    def __init__(self, features: MarketFeatures, opts: TradingEnvOptions, n: int, kernel: str) -> None:
        self.features = features
        self.n = n
        self.starts, self.length = episode_starts(features, opts)
        self.rows = observation_rows(features)
        self.market = layout.market_block(features)
        self.timestamps = np.ascontiguousarray(features.timestamps, dtype=np.int64)
        self.params = layout.parameters(opts)
        self.state = np.zeros((6, n))
        self.running = np.zeros((2, n))
        self.index = np.zeros(n, dtype=np.int64)
        self.steps = np.zeros(n, dtype=np.int64)
        self.kernel = kernel
        self._step: Callable[..., int]
        self._observe: Callable[..., None]
        if kernel == "numba":
            try:
                from ai.trading.numba_kernel import observe_numba, step_numba  # the optional fast extra
            except ImportError as exc:
                raise ValueError(f"kernel 'numba' needs numba ({exc}); install the fast extra "
                                 "(pip install '.[fast]') or use kernel 'numpy'") from exc
            self._step, self._observe = step_numba, observe_numba
        elif kernel == "numpy":
            scratch = NumpyKernel(n)
            self._step, self._observe = scratch.step, scratch.observe
        else:
            raise ValueError(f"unknown kernel {kernel!r}; use 'numba' or 'numpy'")

    def start(self, ids: np.ndarray, rngs: list[np.random.Generator]) -> None:
        """Put episodes ``ids`` at their first candles (each drawn from its own generator) with flat accounts
        and zero running totals."""
        for i in ids.tolist():
            if self.starts.size == 1:
                self.index[i] = self.starts[0]
            else:
                self.index[i] = self.starts[rngs[i].integers(self.starts.size)]
        self.steps[ids] = 0
        self.state[:, ids] = 0.0
        self.state[layout.EQUITY:layout.OPEN_EQUITY + 1, ids] = self.params[layout.INITIAL]
        self.running[:, ids] = 0.0

    def observations(self, ids: np.ndarray) -> np.ndarray:
        """Fresh observations ``(len(ids), 64)`` of episodes ``ids`` at their current candles."""
        out = np.empty((ids.size, self.rows.shape[1]), dtype=np.float32)
        self._observe(np.ascontiguousarray(ids, dtype=np.int64), self.index, self.state, self.rows,
                      self.market, self.params, layout.SLOTS, layout.SCALING, out)
        return out

    def step(self, actions: np.ndarray) -> tuple[StepResult, int]:
        """Advance every episode one candle: fresh results and the number of episodes that ended.

        Raises ValueError, changing nothing, when an action is not one of the six."""
        result = StepResult(self.n, self.rows.shape[1])
        ended = self._step(actions, self.index, self.steps, self.state, self.running, self.market,
                           self.timestamps, self.rows, self.params, self.length, layout.SLOTS,
                           layout.SCALING, result.observations, result.floats, result.ints, result.flags)
        if ended < 0:
            raise ValueError(f"actions must be integers in 0..{N_ACTIONS - 1}, got {actions.tolist()}")
        return result, ended


class NumpyKernel:
    """The numpy kernel: the reference arithmetic in place, with scratch buffers made once for ``n`` episodes."""

    def __init__(self, n: int) -> None:
        self.new, self.previous, self.a, self.b, self.c = (np.empty(n) for _ in range(5))
        self.mask, self.other = np.empty(n, dtype=bool), np.empty(n, dtype=bool)
        self.account = np.empty((n, len(ACCOUNT_FEATURES)))
        self.bad = np.empty((n, len(ACCOUNT_FEATURES)), dtype=bool)
        self.everyone = np.arange(n, dtype=np.int64)

    def _next_exposure(self, actions: np.ndarray, p: np.ndarray, params: np.ndarray) -> np.ndarray:
        """:func:`ai.trading.account.next_exposure` into ``self.new``."""
        new, a, mask = self.new, self.a, self.mask
        new.fill(0.0)  # CLOSE, EMERGENCY_FLATTEN
        np.copyto(new, p, where=np.equal(actions, 0, out=mask))
        np.maximum(p, 0.0, out=a)
        a += params[layout.SIZE]
        np.copyto(new, np.minimum(a, params[layout.MOST], out=a), where=np.equal(actions, 1, out=mask))
        np.minimum(p, 0.0, out=a)
        a -= params[layout.SIZE]
        np.copyto(new, np.maximum(a, -params[layout.MOST], out=a), where=np.equal(actions, 2, out=mask))
        np.divide(p, 2.0, out=a)
        np.copyto(a, 0.0, where=np.less(np.abs(a, out=self.b), params[layout.LEAST], out=self.other))
        np.copyto(new, a, where=np.equal(actions, 3, out=mask))
        return new

    def step(self, actions: np.ndarray, index: np.ndarray, steps: np.ndarray, state: np.ndarray,
             running: np.ndarray, market: np.ndarray, timestamps: np.ndarray, rows: np.ndarray,
             params: np.ndarray, length: int, slots: np.ndarray, scaling: np.ndarray, obs: np.ndarray,
             floats: np.ndarray, ints: np.ndarray, flags: np.ndarray) -> int:
        """One step of every episode (the numba kernel's contract): -1 for an invalid action, else the number
        of episodes that ended."""
        if actions.size and (actions.min() < 0 or actions.max() >= N_ACTIONS):
            return -1
        exposure, equity, peak, open_equity, holding, change = state
        previous, new = self.previous, self._next_exposure(actions, state[layout.EXPOSURE], params)
        np.copyto(previous, exposure)
        opened = np.not_equal(np.sign(new, out=self.a), np.sign(previous, out=self.b), out=self.mask)
        opened &= np.not_equal(new, 0.0, out=self.other)
        np.copyto(open_equity, equity, where=opened)
        ret, fee_paid, drawdown = floats[layout.STEP_RETURN], floats[layout.FEE_PAID], floats[layout.DRAWDOWN]
        np.take(market[layout.GROWTH], index, out=ret)
        ret *= new
        np.subtract(new, previous, out=fee_paid)
        np.abs(fee_paid, out=fee_paid)
        fee_paid *= params[layout.FEE]
        ret -= fee_paid
        np.add(ret, 1.0, out=self.a)
        equity *= self.a
        np.maximum(equity, 0.0, out=equity)
        np.maximum(peak, equity, out=peak)
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(equity, peak, out=drawdown)
        np.subtract(1.0, drawdown, out=drawdown)
        np.copyto(drawdown, 1.0, where=np.logical_not(np.greater(peak, 0.0, out=self.other), out=self.other))
        holding += 1.0
        np.copyto(holding, 1.0, where=opened)
        np.copyto(holding, 0.0, where=np.equal(new, 0.0, out=self.other))
        np.subtract(new, previous, out=change)
        np.copyto(exposure, new)
        self._reward(floats, exposure, np.take(market[layout.HIGH_VOLATILITY], index, out=self.b),
                     np.take(market[layout.DIRECTION], index, out=self.c), params)
        np.less_equal(equity, params[layout.BANKRUPT], out=flags[layout.TERMINATED])
        index += 1
        steps += 1
        np.greater_equal(steps, length, out=flags[layout.TRUNCATED])
        flags[layout.TRUNCATED] &= np.logical_not(flags[layout.TERMINATED], out=self.other)
        running[layout.RETURN] += floats[layout.REWARD]
        running[layout.LENGTH] += 1.0
        ints[layout.INFO_INDEX] = index
        np.take(timestamps, index, out=ints[layout.INFO_TIMESTAMP])
        floats[layout.INFO_EQUITY] = equity
        floats[layout.INFO_EXPOSURE] = exposure
        self.observe(self.everyone, index, state, rows, market, params, slots, scaling, obs)
        ended = np.logical_or(flags[layout.TERMINATED], flags[layout.TRUNCATED], out=self.other)
        return int(np.count_nonzero(ended))

    def _reward(self, floats: np.ndarray, exposure: np.ndarray, high_volatility: np.ndarray,
                direction: np.ndarray, params: np.ndarray) -> None:
        """:func:`ai.trading.account.compute_reward` into ``floats[REWARD]`` (scratch ``a``)."""
        out, a, drawdown = floats[layout.REWARD], self.a, floats[layout.DRAWDOWN]
        np.multiply(floats[layout.STEP_RETURN], params[layout.W_PNL], out=out)
        np.multiply(drawdown, drawdown, out=a)
        a *= params[layout.W_DRAWDOWN]
        out -= a
        np.abs(exposure, out=a)
        a *= params[layout.W_VOLATILITY]
        a *= high_volatility
        out -= a
        np.multiply(direction, exposure, out=a)
        a /= params[layout.MOST]
        a *= params[layout.W_REGIME]
        out += a
        out += params[layout.W_SURVIVAL]

    def observe(self, ids: np.ndarray, index: np.ndarray, state: np.ndarray, rows: np.ndarray,
                market: np.ndarray, params: np.ndarray, slots: np.ndarray, scaling: np.ndarray,
                obs: np.ndarray) -> None:
        """Observations of episodes ``ids`` into ``obs``: their rows with the scaled account features
        (:func:`ai.trading.features.account_raw` and :func:`ai.trading.features.scale_raw`)."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # as undefined as the reference's
            self._observe_into(ids, index[ids], state, rows, market, params, slots, scaling, obs)

    def _observe_into(self, ids: np.ndarray, k: np.ndarray, state: np.ndarray, rows: np.ndarray, market: np.ndarray,
                 params: np.ndarray, slots: np.ndarray, scaling: np.ndarray, obs: np.ndarray) -> None:
        np.take(rows, k, axis=0, out=obs)
        exposure, equity, peak, open_equity, holding, change = (row[ids] for row in state)
        raw = self.account[: ids.size]
        np.abs(exposure, out=raw[:, 0])
        np.sign(exposure, out=raw[:, 1])
        np.divide(equity, params[layout.INITIAL], out=raw[:, 2])
        raw[:, 2] -= 1.0
        pnl = np.where(open_equity != 0, equity / np.where(open_equity != 0, open_equity, 1.0), np.nan) - 1.0
        raw[:, 3] = np.where(exposure != 0, pnl, 0.0)
        ratio = np.where(peak != 0, equity / np.where(peak != 0, peak, 1.0), np.nan)
        raw[:, 4] = np.nan_to_num(1.0 - ratio, nan=0.0)
        raw[:, 5] = holding
        raw[:, 6] = change
        np.multiply(market[layout.DIRECTION, k], exposure, out=raw[:, 7])
        raw[:, 7] /= params[layout.MOST]
        bad = np.logical_not(np.isfinite(raw, out=self.bad[: ids.size]), out=self.bad[: ids.size])
        if bad.any():
            np.copyto(raw, np.broadcast_to(scaling[layout.DEFAULT], raw.shape), where=bad)
        raw -= scaling[layout.CENTER]
        raw /= scaling[layout.SCALE]
        np.clip(raw, -OBS_CLIP, OBS_CLIP, out=raw)
        obs[:, slots] = raw
