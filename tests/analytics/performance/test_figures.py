"""Window figures against plain numpy on a synthetic gappy history, source shares and weight evolution of the
records, and undefined figures or empty windows said instead of NaN."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from analytics.performance.figures import NOT_ENOUGH_DATA
from analytics.performance.report import write_report
from core.config import STRATEGIES, Config
from core.contracts.performance import report_path
from core.contracts.pnl_history import append_trades
from tests.analytics.performance.support import (
    AS_OF,
    FIRST_DAY,
    N_DAYS,
    NOW,
    W_A,
    W_B,
    assert_figures,
    at,
    expected_allocated_weights,
    numpy_figures,
    strict_load,
    trade,
)


def test_report_figures_match_numpy_on_a_gappy_history(cfg: Config, history: tuple[np.ndarray, np.ndarray]) -> None:
    returns, counts = history
    doc = write_report(cfg, AS_OF, now=NOW, with_plots=False).document
    assert doc["data_range"] == {"start": FIRST_DAY.isoformat(), "end": AS_OF.isoformat(), "days": N_DAYS,
                                 "trades": int(counts.sum())}
    alloc_w = expected_allocated_weights()
    for label, n in (("7d", 7), ("30d", 30), ("all", N_DAYS)):
        win = doc["windows"][label]
        assert win["status"] == "ok" and win["days"] == n
        rows = slice(N_DAYS - n, N_DAYS)
        r, c = returns[rows], counts[rows]
        equal = r.mean(axis=1)
        assert_figures(win["portfolios"]["equal_weight"], numpy_figures(equal, c.sum(axis=1) > 0))
        assert win["portfolios"]["equal_weight"]["turnover"] == 0.0
        allocated = (r * alloc_w[rows]).sum(axis=1)
        assert_figures(win["portfolios"]["allocated"],
                       numpy_figures(allocated, (c * (alloc_w[rows] > 0)).sum(axis=1) > 0))
        turnover = 0.5 * np.abs(np.diff(alloc_w, axis=0)).sum(axis=1)
        assert win["portfolios"]["allocated"]["turnover"] == pytest.approx(turnover[N_DAYS - n - 1:].sum()
                                                                           if n < N_DAYS else turnover.sum())
        for k, name in enumerate(STRATEGIES):
            assert_figures(win["single_strategies"][name], numpy_figures(r[:, k], c[:, k] > 0))
    assert doc["weight_history"]["records"] == 2 and doc["weight_history"]["skipped"] == 1


def test_source_shares_and_weight_evolution_of_the_records(cfg: Config, history: object) -> None:
    doc = write_report(cfg, AS_OF, now=NOW, with_plots=False).document
    shares = doc["windows"]["all"]["source_shares"]
    assert shares == pytest.approx({"untracked": 10 / N_DAYS, "rl": 10.5 / N_DAYS,
                                    "portfolio_optimizer": 19.5 / N_DAYS})
    assert doc["windows"]["7d"]["source_shares"] == {"portfolio_optimizer": 1.0}
    evolution = doc["windows"]["all"]["weight_evolution"]
    a, b = np.array(list(W_A.values())), np.array(list(W_B.values()))
    assert evolution["records"] == 2
    for k, name in enumerate(STRATEGIES):
        assert evolution["per_strategy"][name] == pytest.approx(
            {"mean": (a[k] + b[k]) / 2, "min": min(a[k], b[k]), "max": max(a[k], b[k])})
    hhi = [float((a**2).sum()), float((b**2).sum())]
    assert evolution["hhi"] == pytest.approx({"mean": sum(hhi) / 2, "min": min(hhi), "max": max(hhi)})
    assert evolution["effective_strategies"]["max"] == pytest.approx(1 / min(hhi))
    assert evolution["latest"]["source"] == "portfolio_optimizer"
    assert evolution["longest_gap_s"] == pytest.approx(10.5 * 86_400)
    # The last 7 days hold no record: that is said, not filled with numbers.
    assert doc["windows"]["7d"]["weight_evolution"]["status"] == NOT_ENOUGH_DATA


def test_a_window_without_trades_and_undefined_figures_are_said_not_nan(cfg: Config) -> None:
    # Trades on days 0-9 only, every one the same return: the 7d window is empty, Sharpe/Sortino undefined.
    rows = [trade(at(FIRST_DAY + timedelta(days=d), 12), s, 0.01) for d in range(10) for s in STRATEGIES[:2]]
    append_trades(cfg.state_dir / "pnl_history.csv", rows)
    doc = write_report(cfg, AS_OF, now=NOW, with_plots=False).document
    week = doc["windows"]["7d"]
    assert (week["status"], week["reason"], week["days"]) == (NOT_ENOUGH_DATA, "no trades closed in the window", 7)
    full = doc["windows"]["all"]
    single = full["single_strategies"]
    assert single[STRATEGIES[0]]["sortino_ratio"] is None  # no losing day
    assert single[STRATEGIES[5]]["status"] == NOT_ENOUGH_DATA
    assert full["portfolios"]["equal_weight"]["total_return"] == pytest.approx(1.0025**10 - 1)
    strict_load(report_path(cfg))
