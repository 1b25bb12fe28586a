"""Walk-forward evaluation of the strategy-weight agent: ``python ai/rl_trainer.py --evaluate [--folds K]``.

The history's rebalancing periods are cut by :func:`analytics.walk_forward.walk_forward_folds` into expanding
folds: the first half of the periods trains the first fold and the second half is split into ``K`` consecutive
test windows. Each fold trains a fresh agent (:func:`ai.allocation.training.fit`, ``strategy_agent.episodes``
episodes) on the periods before its test window only, then steps through the test window with
:func:`ai.allocation.validation.replay` (the features at a boundary use only data before it). Folds are
expanding only: the agent's features already look back over a rolling window.

Every sleeve is replayed through the same environment (same turnover cost, each fold starting from equal
weights), so their returns compare:

- ``agent``: the trained policy's deterministic weights;
- ``equal_weights``: 1/8 each;
- ``portfolio_optimizer`` and ``strategy_lab``: the weights those sources would have published from the trades
  closed before the day of each period's start (:func:`analytics.performance.replay.optimizer_weights_as_of`,
  :func:`~analytics.performance.replay.lab_weights_as_of`), equal weights while they would publish none;
- ``best_single_in_hindsight``: everything on the strategy with the best total return over the window, chosen
  after the fact (not realizable: a yardstick, never the "best baseline").

Reported per fold and pooled (all test windows in order): total return, Sharpe ratio, max drawdown and mean
period return of each sleeve, and the bootstrap interval (:mod:`analytics.bootstrap`, paired periods,
``strategy_agent.gate_confidence`` / ``gate_metric`` / ``gate_bootstrap_samples`` / ``gate_block_length``) of
the agent's statistic minus each baseline's; ``best_baseline`` is the realizable baseline with the highest
Sharpe ratio. ``periods`` lists every test period with its ``weights`` and ``strategy_returns``, so the agent's
result can be recomputed: a period's return is ``sum_i w_i R_i - turnover_cost * sum_i |w_i - w'_i|`` with
``w'`` the previous period's weights of the same fold (equal weights at a fold's first period).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd

from ai.allocation.env import load_trades, weights_dict
from ai.allocation.features import EQUAL_WEIGHTS, StrategyHistory, ms_to_iso, sanitize_weights
from ai.allocation.training import fit
from ai.allocation.training_data import MIN_TRAIN_PERIODS, TrainingData, prepare_training_data
from ai.allocation.validation import replay
from analytics.bootstrap import difference_ci
from analytics.metrics import max_drawdown, sharpe_ratio, total_return
from analytics.performance.replay import lab_weights_as_of, optimizer_weights_as_of
from analytics.plots import equity_curves_png
from analytics.walk_forward import Fold, walk_forward_folds
from core.config import STRATEGIES, Config

AGENT = "agent"
HINDSIGHT = "best_single_in_hindsight"
REALIZABLE = ("equal_weights", "portfolio_optimizer", "strategy_lab")
"""Baselines that could have been run at the time (the best of them is ``best_baseline``)."""
FIRST_TRAIN_SHARE = 0.5
"""Share of the periods that trains the first fold; the rest is cut into the test windows."""
MIN_TEST_PERIODS = 2

Policy = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Sleeve:
    """One sleeve's weights (as used, on the simplex) and net returns over a test window."""

    weights: list[np.ndarray]
    returns: list[float]


def plan_folds(n_periods: int, folds: int) -> list[Fold]:
    """Expanding folds over the periods; :class:`analytics.walk_forward.NotEnoughForFoldsError` when too few."""
    return walk_forward_folds(n_periods, folds, int(round(n_periods * FIRST_TRAIN_SHARE)),
                              min_train=MIN_TRAIN_PERIODS, min_test=MIN_TEST_PERIODS,
                              unit="rebalancing periods")


def run_sleeve(history: StrategyHistory, cfg: Config, fold: Fold, policy: Policy) -> Sleeve:
    """Replay ``policy`` over the fold's test window."""
    raw, _, returns = replay(history, cfg.strategy_agent, fold.test_start, fold.test_size, policy)
    return Sleeve([sanitize_weights(w) for w in raw], returns)


def scheduled(weights: list[np.ndarray]) -> Policy:
    """A policy that plays precomputed weights in order, one per period (the replay asks once per period)."""
    it: Iterator[np.ndarray] = iter(weights)
    return lambda _obs: next(it)


def day_before(boundary_ms: int) -> date:
    """The last whole day whose trades a source may use for the period starting at ``boundary_ms``."""
    return (datetime.fromtimestamp(boundary_ms / 1000, tz=timezone.utc) - timedelta(days=1)).date()


def source_weights(cfg: Config, trades: pd.DataFrame, history: StrategyHistory, fold: Fold,
                   weights_as_of: Callable[[Config, pd.DataFrame, date], dict[str, float] | None]) -> list[np.ndarray]:
    """A fallback source's weights at each test period, from the trades closed before its start's day only."""
    out = []
    for k in range(fold.test_start, fold.test_end):
        found = weights_as_of(cfg, trades, day_before(int(history.grid.boundaries[k])))
        out.append(EQUAL_WEIGHTS.copy() if found is None else np.array([found[s] for s in STRATEGIES]))
    return out


def hindsight_weights(history: StrategyHistory, fold: Fold) -> list[np.ndarray]:
    """All weight on the strategy with the best compounded return over the fold's test window."""
    window = history.returns[fold.test_start:fold.test_end]
    best = int(np.argmax(np.prod(1.0 + window, axis=0)))
    one_hot = np.zeros(len(STRATEGIES))
    one_hot[best] = 1.0
    return [one_hot] * fold.test_size


