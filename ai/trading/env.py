"""The trading environment of the PPO agent: one symbol's candles, six actions, 64 features, exposure accounting.

``TradingEnv(candles, **options)`` is a plain :class:`gymnasium.Env` (usable by any RL library);
``TradingVectorEnv(candles, num_envs, **options)`` steps many episodes at once in numpy for training speed,
giving exactly the transitions of ``num_envs`` single environments reset with seeds ``seed + i``.

Options (keyword arguments, see :class:`TradingEnvOptions`): ``episode_length`` (None: up to the last candle),
``start_index`` (a fixed first candle instead of a random one, for evaluation), ``warmup_candles``,
``initial_equity``, ``position_size``, ``max_exposure``, ``min_exposure``, ``fee``, ``bankrupt_fraction``,
``high_volatility_percentile`` and ``reward`` (a :class:`RewardWeights` or a mapping of its fields).
:func:`options_from_config` builds them from the ``[trading_agent]`` and ``[costs]`` configuration.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium.utils import seeding
from gymnasium.vector.utils import batch_space

from ai.trading.features import (
    N_FEATURES,
    OBS_CLIP,
    MarketFeatures,
    account_raw,
    assemble,
    compute_market_features,
)
from analytics.baselines import step_return
from core.config import Config
from core.errors import DataError


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


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the reward terms (see :func:`compute_reward`)."""

    pnl: float = 100.0
    drawdown: float = 50.0
    volatility_penalty: float = 1.0
    regime: float = 2.0
    survival: float = 0.1


@dataclass(frozen=True)
class TradingEnvOptions:
    """Everything a trading environment can be configured with (keyword arguments of the environments)."""

    episode_length: int | None = 512
    start_index: int | None = None
    warmup_candles: int = 60
    initial_equity: float = 10_000.0
    position_size: float = 0.1
    max_exposure: float = 1.0
    min_exposure: float = 0.01
    fee: float = 0.001
    bankrupt_fraction: float = 0.05
    high_volatility_percentile: float = 0.8
    reward: RewardWeights = field(default_factory=RewardWeights)

    def __post_init__(self) -> None:
        if isinstance(self.reward, Mapping):
            object.__setattr__(self, "reward", RewardWeights(**self.reward))
        problems = []
        if self.episode_length is not None and self.episode_length < 1:
            problems.append(f"episode_length must be >= 1 or None, got {self.episode_length}")
        if self.start_index is not None and self.start_index < 0:
            problems.append(f"start_index must be >= 0, got {self.start_index}")
        if self.warmup_candles < 0:
            problems.append(f"warmup_candles must be >= 0, got {self.warmup_candles}")
        if not self.initial_equity > 0:
            problems.append(f"initial_equity must be > 0, got {self.initial_equity}")
        if not 0 < self.position_size <= self.max_exposure:
            problems.append(f"position_size must be in (0, max_exposure={self.max_exposure}], got {self.position_size}")
        if not 0 <= self.min_exposure < self.position_size:
            problems.append(f"min_exposure must be in [0, position_size), got {self.min_exposure}")
        if not 0 <= self.fee < 1:
            problems.append(f"fee must be in [0, 1), got {self.fee}")
        if not 0 <= self.bankrupt_fraction < 1:
            problems.append(f"bankrupt_fraction must be in [0, 1), got {self.bankrupt_fraction}")
        if problems:
            raise ValueError("trading environment options: " + "; ".join(problems))

    def as_dict(self) -> dict[str, Any]:
        """Plain data (checkpoint metadata, logs)."""
        return dataclasses.asdict(self)


def options_from_config(cfg: Config, **overrides: Any) -> dict[str, Any]:
    """Environment options from ``[trading_agent]`` (and ``costs.fee``), with ``overrides`` on top."""
    ta = cfg.trading_agent
    options: dict[str, Any] = {
        "episode_length": ta.episode_length,
        "warmup_candles": ta.warmup_candles,
        "initial_equity": ta.initial_equity,
        "position_size": ta.position_size,
        "max_exposure": ta.max_exposure,
        "min_exposure": ta.min_exposure,
        "fee": cfg.costs.fee,
        "bankrupt_fraction": ta.bankrupt_fraction,
        "high_volatility_percentile": ta.high_volatility_percentile,
        "reward": RewardWeights(ta.reward_pnl, ta.reward_drawdown, ta.reward_volatility_penalty, ta.reward_regime,
                                ta.reward_survival),
    }
    options.update(overrides)
    return options


