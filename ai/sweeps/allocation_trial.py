"""One trial of the strategy-weight agent: train on the history's training slice, evaluate on its held-out end.

The trial's symbol is the primary market (``market.symbols[0]``): the symbol whose candles give the market and
regime features, the one the 8 strategies trade. The data are those of a daemon training
(:func:`ai.allocation.training_data.prepare_training_data`: the closed-trade history and the symbol's candles,
split at ``strategy_agent.holdout_fraction``); training is :func:`ai.allocation.training.fit`; the candidate
is judged by the promotion gate (:func:`ai.allocation.validation.check_candidate`, against equal weights) and
replayed over the held-out periods beside equal weights, the portfolio optimizer and the strategy lab
(:mod:`ai.allocation.evaluation`). Nothing outside the trial's folder is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ai.allocation.agent import checkpoint_extra
from ai.allocation.env import load_trades
from ai.allocation.evaluation import AGENT, compare, run_sleeve, scheduled, source_weights
from ai.allocation.features import EQUAL_WEIGHTS
from ai.allocation.training import fit
from ai.allocation.training_data import TrainingData, prepare_training_data
from ai.allocation.validation import check_candidate
from ai.ppo import MetricsLog
from analytics.performance.replay import lab_weights_as_of, optimizer_weights_as_of
from analytics.walk_forward import Fold
from core.atomic import utc_now_iso
from core.config import Config, replace_section
from core.contracts.experiments import CHECKPOINT_NAME
from core.contracts.trading_model import METRICS_NAME
from market.sources import load_candles

TRIAL_MODEL_VERSION = 0
"""The version a trial's checkpoint carries; ``promote`` gives it the next free version when installing it."""


def with_primary(cfg: Config, symbol: str) -> Config:
    """``cfg`` with ``symbol`` first in ``market.symbols`` (the other symbols keep their order)."""
    rest = [s for s in cfg.market.symbols if s != symbol]
    return replace_section(cfg, "market", symbols=[symbol, *rest])


def allocation_data(cfg: Config, symbol: str) -> TrainingData:
    """The daemon's training data with ``symbol`` as the primary market.

    The candles are loaded before the symbol moves first: a synthetic symbol's path depends on its place in the
    configured market, so every symbol keeps its own path instead of all taking the first one's.
    """
    candles = load_candles(cfg, [symbol])[symbol]
    return prepare_training_data(with_primary(cfg, symbol), candles=candles)


def holdout_fold(data: TrainingData) -> Fold:
    start, end = data.holdout
    return Fold(index=0, train_start=0, train_end=start, test_start=start, test_end=end)


def run_allocation_trial(cfg: Config, symbol: str, folder: Path) -> tuple[dict[str, Any], str]:
    """Train, gate and evaluate; returns (metrics, checkpoint path)."""
    data = allocation_data(cfg, symbol)
    cfg = with_primary(cfg, symbol)
    acfg = cfg.strategy_agent
    with MetricsLog(folder / METRICS_NAME, tensorboard=folder if acfg.ppo.tensorboard else None) as curve:
        result = fit(data, acfg, acfg.episodes, on_update=curve)
    extra = checkpoint_extra(acfg, TRIAL_MODEL_VERSION, data.data_range(), episodes=acfg.episodes,
                             total_steps=result.ppo.num_timesteps, seed=acfg.ppo.seed, trained_at=utc_now_iso())
    checkpoint = result.ppo.save(folder / CHECKPOINT_NAME, extra_meta=extra)
    check = check_candidate(checkpoint, data, acfg)
    report = holdout_report(cfg, data, result.ppo.predict)
    metrics = report["metrics"]
    return {
        "sharpe": metrics[AGENT]["sharpe_ratio"], "total_return": metrics[AGENT]["total_return"],
        "max_drawdown": metrics[AGENT]["max_drawdown"],
        **{f"{name}_sharpe": metrics[name]["sharpe_ratio"] for name in metrics if name != AGENT},
        "best_baseline": report["best_baseline"], "beats_best_baseline": report["beats_best_baseline"],
        "gate_passed": check.ok, "gate_reason": check.reason, "holdout_periods": data.holdout[1] - data.holdout[0],
        "timesteps": result.ppo.num_timesteps,
    }, str(checkpoint)


def holdout_report(cfg: Config, data: TrainingData, policy: Any) -> dict[str, Any]:
    """The agent, equal weights and the two fallback sources replayed over the held-out periods, compared."""
    fold = holdout_fold(data)
    trades = load_trades(cfg)
    history = data.history
    sleeves = {
        AGENT: run_sleeve(history, cfg, fold, policy),
        "equal_weights": run_sleeve(history, cfg, fold, lambda _obs: EQUAL_WEIGHTS),
        "portfolio_optimizer": run_sleeve(history, cfg, fold, scheduled(
            source_weights(cfg, trades, history, fold, optimizer_weights_as_of))),
        "strategy_lab": run_sleeve(history, cfg, fold, scheduled(
            source_weights(cfg, trades, history, fold, lab_weights_as_of))),
    }
    return compare({name: sleeve.returns for name, sleeve in sleeves.items()}, cfg, history.periods_per_year)