def summary(returns: list[float], ppy: float) -> dict[str, float]:
    return {"total_return": total_return(returns), "sharpe_ratio": sharpe_ratio(returns, ppy),
            "max_drawdown": max_drawdown(returns), "mean_return": float(np.mean(returns)) if returns else np.nan}


def compare(sleeves: dict[str, list[float]], cfg: Config, ppy: float) -> dict[str, Any]:
    """Metrics of every sleeve, the best realizable baseline, and the agent's interval against each baseline."""
    acfg = cfg.strategy_agent
    metrics = {name: summary(r, ppy) for name, r in sleeves.items()}
    scored = {b: metrics[b]["sharpe_ratio"] for b in REALIZABLE if np.isfinite(metrics[b]["sharpe_ratio"])}
    best = max(scored, key=lambda b: scored[b]) if scored else "equal_weights"
    intervals = {b: difference_ci(sleeves[AGENT], sleeves[b], ppy, confidence=acfg.gate_confidence or 0.9,
                                  metric=acfg.gate_metric, n_samples=acfg.gate_bootstrap_samples,
                                  block_length=acfg.gate_block_length).as_dict()
                 for b in sleeves if b != AGENT}
    return {"metrics": metrics, "best_baseline": best, "intervals": intervals,
            "beats_best_baseline": bool(intervals[best]["positive"]),
            "beats_equal_weights": bool(intervals["equal_weights"]["positive"])}


def evaluate_fold(cfg: Config, data: TrainingData, trades: pd.DataFrame, fold: Fold
                  ) -> tuple[dict[str, Sleeve], dict[str, Any]]:
    """Train on the periods before the fold's test window, replay every sleeve over it."""
    history = data.history
    trained = fit(TrainingData(history, fold.test_start, data.trades), cfg.strategy_agent, cfg.strategy_agent.episodes)
    sleeves = {
        AGENT: run_sleeve(history, cfg, fold, trained.ppo.predict),
        "equal_weights": run_sleeve(history, cfg, fold, lambda _obs: EQUAL_WEIGHTS),
        "portfolio_optimizer": run_sleeve(history, cfg, fold, scheduled(
            source_weights(cfg, trades, history, fold, optimizer_weights_as_of))),
        "strategy_lab": run_sleeve(history, cfg, fold, scheduled(
            source_weights(cfg, trades, history, fold, lab_weights_as_of))),
        HINDSIGHT: run_sleeve(history, cfg, fold, scheduled(hindsight_weights(history, fold))),
    }
    boundaries = history.grid.boundaries
    report = {"fold": fold.index, "train_periods": fold.train_size, "test_periods": fold.test_size,
              "train_end": ms_to_iso(int(boundaries[fold.train_end])),
              "test_start": ms_to_iso(int(boundaries[fold.test_start])),
              "test_end": ms_to_iso(int(boundaries[fold.test_end])),
              "hindsight_strategy": STRATEGIES[int(np.argmax(sleeves[HINDSIGHT].weights[0]))],
              **compare({n: s.returns for n, s in sleeves.items()}, cfg, history.periods_per_year)}
    return sleeves, report


def period_records(history: StrategyHistory, fold: Fold, agent: Sleeve) -> list[dict[str, Any]]:
    """The test periods of one fold with the agent's weights and each strategy's return."""
    boundaries = history.grid.boundaries
    return [{"fold": fold.index, "start": ms_to_iso(int(boundaries[k])), "end": ms_to_iso(int(boundaries[k + 1])),
             "weights": weights_dict(agent.weights[i]),
             "strategy_returns": {s: float(r) for s, r in zip(STRATEGIES, history.returns[k], strict=True)}}
            for i, k in enumerate(range(fold.test_start, fold.test_end))]


def evaluate(cfg: Config, folds: int, progress: bool = False) -> dict[str, Any]:
    """The ``--evaluate`` document (see the module docstring).

    :class:`~ai.allocation.training_data.NotEnoughDataError` or
    :class:`~analytics.walk_forward.NotEnoughForFoldsError` when the history is too short.
    """
    from tqdm import tqdm

    data = prepare_training_data(cfg)
    trades = load_trades(cfg)
    plan = plan_folds(data.history.n_periods, folds)
    reports, periods = [], []
    pooled: dict[str, list[float]] = {}
    for fold in tqdm(plan, desc="walk-forward", unit="fold", disable=not progress):
        sleeves, report = evaluate_fold(cfg, data, trades, fold)
        reports.append(report)
        periods += period_records(data.history, fold, sleeves[AGENT])
        for name, sleeve in sleeves.items():
            pooled.setdefault(name, []).extend(sleeve.returns)
    acfg = cfg.strategy_agent
    return plain({"data_range": data.history.data_range(), "scheme": "expanding", "episodes": acfg.episodes,
            "seed": acfg.ppo.seed, "turnover_cost": acfg.turnover_cost,
            "periods_per_year": data.history.periods_per_year, "confidence": acfg.gate_confidence or 0.9,
            "metric": acfg.gate_metric, "folds": reports,
            "pooled": compare(pooled, cfg, data.history.periods_per_year), "periods": periods,
            "returns": pooled})


def equity_plot(doc: dict[str, Any]) -> bytes:
    """PNG of the compounded equity over the pooled test periods: the agent against every baseline."""
    ends = pd.DatetimeIndex([p["end"] for p in doc["periods"]])
    curves = {name: np.cumprod(1.0 + np.nan_to_num(np.asarray(r, dtype=float))) for name, r in doc["returns"].items()}
    title = (f"walk-forward, {len(doc['folds'])} folds: the test windows joined "
             f"({doc['periods'][0]['start'][:10]} .. {doc['periods'][-1]['end'][:10]})")
    return equity_curves_png(ends, curves, {}, title)


def plain(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (the document is JSON without NaN)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
