"""Out-of-sample benchmark of the trading PPO against Buy & Hold, MA crossover and Random, and its gate.

The candles are split at ``round(n * train_frac)``: the first part is the training window, the rest the test
window. All four strategies are evaluated on the test window only, starting flat, with the accounting of
:mod:`analytics.baselines` (decisions at candles ``split .. n-2``, so ``n - 1 - split`` step returns):

- ``rl_v3``: the policy's deterministic (most probable) action at each candle, stepped through
  :class:`ai.trading.env.TradingEnv` started at the first test candle (features use every candle up to the
  current one, those of the training window included);
- ``buy_hold``: exposure 1 throughout; ``moving_avg``: the MA crossover of :mod:`analytics.baselines`;
- ``random``: uniform random actions through the same environment, metrics averaged over ``episodes`` seeds
  (its step returns, for the confidence interval, are those of the run with the median Sharpe ratio).

The gate is the original guide's success criteria on the policy: Sharpe > ``gate_sharpe`` (1.5), max drawdown
better than ``gate_max_drawdown`` (-15 %), win rate > ``gate_win_rate`` (55 %) and a Sharpe ratio above Buy &
Hold's ("beats Buy & Hold", risk-adjusted like ``winner``), plus a confidence criterion when
``gate_confidence`` > 0: the bootstrap interval (:mod:`analytics.bootstrap`, paired candles, blocks of
``gate_block_length``) of the policy's Sharpe ratio minus that of the best baseline lies wholly above 0. An
undefined value fails its criterion.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ai.trading.account import N_ACTIONS
from ai.trading.common import CandleSet, TradingModel, file_sha256, finite_or_none, load_model, window_info
from ai.trading.env import TradingEnv
from ai.trading.market_features import MarketFeatures, compute_market_features
from ai.trading.options import TradingEnvOptions, options_from_config
from ai.trading.training import install_model, model_meta, reported_training, train_agent
from analytics.baselines import (
    METRIC_KEYS,
    buy_and_hold_exposures,
    env_exposures,
    equity_from_returns,
    exposure_returns,
    ma_crossover_exposures,
    mean_metrics,
    random_action_chooser,
    strategy_metrics,
)
from analytics.bootstrap import DifferenceCI, difference_ci
from analytics.metrics import periods_per_year_for
from core.config import Config
from core.contracts.trading_model import MODEL_DISPLAY, TrainRange, model_path
from core.contracts.trading_reports import (
    BenchmarkDoc,
    publish_benchmark,
    read_benchmark,
    write_benchmark_plot,
)
from core.errors import DataError

log = logging.getLogger(__name__)

STRATEGY_NAMES: dict[str, str] = {"rl_v3": "RL v3", "buy_hold": "Buy & Hold", "moving_avg": "Moving Average",
                                  "random": "Random"}
"""Key prefix in the benchmark document -> display name (``winner`` uses the display name)."""
BASELINES = ("buy_hold", "moving_avg", "random")
"""The baselines the policy is measured against."""


@dataclass
class WindowResult:
    """Metrics, equity curves and step returns of the four strategies on one test window."""

    metrics: dict[str, dict[str, float]]
    curves: dict[str, np.ndarray]
    timestamps: np.ndarray
    returns: dict[str, np.ndarray]


def split_index(n_candles: int, train_frac: float) -> int:
    """First candle of the test window."""
    if not 0.0 < train_frac < 1.0:
        raise DataError(f"--train-frac must be between 0 and 1 (exclusive), got {train_frac}")
    split = int(round(n_candles * train_frac))
    if n_candles - split < 2:
        raise DataError(f"{n_candles} candles with --train-frac {train_frac} leave {n_candles - split} test candle(s); "
                        "need at least 2: use more candles or a smaller --train-frac")
    return split


def resolve_periods_per_year(cfg: Config, timeframe: str, explicit: float | None) -> float:
    """``--periods-per-year`` if given, else the timeframe's count in the configured calendar."""
    if explicit is not None:
        if not explicit > 0:
            raise DataError(f"--periods-per-year must be > 0, got {explicit}")
        return float(explicit)
    try:
        return periods_per_year_for(timeframe, cfg.market.calendar)
    except ValueError as exc:
        raise DataError(f"{exc}; pass --periods-per-year") from exc


