"""Walk-forward evaluation of the strategy-weight agent (``rl_trainer --evaluate``): the agent's pooled result
recomputed from the published periods, folds that train only on their past, every baseline reported, the
planted edge found, and exit 3 when the history is too short for the folds."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ai.allocation.trainer import main
from core.config import STRATEGIES, Config
from core.contracts.allocation_model import latest_path
from core.contracts.pnl_history import append_trades, history_path

PlantedTrades = Callable[..., list[dict[str, Any]]]  # the conftest.py fixture's signature
EVAL_TOML = """
[strategy_agent]
episodes = 150
episode_length = 20
window_periods = 5
market_window_candles = 24
num_envs = 2

[strategy_agent.ppo]
n_steps = 32
batch_size = 64
n_epochs = 4
hidden_sizes = [16, 16]
threads = 1
device = "cpu"
"""


def recomputed_pooled_return(doc: dict[str, object], turnover_cost: float) -> float:
    """The agent's compounded return from the ``periods`` list alone, by the documented rule."""
    equity, previous, fold = 1.0, None, None
    for period in doc["periods"]:  # type: ignore[attr-defined]
        w = [period["weights"][s] for s in STRATEGIES]
        if period["fold"] != fold:
            previous, fold = [1 / 8] * 8, period["fold"]
        gross = sum(wi * period["strategy_returns"][s] for wi, s in zip(w, STRATEGIES, strict=True))
        turnover = sum(abs(a - b) for a, b in zip(w, previous, strict=True))
        equity *= 1 + max(gross - turnover_cost * turnover, -1.0)
        previous = w
    return equity - 1


def test_evaluate_reports_every_fold_and_the_pooled_result_recomputes_from_the_periods(
        planted_trades: PlantedTrades, cfg: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "eval.toml"
    config.write_text(EVAL_TOML)
    append_trades(history_path(cfg), planted_trades(edge=0.01))
    plot = tmp_path / "walk_forward.png"
    assert main(["--evaluate", "--folds", "2", "--json", "--plot", str(plot), "--config", str(config)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    # The pooled returns behind the plot are the sleeves' period returns, aligned with the listed periods.
    assert set(doc["returns"]) == {"agent", "equal_weights", "portfolio_optimizer", "strategy_lab",
                                   "best_single_in_hindsight"}
    assert all(len(r) == len(doc["periods"]) for r in doc["returns"].values())
    equal = [sum(p["strategy_returns"].values()) / 8 for p in doc["periods"]]
    assert doc["returns"]["equal_weights"] == pytest.approx(equal, abs=1e-3)  # up to turnover costs
    folds = doc["folds"]
    assert len(folds) == 2 and all(f["train_end"] == f["test_start"] for f in folds)
    assert folds[0]["test_end"] == folds[1]["test_start"]
    assert len(doc["periods"]) == sum(f["test_periods"] for f in folds)
    assert all(p["start"] >= folds[0]["test_start"] for p in doc["periods"])  # only test periods are listed
    for period in doc["periods"]:
        assert sum(period["weights"].values()) == pytest.approx(1.0, abs=1e-9)
    pooled = doc["pooled"]
    assert pooled["metrics"]["agent"]["total_return"] == pytest.approx(
        recomputed_pooled_return(doc, doc["turnover_cost"]), rel=1e-9)
    assert set(pooled["metrics"]) == {"agent", "equal_weights", "portfolio_optimizer", "strategy_lab",
                                      "best_single_in_hindsight"}
    assert set(pooled["intervals"]) == set(pooled["metrics"]) - {"agent"}
    assert pooled["best_baseline"] in ("equal_weights", "portfolio_optimizer", "strategy_lab")
    assert all(f["hindsight_strategy"] == "turtle_trading" for f in folds)  # the planted edge
    # The agent finds the planted edge: it beats equal weights out of sample, with confidence.
    assert pooled["metrics"]["agent"]["sharpe_ratio"] > pooled["metrics"]["equal_weights"]["sharpe_ratio"]
    assert pooled["beats_equal_weights"] and pooled["intervals"]["equal_weights"]["lower"] > 0
    turtle = np.mean([p["weights"]["turtle_trading"] for p in doc["periods"]])
    assert turtle > 1 / 8
    assert not latest_path(cfg).exists()  # a report: nothing is installed

    assert main(["--evaluate", "--folds", "2", "--quiet", "--config", str(config)]) == 0
    table = capsys.readouterr().out
    assert "pooled" in table and "equal_weights" in table and "best_single_in_hindsight" in table


def test_a_history_too_short_for_the_folds_exits_3(planted_trades: PlantedTrades, cfg: Config, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "eval.toml"
    config.write_text(EVAL_TOML)
    append_trades(history_path(cfg), planted_trades(edge=0.0, days=10))
    assert main(["--evaluate", "--folds", "8", "--quiet", "--config", str(config)]) == 3
    err = capsys.readouterr().err
    assert "not enough data to evaluate" in err and "cannot make 8 walk-forward fold(s)" in err
