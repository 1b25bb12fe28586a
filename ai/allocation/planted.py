"""Learnability on a known answer: train the strategy-weight agent on a planted history and compare it, on the
held-out periods, with equal weights and the regime-aware oracle.

    planted = planted_history(days=365, seed=0)            # market.planted_history
    data = planted_training_data(cfg, planted)
    result = fit(data, cfg.strategy_agent, episodes)       # ai.allocation.training
    report = compare_on_holdout(data, planted, cfg.strategy_agent, result.ppo.predict)

Every figure is out of sample (the held-out end of the history, never trained on) and after the turnover
costs of the environment; the strategies' ``pnl_pct`` are already net of their trading costs.
:func:`bench_run` and :func:`bench_summary` are ``python scripts/bench_learning.py --agent allocation``: each seed
on a planted history and on one with no edge (random ``pnl_pct``), where the promotion gate must refuse.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ai.allocation.agent import checkpoint_extra
from ai.allocation.env import history_from_frames
from ai.allocation.features import EQUAL_WEIGHTS
from ai.allocation.training import fit
from ai.allocation.training_data import TrainingData, split_periods
from ai.allocation.validation import check_candidate, replay
from ai.ppo import PPO
from analytics.metrics import sharpe_ratio
from analytics.oracle import allocation_returns, oracle_weights, uplift_share
from core.config import Config, StrategyAgentConfig
from market.planted_history import SYMBOLS, PlantedHistory, planted_history

Policy = Callable[[np.ndarray], np.ndarray]


def planted_training_data(cfg: Config, planted: PlantedHistory, acfg: StrategyAgentConfig | None = None) -> TrainingData:
    """The planted trades and primary candles on a grid ending at the last candle's close, split for training."""
    acfg = acfg or cfg.strategy_agent
    end_ms = int(planted.close_ms[-1])
    history = history_from_frames(cfg, planted.trades, planted.candles[SYMBOLS[0]], end=end_ms, acfg=acfg)
    n_train = split_periods(history.n_periods, acfg.holdout_fraction)
    return TrainingData(history, n_train, len(planted.trades))


@dataclass(frozen=True)
class Outcome:
    """One allocation's held-out per-period returns (after turnover costs) and its summary."""

    returns: np.ndarray
    periods_per_year: float

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    def summary(self) -> dict[str, float]:
        return {
            "mean_period_return": self.mean,
            "total_return": float(np.prod(1.0 + self.returns) - 1.0),
            "sharpe": float(sharpe_ratio(self.returns, self.periods_per_year)),
        }


def policy_outcome(data: TrainingData, acfg: StrategyAgentConfig, policy: Policy) -> Outcome:
    """Run ``policy`` through the environment over the held-out periods."""
    start, end = data.holdout
    _weights, _rewards, returns = replay(data.history, acfg, start, end - start, policy)
    return Outcome(np.asarray(returns), data.history.periods_per_year)


def oracle_outcome(data: TrainingData, planted: PlantedHistory, acfg: StrategyAgentConfig) -> Outcome:
    """The oracle's held-out returns: each period's best expected strategies, same costs as the agent."""
    start, end = data.holdout
    bounds = data.history.grid.boundaries[start:end + 1]
    weights = oracle_weights(planted.expected_returns(bounds))
    returns = allocation_returns(weights, data.history.returns[start:end], acfg.turnover_cost,
                                 initial=EQUAL_WEIGHTS)
    return Outcome(returns, data.history.periods_per_year)


def compare_on_holdout(data: TrainingData, planted: PlantedHistory, acfg: StrategyAgentConfig,
                       policy: Policy) -> dict[str, Any]:
    """Agent, equal weights and oracle on the held-out periods, and the share of the oracle's uplift the agent
    recovered (on the mean period return)."""
    agent = policy_outcome(data, acfg, policy)
    equal = policy_outcome(data, acfg, lambda _obs: EQUAL_WEIGHTS)
    oracle = oracle_outcome(data, planted, acfg)
    return {
        "holdout_periods": len(agent.returns),
        "agent": agent.summary(),
        "equal_weights": equal.summary(),
        "oracle": oracle.summary(),
        "uplift_share": uplift_share(agent.mean, equal.mean, oracle.mean),
    }


