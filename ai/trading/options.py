"""The options a trading environment runs with, taken from the configuration types (no defaults of its own).

An environment runs with a :class:`core.config.TradingAgentConfig` (the ``[trading_agent]`` section: account,
exposure limits, episode length, warm-up, reward weights), the fee of a :class:`core.config.CostsConfig`, and
two per-run settings the configuration does not hold: ``start_index`` (a fixed first candle, for evaluation)
and whether the episode runs to the last candle (``episode_length=None``). Defaults and checks are those of
the configuration dataclasses: an out-of-range value is a :class:`core.errors.ConfigError` naming its key.

The environments also take the options as keyword arguments (``TradingEnv(candles, fee=0.002,
position_size=0.25)``): any field of ``TradingAgentConfig``, ``fee``, ``start_index``, ``episode_length``
(None: to the last candle) and ``reward`` (a :class:`RewardWeights` or a mapping of its fields), applied on
top of the section (see :func:`env_options`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.config import Config, CostsConfig, TradingAgentConfig

_REWARD_FIELDS = {"pnl": "reward_pnl", "drawdown": "reward_drawdown",
                  "volatility_penalty": "reward_volatility_penalty", "regime": "reward_regime",
                  "survival": "reward_survival"}
"""Reward weight -> its key in ``[trading_agent]``."""


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the reward terms (see :func:`ai.trading.account.compute_reward`); ``trading_agent.reward_*``."""

    pnl: float
    drawdown: float
    volatility_penalty: float
    regime: float
    survival: float

    @classmethod
    def of(cls, agent: TradingAgentConfig) -> RewardWeights:
        return cls(**{name: getattr(agent, key) for name, key in _REWARD_FIELDS.items()})


@dataclass(frozen=True)
class TradingEnvOptions:
    """Everything a trading environment is configured with (see the module docstring)."""

    agent: TradingAgentConfig = field(default_factory=TradingAgentConfig)
    costs: CostsConfig = field(default_factory=CostsConfig)
    start_index: int | None = None
    to_last_candle: bool = False
    """True: an episode runs to the last candle instead of ``agent.episode_length`` steps."""

    def __post_init__(self) -> None:
        if self.start_index is not None and self.start_index < 0:
            raise ValueError(f"trading environment options: start_index must be >= 0, got {self.start_index}")

    @property
    def episode_length(self) -> int | None:
        return None if self.to_last_candle else self.agent.episode_length

    @property
    def warmup_candles(self) -> int:
        return self.agent.warmup_candles

    @property
    def initial_equity(self) -> float:
        return self.agent.initial_equity

    @property
    def position_size(self) -> float:
        return self.agent.position_size

    @property
    def max_exposure(self) -> float:
        return self.agent.max_exposure

    @property
    def min_exposure(self) -> float:
        return self.agent.min_exposure

    @property
    def fee(self) -> float:
        return self.costs.fee

    @property
    def bankrupt_fraction(self) -> float:
        return self.agent.bankrupt_fraction

    @property
    def high_volatility_percentile(self) -> float:
        return self.agent.high_volatility_percentile

    @property
    def reward(self) -> RewardWeights:
        return RewardWeights.of(self.agent)

    def with_changes(self, **changes: Any) -> TradingEnvOptions:
        """A copy with keyword options applied (see :func:`env_options`)."""
        return env_options(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Plain data in the layout checkpoints record as ``env_options``."""
        return {
            "episode_length": self.episode_length, "start_index": self.start_index,
            "warmup_candles": self.warmup_candles, "initial_equity": self.initial_equity,
            "position_size": self.position_size, "max_exposure": self.max_exposure,
            "min_exposure": self.min_exposure, "fee": self.fee, "bankrupt_fraction": self.bankrupt_fraction,
            "high_volatility_percentile": self.high_volatility_percentile,
            "reward": dataclasses.asdict(self.reward),
        }


def env_options(base: TradingEnvOptions | None = None, **changes: Any) -> TradingEnvOptions:
    """``base`` (default: the configuration's defaults) with keyword options applied.

    ``fee`` changes the costs, ``start_index`` the first candle, ``episode_length=None`` runs to the last
    candle, ``reward`` sets the ``reward_*`` weights, and every other name is a ``[trading_agent]`` field.
    """
    opts = base or TradingEnvOptions()
    agent_changes: dict[str, Any] = {}
    result: dict[str, Any] = {}
    known = {f.name for f in dataclasses.fields(TradingAgentConfig)}
    for name, value in changes.items():
        if name == "fee":
            result["costs"] = dataclasses.replace(opts.costs, fee=value)
        elif name == "start_index":
            result["start_index"] = value
        elif name == "episode_length" and value is None:
            result["to_last_candle"] = True
        elif name == "reward":
            agent_changes.update(_reward_changes(value))
        elif name in known:
            agent_changes[name] = value
            if name == "episode_length":
                result["to_last_candle"] = False
        else:
            raise TypeError(f"unknown trading environment option {name!r}; options are the [trading_agent] keys, "
                            "fee, start_index, episode_length and reward")
    if agent_changes:
        result["agent"] = dataclasses.replace(opts.agent, **agent_changes)
    return dataclasses.replace(opts, **result) if result else opts


def _reward_changes(reward: RewardWeights | Mapping[str, float]) -> dict[str, float]:
    weights = dataclasses.asdict(reward) if isinstance(reward, RewardWeights) else dict(reward)
    unknown = [k for k in weights if k not in _REWARD_FIELDS]
    if unknown:
        raise TypeError(f"unknown reward weight(s) {', '.join(unknown)}; known: {', '.join(_REWARD_FIELDS)}")
    return {_REWARD_FIELDS[name]: value for name, value in weights.items()}


def options_from_config(cfg: Config, **overrides: Any) -> TradingEnvOptions:
    """Environment options of ``[trading_agent]`` and ``costs.fee``, with keyword ``overrides`` on top."""
    return env_options(TradingEnvOptions(cfg.trading_agent, cfg.costs), **overrides)
