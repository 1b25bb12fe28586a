"""Whether a trained candidate may replace the latest strategy-weight model, judged on held-out periods.

A candidate is promoted only when it is valid and passes the performance gate. Valid: every parameter finite
(checked at loading), and on the held-out periods (the end of the history, never trained on) every weight
vector finite, non-negative and summing to 1. The gate (``strategy_agent.gate_confidence``, 0 turns it off):
on the same held-out periods, the bootstrap interval (:mod:`analytics.bootstrap`, paired periods) of the
candidate's Sharpe ratio (``gate_metric``) minus that of equal weights lies wholly above 0, and so does the one
against the current model when there is a usable one. A model that cannot show an edge out of sample is
therefore never promoted, and without a model the weights bridge falls through to the optimizer and the lab.
The held-out results of the candidate, equal weights and the current model are reported with the intervals.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ai.allocation.agent import StrategyAgent, finite_or_none, load_checkpoint
from ai.allocation.env import StrategyWeightEnv, weights_dict
from ai.allocation.features import EQUAL_WEIGHTS, StrategyHistory
from ai.allocation.training_data import TrainingData
from ai.ppo import CheckpointError
from analytics.bootstrap import DifferenceCI, difference_ci
from analytics.metrics import max_drawdown, sharpe_ratio
from core.config import StrategyAgentConfig
from core.contracts.weights import SUM_TOLERANCE, validate_weights


@dataclass(frozen=True)
class CandidateCheck:
    """Whether a candidate may be promoted, why, and how it did on the held-out periods."""

    ok: bool
    reason: str
    holdout: dict[str, Any] = field(default_factory=dict)


def replay(history: StrategyHistory, acfg: StrategyAgentConfig, start: int, length: int,
           policy: Callable[[np.ndarray], np.ndarray]) -> tuple[list[np.ndarray], list[float], list[float]]:
    """Run ``policy`` over periods ``start .. start + length - 1``; returns (raw weights, rewards, returns).

    The raw weights are the policy's outputs before the environment's normalization, so they can be checked.
    """
    env = StrategyWeightEnv(history, acfg, (start, start + length))
    obs, _ = env.reset(options={"start": start, "length": length})
    weights, rewards, returns = [], [], []
    done = False
    while not done:
        w = np.asarray(policy(obs), dtype=np.float64)
        weights.append(w)
        obs, reward, terminated, truncated, info = env.step(w)
        rewards.append(float(reward))
        returns.append(float(info["portfolio_return"]))
        done = terminated or truncated
    return weights, rewards, returns


def weights_problem(w: np.ndarray) -> str | None:
    """Why a policy output is not a usable weight vector (finite, >= 0, summing to 1 within 1e-9), or None."""
    problem = validate_weights(weights_dict(w)) if np.all(np.isfinite(w)) else "a weight is NaN or infinite"
    if problem:
        return problem
    if abs(math.fsum(float(x) for x in w) - 1.0) > SUM_TOLERANCE:
        return f"weights sum to {math.fsum(float(x) for x in w)!r}, not 1"
    return None


def summarize_replay(rewards: list[float], returns: list[float], ppy: float) -> dict[str, Any]:
    """Mean reward, total return, Sharpe ratio and maximum drawdown of a replay (None where undefined)."""
    return {
        "mean_reward": finite_or_none(float(np.mean(rewards))) if rewards else None,
        "total_return": finite_or_none(float(np.prod(1.0 + np.asarray(returns)) - 1.0)) if returns else None,
        "sharpe": finite_or_none(sharpe_ratio(returns, ppy)),
        "max_drawdown": finite_or_none(max_drawdown(returns)),
    }


def gate_interval(candidate: list[float], other: list[float], acfg: StrategyAgentConfig, ppy: float) -> DifferenceCI:
    """The gate's bootstrap interval of ``candidate - other`` over the same held-out periods."""
    return difference_ci(candidate, other, ppy, confidence=acfg.gate_confidence, metric=acfg.gate_metric,
                         n_samples=acfg.gate_bootstrap_samples, block_length=acfg.gate_block_length)


def gate_refusal(name: str, ci: DifferenceCI) -> str:
    """Why the candidate did not beat ``name`` with the gate's confidence."""
    def fmt(value: float) -> str:
        return f"{value:.3f}" if math.isfinite(value) else "undefined"

    return (f"on the {ci.periods} held-out period(s) the candidate does not beat {name} with "
            f"{ci.confidence:.0%} confidence ({ci.metric} difference {fmt(ci.estimate)}, interval "
            f"[{fmt(ci.lower)}, {fmt(ci.upper)}] not above 0; strategy_agent.gate_confidence)")


def load_current(current: Path | None) -> StrategyAgent | None:
    """The model in force to compare with, or None when there is none or it is unusable (it cannot then be kept
    over a better candidate on the grounds of results it cannot produce)."""
    if current is None or not current.is_file():
        return None
    try:
        return load_checkpoint(current)
    except CheckpointError:
        return None


def check_candidate(path: Path, data: TrainingData, acfg: StrategyAgentConfig,
                    current: Path | None = None) -> CandidateCheck:
    """Load the candidate (weights only), validate it on the held-out periods and apply the gate.

    ``current`` is the checkpoint of the model in force (compared with when it loads).
    """
    try:
        agent = load_checkpoint(path)
    except CheckpointError as exc:
        return CandidateCheck(False, f"candidate rejected: {exc}")
    start, end = data.holdout
    weights, rewards, returns = replay(data.history, acfg, start, end - start, agent.weights_array)
    for i, w in enumerate(weights):
        problem = weights_problem(w)
        if problem:
            return CandidateCheck(False, f"candidate rejected: on held-out period {start + i}: {problem}")
    _, eq_rewards, eq_returns = replay(data.history, acfg, start, end - start, lambda _obs: EQUAL_WEIGHTS)
    ppy = data.history.periods_per_year
    holdout: dict[str, Any] = {"periods": end - start, "model": summarize_replay(rewards, returns, ppy),
                               "equal_weights": summarize_replay(eq_rewards, eq_returns, ppy)}
    valid = f"valid: finite parameters and valid weights on all {end - start} held-out period(s)"
    if acfg.gate_confidence == 0:
        return CandidateCheck(True, valid + "; performance gate off (strategy_agent.gate_confidence = 0)", holdout)
    rivals = {"equal weights": eq_returns}
    model = load_current(current)
    if model is not None:
        _, cur_rewards, cur_returns = replay(data.history, acfg, start, end - start, model.weights_array)
        holdout["current_model"] = {"model_version": model.model_version,
                                    **summarize_replay(cur_rewards, cur_returns, ppy)}
        rivals[f"the current model (version {model.model_version})"] = cur_returns
    gate: dict[str, Any] = {}
    for name, other in rivals.items():
        ci = gate_interval(returns, other, acfg, ppy)
        gate[name] = ci.as_dict()
        if not ci.positive:
            return CandidateCheck(False, gate_refusal(name, ci), {**holdout, "gate": gate})
    return CandidateCheck(True, f"{valid}; beats {' and '.join(rivals)} with {acfg.gate_confidence:.0%} "
                                "confidence", {**holdout, "gate": gate})
