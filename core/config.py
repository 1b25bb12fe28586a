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
    history_candles: int = 5000
    """Candles fetched for a symbol that has no cache yet when candles are loaded from the exchange."""


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
class BridgeConfig:
    rl_max_age_s: float = 900.0
    """Age after which ``runtime/rl_strategy_weights.json`` is stale and passed over (0 = never stale)."""
    portfolio_optimizer_max_age_s: float = 172_800.0
    """Age after which ``runtime/portfolio_optimizer_weights.json`` is stale (0 = never stale)."""
    strategy_lab_max_age_s: float = 172_800.0
    """Age after which ``runtime/strategy_lab_weights.json`` is stale (0 = never stale)."""
    min_weight: float = 0.0
    """Smallest allocation of any strategy; the excess is taken proportionally from the others."""
    max_weight: float = 1.0
    """Largest allocation of any strategy (e.g. 0.4); the excess goes proportionally to the uncapped ones."""
    min_weights: dict[str, float] = field(default_factory=dict)
    """Per-strategy minimum overriding ``min_weight``, e.g. ``{vix_strategy = 0.05}``."""
    max_weights: dict[str, float] = field(default_factory=dict)
    """Per-strategy maximum overriding ``max_weight``, e.g. ``{pairs_trading = 0.2}``."""
    debounce_s: float = 0.2
    """Quiet time after the last file event before re-evaluating (a save fires several events)."""
    recheck_interval_s: float = 30.0
    """Re-evaluation period without file events, so a source that goes stale is noticed."""
    polling: bool = False
    """Watch ``runtime/`` by polling instead of OS events (network filesystems, some containers)."""
    poll_interval_s: float = 0.5
    """Polling period when ``polling`` is on; changes are seen within this plus ``debounce_s``."""


@dataclass(frozen=True)
class PortfolioOptimizerConfig:
    method: str = "inverse_vol"
    """``inverse_vol`` (weight ~ 1 / daily volatility) or ``erc`` (equal risk contribution from the covariance)."""
    lookback_days: int = 90
    """Calendar days of closed trades used, ending today (UTC)."""
    min_days: int = 14
    """Days of history (first trade to today, within the lookback) needed before any weights are published."""
    min_trades: int = 10
    """Trades a strategy needs in the lookback to be weighed on its own; others get the mean weight."""
    min_strategies: int = 2
    """Strategies with enough trades needed to publish at all; fewer means no file (exit code 3)."""
    min_volatility: float = 1e-6
    """Floor of a strategy's daily volatility, so a strategy with flat returns cannot take everything."""
    erc_max_iter: int = 10_000
    """Iteration limit of the equal-risk-contribution solver (cyclical coordinate descent)."""
    erc_tolerance: float = 1e-10
    """Stop when no risk contribution deviates from the mean one by more than this fraction."""


@dataclass(frozen=True)
class StrategyLabConfig:
    window_days: int = 30
    """Calendar days of recent closed trades scored, ending today (UTC)."""
    temperature: float = 3.0
    """Softmax temperature in annualized-Sharpe units: a score higher by this gets e (2.7) times the share."""
    floor: float = 0.02
    """Weight every strategy keeps whatever its score (8 x floor must stay below 1)."""
    min_days: int = 7
    """Days of history (first trade to today, within the window) needed before any weights are published."""
    min_trades: int = 5
    """Trades a strategy needs in the window to be scored; unscored strategies get the floor only."""
    min_strategies: int = 2
    """Scored strategies needed to publish at all; fewer means no file (exit code 3)."""


