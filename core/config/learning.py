"""The learning agents' sections: the strategy-weight agent, the tabular Q-learning agents, the trading agent."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.config.checks import cron_check, one_of, require, require_order
from core.config.ppo import PPOConfig
from core.timeframes import is_timeframe

GATE_METRICS = ("sharpe", "mean_return")
"""What a promotion gate may compare (``analytics.bootstrap.METRICS``)."""


@dataclass(frozen=True)
class StrategyAgentConfig:
    """The strategy-weight agent (``ai/allocation/``: ``ai/rl_trainer.py``, ``ai/rl_inference.py``).

    Periods are rebalancing periods; the cron expression has five fields (minute hour day month weekday), UTC.
    """

    rebalance_period: str = "1d"
    """Length of one environment step (one rebalancing period) in timeframe notation: 1h, 4h, 1d, 1w."""
    window_periods: int = 30
    """Rolling window, in rebalancing periods, of the Sharpe ratios, drawdowns and trade statistics."""
    recent_periods: int = 3
    """Rebalancing periods behind the recent-performance features (each strategy's recent mean return as a
    t-statistic against its ``window_periods`` variability); at most ``window_periods``."""
    market_window_candles: int = 168
    """Candles of the primary symbol behind the market features (168 hourly candles = one week)."""
    episode_length: int = 60
    """Rebalancing periods per training episode (a random window of the history; shorter histories give shorter
    episodes)."""
    reward_sharpe_weight: float = 0.0
    """Weight of the rolling-Sharpe component of the reward (0: the rolling Sharpe ratio mostly reflects earlier
    decisions, and on planted histories it slowed learning; the seed used 0.6)."""
    reward_pnl_weight: float = 1.0
    """Weight of the P&L component of the reward (the period's return after turnover costs; the seed used 0.3)."""
    reward_drawdown_weight: float = 0.0
    """Weight of the drawdown penalty, subtracted from the reward (the seed used 0.1)."""
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
    episodes: int = 500
    """Training episodes of a scheduled or trade-triggered retraining (``--episodes`` for ``--train``); 500
    episodes of 60 periods take about 20 s on one core."""
    num_envs: int = 4
    """Environments stepped side by side while training."""
    check_interval_s: float = 300.0
    """Seconds between checks for new trades that do not wait for a file event (missed events, polling)."""
    misfire_grace_s: int = 600
    """A scheduled job that could not start on time still runs if it is at most this late (missed runs coalesce)."""
    debounce_s: float = 0.05
    """Quiet time after the last change of a watched file before reacting (a save fires several events within a
    few milliseconds; a burst delays the reaction by at most five times this)."""
    polling: bool = False
    """Watch files by polling instead of OS events (network filesystems, some containers)."""
    poll_interval_s: float = 1.0
    """Polling period when ``polling`` is on."""
    inference_interval_s: float = 300.0
    """Seconds between two weight updates of the inference daemon (``--interval``)."""
    training_log_max_records: int = 500
    """Records kept in ``state/rl_training_log.json``; older ones are dropped."""
    gate_confidence: float = 0.9
    """Promotion gate: a candidate replaces the model in force only when, on the held-out periods, the bootstrap
    interval at this confidence of its Sharpe ratio (``gate_metric``) minus that of equal weights, and of the
    current model when there is one, lies wholly above 0 (``analytics.bootstrap``). 0 turns the performance gate
    off (only finite parameters and valid weights are then required)."""
    gate_metric: str = "sharpe"
    """What the promotion gate and ``--evaluate`` compare: ``sharpe`` (Sharpe ratio) or ``mean_return``."""
    gate_bootstrap_samples: int = 2000
    """Bootstrap resamples behind the promotion gate's and ``--evaluate``'s confidence intervals."""
    gate_block_length: int = 1
    """Rebalancing periods per block of the (circular block) bootstrap; 1 resamples single periods."""
    evaluation_folds: int = 4
    """Walk-forward folds of ``python ai/rl_trainer.py --evaluate`` when ``--folds`` is not given."""
    ppo: PPOConfig = field(default_factory=lambda: PPOConfig(
        learning_rate=3e-4, n_steps=128, batch_size=128, n_epochs=10, gamma=0.5, gae_lambda=0.95,
        ent_coef=0.0, hidden_sizes=[64, 64], threads=1, device="cpu",
    ))
    """PPO hyperparameters of this agent (``[strategy_agent.ppo]``); keys left out keep these defaults. ``gamma``
    is 0.5 (the seed's 0.9 learned slower on planted histories): a period's weights earn that period's return and
    touch later ones only through turnover."""

    def __post_init__(self) -> None:
        require("strategy_agent", self, (
            ("rebalance_period", is_timeframe(self.rebalance_period, seconds=False), "a timeframe such as 1h, 4h, 1d or 1w"),
            ("window_periods", self.window_periods >= 2, ">= 2"),
            ("recent_periods", 1 <= self.recent_periods <= self.window_periods, ">= 1 and <= window_periods"),
            ("market_window_candles", self.market_window_candles >= 8, ">= 8"),
            ("episode_length", self.episode_length >= 2, ">= 2"),
            *((name, getattr(self, name) >= 0, ">= 0") for name in
              ("reward_sharpe_weight", "reward_pnl_weight", "reward_drawdown_weight")),
            ("sharpe_scale", self.sharpe_scale > 0, "> 0"),
            ("pnl_scale", self.pnl_scale > 0, "> 0"),
            ("drawdown_scale", self.drawdown_scale > 0, "> 0"),
            ("turnover_cost", 0 <= self.turnover_cost < 1, "in [0, 1)"),
            ("holdout_fraction", 0 < self.holdout_fraction <= 0.5, "in (0, 0.5]"),
            ("min_trades", self.min_trades >= 1, ">= 1"),
            ("retrain_after_new_trades", self.retrain_after_new_trades >= 1, ">= 1"),
            cron_check("retrain_cron", self.retrain_cron),
            ("episodes", self.episodes >= 1, ">= 1"),
            ("num_envs", self.num_envs >= 1, ">= 1"),
            ("check_interval_s", self.check_interval_s > 0, "> 0"),
            ("misfire_grace_s", self.misfire_grace_s >= 1, ">= 1"),
            ("debounce_s", self.debounce_s >= 0, ">= 0"),
            ("poll_interval_s", self.poll_interval_s > 0, "> 0"),
            ("inference_interval_s", self.inference_interval_s > 0, "> 0"),
            ("training_log_max_records", self.training_log_max_records >= 1, ">= 1"),
            ("gate_confidence", 0.0 <= self.gate_confidence < 1.0, "in [0, 1) (0 turns the performance gate off)"),
            ("gate_metric", self.gate_metric in GATE_METRICS, one_of(GATE_METRICS)),
            ("gate_bootstrap_samples", self.gate_bootstrap_samples >= 100, ">= 100"),
            ("gate_block_length", self.gate_block_length >= 1, ">= 1"),
            ("evaluation_folds", self.evaluation_folds >= 1, ">= 1"),
        ))

    def retrain_reason(self, trades_now: int, trades_at_last_training: int | None) -> str | None:
        """Why the new-trades trigger asks for a training, or None: the first training once ``min_trades`` trades
        have closed, then every ``retrain_after_new_trades`` new ones (the trainer daemon's rule, also shown by
        the dashboard, which must not load PyTorch to know it)."""
        now, seen = trades_now, trades_at_last_training
        if seen is None:
            return f"first training: {now} trades" if now >= self.min_trades else None
        new = now - seen if now >= seen else now  # a shorter history was replaced: all of it is new
        if new >= self.retrain_after_new_trades and now >= self.min_trades:
            return f"{new} new trades since the last training"
        return None


@dataclass(frozen=True)
class QLearningConfig:
    """The tabular Q-learning agents (``ai/tabular/``, ``ai/qlearning.py``): a strategy (meta) agent and a position-sizing agent."""

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
    backup_cron: str = "0 4 * * 0"
    """When the daemon backs the Q-tables up to ``state/qlearning/backups/weekly_<date>/`` (cron, UTC): weekly,
    Sunday 04:00, by default; an empty string turns the scheduled backups off."""
    backup_keep: int = 8
    """Scheduled backups kept; older ones are removed after each new one (manual and pre-restore ones stay)."""

    def __post_init__(self) -> None:
        require("qlearning", self, (
            *([cron_check("backup_cron", self.backup_cron)] if self.backup_cron else []),  # empty: no backups
            ("backup_keep", self.backup_keep >= 1, ">= 1"),
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
        ))


@dataclass(frozen=True)
class TradingAgentConfig:
    """The trading PPO agent (``ai/trading/``, ``ai/shadow_ppo.py``): environment, reward, benchmark gate,
    staged rollout, risk guard and the shadow daemon. The trading fee is ``costs.fee``."""

    symbol: str = ""
    """Traded symbol; empty takes the primary one (``market.symbols[0]``)."""
    episode_length: int = 512
    """Decisions per training episode (a random window of the training candles); capped by the candles there are."""
    warmup_candles: int = 60
    """Candles at the start of a frame where no episode starts, so the indicators have some history."""
    initial_equity: float = 10_000.0
    """Equity of the simulated account at the start of an episode (and of the shadow account)."""
    position_size: float = 1.0
    """Exposure one LONG or SHORT action adds, as a fraction of equity (1.0: a full position in one decision;
    the seed's 0.1 needs ten decisions to get there, and its agent found a tenth of a planted edge)."""
    max_exposure: float = 1.0
    """Largest absolute exposure, as a fraction of equity (1 = fully invested, no leverage)."""
    min_exposure: float = 0.01
    """An exposure whose size falls below this after a REDUCE is closed (no dust positions)."""
    bankrupt_fraction: float = 0.05
    """An episode terminates once equity is at or below this fraction of the initial equity (wiped out)."""
    reward_pnl: float = 100.0
    """Reward weight of the step's P&L (net return on equity): ``reward_pnl * pnl_delta``."""
    reward_drawdown: float = 0.0
    """Reward weight of the squared drawdown from the episode's equity peak: ``- reward_drawdown * dd**2``
    (the seed's 50; off by default: the shaping terms pulled the agent away from the P&L it is measured on)."""
    reward_volatility_penalty: float = 0.0
    """Penalty per unit of absolute exposure held while volatility is high (see ``high_volatility_percentile``;
    the seed's 1, off by default)."""
    high_volatility_percentile: float = 0.8
    """Volatility rank (0..1, 24-candle volatility among its last 240 values) above which volatility is high."""
    reward_regime: float = 0.0
    """Reward weight of the regime alignment (exposure in the direction the regime favours, in [-1, 1]); the
    seed's 2, off by default: it rewards following the detected trend, which fights a mean-reverting edge."""
    reward_survival: float = 0.0
    """Reward of every step survived (the seed's 0.1, off by default: a constant that teaches nothing)."""
    num_envs: int = 4
    """Episodes stepped side by side in training (one vectorized environment)."""
    train_episodes: int = 200
    """Episodes of ``train`` when ``--episodes`` is not given (200 x 512 steps: about 100k steps, a minute or
    two on one core; at the seed's 100 the agent had not yet found the planted edges)."""
    mirror_training: bool = False
    """Train on the candles and on their mirror image (every log return negated, volatility and autocorrelation
    kept), so a trend of the training window cannot become the policy's bias."""
    lookback_hours: float = 720.0
    """Hours of candles ``train`` and ``benchmark`` use when neither a file nor ``--lookback-hours`` is given."""
    bootstrap_episodes: int = 5
    """Episodes of the small model ``run`` trains first when no model exists yet (0: wait for ``train``); it trains
    on the ``retrain_candles`` candles before the trader's clock only, once ``warmup_candles + episode_length``
    of them exist."""
    poll_interval_s: float = 5.0
    """Seconds between the daemon's looks for newly closed candles."""
    follow_trader: bool = True
    """Follow the paper trader's clock (the last candle of its status, ``core.contracts.trader_status``) when that
    status is fresh; in a replay (synthetic or CSV candles) wait for it when it is not."""
    trader_status_max_age_s: float = 120.0
    """Age after which the trader's status file is stale: the daemon then waits (a replay) or polls the exchange's
    candles itself (``ccxt``)."""
    max_catch_up_candles: int = 500
    """Most candles the daemon decides on in one go after a pause; older missed candles are skipped."""
    replay_lead_candles: int = 48
    """In a replay (synthetic or CSV candles) the daemon decides up to this many candles ahead of the trader's
    last candle, so the trader finds each candle's decision when it gets there (its status is published only
    every few seconds); each decision still uses only the candles up to its own. 0: never ahead."""
    feature_history: int = 1000
    """Candles before the current one used to compute live features (the indicators' history)."""
    max_experiences: int = 5000
    """Experiences the shadow daemon keeps (see ``core.contracts.shadow_status``); older ones are trimmed."""
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
    gate_confidence: float = 0.9
    """Benchmark gate: the bootstrap interval at this confidence of the policy's Sharpe ratio minus that of the best
    baseline (Buy & Hold, MA crossover, Random) on the test window must lie wholly above 0 (``analytics.bootstrap``);
    0 drops this criterion (the seed's four remain)."""
    gate_bootstrap_samples: int = 2000
    """Bootstrap resamples behind the benchmark gate's and ``walk-forward``'s confidence intervals."""
    gate_block_length: int = 24
    """Candles per block of the (circular block) bootstrap, so positions held over several candles keep their
    autocorrelation; 1 resamples single candles."""
    walk_forward_folds: int = 4
    """Folds of ``python ai/shadow_ppo.py walk-forward`` when ``--folds`` is not given."""
    max_daily_loss_pct: float = 2.0
    """Risk guard: the PPO book's loss over the current UTC day, in % of its capital, that trips it to Stage 0."""
    max_drawdown_pct: float = 10.0
    """Risk guard: the PPO book's drawdown from its equity peak, in % of its capital, that trips it to Stage 0."""
    ppo: PPOConfig = field(default_factory=lambda: PPOConfig(gamma=0.5, threads=1))
    """PPO hyperparameters of the trading agent: the library defaults but ``gamma = 0.5`` (a trading edge pays
    within a few candles; at 0.99 the advantages drown in the noise of hundreds of future returns) and one
    torch thread (the networks are small)."""

    def __post_init__(self) -> None:
        at_least_one = ("episode_length", "num_envs", "train_episodes", "max_catch_up_candles", "feature_history",
                        "max_experiences", "retrain_episodes", "retrain_candles", "benchmark_episodes")
        non_negative = ("warmup_candles", "bootstrap_episodes", "reward_pnl", "reward_drawdown",
                        "reward_volatility_penalty", "reward_regime", "min_exposure",
                        "retrain_misfire_grace_s", "benchmark_max_age_days", "replay_lead_candles")
        positive = ("initial_equity", "position_size", "max_exposure", "poll_interval_s", "lookback_hours",
                    "trader_status_max_age_s", "max_daily_loss_pct", "max_drawdown_pct")
        fractions = ("bankrupt_fraction", "high_volatility_percentile", "train_frac")
        require("trading_agent", self, (
            *((name, getattr(self, name) >= 1, "an integer >= 1") for name in at_least_one),
            *((name, getattr(self, name) >= 0, ">= 0") for name in non_negative),
            *((name, getattr(self, name) > 0, "> 0") for name in positive),
            *((name, 0.0 < getattr(self, name) < 1.0, "in (0, 1)") for name in fractions),
            ("gate_win_rate", 0.0 <= self.gate_win_rate <= 1.0, "a share in [0, 1], e.g. 0.55"),
            ("gate_confidence", 0.0 <= self.gate_confidence < 1.0, "in [0, 1) (0 drops the confidence criterion)"),
            ("gate_bootstrap_samples", self.gate_bootstrap_samples >= 100, ">= 100"),
            ("gate_block_length", self.gate_block_length >= 1, ">= 1"),
            ("walk_forward_folds", self.walk_forward_folds >= 1, ">= 1"),
            ("gate_max_drawdown", -1.0 <= self.gate_max_drawdown <= 0.0, "a drawdown in [-1, 0], e.g. -0.15"),
            cron_check("retrain_cron", self.retrain_cron),
        ))
        require_order("trading_agent", self, (
            ("position_size", "max_exposure", "not exceed"),
            ("min_exposure", "position_size", "be below"),
        ))
