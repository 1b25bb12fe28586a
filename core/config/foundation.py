"""The foundation sections: where files live, the market and its exchange, costs, the synthetic market, logging."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from core.config.checks import InvalidSetting, is_iso_time, one_of, require
from core.config.names import CALENDARS, DATA_SOURCES, LOG_LEVELS
from core.timeframes import is_timeframe


@dataclass(frozen=True)
class PathsConfig:
    """Where the data lives; any folder name is valid (it is created on first use)."""

    home: str = ""
    """Folder holding ``state/`` and ``runtime/``; empty means the repository root. ``$RL_SYSTEM_HOME`` wins."""



@dataclass(frozen=True)
class MarketConfig:
    symbols: list[str] = field(default_factory=lambda: ["BTC/USDT", "ETH/USDT"])
    """Traded symbols as BASE/QUOTE; the first is the primary one, the first two form the pair of pairs_trading."""
    timeframe: str = "1h"
    """Candle timeframe in ccxt notation (1m, 5m, 15m, 1h, 4h, 1d, ...)."""
    data_source: str = "synthetic"
    """Where candles come from: ``synthetic`` (offline, seeded), ``csv`` or ``ccxt``."""
    csv_paths: dict[str, str] = field(default_factory=dict)
    """For ``data_source = "csv"``: file per symbol, e.g. ``{"BTC/USDT" = "data/btc.csv"}``."""
    calendar: str = "crypto"
    """Trading calendar for annualization: ``crypto`` (24/7) or ``equity`` (252 days of 6.5 h)."""

    def __post_init__(self) -> None:
        if not self.symbols or any(not s.strip() for s in self.symbols):
            raise InvalidSetting("market", "symbols", self.symbols, "list at least one symbol, e.g. [\"BTC/USDT\"]")
        if len(set(self.symbols)) != len(self.symbols):
            raise InvalidSetting("market", "symbols", self.symbols, "a symbol is listed twice; list each once")
        require("market", self, (
            ("timeframe", is_timeframe(self.timeframe), "a ccxt timeframe such as 1m, 1h, 4h, 1d"),
            ("data_source", self.data_source in DATA_SOURCES, one_of(DATA_SOURCES)),
            ("calendar", self.calendar in CALENDARS, one_of(CALENDARS)),
        ))


@dataclass(frozen=True)
class ExchangeConfig:
    id: str = "binance"
    """ccxt exchange id (public market data only: no keys are needed or read)."""
    url: str = ""
    """Replaces the exchange's public REST base URL (proxies, tests); empty keeps ccxt's own."""
    timeout_ms: int = 10_000
    """HTTP timeout of one request."""
    max_retries: int = 5
    """Retries of a network, rate-limit or DDoS-protection error before giving up."""
    backoff_s: float = 1.0
    """First retry delay; doubles at each retry."""
    page_limit: int = 1000
    """Candles asked for per request."""
    history_candles: int = 5000
    """Candles fetched for a symbol that has no cache yet when candles are loaded from the exchange."""

    def __post_init__(self) -> None:
        require("exchange", self, (
            ("id", bool(self.id.strip()), "a ccxt exchange id such as binance"),
            ("url", not self.url or re.match(r"^https?://[^/\s]+", self.url.strip()) is not None,
             "empty or an absolute http(s) URL such as http://127.0.0.1:8080"),
            ("timeout_ms", self.timeout_ms > 0, "> 0"),
            ("max_retries", self.max_retries >= 0, ">= 0"),
            ("backoff_s", self.backoff_s >= 0, ">= 0"),
            ("page_limit", self.page_limit >= 1, ">= 1"),
            ("history_candles", self.history_candles >= 1, ">= 1"),
        ))


@dataclass(frozen=True)
class CostsConfig:
    fee: float = 0.001
    """Proportional fee per traded notional (0.001 = 0.1 %)."""
    slippage: float = 0.0005
    """Proportional price slippage on every fill, against the trader."""

    def __post_init__(self) -> None:
        require("costs", self, (
            ("fee", 0.0 <= self.fee < 1.0, "a fraction in [0, 1), e.g. 0.001 for 0.1 %"),
            ("slippage", 0.0 <= self.slippage < 1.0, "a fraction in [0, 1), e.g. 0.0005"),
        ))


@dataclass(frozen=True)
class SyntheticConfig:
    seed: int = 42
    """Seed of the synthetic market: one seed, one market."""
    n_candles: int = 5000
    """Candles generated per symbol."""
    start: str = "2024-01-01T00:00:00Z"
    """Timestamp of the first synthetic candle (ISO-8601, UTC)."""
    start_prices: list[float] = field(default_factory=lambda: [40_000.0, 2_500.0, 100.0, 0.5])
    """Starting price per symbol (recycled when there are more symbols)."""
    correlation: float = 0.8
    """Correlation of the other symbols' shocks with the first symbol's."""
    annual_volatility: float = 0.6
    """Average annualized volatility; regimes scale it up and down."""
    mean_regime_candles: int = 200
    """Average length of one regime stretch, in candles."""

    def __post_init__(self) -> None:
        require("synthetic", self, (
            ("n_candles", self.n_candles >= 1, ">= 1"),
            ("start", is_iso_time(self.start), "an ISO-8601 time such as 2024-01-01T00:00:00Z"),
            ("start_prices", bool(self.start_prices) and all(p > 0 for p in self.start_prices),
             "a non-empty list of positive prices, e.g. [40000.0, 2500.0]"),
            ("correlation", 0.0 < self.correlation < 1.0, "strictly between 0 and 1, e.g. 0.8"),
            ("annual_volatility", self.annual_volatility > 0 and math.isfinite(self.annual_volatility), "> 0"),
            ("mean_regime_candles", self.mean_regime_candles >= 5, ">= 5"),
        ))


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "INFO"
    """Log level of the daemons (DEBUG, INFO, WARNING, ERROR)."""
    max_bytes: int = 5_000_000
    """Size at which a daemon's log file rotates."""
    backups: int = 3
    """Rotated log files kept per daemon."""
    jsonl_max_lines: int = 10_000
    """Lines kept in a bounded JSON Lines log; older lines are trimmed."""
    library_level: str = "WARNING"
    """Log level of the libraries in ``library_loggers`` (their INFO lines, e.g. every scheduler job added or
    removed, would drown the daemons' own); DEBUG or INFO to see them."""
    library_loggers: list[str] = field(
        default_factory=lambda: ["apscheduler", "watchdog", "ccxt", "urllib3", "matplotlib", "PIL"])
    """Loggers (and their children) held at ``library_level``."""
    command_console_level: str = "WARNING"
    """Lowest level a one-shot command (not a daemon) shows on the terminal beside the result it prints;
    INFO shows every step. Daemons log at ``level`` to their log file (and terminal when in the foreground)."""

    def __post_init__(self) -> None:
        require("logging", self, (
            ("level", self.level.upper() in LOG_LEVELS, one_of(LOG_LEVELS)),
            ("max_bytes", self.max_bytes >= 0, ">= 0 (0 never rotates)"),
            ("backups", self.backups >= 0, ">= 0"),
            ("jsonl_max_lines", self.jsonl_max_lines >= 1, ">= 1 (the logs stay bounded)"),
            ("library_level", self.library_level.upper() in LOG_LEVELS, one_of(LOG_LEVELS)),
            ("library_loggers", all(name.strip() for name in self.library_loggers),
             "a list of logger names such as [\"apscheduler\", \"ccxt\"] (no empty name)"),
            ("command_console_level", self.command_console_level.upper() in LOG_LEVELS, one_of(LOG_LEVELS)),
        ))
