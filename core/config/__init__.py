"""The one typed configuration of the suite.

Every setting is a field of a frozen dataclass with a docstring (the string literal under it), in the style of
CleanRL's ``Args``. Defaults run fully offline on synthetic candles. A TOML file overrides any subset:

    [market]
    symbols = ["BTC/USDT", "ETH/USDT"]
    timeframe = "1h"

The file is ``--config PATH``, else ``$RL_SYSTEM_CONFIG``, else ``rl_system.toml`` at the repository root when
it exists. An unknown key, a value of the wrong type or a value out of its range is a :class:`ConfigError`
naming the key and the file. ``$RL_SYSTEM_HOME`` moves ``state/`` and ``runtime/`` to another folder (tests
use a temporary one).

The package: ``names`` (the shared closed sets such as :data:`STRATEGIES`), ``checks`` (the one validation
style of every section), the sections (``foundation``, ``ppo``, ``learning``, ``trader``, ``measurement``,
``dashboard``), ``schema`` (the whole :class:`Config`) and ``loader`` (TOML reading, coercion, unknown-key errors).
"""

from __future__ import annotations

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
from core.config.loader import (
    DEFAULT_CONFIG_FILE,
    as_dict,
    config_from_dict,
    config_path,
    load_config,
    loaded_from,
    ppo_config_from_dict,
    replace_section,
)
from core.config.measurement import PerformanceConfig, PortfolioOptimizerConfig, StrategyLabConfig
from core.config.names import (
    CALENDARS,
    DATA_SOURCES,
    LOG_LEVELS,
    OPTIMIZER_METHODS,
    STRATEGIES,
    TRADER_MODES,
)
from core.config.ppo import PPOConfig
from core.config.schema import REPO_ROOT, Config
from core.config.trader import BridgeConfig, StrategiesConfig, TraderConfig

__all__ = [
    "CALENDARS",
    "DATA_SOURCES",
    "DEFAULT_CONFIG_FILE",
    "LOG_LEVELS",
    "OPTIMIZER_METHODS",
    "REPO_ROOT",
    "STRATEGIES",
    "TRADER_MODES",
    "BridgeConfig",
    "Config",
    "CostsConfig",
    "DashboardConfig",
    "ExchangeConfig",
    "LoggingConfig",
    "MarketConfig",
    "PPOConfig",
    "PathsConfig",
    "PerformanceConfig",
    "PortfolioOptimizerConfig",
    "QLearningConfig",
    "StrategiesConfig",
    "StrategyAgentConfig",
    "StrategyLabConfig",
    "SyntheticConfig",
    "TraderConfig",
    "TradingAgentConfig",
    "as_dict",
    "config_from_dict",
    "config_path",
    "load_config",
    "loaded_from",
    "ppo_config_from_dict",
    "replace_section",
]
