"""The trader side's sections: the paper trader, the 8 strategies' parameters, the weights bridge."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.config.checks import InvalidSetting, is_plain_file_name, one_of, require, require_order
from core.config.names import STRATEGIES, TRADER_MODES


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
    """Seconds between publications of the trader's status (``core.contracts.trader_status``) and the heartbeat."""
    state_interval_s: float = 10.0
    """Seconds between state saves when no trade closes (a closing trade always saves the state first)."""
    live_poll_s: float = 30.0
    """Seconds between exchange polls in ``--live`` mode."""
    live_history_candles: int = 1000
    """Candles per symbol the strategies see in ``--live`` mode (their look-back)."""

    def __post_init__(self) -> None:
        require("trader", self, (
            ("mode", self.mode in TRADER_MODES, one_of(TRADER_MODES)),
            ("initial_equity", self.initial_equity > 0, "a positive amount of the quote currency"),
            ("replay_speed", self.replay_speed >= 0, ">= 0 candles per second (0 = as fast as possible)"),
            ("state_file", is_plain_file_name(self.state_file), "a plain file name such as paper_trader_state.json"),
            ("status_interval_s", self.status_interval_s > 0, "a positive number of seconds"),
            ("state_interval_s", self.state_interval_s > 0, "a positive number of seconds"),
            ("live_poll_s", self.live_poll_s > 0, "a positive number of seconds"),
            ("live_history_candles", self.live_history_candles >= 2, ">= 2"),
        ))


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
        minimum = {"pairs_window": 2, "bollinger_period": 2, "vix_vol_window": 2, "vix_lookback": 2}
        periods = (
            "turtle_entry_period", "turtle_exit_period", "turtle_atr_period", "rsi_period", "sma_fast", "sma_slow",
            "breakout_lookback", "breakout_squeeze_lookback", "macd_fast", "macd_slow", "macd_signal",
            "vix_spike_memory", "vix_max_hold", *minimum,
        )
        require("strategies", self, (
            (name, getattr(self, name) >= minimum.get(name, 1), f"an integer >= {minimum.get(name, 1)}")
            for name in periods
        ))
        require_order("strategies", self, (
            ("sma_fast", "sma_slow", "be below"), ("macd_fast", "macd_slow", "be below"),
            ("pairs_exit_z", "pairs_entry_z", "be below"), ("rsi_oversold", "rsi_exit", "be below"),
            ("rsi_exit", "rsi_overbought", "be below"), ("vix_exit_ratio", "vix_spike_ratio", "be below"),
        ))
        require("strategies", self, (
            *((name, getattr(self, name) >= 0, ">= 0")
              for name in ("turtle_atr_stop", "bollinger_std", "pairs_exit_z", "vix_exit_ratio")),
            ("vix_revert", 0.0 <= self.vix_revert < 1.0, "in [0, 1)"),
            ("breakout_squeeze_quantile", 0.0 < self.breakout_squeeze_quantile <= 1.0, "in (0, 1]"),
        ))


@dataclass(frozen=True)
class BridgeConfig:
    rl_max_age_s: float = 900.0
    """Age after which the strategy-weight agent's weights (source ``rl``) are stale and passed over (0 = never stale)."""
    portfolio_optimizer_max_age_s: float = 172_800.0
    """Age after which the portfolio optimizer's weights are stale (0 = never stale)."""
    strategy_lab_max_age_s: float = 172_800.0
    """Age after which the strategy lab's weights are stale (0 = never stale)."""
    min_weight: float = 0.0
    """Smallest allocation of any strategy; the excess is taken proportionally from the others."""
    max_weight: float = 1.0
    """Largest allocation of any strategy (e.g. 0.4); the excess goes proportionally to the uncapped ones."""
    min_weights: dict[str, float] = field(default_factory=dict)
    """Per-strategy minimum overriding ``min_weight``, e.g. ``{vix_strategy = 0.05}``."""
    max_weights: dict[str, float] = field(default_factory=dict)
    """Per-strategy maximum overriding ``max_weight``, e.g. ``{pairs_trading = 0.2}``."""
    debounce_s: float = 0.05
    """Quiet time after the last file event before re-evaluating (a save fires several events within a few
    milliseconds; a burst delays the reaction by at most five times this)."""
    recheck_interval_s: float = 30.0
    """Re-evaluation period without file events, so a source that goes stale is noticed."""
    polling: bool = False
    """Watch ``runtime/`` by polling instead of OS events (network filesystems, some containers)."""
    poll_interval_s: float = 0.5
    """Polling period when ``polling`` is on; changes are seen within this plus ``debounce_s``."""

    def __post_init__(self) -> None:
        require("bridge", self, (
            *((name, getattr(self, name) >= 0, ">= 0 seconds (0 = never stale)")
              for name in ("rl_max_age_s", "portfolio_optimizer_max_age_s", "strategy_lab_max_age_s")),
            ("min_weight", 0.0 <= self.min_weight <= 1.0, "a weight in [0, 1]"),
            ("max_weight", 0.0 <= self.max_weight <= 1.0, "a weight in [0, 1]"),
            ("debounce_s", self.debounce_s >= 0, ">= 0"),
            ("recheck_interval_s", self.recheck_interval_s > 0, "> 0"),
            ("poll_interval_s", self.poll_interval_s > 0, "> 0"),
        ))
        # Whether the caps together leave a feasible allocation is the bridge's question (it knows the sums).
        for name, caps in (("min_weights", self.min_weights), ("max_weights", self.max_weights)):
            for strategy, weight in caps.items():
                if strategy not in STRATEGIES:
                    raise InvalidSetting("bridge", f"{name}.{strategy}", weight,
                                         f"not a strategy; cap {one_of(STRATEGIES)}")
                if not 0.0 <= weight <= 1.0:
                    raise InvalidSetting("bridge", f"{name}.{strategy}", weight, "must be a weight in [0, 1]")
