"""The measurement sections: the two fallback weight sources and the performance tracker."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.config.checks import cron_check, one_of, require
from core.config.names import OPTIMIZER_METHODS, STRATEGIES

_WINDOW = re.compile(r"all|[1-9][0-9]*d")
"""A report window: the last N days, or the whole history."""


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

    def __post_init__(self) -> None:
        require("portfolio_optimizer", self, (
            ("method", self.method in OPTIMIZER_METHODS, one_of(OPTIMIZER_METHODS)),
            ("lookback_days", self.lookback_days >= 2, ">= 2 (a volatility needs two days)"),
            ("min_days", self.min_days >= 2, ">= 2 (a volatility needs two days)"),
            ("min_trades", self.min_trades >= 1, ">= 1"),
            ("min_strategies", 1 <= self.min_strategies <= len(STRATEGIES), f"between 1 and {len(STRATEGIES)}"),
            ("min_volatility", self.min_volatility > 0, "> 0"),
            ("erc_max_iter", self.erc_max_iter >= 1, ">= 1"),
            ("erc_tolerance", self.erc_tolerance > 0, "> 0"),
        ))


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

    def __post_init__(self) -> None:
        require("strategy_lab", self, (
            ("window_days", self.window_days >= 2, ">= 2"),
            ("temperature", self.temperature > 0, "> 0"),
            ("floor", 0 <= self.floor < 1 / len(STRATEGIES), f"in [0, {1 / len(STRATEGIES)}) so the 8 floors "
             "leave room for the scores"),
            ("min_days", self.min_days >= 2, ">= 2"),
            ("min_trades", self.min_trades >= 2, ">= 2"),
            ("min_strategies", 1 <= self.min_strategies <= len(STRATEGIES), f"between 1 and {len(STRATEGIES)}"),
        ))


@dataclass(frozen=True)
class PerformanceConfig:
    """The performance tracker (``analytics/rl_performance.py``): weight history, reports, fallback-source jobs.

    Cron expressions have five fields (minute hour day month weekday) and are read in UTC as crontab(5) reads
    them: weekday 0 and 7 are Sunday.
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

    def __post_init__(self) -> None:
        require("performance", self, (
            ("windows", bool(self.windows) and all(_WINDOW.fullmatch(w) for w in self.windows)
             and len(set(self.windows)) == len(self.windows),
             "a non-empty list of distinct windows `<N>d` (e.g. 7d, 30d) or `all`"),
            *((name, getattr(self, name) >= 1, ">= 1") for name in
              ("min_days", "rebalance_days", "history_max_lines", "training_records", "misfire_grace_s")),
            ("track_interval_s", self.track_interval_s > 0, "a positive number of seconds"),
            *(cron_check(name, getattr(self, name))
              for name in ("report_cron", "portfolio_optimizer_cron", "strategy_lab_cron")),
        ))
