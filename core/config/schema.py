"""The whole configuration: one frozen section per component, and where its files live."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from core.config.dashboard import DashboardConfig
from core.config.foundation import (
    CostsConfig,
    ExchangeConfig,
    LoggingConfig,
    MarketConfig,
    PathsConfig,
    SyntheticConfig,
)
from core.config.learning import QLearningConfig, StrategyAgentConfig, TradingAgentConfig
from core.config.measurement import PerformanceConfig, PortfolioOptimizerConfig, StrategyLabConfig
from core.config.trader import BridgeConfig, StrategiesConfig, TraderConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository root: the default home of ``state/`` and ``runtime/`` and of ``rl_system.toml``."""


@dataclass(frozen=True)
class Config:
    """The whole configuration; one section per component."""

    paths: PathsConfig = field(default_factory=PathsConfig)
    market: MarketConfig = field(default_factory=MarketConfig)
    exchange: ExchangeConfig = field(default_factory=ExchangeConfig)
    costs: CostsConfig = field(default_factory=CostsConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    strategies: StrategiesConfig = field(default_factory=StrategiesConfig)
    trader: TraderConfig = field(default_factory=TraderConfig)
    bridge: BridgeConfig = field(default_factory=BridgeConfig)
    portfolio_optimizer: PortfolioOptimizerConfig = field(default_factory=PortfolioOptimizerConfig)
    strategy_lab: StrategyLabConfig = field(default_factory=StrategyLabConfig)
    strategy_agent: StrategyAgentConfig = field(default_factory=StrategyAgentConfig)
    performance: PerformanceConfig = field(default_factory=PerformanceConfig)
    qlearning: QLearningConfig = field(default_factory=QLearningConfig)
    trading_agent: TradingAgentConfig = field(default_factory=TradingAgentConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)

    @property
    def home(self) -> Path:
        env = os.environ.get("RL_SYSTEM_HOME", "")
        base = env or self.paths.home
        return Path(base).expanduser().resolve() if base else REPO_ROOT

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def runtime_dir(self) -> Path:
        return self.home / "runtime"