@dataclass(frozen=True)
class PPOConfig:
    """Hyperparameters of the one PPO implementation (``ai/ppo.py``), shared by both PPO agents."""

    learning_rate: float = 3e-4
    """Adam step size at the start of each ``learn()`` call."""
    anneal_lr: bool = True
    """Decay the step size linearly towards 0 over each ``learn()`` call (CleanRL's ``anneal_lr``)."""
    adam_eps: float = 1e-5
    """Adam epsilon (1e-5 as in CleanRL and Stable-Baselines3's PPO, not torch's 1e-8)."""
    gamma: float = 0.99
    """Discount factor of future rewards."""
    gae_lambda: float = 0.95
    """GAE lambda: 0 is one-step TD advantages, 1 is Monte Carlo returns minus the value baseline."""
    clip_range: float = 0.2
    """PPO clip epsilon of the probability ratio in the surrogate objective."""
    clip_range_vf: float = 0.0
    """Clip of the value prediction around its rollout-time value (PPO2 style, max of clipped and unclipped
    squared errors); 0 disables value clipping."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus (subtracted from the loss, so it rewards exploration)."""
    vf_coef: float = 0.5
    """Weight of the value loss (mean squared error against the GAE returns) in the total loss."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip of every optimizer step; 0 disables it."""
    n_epochs: int = 10
    """Passes over the rollout buffer per update."""
    batch_size: int = 64
    """Minibatch size of one gradient step (the last minibatch of an epoch may be smaller)."""
    n_steps: int = 2048
    """Steps collected per environment before each update; the rollout buffer holds ``n_steps`` x number of
    environments transitions (the original buffer_size of 2048 with one environment)."""
    normalize_advantage: bool = True
    """Normalize advantages to zero mean and unit variance within each minibatch."""
    target_kl: float = 0.0
    """Stop an update's remaining epochs once a minibatch's approximate KL divergence from the rollout policy
    exceeds this; 0 disables the early stop."""
    hidden_sizes: list[int] = field(default_factory=lambda: [128, 128])
    """Hidden layer widths of the actor and of the critic MLPs."""
    activation: str = "tanh"
    """Hidden activation: ``tanh`` or ``relu``."""
    shared_trunk: bool = False
    """One hidden trunk feeding both heads instead of separate actor and critic networks."""
    simplex_min_concentration: float = 1.0
    """Lower bound of every Dirichlet concentration of the simplex-weight head; 1 keeps the density bounded
    (unimodal, finite log-probs at the simplex edges)."""
    seed: int = 0
    """Seed of torch, numpy and the environments: one seed, identical parameters after training."""
    device: str = "auto"
    """``auto`` (CUDA when present, else CPU), ``cpu`` or ``cuda``."""
    threads: int = 0
    """torch intra-op threads (``torch.set_num_threads``); 0 keeps torch's default."""


@dataclass(frozen=True)
class TraderConfig:
    mode: str = "replay"
    """Mode when neither ``--replay`` nor ``--live`` is given: ``replay`` (offline) or ``live``."""
    initial_equity: float = 10_000.0
    """Equity of a fresh paper account, in the quote currency."""
    replay_speed: float = 2.0
    """Replay pace in candles per second (``--speed``); 0 replays as fast as possible."""
    extend_synthetic: bool = True
    """At the end of a synthetic replay, generate more candles (prefix-stable) instead of stopping."""
    state_file: str = "paper_trader_state.json"
    """Name of the resume state under ``state/`` (a plain file name, no folders)."""
    status_interval_s: float = 2.0
    """Seconds between publications of ``runtime/trader_status.json`` and the heartbeat."""
    state_interval_s: float = 10.0
    """Seconds between state saves when no trade closes (a closing trade always saves the state first)."""
    live_poll_s: float = 30.0
    """Seconds between exchange polls in ``--live`` mode."""
    live_history_candles: int = 1000
    """Candles per symbol the strategies see in ``--live`` mode (their look-back)."""