# ---------------------------------------------------------------------------------------------- benchmark

HISTORIES: dict[str, float | None] = {"planted": None, "no_edge": 0.0}
"""Histories of the benchmark -> the edge they carry (None: the generator's default)."""


def gate_passes(cfg: Config, data: TrainingData, ppo: PPO) -> tuple[bool, str]:
    """Whether the promotion gate (:func:`ai.allocation.validation.check_candidate`) would promote ``ppo``."""
    acfg = cfg.strategy_agent
    with tempfile.TemporaryDirectory() as folder:
        path = ppo.save(Path(folder) / "candidate.pt",
                        extra_meta=checkpoint_extra(acfg, 1, data.data_range()))
        check = check_candidate(path, data, acfg)
    return check.ok, check.reason


def bench_run(cfg: Config, history: str, seed: int, days: int, episodes: int) -> dict[str, Any]:
    """Train on one seeded planted history (``history`` of :data:`HISTORIES`) and compare it out of sample."""
    acfg = dataclasses.replace(cfg.strategy_agent, ppo=dataclasses.replace(cfg.strategy_agent.ppo, seed=seed))
    cfg = dataclasses.replace(cfg, strategy_agent=acfg)
    edge = HISTORIES[history]
    planted = planted_history(days=days, seed=seed) if edge is None else planted_history(days=days, seed=seed,
                                                                                         edge=edge)
    data = planted_training_data(cfg, planted)
    result = fit(data, acfg, episodes)
    report = compare_on_holdout(data, planted, acfg, result.ppo.predict)
    passed, reason = gate_passes(cfg, data, result.ppo)
    return {"history": history, "seed": seed, "train_seconds": round(result.duration_s, 1),
            "timesteps": result.ppo.num_timesteps, "gate_passed": passed, "gate_reason": reason, **report}


def bench_summary(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per history: mean and sd across seeds of each allocation's mean period return and Sharpe ratio, the
    agent's share of the oracle's uplift, and how many seeds passed the gate."""
    out: dict[str, dict[str, Any]] = {}
    for history in dict.fromkeys(run["history"] for run in runs):
        mine = [run for run in runs if run["history"] == history]
        table = {name: {key: _spread([run[name][key] for run in mine]) for key in ("mean_period_return", "sharpe")}
                 for name in ("agent", "equal_weights", "oracle")}
        out[history] = {"seeds": [run["seed"] for run in mine], "table": table,
                        "uplift_share": _spread([run["uplift_share"] for run in mine]),
                        "gate_passed": sum(bool(run["gate_passed"]) for run in mine)}
    return out


def render_summary(summary: dict[str, dict[str, Any]], runs: list[dict[str, Any]]) -> str:
    """The benchmark's tables, one per history."""
    lines = []
    for history, s in summary.items():
        periods = next(r["holdout_periods"] for r in runs if r["history"] == history)
        lines.append(f"\n{history}: {len(s['seeds'])} seed(s) {s['seeds']}, out of sample ({periods} held-out "
                     "periods), after turnover costs")
        lines.append(f"  {'allocation':<14} {'mean period return':>24} {'Sharpe':>18}")
        for name, row in s["table"].items():
            lines.append(f"  {name:<14} {_fmt(row['mean_period_return'], '{:+.3%}'):>24} "
                         f"{_fmt(row['sharpe'], '{:+.2f}'):>18}")
        lines.append(f"  share of the oracle's uplift: {_fmt(s['uplift_share'], '{:+.2f}')}; gate passed: "
                     f"{s['gate_passed']}/{len(s['seeds'])}")
    lines.append(f"\ntraining: {np.mean([r['train_seconds'] for r in runs]):.0f} s per run on average "
                 f"({runs[0]['timesteps']} steps)")
    return "\n".join(lines)


def _spread(values: list[float]) -> dict[str, float | None]:
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {"mean": None, "sd": None}
    return {"mean": float(np.mean(finite)), "sd": float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0}


def _fmt(spread: dict[str, float | None], pattern: str) -> str:
    mean, sd = spread["mean"], spread["sd"]
    if mean is None or sd is None:
        return "undefined"
    return f"{pattern.format(mean)} +- {pattern.format(sd).lstrip('+')}"
