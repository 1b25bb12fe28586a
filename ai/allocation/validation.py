"""Whether a trained candidate may replace the latest strategy-weight model, judged on held-out periods.

A candidate is promoted only when it is valid: every parameter finite (checked at loading), and on the
held-out periods (the end of the history, never trained on) every weight vector finite, non-negative and
summing to 1. Its held-out results are reported beside those of equal weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ai.allocation.agent import finite_or_none, load_checkpoint
from ai.allocation.env import StrategyWeightEnv, weights_dict
from ai.allocation.features import EQUAL_WEIGHTS, StrategyHistory
from ai.allocation.training_data import TrainingData
from ai.ppo import CheckpointError
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


def check_candidate(path: Path, data: TrainingData, acfg: StrategyAgentConfig) -> CandidateCheck:
    """Load the candidate (weights only) and validate it on the held-out periods."""
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
    holdout = {"periods": end - start, "model": summarize_replay(rewards, returns, ppy),
               "equal_weights": summarize_replay(eq_rewards, eq_returns, ppy)}
    return CandidateCheck(True, f"valid: finite parameters and valid weights on all {end - start} held-out "
                                "period(s)", holdout)
