"""Learnability on a known answer: on a planted history whose strategy edges switch with the candles' regime,
the trained agent beats equal weights out of sample and recovers at least half of the oracle's uplift, and the
promotion gate lets it through; on a history with no edge the gate refuses the candidate. Small and seeded."""

from __future__ import annotations

import math

import pytest
import torch

from ai.allocation.planted import (
    bench_run,
    bench_summary,
    oracle_outcome,
    planted_training_data,
    render_summary,
)
from core.config import Config
from market.planted_history import planted_history


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


def test_agent_learns_the_planted_edge_out_of_sample() -> None:
    run = bench_run(Config(), "planted", seed=11, days=365, episodes=500)
    agent, equal, oracle = run["agent"], run["equal_weights"], run["oracle"]
    assert agent["mean_period_return"] > equal["mean_period_return"]
    assert agent["sharpe"] > equal["sharpe"]
    assert run["uplift_share"] >= 0.5, run
    assert run["gate_passed"], run["gate_reason"]
    assert oracle["mean_period_return"] > agent["mean_period_return"]  # the oracle is a real upper reference


def test_no_edge_history_does_not_pass_the_gate() -> None:
    run = bench_run(Config(), "no_edge", seed=10, days=365, episodes=200)
    assert not run["gate_passed"], run["gate_reason"]
    assert math.isnan(run["uplift_share"])  # the oracle knows nothing either: equal weights
    summary = bench_summary([run])
    assert summary["no_edge"]["gate_passed"] == 0
    assert "no_edge" in render_summary(summary, [run])


def test_oracle_uses_only_the_held_out_periods_expected_edges() -> None:
    cfg = Config()
    planted = planted_history(days=120, seed=5)
    data = planted_training_data(cfg, planted)
    outcome = oracle_outcome(data, planted, cfg.strategy_agent)
    start, end = data.holdout
    assert len(outcome.returns) == end - start == round(120 * cfg.strategy_agent.holdout_fraction)
    assert outcome.mean > 0  # the planted edges pay the oracle after costs