# ------------------------------------------------------------------------------------------------- accounting


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


# ----------------------------------------------------------------------------------------------- episode core


def _features_for(candles: pd.DataFrame | None, features: MarketFeatures | None,
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


class _Episodes:
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


def _scalar_info(infos: dict[str, np.ndarray], i: int) -> dict[str, Any]:
    return {key: (int(v[i]) if v.dtype.kind in "iu" else float(v[i])) for key, v in infos.items()}


def _observation_space() -> gym.spaces.Box:
    return gym.spaces.Box(-OBS_CLIP, OBS_CLIP, (N_FEATURES,), np.float32)


# -------------------------------------------------------------------------------------------- environments


class TradingEnv(gym.Env):
    """Trading one symbol on candles with exposure accounting.

    ## Action Space
    ``Discrete(6)``: 0 HOLD (keep the exposure), 1 LONG (add ``position_size`` of long exposure, default 10 %
    of equity, up to ``max_exposure``; closes a short first), 2 SHORT (the mirror), 3 REDUCE (halve the
    exposure; below ``min_exposure`` it is closed), 4 CLOSE (flat), 5 EMERGENCY_FLATTEN (flat at once whatever
    the state; in multi-asset use every position). See :class:`Action`.

    ## Observation Space
    ``Box(-10, 10, (64,), float32)``: 56 market features of the current candle (precomputed for the whole frame,
    causal: only candles up to the current one are used) and 8 account features (position size and side,
    equity ratio, P&L ratio, drawdown, holding time, last exposure change, regime alignment), each scaled as
    the table of :mod:`ai.trading.features` documents.

    ## Rewards
    A decision at candle k's close sets the exposure ``p_k``; the step's return on equity is
    ``p_k * (close_{k+1} / close_k - 1) - fee * |p_k - p_{k-1}|`` (:func:`analytics.baselines.step_return`).
    The reward is ``pnl * return - drawdown * dd**2 - volatility_penalty * |p_k| * high_volatility
    + regime * alignment + survival`` (:func:`compute_reward`; weights in :class:`RewardWeights`).

    ## Starting State
    A flat account with ``initial_equity`` at a candle drawn uniformly (from ``self.np_random``) among those
    that leave a whole episode after the warm-up candles, or at ``start_index`` when it is given.

    ## Episode End
    Terminated when equity falls to ``bankrupt_fraction`` of the initial equity or below (wiped out);
    truncated after ``episode_length`` steps (or at the last candle when ``episode_length`` is None). The
    episode never runs past the data: its last step's outcome is the last candle's close.

    ## Info
    ``index`` and ``timestamp`` of the current candle, ``equity``, ``exposure``, ``step_return``, ``fee_paid``
    and ``drawdown`` (the step's; 0 after a reset).
    """

    metadata = {"render_modes": []}

    def __init__(self, candles: pd.DataFrame | None = None, *, features: MarketFeatures | None = None,
                 **options: Any) -> None:
        self.options = TradingEnvOptions(**options)
        self.features = _features_for(candles, features, self.options)
        self._core = _Episodes(self.features, self.options, 1)
        self.action_space = gym.spaces.Discrete(N_ACTIONS)
        self.observation_space = _observation_space()
        self._started = False

    @property
    def episode_steps(self) -> int:
        """Steps of one episode (the episode length capped by the candles there are)."""
        return self._core.length

    @property
    def account(self) -> Account:
        return self._core.account

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._core.start(0, self.np_random)
        self._started = True
        return self._core.observations()[0], _scalar_info(self._core.infos(), 0)

    def step(self, action: int | np.integer) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(int(action)):
            raise ValueError(f"action {action!r} is not one of 0..{N_ACTIONS - 1} ({', '.join(ACTION_NAMES)})")
        outcome, terminated, truncated = self._core.step(np.array([int(action)]))
        if terminated[0] or truncated[0]:
            self._started = False
        return (self._core.observations()[0], float(outcome.reward[0]), bool(terminated[0]), bool(truncated[0]),
                _scalar_info(self._core.infos(outcome), 0))


class TradingVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` trading episodes stepped together in numpy over one candle frame (shared features).

    Same transitions as ``num_envs`` :class:`TradingEnv` objects reset with seeds ``seed + i`` (or the given
    list) and reset again, without a seed, as soon as they end: autoreset happens in the same step, the final
    observation and info of an ended episode are in ``infos["final_obs"]`` and ``infos["final_info"]``
    (Gymnasium's ``AutoresetMode.SAME_STEP``, which :mod:`ai.ppo.algorithm` needs).

    ``steps_taken`` (transitions over all episodes), ``episodes_completed``, ``episode_returns`` (the last 100)
    and an optional ``on_episode_end(count, ret, length)`` hook report progress, for progress displays.
    """

    metadata = {"render_modes": [], "autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self, candles: pd.DataFrame | None = None, num_envs: int = 4, *,
                 features: MarketFeatures | None = None, **options: Any) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.options = TradingEnvOptions(**options)
        self.features = _features_for(candles, features, self.options)
        self.num_envs = num_envs
        self._core = _Episodes(self.features, self.options, num_envs)
        self.single_action_space = gym.spaces.Discrete(N_ACTIONS)
        self.single_observation_space = _observation_space()
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._rngs: list[np.random.Generator] | None = None
        self._running_return = np.zeros(num_envs)
        self._running_length = np.zeros(num_envs, dtype=np.int64)
        self.steps_taken = 0
        self.episodes_completed = 0
        self.episode_returns: deque[float] = deque(maxlen=100)
        self.on_episode_end: Callable[[int, float, int], None] | None = None

    @property
    def episode_steps(self) -> int:
        return self._core.length

    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        seeds = _seed_list(seed, self.num_envs)
        if self._rngs is None or seed is not None:
            current = self._rngs or [None] * self.num_envs
            self._rngs = [seeding.np_random(s)[0] if (s is not None or current[i] is None) else current[i]
                          for i, s in enumerate(seeds)]
        for i in range(self.num_envs):
            self._core.start(i, self._rngs[i])
        self._running_return[:] = 0.0
        self._running_length[:] = 0
        return self._core.observations(), _vector_infos(self._core.infos())

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._rngs is None:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)
        outcome, terminated, truncated = self._core.step(actions)
        self.steps_taken += self.num_envs
        observations = self._core.observations()
        infos = _vector_infos(self._core.infos(outcome))
        ended = np.flatnonzero(terminated | truncated)
        if ended.size:
            infos = self._autoreset(ended, observations, infos, outcome.reward)
        else:
            self._track(outcome.reward, ended)
        return observations, outcome.reward.astype(np.float64), terminated, truncated, infos

    def _autoreset(self, ended: np.ndarray, observations: np.ndarray, infos: dict[str, Any],
                   rewards: np.ndarray) -> dict[str, Any]:
        """Reset ended episodes in place; their step results go to final_obs / final_info (SAME_STEP)."""
        assert self._rngs is not None
        final: dict[str, Any] = {}
        for i in ended:
            final = self._add_info(final, {"final_obs": observations[i].copy(),
                                           "final_info": {k: v for k, v in _scalar_info(infos, i).items()
                                                          if not k.startswith("_")}}, int(i))
            self._core.start(int(i), self._rngs[i])
        self._track(rewards, ended)
        fresh = self._core.infos()
        observations[ended] = self._core.observations()[ended]
        for key, values in fresh.items():
            infos[key][ended] = values[ended]
        infos.update(final)
        return infos

    def _track(self, rewards: np.ndarray, ended: np.ndarray) -> None:
        self._running_return += rewards
        self._running_length += 1
        for i in ended:
            self.episodes_completed += 1
            self.episode_returns.append(float(self._running_return[i]))
            if self.on_episode_end is not None:
                self.on_episode_end(self.episodes_completed, float(self._running_return[i]),
                                    int(self._running_length[i]))
            self._running_return[i] = 0.0
            self._running_length[i] = 0


def _seed_list(seed: int | Sequence[int | None] | None, n: int) -> list[int | None]:
    if seed is None:
        return [None] * n
    if isinstance(seed, (int, np.integer)):
        return [int(seed) + i for i in range(n)]
    seeds = list(seed)
    if len(seeds) != n:
        raise ValueError(f"expected {n} seeds, got {len(seeds)}")
    return seeds


def _vector_infos(infos: dict[str, np.ndarray]) -> dict[str, Any]:
    # Gymnasium's vector info layout: every key is present for every environment, with an all-True mask.
    out: dict[str, Any] = {}
    for key, values in infos.items():
        out[key] = np.array(values, dtype=np.int64 if values.dtype.kind in "iu" else np.float64)
        out[f"_{key}"] = np.ones(len(values), dtype=bool)
    return out
