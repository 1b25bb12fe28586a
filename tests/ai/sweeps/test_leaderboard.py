"""Tests of :mod:`ai.sweeps.leaderboard`: ranking by out-of-sample Sharpe ratio (failed and undefined last),
the spread across seeds computed independently, and the CSV read back exactly."""

from __future__ import annotations

import csv
import io
import statistics
from typing import Any

import pytest

from ai.sweeps.leaderboard import COLUMNS, leaderboard_csv, leaderboard_markdown, rows
from core.contracts.experiments import TrialRecord


def record(trial: str, symbol: str, seed: int, sharpe: float | None, status: str = "ok",
           settings: dict[str, Any] | None = None) -> TrialRecord:
    return {"sweep": "s", "trial": trial, "agent": "trading", "symbol": symbol, "seed": seed,
            "settings": settings or {}, "status": status,  # type: ignore[typeddict-item]
            "metrics": {} if status != "ok" else {"sharpe": sharpe, "buy_hold_sharpe": 0.5, "random_sharpe": -1.0,
                                                  "gate_passed": False},
            "checkpoint": None, "log_dir": "", "wall_s": 1.0, "error": None if status == "ok" else "DataError: x",
            "finished_at": "2026-01-01T00:00:00Z"}


RECORDS = [
    record("a0", "BTC/USDT", 0, 1.25), record("a1", "BTC/USDT", 1, 0.5), record("a2", "BTC/USDT", 2, 2.0),
    record("b0", "ETH/USDT", 0, None), record("b1", "ETH/USDT", 1, -0.75), record("b2", "ETH/USDT", 2, 0.0,
                                                                                      status="failed"),
]


def test_trials_rank_by_sharpe_with_failed_and_undefined_last() -> None:
    assert [r["trial"] for r in rows(RECORDS)] == ["a2", "a0", "a1", "b1", "b0", "b2"]
    assert [r["rank"] for r in rows(RECORDS)] == [1, 2, 3, 4, 5, 6]


def test_the_spread_across_seeds_is_the_mean_and_sd_of_the_defined_sharpe_ratios() -> None:
    by_trial = {r["trial"]: r for r in rows(RECORDS)}
    assert by_trial["a0"]["seed_sharpe_mean"] == pytest.approx(statistics.fmean([1.25, 0.5, 2.0]))
    assert by_trial["a0"]["seed_sharpe_sd"] == pytest.approx(statistics.stdev([1.25, 0.5, 2.0]))
    assert by_trial["a0"]["seeds"] == 3
    assert by_trial["b1"]["seed_sharpe_mean"] == -0.75 and by_trial["b1"]["seed_sharpe_sd"] == 0.0
    assert by_trial["b1"]["seeds"] == 1  # the undefined and the failed trial do not count
    assert by_trial["a0"]["best_baseline_sharpe"] == 0.5


def test_the_csv_has_a_sharpe_column_that_reads_back_exactly() -> None:
    parsed = list(csv.DictReader(io.StringIO(leaderboard_csv(RECORDS))))
    assert tuple(parsed[0]) == COLUMNS
    assert [float(r["sharpe"]) if r["sharpe"] else None for r in parsed] == [2.0, 1.25, 0.5, -0.75, None, None]
    assert parsed[-1]["status"] == "failed" and parsed[-1]["error"] == "DataError: x"


def test_the_markdown_groups_by_symbol_and_settings() -> None:
    text = leaderboard_markdown("s", [*RECORDS, record("c0", "BTC/USDT", 0, 3.0, settings={"ppo.n_epochs": 4})])
    lines = text.splitlines()
    groups = [line for line in lines if line.startswith("| BTC/USDT") or line.startswith("| ETH/USDT")]
    assert groups[0].startswith("| BTC/USDT | ppo.n_epochs=4 | 3.00 +- 0.00 | 1 |")
    assert groups[1].startswith("| BTC/USDT | defaults | 1.25 +- 0.75 | 3 |")
    assert any("failed: DataError: x" in line for line in lines)


def test_the_plot_draws_groups_with_failed_and_undefined_trials() -> None:
    from ai.sweeps.leaderboard import leaderboard_png

    png = leaderboard_png("s", RECORDS)
    assert png.startswith(b"\x89PNG") and len(png) > 5_000