def policy_run(model: TradingModel, features: MarketFeatures, split: int, options: TradingEnvOptions
               ) -> tuple[np.ndarray, np.ndarray]:
    """Exposures and step returns of the deterministic policy over the test window."""
    env = TradingEnv(features=features, options=options, start_index=split, episode_length=None)
    steps = len(features) - 1 - split
    return env_exposures(env, lambda obs: int(model.act(obs[None, :])[0]), steps=steps)


def evaluate_window(cfg: Config, features: MarketFeatures, split: int, model: TradingModel, fee: float,
                    episodes: int, periods_per_year: float, ma_fast: int, ma_slow: int, seed: int = 0
                    ) -> WindowResult:
    """The four strategies on the test window ``split..n-1`` (see the module docstring)."""
    n = len(features)
    steps = n - 1 - split
    closes = features.closes[split:]
    options = options_from_config(cfg, fee=fee)
    exposures: dict[str, np.ndarray] = {}
    returns: dict[str, np.ndarray] = {}
    exposures["rl_v3"], returns["rl_v3"] = policy_run(model, features, split, options)
    exposures["buy_hold"] = buy_and_hold_exposures(steps)
    exposures["moving_avg"] = ma_crossover_exposures(features.closes, split, n - 1, ma_fast, ma_slow)
    for name in ("buy_hold", "moving_avg"):
        returns[name] = exposure_returns(closes, exposures[name], fee)
    metrics = {name: strategy_metrics(closes, exposures[name], fee, periods_per_year, returns[name])
               for name in exposures}
    curves = {name: equity_from_returns(returns[name]) for name in returns}
    env = TradingEnv(features=features, options=options, start_index=split, episode_length=None)
    runs, random_curves, random_returns = [], [], []
    for i in range(episodes):
        chooser = random_action_chooser(N_ACTIONS, seed + i)
        p, r = env_exposures(env, chooser, seed=seed + i, steps=steps)
        runs.append(strategy_metrics(closes, p, fee, periods_per_year, r))
        random_curves.append(equity_from_returns(r))
        random_returns.append(r)
    metrics["random"] = mean_metrics(runs)
    curves["random"] = np.mean(random_curves, axis=0)
    returns["random"] = random_returns[median_run([run["sharpe_ratio"] for run in runs])]
    return WindowResult(metrics, curves, features.timestamps[split:], returns)