@dataclass(frozen=True)
class StrategiesConfig:
    """Parameters of the 8 strategies (``agents/strategies.py``); periods count candles."""

    allow_short: bool = True
    """When false every short target becomes flat (0): for spot accounts that cannot sell short."""
    turtle_entry_period: int = 20
    """turtle_trading: a close above the highest high (below the lowest low) of this many previous candles enters."""
    turtle_exit_period: int = 10
    """turtle_trading: a close below the lowest low (above the highest high) of this many previous candles exits."""
    turtle_atr_period: int = 20
    """turtle_trading: ATR period of the stop distance (Wilder's ATR, the Turtles' N)."""
    turtle_atr_stop: float = 2.0
    """turtle_trading: stop this many entry-time ATRs from the entry close; a close through it exits."""
    rsi_period: int = 14
    """mean_reversion_rsi: RSI period (Wilder)."""
    rsi_oversold: float = 30.0
    """mean_reversion_rsi: RSI below this enters long."""
    rsi_overbought: float = 70.0
    """mean_reversion_rsi: RSI above this enters short."""
    rsi_exit: float = 50.0
    """mean_reversion_rsi: a long exits when the RSI climbs back to this level, a short when it falls to it."""
    sma_fast: int = 20
    """momentum_sma_crossover: fast SMA period."""
    sma_slow: int = 50
    """momentum_sma_crossover: slow SMA period; long while fast > slow, short while fast < slow."""
    breakout_lookback: int = 20
    """breakout_trading: the range is the highest high / lowest low of this many previous candles."""
    breakout_squeeze_lookback: int = 120
    """breakout_trading: candles the Bollinger width is ranked against to detect a volatility squeeze."""
    breakout_squeeze_quantile: float = 0.25
    """breakout_trading: a width ranked at or below this (0..1) within breakout_lookback candles arms a breakout."""
    pairs_symbol: str = ""
    """pairs_trading: the other leg; empty takes the first other symbol given (the second of market.symbols)."""
    pairs_window: int = 100
    """pairs_trading: window of the rolling z-score of the log price spread."""
    pairs_entry_z: float = 2.0
    """pairs_trading: z below -entry goes long the primary (cheap vs the pair), above +entry short."""
    pairs_exit_z: float = 0.5
    """pairs_trading: a position exits once |z| is back below this."""
    macd_fast: int = 12
    """macd_momentum: fast EMA period."""
    macd_slow: int = 26
    """macd_momentum: slow EMA period."""
    macd_signal: int = 9
    """macd_momentum: signal EMA period."""
    bollinger_period: int = 20
    """bollinger_bands (and breakout_trading's squeeze): Bollinger band period."""
    bollinger_std: float = 2.0
    """bollinger_bands (and breakout_trading's squeeze): band width in standard deviations."""
    vix_vol_window: int = 24
    """vix_strategy: span of each symbol's EWMA volatility (averaged into the index) and of the sell-off test."""
    vix_lookback: int = 240
    """vix_strategy: the index's normal level is its rolling median over this many candles."""
    vix_spike_ratio: float = 1.5
    """vix_strategy: index at or above this multiple of its normal level is a fear spike."""
    vix_spike_memory: int = 24
    """vix_strategy: a spike within this many candles (this one included) can still be bought as it reverts."""
    vix_revert: float = 0.15
    """vix_strategy: entry once the index ratio is this fraction below its peak of the spike memory."""
    vix_exit_ratio: float = 1.1
    """vix_strategy: the long exits when the index is back to this multiple of its normal level."""
    vix_max_hold: int = 48
    """vix_strategy: the long exits after this many candles at most."""

    def __post_init__(self) -> None:
        # Checked once at load time so a bad value stops the command with the key's name, not deep in a loop.
        minimum = {"pairs_window": 2, "bollinger_period": 2, "vix_vol_window": 2, "vix_lookback": 2}
        periods = (
            "turtle_entry_period", "turtle_exit_period", "turtle_atr_period", "rsi_period", "sma_fast", "sma_slow",
            "breakout_lookback", "breakout_squeeze_lookback", "macd_fast", "macd_slow", "macd_signal",
            "vix_spike_memory", "vix_max_hold", *minimum,
        )
        for name in periods:
            if getattr(self, name) < minimum.get(name, 1):
                raise ConfigError(f"strategies.{name} = {getattr(self, name)}: must be an integer >= {minimum.get(name, 1)}")
        ordered = (
            ("sma_fast", "sma_slow"), ("macd_fast", "macd_slow"), ("pairs_exit_z", "pairs_entry_z"),
            ("rsi_oversold", "rsi_exit"), ("rsi_exit", "rsi_overbought"), ("vix_exit_ratio", "vix_spike_ratio"),
        )
        for lo, hi in ordered:
            if not getattr(self, lo) < getattr(self, hi):
                raise ConfigError(f"strategies.{lo} ({getattr(self, lo)}) must be below strategies.{hi} ({getattr(self, hi)})")
        for name in ("turtle_atr_stop", "bollinger_std", "pairs_exit_z", "vix_exit_ratio"):
            if getattr(self, name) < 0:
                raise ConfigError(f"strategies.{name} = {getattr(self, name)}: must be >= 0")
        if not 0.0 <= self.vix_revert < 1.0:
            raise ConfigError(f"strategies.vix_revert = {self.vix_revert}: must be in [0, 1)")
        if not 0.0 < self.breakout_squeeze_quantile <= 1.0:
            raise ConfigError(f"strategies.breakout_squeeze_quantile = {self.breakout_squeeze_quantile}: must be in (0, 1]")


