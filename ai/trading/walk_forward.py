"""Walk-forward evaluation of the trading PPO: train on each fold's past only, test on its next window.

    python ai/shadow_ppo.py walk-forward --candles FILE --folds K [--scheme expanding|rolling] [--json]

The candles are cut into folds by :func:`analytics.walk_forward.walk_forward_folds`: the first
``--train-frac`` of them train the first fold and the rest is split into ``K`` consecutive test windows;
``expanding`` folds train on every candle before their window, ``rolling`` ones on the same number of candles
just before it. Each fold trains a fresh model on its training candles only (the benchmark's
:func:`ai.trading.benchmark.fresh_model`, never saved) and evaluates it with the benchmark's
:func:`ai.trading.benchmark.evaluate_window` against Buy & Hold, the MA crossover and Random on its test window
(features may look back into the training candles, never ahead).

Reported per fold and pooled over all test windows (the folds' step returns joined in order): total return,
Sharpe ratio and max drawdown of every strategy, the best baseline (highest Sharpe ratio), and the bootstrap
interval (:mod:`analytics.bootstrap`, confidence ``trading_agent.gate_confidence``, blocks of
``gate_block_length`` candles) of the policy's Sharpe ratio minus the best baseline's. The pooled Random is the
run with the median Sharpe ratio of each fold. Nothing is installed or published: it is a report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ai.trading.benchmark import (
    BASELINES,
    STRATEGY_NAMES,
    BenchmarkRequest,
    WindowResult,
    best_baseline,
    confidence_vs,
    evaluate_window,
    features_for,
    fresh_model,
    resolve_periods_per_year,
)
from ai.trading.common import CandleSet, finite_or_none, window_info
from analytics.metrics import max_drawdown, sharpe_ratio, total_return
from analytics.walk_forward import Fold, walk_forward_folds
from core.config import Config
from core.errors import DataError

MIN_TEST_CANDLES = 2
"""A test window needs two candles at least (one step return)."""


@dataclass(frozen=True)
class WalkForwardRequest:
    """What ``walk-forward`` was asked for (see the command's help)."""

    folds: int = 4
    scheme: str = "expanding"
    train_frac: float = 0.7
    fee: float = 0.001
    episodes: int = 10
    train_episodes: int = 100
    periods_per_year: float | None = None
    ma_fast: int = 10
    ma_slow: int = 20
    seed: int = 0
    show_bar: bool = False


def plan_folds(cfg: Config, n_candles: int, request: WalkForwardRequest) -> list[Fold]:
    """The folds over ``n_candles``; :class:`analytics.walk_forward.NotEnoughForFoldsError` when too few."""
    if not 0.0 < request.train_frac < 1.0:
        raise DataError(f"--train-frac must be between 0 and 1 (exclusive), got {request.train_frac}")
    min_train = cfg.trading_agent.warmup_candles + MIN_TEST_CANDLES
    return walk_forward_folds(n_candles, request.folds, int(round(n_candles * request.train_frac)),
                              min_train=min_train, min_test=MIN_TEST_CANDLES, scheme=request.scheme,
                              unit="candles")


def fold_slice(candle_set: CandleSet, fold: Fold) -> tuple[CandleSet, int]:
    """The candles a fold sees (its training window then its test window) and where its test window starts."""
    frame = candle_set.frame.iloc[fold.train_start:fold.test_end].reset_index(drop=True)
    return CandleSet(frame, candle_set.symbol, candle_set.timeframe, candle_set.data_source), fold.train_size


def window_summary(returns: Mapping[str, np.ndarray], ppy: float) -> dict[str, dict[str, float]]:
    """Total return, Sharpe ratio and max drawdown of each strategy's step returns."""
    return {name: {"total_return": total_return(r), "sharpe_ratio": sharpe_ratio(r, ppy),
                   "max_drawdown": max_drawdown(r), "steps": float(len(r))} for name, r in returns.items()}


def comparison(cfg: Config, metrics: Mapping[str, Mapping[str, float]], returns: Mapping[str, np.ndarray],
               ppy: float) -> dict[str, Any]:
    """The best baseline by Sharpe ratio and the interval of the policy's Sharpe difference to it."""
    best = best_baseline(metrics)
    ci = confidence_vs(cfg, returns, best, ppy)
    return {"best_baseline": best, "best_baseline_name": STRATEGY_NAMES[best], "sharpe_difference": ci.as_dict(),
            "beats_best_baseline": ci.positive}


def evaluate_fold(cfg: Config, candle_set: CandleSet, fold: Fold, request: WalkForwardRequest, ppy: float
                  ) -> tuple[dict[str, Any], WindowResult]:
    """Train on the fold's past, evaluate on its test window; the fold's report and its window result."""
    seen, split = fold_slice(candle_set, fold)
    bench = BenchmarkRequest(train_frac=request.train_frac, fee=request.fee, episodes=request.episodes,
                             train_episodes=request.train_episodes, ma_fast=request.ma_fast,
                             ma_slow=request.ma_slow, seed=request.seed)
    model, info = fresh_model(cfg, seen, split, bench)
    result = evaluate_window(cfg, features_for(seen, cfg), split, model, request.fee, request.episodes, ppy,
                             request.ma_fast, request.ma_slow, request.seed)
    report = {
        "fold": fold.index,
        "train_window": window_info(seen.frame, 0, split),
        "test_window": window_info(seen.frame, split, len(seen.frame)),
        "metrics": {name: dict(result.metrics[name]) for name in STRATEGY_NAMES},
        **comparison(cfg, result.metrics, result.returns, ppy),
        "model": {"trained_range": info["trained_range"], "episodes": info["episodes"]},
    }
    return report, result


def pooled_report(cfg: Config, results: list[WindowResult], ppy: float) -> dict[str, Any]:
    """Every strategy over all test windows joined in order, and the interval against the best baseline."""
    joined = {name: np.concatenate([r.returns[name] for r in results]) for name in STRATEGY_NAMES}
    metrics = window_summary(joined, ppy)
    for name in STRATEGY_NAMES:
        metrics[name]["n_trades"] = float(sum(r.metrics[name]["n_trades"] for r in results))
    return {"metrics": metrics, **comparison(cfg, metrics, joined, ppy),
            "rl_beats_every_baseline_on_sharpe": all(
                metrics["rl_v3"]["sharpe_ratio"] > metrics[b]["sharpe_ratio"] for b in BASELINES)}


def run_walk_forward(cfg: Config, candle_set: CandleSet, request: WalkForwardRequest) -> dict[str, Any]:
    """The ``walk-forward`` command's document (see the module docstring); a progress bar over folds."""
    from tqdm import tqdm

    if request.train_episodes < 1 or request.episodes < 1:
        raise DataError(f"--train-episodes and --episodes must be >= 1, got {request.train_episodes} and "
                        f"{request.episodes}")
    if not 1 <= request.ma_fast < request.ma_slow:
        raise DataError(f"--ma-fast must be >= 1 and below --ma-slow, got {request.ma_fast} and {request.ma_slow}")
    folds = plan_folds(cfg, len(candle_set.frame), request)
    ppy = resolve_periods_per_year(cfg, candle_set.timeframe, request.periods_per_year)
    reports, results = [], []
    for fold in tqdm(folds, desc="walk-forward", unit="fold", disable=not request.show_bar):
        report, result = evaluate_fold(cfg, candle_set, fold, request, ppy)
        reports.append(report)
        results.append(result)
    doc = {
        "symbol": candle_set.symbol, "timeframe": candle_set.timeframe, "data_source": candle_set.data_source,
        "scheme": request.scheme, "train_frac": request.train_frac, "fee": request.fee,
        "periods_per_year": ppy, "train_episodes": request.train_episodes, "random_episodes": request.episodes,
        "moving_average": {"fast": request.ma_fast, "slow": request.ma_slow},
        "gate_confidence": cfg.trading_agent.gate_confidence, "folds": reports,
        "pooled": pooled_report(cfg, results, ppy),
    }
    out: dict[str, Any] = finite_or_none(doc)
    return out
