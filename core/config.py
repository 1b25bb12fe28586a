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
import math
import os
import re
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
DATA_SOURCES: tuple[str, ...] = ("synthetic", "csv", "ccxt")
"""Values of ``market.data_source``."""
CALENDARS: tuple[str, ...] = ("crypto", "equity")
"""Values of ``market.calendar``."""
LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
"""Values of ``logging.level`` (any case)."""


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

    def __post_init__(self) -> None:
        if not self.symbols or any(not s.strip() for s in self.symbols):
            raise ConfigError(f"market.symbols = {self.symbols!r}: list at least one symbol, e.g. [\"BTC/USDT\"]")
        if len(set(self.symbols)) != len(self.symbols):
            raise ConfigError(f"market.symbols = {self.symbols!r}: a symbol is listed twice; list each once")
        _require("market", self, (
            ("timeframe", _is_timeframe(self.timeframe, seconds=True), "a ccxt timeframe such as 1m, 1h, 4h, 1d"),
            ("data_source", self.data_source in DATA_SOURCES, f"one of {', '.join(DATA_SOURCES)}"),
            ("calendar", self.calendar in CALENDARS, f"one of {', '.join(CALENDARS)}"),
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
        _require("exchange", self, (
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
        _require("costs", self, (
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

    def __post_init__(self) -> None:
        _require("logging", self, (
            ("level", self.level.upper() in LOG_LEVELS, f"one of {', '.join(LOG_LEVELS)}"),
            ("max_bytes", self.max_bytes >= 0, ">= 0 (0 never rotates)"),
            ("backups", self.backups >= 0, ">= 0"),
            ("jsonl_max_lines", self.jsonl_max_lines >= 1, ">= 1 (the logs stay bounded)"),
        ))


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
    """Calendar days of closed trades used, ending on the day of the newest trade (today for a live trader)."""
    min_days: int = 14
    """Days of history (first trade to the window's end, within the lookback) needed before any weights are published."""
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
    """Calendar days of recent closed trades scored, ending on the day of the newest trade (today when live)."""
    temperature: float = 3.0
    """Softmax temperature in annualized-Sharpe units: a score higher by this gets e (2.7) times the share."""
    floor: float = 0.02
    """Weight every strategy keeps whatever its score (8 x floor must stay below 1)."""
    min_days: int = 7
    """Days of history (first trade to the window's end) needed before any weights are published."""
    min_trades: int = 5
    """Trades a strategy needs in the window to be scored; unscored strategies get the floor only."""
    min_strategies: int = 2
    """Scored strategies needed to publish at all; fewer means no file (exit code 3)."""


@dataclass(frozen=True)
class PerformanceConfig:
    """The performance tracker (``analytics/rl_performance.py``): weight history, reports, fallback-source jobs.

    Cron expressions have five fields (minute hour day month weekday) and are read in UTC; write weekdays as
    names (``mon-fri``): APScheduler numbers them from Monday = 0, unlike classic cron.
    """

    windows: list[str] = field(default_factory=lambda: ["7d", "30d", "all"])
    """Report windows ending on the report day: ``<N>d`` for the last N days, ``all`` for the whole history."""
    min_days: int = 2
    """Days a window needs (with at least one trade) before its figures are reported; fewer is "not enough data"."""
    rebalance_days: int = 7
    """Days between recomputations of the portfolio-optimizer and strategy-lab baselines in the replay."""
    track_interval_s: float = 300.0
    """Seconds between two records of the weights in force (``--track`` in the daemon)."""
    history_max_lines: int = 100_000
    """Records kept at most in ``state/rl_weight_history.jsonl``; past it the newest three quarters are kept
    (9 to 12 months of history at the 5-minute default)."""
    training_records: int = 5
    """Latest records of ``state/rl_training_log.json`` copied into the report."""
    plots: bool = True
    """Write the PNG plots next to the report (equity curves, weights over time, drawdowns)."""
    report_cron: str = "5 * * * *"
    """When the daemon writes the report (cron, UTC); the default is every hour at minute 5."""
    portfolio_optimizer_cron: str = "15 */6 * * *"
    """When the daemon runs the portfolio optimizer (cron, UTC); keep it well inside
    ``bridge.portfolio_optimizer_max_age_s`` so the bridge's fallback never goes stale."""
    strategy_lab_cron: str = "20 */6 * * *"
    """When the daemon runs the strategy lab (cron, UTC); keep it well inside ``bridge.strategy_lab_max_age_s``."""
    misfire_grace_s: int = 300
    """A job that could not start on time still runs if it is at most this late (missed runs coalesce into one)."""


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
class StrategyAgentConfig:
    """The strategy-weight agent (``ai/rl_environment.py``, ``ai/rl_trainer.py``, ``ai/rl_inference.py``).

    Periods are rebalancing periods; the cron expression has five fields (minute hour day month weekday), UTC.
    """

    rebalance_period: str = "1d"
    """Length of one environment step (one rebalancing period) in timeframe notation: 1h, 4h, 1d, 1w."""
    window_periods: int = 30
    """Rolling window, in rebalancing periods, of the Sharpe ratios, drawdowns and trade statistics."""
    market_window_candles: int = 168
    """Candles of the primary symbol behind the market features (168 hourly candles = one week)."""
    episode_length: int = 60
    """Rebalancing periods per training episode (a random window of the history; shorter histories give shorter
    episodes)."""
    reward_sharpe_weight: float = 0.6
    """Weight of the rolling-Sharpe component of the reward."""
    reward_pnl_weight: float = 0.3
    """Weight of the P&L component of the reward."""
    reward_drawdown_weight: float = 0.1
    """Weight of the drawdown penalty, subtracted from the reward."""
    sharpe_scale: float = 3.0
    """Annualized Sharpe ratio that counts as 1 in the features and the reward (clipped to +-5)."""
    pnl_scale: float = 0.01
    """Period return that counts as 1 in the P&L component and features (0.01 = 1 %; clipped to +-5)."""
    drawdown_scale: float = 0.1
    """Drawdown that counts as 1 in the drawdown penalty and features (0.1 = 10 % below the peak; clipped to 5)."""
    turnover_cost: float = 0.001
    """Cost per unit of weight moved at a rebalance: ``turnover_cost * sum(|w_new - w_old|)`` off the return."""
    holdout_fraction: float = 0.2
    """Last part of the history kept out of training; a candidate must give valid weights on it to be promoted."""
    min_trades: int = 50
    """Closed trades of the 8 strategies needed before any training."""
    retrain_after_new_trades: int = 50
    """The trainer daemon retrains once this many trades have closed since the last training."""
    retrain_cron: str = "0 3 * * 0"
    """Scheduled retraining of the trainer daemon (cron, UTC); the default is weekly, Sunday 03:00."""
    episodes: int = 100
    """Training episodes of a scheduled or trade-triggered retraining (``--episodes`` for ``--train``)."""
    num_envs: int = 4
    """Environments stepped side by side while training."""
    check_interval_s: float = 300.0
    """Seconds between checks for new trades that do not wait for a file event (missed events, polling)."""
    misfire_grace_s: int = 600
    """A scheduled job that could not start on time still runs if it is at most this late (missed runs coalesce)."""
    debounce_s: float = 1.0
    """Quiet time after the last change of a watched file before reacting (a save fires several events)."""
    polling: bool = False
    """Watch files by polling instead of OS events (network filesystems, some containers)."""
    poll_interval_s: float = 1.0
    """Polling period when ``polling`` is on."""
    inference_interval_s: float = 300.0
    """Seconds between two weight updates of the inference daemon (``--interval``)."""
    training_log_max_records: int = 500
    """Records kept in ``state/rl_training_log.json``; older ones are dropped."""
    ppo: PPOConfig = field(default_factory=lambda: PPOConfig(
        learning_rate=3e-4, n_steps=128, batch_size=128, n_epochs=10, gamma=0.9, gae_lambda=0.95,
        ent_coef=0.0, hidden_sizes=[64, 64], threads=1, device="cpu",
    ))
    """PPO hyperparameters of this agent (``[strategy_agent.ppo]``); keys left out keep these defaults."""

    def __post_init__(self) -> None:
        # Checked at load time so a bad value stops the command with the key's name, not deep in training.
        checks = (
            ("rebalance_period", _is_timeframe(self.rebalance_period), "a timeframe such as 1h, 4h, 1d or 1w"),
            ("window_periods", self.window_periods >= 2, ">= 2"),
            ("market_window_candles", self.market_window_candles >= 8, ">= 8"),
            ("episode_length", self.episode_length >= 2, ">= 2"),
            ("sharpe_scale", self.sharpe_scale > 0, "> 0"),
            ("pnl_scale", self.pnl_scale > 0, "> 0"),
            ("drawdown_scale", self.drawdown_scale > 0, "> 0"),
            ("turnover_cost", 0 <= self.turnover_cost < 1, "in [0, 1)"),
            ("holdout_fraction", 0 < self.holdout_fraction <= 0.5, "in (0, 0.5]"),
            ("min_trades", self.min_trades >= 1, ">= 1"),
            ("retrain_after_new_trades", self.retrain_after_new_trades >= 1, ">= 1"),
            ("episodes", self.episodes >= 1, ">= 1"),
            ("num_envs", self.num_envs >= 1, ">= 1"),
            ("check_interval_s", self.check_interval_s > 0, "> 0"),
            ("misfire_grace_s", self.misfire_grace_s >= 1, ">= 1"),
            ("debounce_s", self.debounce_s >= 0, ">= 0"),
            ("poll_interval_s", self.poll_interval_s > 0, "> 0"),
            ("inference_interval_s", self.inference_interval_s > 0, "> 0"),
            ("training_log_max_records", self.training_log_max_records >= 1, ">= 1"),
        )
        for name, ok, rule in checks:
            if not ok:
                raise ConfigError(f"strategy_agent.{name} = {getattr(self, name)!r}: must be {rule}")
        weights = (self.reward_sharpe_weight, self.reward_pnl_weight, self.reward_drawdown_weight)
        if not all(math.isfinite(w) and w >= 0 for w in weights):
            raise ConfigError(f"strategy_agent reward weights {weights}: must be finite and >= 0")


def _is_timeframe(text: str, seconds: bool = False) -> bool:
    """True for a whole number followed by m, h, d or w (and s with ``seconds``); ``core`` cannot import the
    candle module's parser."""
    units = "smhdw" if seconds else "mhdw"
    return re.fullmatch(rf"[1-9][0-9]*[{units}]", text.strip()) is not None


def _require(section: str, values: Any, checks: tuple[tuple[str, bool, str], ...]) -> None:
    """ConfigError naming ``section.key``, its value and the rule, for the first failed ``(key, ok, rule)``."""
    for name, ok, rule in checks:
        if not ok:
            raise ConfigError(f"{section}.{name} = {getattr(values, name)!r}: must be {rule}")


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
    epsilon_decay: float = 0.9998
    """Multiplier of epsilon after every trade learned, in (0, 1] (0.9998 from 0.1: about 0.096 after 200
    trades, 0.067 after 2000, 0.037 after 5000)."""
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
    recent keys and learned if new; older ones count as learned (their keys are no longer kept), so a trade
    appended later than this is ignored."""
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
class TradingAgentConfig:
    """The trading PPO agent (``ai/trading_env.py``, ``ai/shadow_ppo.py``): environment, reward, benchmark gate,
    staged rollout, risk guard and the shadow daemon. The trading fee is ``costs.fee``."""

    symbol: str = ""
    """Traded symbol; empty takes the primary one (``market.symbols[0]``)."""
    episode_length: int = 512
    """Decisions per training episode (a random window of the training candles); capped by the candles there are."""
    warmup_candles: int = 60
    """Candles at the start of a frame where no episode starts, so the indicators have some history."""
    initial_equity: float = 10_000.0
    """Equity of the simulated account at the start of an episode (and of the shadow account)."""
    position_size: float = 0.1
    """Exposure one LONG or SHORT action adds, as a fraction of equity (0.1 = 10 %)."""
    max_exposure: float = 1.0
    """Largest absolute exposure, as a fraction of equity (1 = fully invested, no leverage)."""
    min_exposure: float = 0.01
    """An exposure whose size falls below this after a REDUCE is closed (no dust positions)."""
    bankrupt_fraction: float = 0.05
    """An episode terminates once equity is at or below this fraction of the initial equity (wiped out)."""
    reward_pnl: float = 100.0
    """Reward weight of the step's P&L (net return on equity): ``reward_pnl * pnl_delta``."""
    reward_drawdown: float = 50.0
    """Reward weight of the squared drawdown from the episode's equity peak: ``- reward_drawdown * dd**2``."""
    reward_volatility_penalty: float = 1.0
    """Penalty per unit of absolute exposure held while volatility is high (see ``high_volatility_percentile``)."""
    high_volatility_percentile: float = 0.8
    """Volatility rank (0..1, 24-candle volatility among its last 240 values) above which volatility is high."""
    reward_regime: float = 2.0
    """Reward weight of the regime alignment (exposure in the direction the regime favours, in [-1, 1])."""
    reward_survival: float = 0.1
    """Reward of every step survived."""
    num_envs: int = 4
    """Episodes stepped side by side in training (one vectorized environment)."""
    train_episodes: int = 100
    """Episodes of ``train`` when ``--episodes`` is not given."""
    lookback_hours: float = 720.0
    """Hours of candles ``train`` and ``benchmark`` use when neither a file nor ``--lookback-hours`` is given."""
    bootstrap_episodes: int = 5
    """Episodes of the small model ``run`` trains first when no model exists yet (0: wait for ``train``)."""
    poll_interval_s: float = 5.0
    """Seconds between the daemon's looks for newly closed candles."""
    follow_trader: bool = True
    """Follow the paper trader's replay (its ``runtime/trader_status.json`` last candle) when that file is fresh."""
    trader_status_max_age_s: float = 120.0
    """Age after which the trader's status file is stale and the daemon polls the candles itself."""
    max_catch_up_candles: int = 500
    """Most candles the daemon decides on in one go after a pause; older missed candles are skipped."""
    replay_lead_candles: int = 48
    """In a replay (synthetic or CSV candles) the daemon decides up to this many candles ahead of the trader's
    last candle, so the trader finds each candle's decision when it gets there (its status is published only
    every few seconds); each decision still uses only the candles up to its own. 0: never ahead."""
    feature_history: int = 1000
    """Candles before the current one used to compute live features (the indicators' history)."""
    max_experiences: int = 5000
    """Experiences kept in ``state/rl_v3/experiences.jsonl``; older ones are trimmed."""
    retrain_cron: str = "0 3 1 * *"
    """When the daemon retrains, as a crontab line in UTC (minute hour day month weekday): monthly by default."""
    retrain_misfire_grace_s: int = 600
    """A retrain missed by less than this (daemon busy or asleep) still runs; older misfires are skipped."""
    retrain_episodes: int = 100
    """Episodes of each scheduled retrain."""
    retrain_candles: int = 3000
    """Newest candles a scheduled retrain uses (before the stored experiences' candles are merged in)."""
    train_frac: float = 0.7
    """Share of the candles ``benchmark`` and retraining train on; the rest is the out-of-sample test window."""
    benchmark_episodes: int = 10
    """Seeds the Random baseline is averaged over when ``--episodes`` is not given."""
    benchmark_max_age_days: float = 7.0
    """A rollout above 0 % needs a passed out-of-sample benchmark at most this old."""
    gate_sharpe: float = 1.5
    """Benchmark gate: the policy's Sharpe ratio must be above this."""
    gate_max_drawdown: float = -0.15
    """Benchmark gate: the policy's max drawdown (negative) must be above this (better than -15 %)."""
    gate_win_rate: float = 0.55
    """Benchmark gate: the policy's trade win rate must be above this."""
    max_daily_loss_pct: float = 2.0
    """Risk guard: the PPO book's loss over the current UTC day, in % of its capital, that trips it to Stage 0."""
    max_drawdown_pct: float = 10.0
    """Risk guard: the PPO book's drawdown from its equity peak, in % of its capital, that trips it to Stage 0."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO hyperparameters of the trading agent (the seed's values are the library defaults)."""

    def __post_init__(self) -> None:
        # Checked once at load time so a bad value stops the command with the key's name, not deep in training.
        at_least_one = ("episode_length", "num_envs", "train_episodes", "max_catch_up_candles", "feature_history",
                        "max_experiences", "retrain_episodes", "retrain_candles", "benchmark_episodes")
        for name in at_least_one:
            if getattr(self, name) < 1:
                raise ConfigError(f"trading_agent.{name} = {getattr(self, name)}: must be an integer >= 1")
        non_negative = ("warmup_candles", "bootstrap_episodes", "reward_pnl", "reward_drawdown",
                        "reward_volatility_penalty", "reward_regime", "min_exposure", "retrain_misfire_grace_s",
                        "benchmark_max_age_days", "replay_lead_candles")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ConfigError(f"trading_agent.{name} = {getattr(self, name)}: must be >= 0")
        positive = ("initial_equity", "position_size", "max_exposure", "poll_interval_s", "lookback_hours",
                    "trader_status_max_age_s", "max_daily_loss_pct", "max_drawdown_pct")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"trading_agent.{name} = {getattr(self, name)}: must be > 0")
        if self.position_size > self.max_exposure:
            raise ConfigError(f"trading_agent.position_size ({self.position_size}) must not exceed "
                              f"trading_agent.max_exposure ({self.max_exposure})")
        if self.min_exposure >= self.position_size:
            raise ConfigError(f"trading_agent.min_exposure ({self.min_exposure}) must be below "
                              f"trading_agent.position_size ({self.position_size})")
        for name in ("bankrupt_fraction", "high_volatility_percentile", "train_frac"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ConfigError(f"trading_agent.{name} = {getattr(self, name)}: must be in (0, 1)")
        if len(self.retrain_cron.split()) != 5:
            raise ConfigError(f"trading_agent.retrain_cron = {self.retrain_cron!r}: expected 5 crontab fields "
                              "(minute hour day month weekday), e.g. \"0 3 1 * *\" for monthly")


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
    strategy_agent: StrategyAgentConfig = field(default_factory=StrategyAgentConfig)
    performance: PerformanceConfig = field(default_factory=PerformanceConfig)
    qlearning: QLearningConfig = field(default_factory=QLearningConfig)
    trading_agent: TradingAgentConfig = field(default_factory=TradingAgentConfig)

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


_loaded_from: list[Path | None] = [None]


def loaded_from() -> Path | None:
    """The TOML file the last :func:`load_config` of this process read (None: defaults only)."""
    return _loaded_from[0]


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Defaults overridden by the TOML file in force (see :func:`config_path`)."""
    file = config_path(path)
    _loaded_from[0] = file.resolve() if file is not None else None
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


def _build(cls: type, raw: Any, prefix: str, file: Path, base: Any = None) -> Any:
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
            values[key] = _build(hint, value, prefix=f"{dotted}.", file=file, base=_field_default(cls, key))
        else:
            values[key] = _coerce(hint, value, dotted, file)
    try:
        # A partial table keeps the section's own defaults (a nested section may default to tuned values).
        return dataclasses.replace(base, **values) if base is not None else cls(**values)
    except ConfigError as exc:
        # A section's own range checks (__post_init__) know the key but not the file.
        if str(file) in str(exc):
            raise
        raise ConfigError(f"{file}: {exc}") from exc


def _field_default(cls: type, name: str) -> Any:
    """The default value of field ``name`` of dataclass ``cls``, or None when it has none."""
    spec = next(f for f in dataclasses.fields(cls) if f.name == name)
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return None if spec.default is dataclasses.MISSING else spec.default


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
        if not math.isfinite(value):
            # TOML allows nan and inf; no setting means either, and a NaN fee would poison every file downstream.
            raise ConfigError(f"{file}: key `{key}` must be a finite number, got {value}")
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