@dataclass(frozen=True)
class QLearningConfig:
    """The tabular Q-learning agents (``ai/qlearning.py``): a strategy (meta) agent and a position-sizing agent."""

    alpha: float = 0.02
    """Learning rate of Q(s,a) += alpha * (r + gamma * max Q(s',a') - Q(s,a)), in (0, 1]; a value applied with
    ``scripts/tune_qlearning.py --apply`` is stored with the agent and wins over this one."""
    gamma: float = 0.95
    """Discount of the next state's value, in [0, 1); tuned values stored with the agent win over this one."""
    epsilon: float = 0.1
    """Exploration rate of a fresh agent, in [0, 1]; afterwards the agent's own decayed epsilon is kept."""
    epsilon_decay: float = 0.999
    """Multiplier of epsilon after every trade learned, in (0, 1] (0.999: about 0.09 after 100 trades)."""
    epsilon_min: float = 0.01
    """Floor epsilon never decays below, in [0, 1]."""
    reward_scale: float = 100.0
    """Rewards are returns times this (100: percent points), so Q-values read as percent per trade."""
    risk_aversion: float = 5.0
    """Variance penalty of a reward: scale * (x - risk_aversion / 2 * x**2) for an exposure-scaled return x,
    so the best size is finite (mean-variance) instead of always the largest; 0 is risk neutral."""
    recent_trades: int = 20
    """Closed trades behind the recent win-rate, recent P&L and loss-streak features."""
    late_window_s: float = 604_800.0
    """Trades closing up to this long (trade time) before the newest one learned are still checked against the
    recent keys and learned if new; older unseen ones are counted as late and skipped."""
    max_recent_keys: int = 50_000
    """Most trade keys remembered per agent (those of the late window) to learn each trade exactly once."""
    apply_sizing: bool = False
    """When true the paper trader scales new positions by the sizing agent's multiplier; false is shadow mode
    (the multiplier is published but ``sizing_multiplier()`` returns 1.0)."""
    policy_max_age_s: float = 3_600.0
    """Age after which ``runtime/qlearning_policy.json`` is stale and the sizing multiplier falls back to 1.0."""
    debounce_s: float = 1.0
    """Quiet time after the last change of the trade history before learning (an append fires several events)."""
    recheck_interval_s: float = 60.0
    """Learning and publishing period of ``--loop`` without file events (missed events, new candles)."""
    polling: bool = False
    """Watch ``state/`` by polling instead of OS events (network filesystems, some containers)."""
    poll_interval_s: float = 1.0
    """Polling period when ``polling`` is on."""
    seed: int = 0
    """Seed of the epsilon-greedy draw published beside the greedy choice."""

    def __post_init__(self) -> None:
        # Checked once at load time so a bad value stops the command with the key's name.
        checks = (
            ("alpha", 0.0 < self.alpha <= 1.0, "in (0, 1]"),
            ("gamma", 0.0 <= self.gamma < 1.0, "in [0, 1)"),
            ("epsilon", 0.0 <= self.epsilon <= 1.0, "in [0, 1]"),
            ("epsilon_decay", 0.0 < self.epsilon_decay <= 1.0, "in (0, 1]"),
            ("epsilon_min", 0.0 <= self.epsilon_min <= 1.0, "in [0, 1]"),
            ("reward_scale", self.reward_scale > 0.0, "> 0"),
            ("risk_aversion", self.risk_aversion >= 0.0, ">= 0"),
            ("recent_trades", self.recent_trades >= 1, ">= 1"),
            ("late_window_s", self.late_window_s >= 0.0, ">= 0"),
            ("max_recent_keys", self.max_recent_keys >= 1, ">= 1"),
            ("policy_max_age_s", self.policy_max_age_s >= 0.0, ">= 0 (0 = never stale)"),
            ("debounce_s", self.debounce_s >= 0.0, ">= 0"),
            ("recheck_interval_s", self.recheck_interval_s > 0.0, "> 0"),
            ("poll_interval_s", self.poll_interval_s > 0.0, "> 0"),
        )
        for name, ok, rule in checks:
            if not ok:
                raise ConfigError(f"qlearning.{name} = {getattr(self, name)}: must be {rule}")


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
    ppo: PPOConfig = field(default_factory=PPOConfig)
    bridge: BridgeConfig = field(default_factory=BridgeConfig)
    portfolio_optimizer: PortfolioOptimizerConfig = field(default_factory=PortfolioOptimizerConfig)
    strategy_lab: StrategyLabConfig = field(default_factory=StrategyLabConfig)
    qlearning: QLearningConfig = field(default_factory=QLearningConfig)

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
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the config file ({exc.strerror or exc}); pass a readable file") from exc
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
    try:
        return cls(**values)
    except ConfigError as exc:
        # A section's own range checks (__post_init__) know the key but not the file.
        if str(file) in str(exc):
            raise
        raise ConfigError(f"{file}: {exc}") from exc


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
