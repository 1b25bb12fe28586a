"""Rows of the data path and of the performance report, the parts ``scripts/bench_data.py`` and
``scripts/bench_report.py`` time on their own (no peer: the goals are the suite's own)."""

from __future__ import annotations

from dataclasses import dataclass

import bench_data
import bench_report

from agents.strategies import compute_signals
from benchmarks.rows import Row, at_most, seconds_text
from benchmarks.suite import scratch_home
from core.config import Config
from market.regime import classify_regime
from market.synthetic import generate_market

REPORT_GOAL_S = 20.0
DATA_GOAL_S = 1.0


@dataclass(frozen=True)
class DataSizes:
    candles: int
    report_days: int


QUICK_DATA_SIZES = DataSizes(candles=2_000, report_days=30)
FULL_DATA_SIZES = DataSizes(candles=10_000, report_days=365)


def data_path_row(sizes: DataSizes, repeats: int) -> Row:
    """Synthetic market of 2 symbols, the regime classifier and the 8 strategies' signals (best of N each)."""
    cfg = Config()
    symbols = bench_data.SYMBOLS
    frames = generate_market(symbols, sizes.candles, seed=7).candles
    market = bench_data.best_of(lambda: generate_market(symbols, sizes.candles, seed=7), repeats)
    regime = bench_data.best_of(lambda: classify_regime(frames[symbols[0]]), repeats)
    signals = bench_data.best_of(lambda: compute_signals(frames, symbols[0], cfg.strategies), repeats)
    total = market + regime + signals
    return Row("data_path", f"data path: synthetic market ({len(symbols)} x {sizes.candles:,} candles), regime "
                            "classifier, the 8 strategies' signals", "-", None, "-", total,
               f"{seconds_text(market)} + {seconds_text(regime)} + {seconds_text(signals)}", "s", None,
               f"< {DATA_GOAL_S:g} s", at_most(total, DATA_GOAL_S), "")


def report_row(sizes: DataSizes, repeats: int) -> Row:
    """The performance report with its plots over ``report_days`` days of hourly trades of the 8 strategies."""
    with scratch_home("bench-report-") as home:
        trades = bench_report.synthetic_year(home.cfg, sizes.report_days)
        best, _ = bench_report.time_report(home.cfg, repeats, plots=True)
    return Row("performance_report", f"performance report with plots, {sizes.report_days} days of hourly trades "
                                     f"of the 8 strategies ({trades:,} trades)", "-", None, "-", best,
               seconds_text(best), "s", None, f"< {REPORT_GOAL_S:g} s", at_most(best, REPORT_GOAL_S), "")
