"""The closed sets of names the configuration and the whole suite share (strategies, sources, levels...)."""

from __future__ import annotations

STRATEGIES: tuple[str, ...] = (
    "turtle_trading",
    "mean_reversion_rsi",
    "momentum_sma_crossover",
    "breakout_trading",
    "pairs_trading",
    "macd_momentum",
    "bollinger_bands",
    "vix_strategy",
)
"""The 8 strategies, in the order every weight vector and feature table uses."""
DATA_SOURCES: tuple[str, ...] = ("synthetic", "csv", "ccxt")
"""Values of ``market.data_source``."""
CALENDARS: tuple[str, ...] = ("crypto", "equity")
"""Values of ``market.calendar``."""
LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
"""Values of ``logging.level`` (any case)."""
TRADER_MODES: tuple[str, ...] = ("replay", "live")
"""Values of ``trader.mode``."""
OPTIMIZER_METHODS: tuple[str, ...] = ("inverse_vol", "erc")
"""Values of ``portfolio_optimizer.method``."""
ACTIVATIONS: tuple[str, ...] = ("tanh", "relu")
"""Values of ``ppo.activation``."""
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
"""Values of ``ppo.device`` (``cuda:N`` names one GPU)."""