def median_run(sharpes: list[float]) -> int:
    """Index of the run with the median Sharpe ratio (undefined ones count as the lowest)."""
    order = sorted(range(len(sharpes)), key=lambda i: sharpes[i] if math.isfinite(sharpes[i]) else -math.inf)
    return order[(len(order) - 1) // 2]


def best_baseline(metrics: Mapping[str, Mapping[str, float]]) -> str:
    """Key of the baseline with the highest defined Sharpe ratio (Buy & Hold when none is defined)."""
    scored = {k: metrics[k]["sharpe_ratio"] for k in BASELINES if math.isfinite(metrics[k]["sharpe_ratio"])}
    return max(scored, key=lambda k: scored[k]) if scored else "buy_hold"


def confidence_vs(cfg: Config, returns: Mapping[str, np.ndarray], baseline: str,
                  periods_per_year: float) -> DifferenceCI:
    """The gate's bootstrap interval of the policy's Sharpe ratio minus ``baseline``'s on the same candles."""
    ta = cfg.trading_agent
    return difference_ci(returns["rl_v3"], returns[baseline], periods_per_year,
                         confidence=ta.gate_confidence if ta.gate_confidence > 0 else 0.9,
                         n_samples=ta.gate_bootstrap_samples, block_length=ta.gate_block_length)


def winner(metrics: dict[str, dict[str, float]]) -> str | None:
    """Display name of the strategy with the highest (defined) Sharpe ratio."""
    scored = {k: v["sharpe_ratio"] for k, v in metrics.items() if math.isfinite(v["sharpe_ratio"])}
    return STRATEGY_NAMES[max(scored, key=lambda k: scored[k])] if scored else None


def benchmark_gate(cfg: Config, rl: dict[str, float], buy_hold: dict[str, float],
                   confidence: tuple[str, DifferenceCI] | None = None) -> dict[str, Any]:
    """Pass/fail of each criterion of the original guide, of the confidence criterion and overall.

    ``confidence`` is ``(best baseline's key, interval of the Sharpe difference)``; without it (or with
    ``gate_confidence = 0``) the confidence criterion is left out.
    """
    ta = cfg.trading_agent

    def above(value: float, threshold: float) -> bool:
        return bool(math.isfinite(value) and math.isfinite(threshold) and value > threshold)

    criteria = {
        "sharpe_ratio": {"value": rl["sharpe_ratio"], "threshold": ta.gate_sharpe, "rule": f"> {ta.gate_sharpe:g}",
                         "passed": above(rl["sharpe_ratio"], ta.gate_sharpe)},
        "max_drawdown": {"value": rl["max_drawdown"], "threshold": ta.gate_max_drawdown,
                         "rule": f"> {ta.gate_max_drawdown:g}", "passed": above(rl["max_drawdown"], ta.gate_max_drawdown)},
        "win_rate": {"value": rl["win_rate"], "threshold": ta.gate_win_rate, "rule": f"> {ta.gate_win_rate:g}",
                     "passed": above(rl["win_rate"], ta.gate_win_rate)},
        "beats_buy_hold": {"value": rl["sharpe_ratio"], "threshold": buy_hold["sharpe_ratio"],
                           "rule": "Sharpe ratio above Buy & Hold's",
                           "passed": above(rl["sharpe_ratio"], buy_hold["sharpe_ratio"])},
    }
    if confidence is not None and ta.gate_confidence > 0:
        baseline, ci = confidence
        criteria["beats_best_baseline_with_confidence"] = {
            "value": finite_or_none(ci.lower), "threshold": 0.0, "baseline": STRATEGY_NAMES[baseline],
            "rule": f"lower bound of the {ci.confidence:.0%} bootstrap interval of the Sharpe ratio minus "
                    f"{STRATEGY_NAMES[baseline]}'s > 0",
            "interval": ci.as_dict(), "passed": ci.positive}
    return {**criteria, "passed": all(c["passed"] for c in criteria.values())}


def ranges_overlap(train_range: TrainRange | dict[str, Any] | None, test: TrainRange) -> bool:
    """True when a model's training range shares candles with the test window (or its range is unknown)."""
    if not train_range or "start" not in train_range or "end" not in train_range:
        return True
    return int(train_range["start"]) <= int(test["end"]) and int(train_range["end"]) >= int(test["start"])


def benchmark_document(cfg: Config, candle_set: CandleSet, split: int, result: WindowResult, *, fee: float,
                       periods_per_year: float, episodes: int, ma: tuple[int, int], train_frac: float,
                       train_window: TrainRange | dict[str, Any], in_sample: bool, model_info: dict[str, Any]
                       ) -> BenchmarkDoc:
    """The benchmark JSON (without the envelope)."""
    test_window = window_info(candle_set.frame, split, len(candle_set.frame))
    metrics = {name: {key: result.metrics[name][key] for key in METRIC_KEYS} for name in STRATEGY_NAMES}
    doc: dict[str, Any] = {f"{name}_metrics": metrics[name] for name in STRATEGY_NAMES}
    best = best_baseline(metrics)
    confidence = (best, confidence_vs(cfg, result.returns, best, periods_per_year))
    doc.update({
        "winner": winner(metrics),
        "gate": benchmark_gate(cfg, metrics["rl_v3"], metrics["buy_hold"], confidence),
        "in_sample": in_sample,
        "train_window": train_window,
        "test_window": test_window,
        "train_frac": train_frac,
        "fee": fee,
        "periods_per_year": periods_per_year,
        "data_source": candle_set.data_source,
        "symbol": candle_set.symbol,
        "timeframe": candle_set.timeframe,
        "random_episodes": episodes,
        "moving_average": {"fast": ma[0], "slow": ma[1]},
        "model": model_info,
    })
    return finite_or_none(doc)


def write_benchmark(cfg: Config, doc: BenchmarkDoc, result: WindowResult) -> dict[str, Any]:
    """Publish the benchmark document and the PNG of the equity curves beside it."""
    written = publish_benchmark(cfg, doc)
    try:
        write_benchmark_plot(cfg, equity_plot(result, doc))
    except (OSError, ValueError, RuntimeError) as exc:  # a plotting failure must not lose the figures
        log.warning("could not draw the benchmark plot %s: %s", written.get("plot"), exc)
    return written


def equity_plot(result: WindowResult, doc: Mapping[str, Any]) -> bytes:
    """PNG bytes of the four equity curves over the test window."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = np.asarray(result.timestamps, dtype=np.int64).astype("datetime64[ms]")  # UTC, matplotlib's default
    fig, ax = plt.subplots(figsize=(10, 5))
    try:
        for name, label in STRATEGY_NAMES.items():
            sharpe = doc[f"{name}_metrics"]["sharpe_ratio"]
            suffix = f" (Sharpe {sharpe:.2f})" if sharpe is not None else ""
            ax.plot(times, result.curves[name], label=label + suffix)
        sample = "IN-SAMPLE" if doc["in_sample"] else "out-of-sample"
        ax.set_title(f"{doc['symbol']} {doc['timeframe']}: {sample} equity (fee {doc['fee']:g})")
        ax.set_ylabel("equity (start = 1)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.autofmt_xdate()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
    finally:
        plt.close(fig)
    return buffer.getvalue()


def rollout_blockers(cfg: Config) -> list[str]:
    """Why the latest benchmark does not allow a rollout above 0 % (empty when it does)."""
    result = read_benchmark(cfg)
    if not result.ok or result.data is None:
        return [f"no usable benchmark ({result.reason}); run `python ai/shadow_ppo.py benchmark "
                "--train-episodes N --save-model` first"]
    doc = result.data
    problems = []
    raw_gate = doc.get("gate")
    gate: dict[str, Any] = raw_gate if isinstance(raw_gate, dict) else {}
    if gate.get("passed") is not True:
        failed = [k for k, v in gate.items() if isinstance(v, dict) and not v.get("passed")]
        problems.append("the latest benchmark did not pass its gate" + (f" (failed: {', '.join(failed)})" if failed else ""))
    if doc.get("in_sample") is not False:
        problems.append("the latest benchmark was in sample (the model was trained on the test window)")
    limit_days = cfg.trading_agent.benchmark_max_age_days
    if result.age_s is not None and result.age_s > limit_days * 86_400:
        problems.append(f"the latest benchmark is {result.age_s / 86_400:.1f} days old, more than the "
                        f"{limit_days:g} days allowed (trading_agent.benchmark_max_age_days)")
    current = file_sha256(model_path(cfg))
    benchmarked = (doc.get("model") or {}).get("sha256")
    if current is None:
        problems.append(f"there is no model in {MODEL_DISPLAY}")
    elif benchmarked != current:
        problems.append(f"the latest benchmark evaluated another model than the one in {MODEL_DISPLAY} "
                        "(benchmark it, or use --save-model when benchmarking with --train-episodes)")
    return problems


def features_for(candle_set: CandleSet, cfg: Config) -> MarketFeatures:
    return compute_market_features(candle_set.frame, cfg.trading_agent.high_volatility_percentile)


# ------------------------------------------------------------------------------------------------ the command


@dataclass(frozen=True)
class BenchmarkRequest:
    """What ``benchmark`` was asked for (see the command's help)."""

    train_frac: float = 0.7
    fee: float = 0.001
    episodes: int = 10
    train_episodes: int | None = None
    periods_per_year: float | None = None
    ma_fast: int = 10
    ma_slow: int = 20
    save_model: bool = False
    seed: int = 0
    show_bar: bool = False


def fresh_model(cfg: Config, candle_set: CandleSet, split: int, request: BenchmarkRequest
                ) -> tuple[TradingModel, dict[str, Any]]:
    """Train a model on the training window only (under the training lock); install it with ``save_model``."""
    assert request.train_episodes
    train_set = CandleSet(candle_set.frame.iloc[:split].reset_index(drop=True), candle_set.symbol,
                          candle_set.timeframe, candle_set.data_source)
    description = f"benchmark training on {split} candles of {candle_set.symbol}"
    with reported_training(cfg, request.train_episodes, description, request.show_bar) as reporter:
        result = train_agent(cfg, train_set.frame, request.train_episodes, reporter, fee=request.fee)
        meta = model_meta(train_set, split, result)
        path = install_model(cfg, result.agent, meta) if request.save_model else None
        reporter.finish(f"Training complete: {request.train_episodes} episodes"
                        + (f", model saved to {path.name}" if path else " (benchmark only, not saved)"))
    checkpoint = result.agent.checkpoint_meta(dict(meta))
    model = TradingModel(result.agent.policy.eval(), checkpoint, path or model_path(cfg),
                         file_sha256(path) if path else None)
    info = {"source": "fresh", "saved": path is not None, "path": str(path) if path else None,
            "sha256": model.sha256, "trained_range": meta["train_range"], "episodes": request.train_episodes}
    return model, info


def run_benchmark(cfg: Config, candle_set: CandleSet, request: BenchmarkRequest) -> dict[str, Any]:
    """The ``benchmark`` command: evaluate on the test window, publish the JSON and the PNG; returns the JSON."""
    if request.episodes < 1:
        raise DataError(f"--episodes must be >= 1, got {request.episodes}")
    if request.train_episodes is not None and request.train_episodes < 1:
        raise DataError(f"--train-episodes must be >= 1, got {request.train_episodes}")
    if not 0 <= request.fee < 1:
        raise DataError(f"--fee must be in [0, 1), got {request.fee}")
    if not 1 <= request.ma_fast < request.ma_slow:
        raise DataError(f"--ma-fast must be >= 1 and below --ma-slow, got {request.ma_fast} and {request.ma_slow}")
    frame = candle_set.frame
    split = split_index(len(frame), request.train_frac)
    periods = resolve_periods_per_year(cfg, candle_set.timeframe, request.periods_per_year)
    test_window = window_info(frame, split, len(frame))
    train_window: TrainRange | dict[str, Any]
    if request.train_episodes:
        model, model_info = fresh_model(cfg, candle_set, split, request)
        train_window, in_sample = window_info(frame, 0, split), False
    else:
        model = load_model(model_path(cfg))
        train_window = model.train_range or {}
        in_sample = ranges_overlap(model.train_range, test_window)
        model_info = {"source": "saved", "saved": True, "path": str(model.path), "sha256": model.sha256,
                      "trained_range": model.train_range, "symbol": model.extra.get("symbol"),
                      "timeframe": model.extra.get("timeframe")}
        if in_sample:
            log.warning("the saved model was trained on candles of the test window: the benchmark is in sample")
    features = features_for(candle_set, cfg)
    result = evaluate_window(cfg, features, split, model, request.fee, request.episodes, periods,
                             request.ma_fast, request.ma_slow, request.seed)
    doc = benchmark_document(cfg, candle_set, split, result, fee=request.fee, periods_per_year=periods,
                             episodes=request.episodes, ma=(request.ma_fast, request.ma_slow),
                             train_frac=request.train_frac, train_window=train_window, in_sample=in_sample,
                             model_info=model_info)
    return write_benchmark(cfg, doc, result)
