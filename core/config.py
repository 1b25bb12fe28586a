"""The one typed configuration of the suite.

Every setting is a field of a frozen dataclass with a docstring (the string literal under it), in the style of
CleanRL's ``Args``. Defaults run fully offline on synthetic candles. A TOML file overrides any subset:

    [market]
    symbols = ["BTC/USDT", "ETH/USDT"]
    timeframe = "1h"

The file is ``--config PATH``, else ``$RL_SYSTEM_CONFIG``, else ``rl_system.toml`` at the repository root when
it exists. An unknown key or a value of the wrong type is a :class:`ConfigError` naming the key and the file.
``$RL_SYSTEM_HOME`` moves ``state/`` and ``runtime/`` to another folder (tests use a temporary one).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from core.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = REPO_ROOT / "rl_system.toml"

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


@dataclass(frozen=True)
class PathsConfig:
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


@dataclass(frozen=True)
class CostsConfig:
    fee: float = 0.001
    """Proportional fee per traded notional (0.001 = 0.1 %)."""
    slippage: float = 0.0005
    """Proportional price slippage on every fill, against the trader."""


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


@dataclass(frozen=True)
class Config:
    """The whole configuration; one section per component."""

    paths: PathsConfig = field(default_factory=PathsConfig)
    market: MarketConfig = field(default_factory=MarketConfig)
    exchange: ExchangeConfig = field(default_factory=ExchangeConfig)
    costs: CostsConfig = field(default_factory=CostsConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

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


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The TOML file in force: ``explicit``, else ``$RL_SYSTEM_CONFIG``, else ``rl_system.toml`` if present."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("RL_SYSTEM_CONFIG")
    if env:
        return Path(env)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.exists() else None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Defaults overridden by the TOML file in force (see :func:`config_path`)."""
    file = config_path(path)
    if file is None:
        return Config()
    if not file.exists():
        raise ConfigError(f"{file}: config file not found; pass an existing --config PATH or unset RL_SYSTEM_CONFIG")
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not valid TOML ({exc}); fix the syntax") from exc
    return _build(Config, raw, prefix="", file=file)


def config_from_dict(raw: dict[str, Any], source: str = "<dict>") -> Config:
    """Defaults overridden by a nested mapping shaped like the TOML file (tests, programmatic use)."""
    return _build(Config, raw, prefix="", file=Path(source))


def replace_section(cfg: Config, section: str, **changes: Any) -> Config:
    """A copy of ``cfg`` with some fields of one section changed."""
    return dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **changes)})


def as_dict(cfg: Config) -> dict[str, Any]:
    """The effective configuration as plain data (daemons log it at start)."""
    return dataclasses.asdict(cfg)


def _build(cls: type, raw: Any, prefix: str, file: Path) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: `{prefix.rstrip('.')}` must be a table, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in known:
            raise ConfigError(
                f"{file}: unknown key `{dotted}`; known keys here: {', '.join(sorted(known))}"
            )
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            values[key] = _build(hint, value, prefix=f"{dotted}.", file=file)
        else:
            values[key] = _coerce(hint, value, dotted, file)
    return cls(**values)


def _coerce(hint: Any, value: Any, key: str, file: Path) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if arg is type(None) and value is None:
                return None
            try:
                return _coerce(arg, value, key, file)
            except ConfigError:
                continue
        raise _type_error(key, hint, value, file)
    if origin is list:
        if not isinstance(value, list):
            raise _type_error(key, hint, value, file)
        return [_coerce(args[0], v, f"{key}[{i}]", file) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(key, hint, value, file)
        return {str(k): _coerce(args[1], v, f"{key}.{k}", file) for k, v in value.items()}
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    raise _type_error(key, hint, value, file)


def _type_error(key: str, hint: Any, value: Any, file: Path) -> ConfigError:
    expected = getattr(hint, "__name__", str(hint))
    return ConfigError(f"{file}: key `{key}` must be {expected}, got {type(value).__name__} {value!r}")
