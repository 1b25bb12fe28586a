"""The statistics of the A/B comparison: the bootstrap against the exact bootstrap distribution enumerated by
hand, seeded determinism, one-sided and degenerate samples, the metric table and votes, the thresholds of the
recommendation, metrics of trade histories recomputed with plain python, and the history record."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from analytics import ab_test
from analytics.ab_test import (
    DEPLOY_CONFIDENCE,
    LEAN_CONFIDENCE,
    SystemFigures,
    bootstrap_mean_difference,
    compare,
    compare_figures,
    compare_trades,
    figures_from_trades,
    history_record,
    recommendation,
    render_history,
)

# Small samples whose bootstrap distribution can be enumerated exactly (3**3 * 3**3 equally likely draws).
SMALL_A = [0.011, -0.023, 0.037]
SMALL_B = [0.029, -0.004, 0.043]


def exact_bootstrap(a: list[float], b: list[float]) -> list[tuple[Fraction, float]]:
    """Every value of mean(resampled b) - mean(resampled a) with its exact probability, sorted by value."""
    def means(x: list[float]) -> dict[float, Fraction]:
        out: dict[float, Fraction] = {}
        draws = list(itertools.product(x, repeat=len(x)))
        for draw in draws:
            m = sum(draw) / len(draw)
            out[m] = out.get(m, Fraction(0)) + Fraction(1, len(draws))
        return out

    dist: dict[float, Fraction] = {}
    for (ma, pa), (mb, pb) in itertools.product(means(a).items(), means(b).items()):
        d = mb - ma
        dist[d] = dist.get(d, Fraction(0)) + pa * pb
    return sorted(((p, d) for d, p in dist.items()), key=lambda item: item[1])


def exact_quantile(dist: list[tuple[Fraction, float]], q: str) -> tuple[float, float]:
    """The atom holding quantile q, and the distance of q from the nearest cumulative step (well-posedness)."""
    target = Fraction(q)
    cumulative = Fraction(0)
    for p, d in dist:
        before, cumulative = cumulative, cumulative + p
        if cumulative >= target:
            return d, float(min(target - before, cumulative - target))
    raise AssertionError("the probabilities do not sum to 1")


# --- the bootstrap ------------------------------------------------------------------------------------------------


def test_bootstrap_converges_to_the_exact_bootstrap_distribution() -> None:
    dist = exact_bootstrap(SMALL_A, SMALL_B)
    assert sum(p for p, _ in dist) == 1
    assert min(abs(d) for _, d in dist) > 1e-6  # no draw sits on the tie, so float rounding cannot flip a side
    p_b = float(sum(p for p, d in dist if d > 0))
    p_a = float(sum(p for p, d in dist if d < 0))
    low, low_margin = exact_quantile(dist, "0.025")
    high, high_margin = exact_quantile(dist, "0.975")
    assert low_margin > 0.002 and high_margin > 0.002  # the percentiles are not at a step of the distribution

    boot = bootstrap_mean_difference(SMALL_A, SMALL_B, resamples=200_000, seed=3)
    assert boot.observed_diff == pytest.approx(sum(SMALL_B) / 3 - sum(SMALL_A) / 3, abs=1e-15)
    assert boot.share_b_better == pytest.approx(p_b, abs=0.006)  # 5 standard errors of 200,000 draws
    assert boot.share_a_better == pytest.approx(p_a, abs=0.006)
    assert boot.share_a_better + boot.share_b_better == pytest.approx(1.0, abs=1e-12)  # no exact tie exists
    assert boot.p_value == pytest.approx(2 * min(p_a, p_b), abs=0.012)
    assert boot.ci_low == pytest.approx(low, abs=1e-12)
    assert boot.ci_high == pytest.approx(high, abs=1e-12)
    assert (boot.resamples, boot.seed) == (200_000, 3)


def test_a_seed_gives_one_result_and_another_seed_another() -> None:
    rng = np.random.default_rng(42)
    a, b = rng.normal(0.0, 0.01, 60), rng.normal(0.002, 0.01, 80)
    first = bootstrap_mean_difference(a, b, resamples=3000, seed=7)
    assert bootstrap_mean_difference(a, b, resamples=3000, seed=7) == first
    assert bootstrap_mean_difference(list(a), list(b), resamples=3000, seed=7) == first  # lists or arrays
    other = bootstrap_mean_difference(a, b, resamples=3000, seed=8)
    assert other.seed == 8 and other.observed_diff == first.observed_diff
    assert (other.ci_low, other.ci_high, other.share_b_better) != (first.ci_low, first.ci_high, first.share_b_better)
    assert other.share_b_better == pytest.approx(first.share_b_better, abs=0.05)  # the same answer, other draws
    assert bootstrap_mean_difference(a, b, resamples=3000) == bootstrap_mean_difference(a, b, resamples=3000, seed=0)


def test_chunked_draws_fill_every_resample(monkeypatch: pytest.MonkeyPatch) -> None:
    # Chunks of 7 resamples for 1,000 resamples: 142 full chunks and a last one of 6.
    monkeypatch.setattr(ab_test, "_MAX_DRAWS_PER_CHUNK", 7 * len(SMALL_B))
    dist = exact_bootstrap(SMALL_A, SMALL_B)
    boot = bootstrap_mean_difference(SMALL_A, SMALL_B, resamples=1_000, seed=1)
    assert boot.share_a_better + boot.share_b_better == pytest.approx(1.0)  # no unfilled (or zero) slot
    assert boot.share_b_better == pytest.approx(float(sum(p for p, d in dist if d > 0)), abs=0.08)
    atoms = np.array([d for _, d in dist])
    assert atoms.min() <= boot.ci_low <= boot.ci_high <= atoms.max()
    assert bootstrap_mean_difference(SMALL_A, SMALL_B, resamples=1_000, seed=1) == boot


def test_non_finite_returns_are_dropped() -> None:
    clean = bootstrap_mean_difference(SMALL_A, SMALL_B, resamples=500, seed=2)
    dirty = bootstrap_mean_difference([math.nan, *SMALL_A, math.inf], [*SMALL_B, -math.inf], resamples=500, seed=2)
    assert dirty == clean


def test_one_sided_samples_are_certain() -> None:
    a, b = [-0.02, -0.01, -0.015, -0.03], [0.01, 0.02, 0.005]
    boot = bootstrap_mean_difference(a, b, resamples=1000, seed=0)
    assert boot.share_b_better == 1.0 and boot.share_a_better == 0.0 and boot.p_value == 0.0
    assert min(b) - max(a) <= boot.ci_low <= boot.ci_high <= max(b) - min(a)  # any resampled means lie in these
    reverse = bootstrap_mean_difference(b, a, resamples=1000, seed=0)
    assert reverse.share_a_better == 1.0 and reverse.share_b_better == 0.0 and reverse.p_value == 0.0
    assert reverse.observed_diff == pytest.approx(-boot.observed_diff)
    assert reverse.ci_high < 0


def test_identical_constant_samples_are_a_tie_with_p_one() -> None:
    boot = bootstrap_mean_difference([0.01, 0.01, 0.01], [0.01, 0.01], resamples=100, seed=0)
    assert boot.observed_diff == 0.0
    assert boot.share_b_better == 0.0 and boot.share_a_better == 0.0
    assert boot.p_value == 1.0  # twice the smaller tail share (1.0 each, every difference is 0), capped at 1
    assert boot.ci_low == 0.0 and boot.ci_high == 0.0


@pytest.mark.parametrize(("a", "b"), [
    ([], [0.01, 0.02]),
    ([0.01, 0.02], []),
    ([0.01], [0.01, 0.02]),
    ([0.01, 0.02], [0.03]),
    ([math.nan, 0.01], [0.01, 0.02]),  # one finite value is one trade
    ([math.nan, math.nan], [math.nan, math.nan]),
])
def test_too_few_trades_are_refused(a: list[float], b: list[float]) -> None:
    with pytest.raises(ValueError, match="at least 2 trades per system"):
        bootstrap_mean_difference(a, b, resamples=100)


def test_too_few_resamples_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 100 bootstrap resamples, got 99"):
        bootstrap_mean_difference(SMALL_A, SMALL_B, resamples=99)
    assert bootstrap_mean_difference(SMALL_A, SMALL_B, resamples=100).resamples == 100


# --- the table and the votes ---------------------------------------------------------------------------------------


def test_compare_rows_by_hand() -> None:
    a = SystemFigures("A", total_pnl=-200.0, win_rate=0.5, sharpe=0.0, max_drawdown=0.10)
    b = SystemFigures("B", total_pnl=100.0, win_rate=0.5, sharpe=1.0, max_drawdown=0.12)
    rows = {row.key: row for row in compare(a, b)}
    assert [row.key for row in compare(a, b)] == ["total_pnl", "win_rate", "sharpe", "max_drawdown"]
    assert rows["total_pnl"].diff_pct == pytest.approx((100 - -200) / 200 * 100)  # relative to |A|: +150 %
    assert rows["total_pnl"].better == "B"
    assert rows["win_rate"].diff_pct == 0.0 and rows["win_rate"].better == "tie"
    assert rows["sharpe"].diff_pct is None and rows["sharpe"].better == "B"  # no relative change from 0
    assert rows["max_drawdown"].diff_pct == pytest.approx(20.0) and rows["max_drawdown"].better == "A"
    assert (rows["total_pnl"].a, rows["total_pnl"].b) == (-200.0, 100.0)


def test_missing_or_non_finite_metrics_are_left_out() -> None:
    a = SystemFigures("A", total_pnl=1.0, win_rate=0.4, sharpe=math.nan, max_drawdown=None)
    b = SystemFigures("B", total_pnl=2.0, win_rate=None, sharpe=1.0, max_drawdown=0.1)
    assert [row.key for row in compare(a, b)] == ["total_pnl"]
    assert SystemFigures("X", sharpe=math.inf).value("sharpe") is None
    assert SystemFigures("X", sharpe=3).value("sharpe") == 3.0


@pytest.mark.parametrize(("b_values", "winner", "confidence"), [
    ({"total_pnl": 2.0, "win_rate": 0.6, "sharpe": 2.0, "max_drawdown": 0.05}, "B", 100.0),
    ({"total_pnl": 2.0, "win_rate": 0.6, "sharpe": 2.0, "max_drawdown": 0.30}, "B", 75.0),
    ({"total_pnl": 2.0, "win_rate": 0.6, "sharpe": 0.5, "max_drawdown": 0.30}, None, 50.0),
    ({"total_pnl": 0.5, "win_rate": 0.4, "sharpe": 0.5, "max_drawdown": 0.30}, "A", 100.0),
    ({"total_pnl": 1.0, "win_rate": 0.5, "sharpe": 1.0, "max_drawdown": 0.10}, None, 0.0),  # all ties
    ({"total_pnl": 1.0, "win_rate": 0.5, "sharpe": 1.0, "max_drawdown": 0.05}, "B", 25.0),  # 1 vote of 4
])
def test_figure_votes(b_values: dict[str, float], winner: str | None, confidence: float) -> None:
    a = SystemFigures("A", total_pnl=1.0, win_rate=0.5, sharpe=1.0, max_drawdown=0.10)
    result = compare_figures(a, SystemFigures("B", **b_values))
    assert result.mode == "figures" and result.bootstrap is None
    assert result.winner == winner and result.confidence == pytest.approx(confidence)
    assert result.recommendation == recommendation(winner, result.confidence, "A")


def test_figures_without_a_common_metric_are_refused() -> None:
    with pytest.raises(ValueError, match="no metric was given for both systems"):
        compare_figures(SystemFigures("A", total_pnl=1.0), SystemFigures("B", sharpe=1.0))


@pytest.mark.parametrize(("winner", "confidence", "text"), [
    ("B", DEPLOY_CONFIDENCE, "Deploy B to production"),
    ("B", 100.0, "Deploy B to production"),
    ("A", DEPLOY_CONFIDENCE, "Keep A in production"),
    ("B", 94.99, "B looks better: keep testing to confirm before switching"),
    ("B", LEAN_CONFIDENCE, "B looks better: keep testing to confirm before switching"),
    ("A", 80.0, "A looks better: keep it and keep testing"),
    ("B", 74.99, "No significant difference: keep A and keep testing"),
    ("A", 10.0, "No significant difference: keep A and keep testing"),
    (None, 100.0, "No clear winner: keep A and keep testing"),
])
def test_recommendation_thresholds(winner: str | None, confidence: float, text: str) -> None:
    assert (DEPLOY_CONFIDENCE, LEAN_CONFIDENCE) == (95.0, 75.0)
    assert recommendation(winner, confidence, "A") == text


# --- trade histories ------------------------------------------------------------------------------------------------


def trades(rows: list[tuple[str, float, float, float]]) -> pd.DataFrame:
    """(closed_at, pnl, pnl_pct, equity_after) rows as a history frame."""
    return pd.DataFrame({
        "closed_at": pd.to_datetime([r[0] for r in rows], utc=True),
        "pnl": [r[1] for r in rows], "pnl_pct": [r[2] for r in rows], "equity_after": [r[3] for r in rows]})


# Two or three trades some days, none on 2024-03-03; start equity 1,000 (first equity_after minus its pnl).
MULTI = [
    ("2024-03-01T01:00Z", 20.0, 0.02, 1_020.0),
    ("2024-03-01T13:00Z", -50.0, -0.049, 970.0),
    ("2024-03-01T23:59Z", 10.0, 0.0103, 980.0),
    ("2024-03-02T09:00Z", 40.0, 0.0408, 1_020.0),
    ("2024-03-04T00:00Z", -30.0, -0.0294, 990.0),
    ("2024-03-04T18:00Z", 0.0, 0.0, 990.0),
    ("2024-03-05T07:00Z", 60.0, 0.0606, 1_050.0),
]


def plain_sharpe(values: list[float], per_year: float) -> float:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean / std * math.sqrt(per_year)


@pytest.mark.parametrize(("calendar", "per_year"), [("crypto", 365), ("equity", 252)])
def test_figures_of_a_history_with_several_trades_a_day(calendar: str, per_year: int) -> None:
    fig = figures_from_trades("S", trades(MULTI), calendar)
    assert fig.name == "S" and fig.trades == 7
    assert fig.total_pnl == pytest.approx(50.0)
    assert fig.win_rate == pytest.approx(4 / 7)  # the break-even trade is not a win
    assert fig.mean_pnl_pct == pytest.approx(sum(r[2] for r in MULTI) / 7)
    # Drawdown trade by trade: peak 1,020 after the first trade, trough 970 right after.
    assert fig.max_drawdown == pytest.approx(1 - 970 / 1_020)
    # Daily closes: start 1,000; 03-01 980, 03-02 1,020, 03-03 1,020 (no trade), 03-04 990, 03-05 1,050.
    closes = [1_000.0, 980.0, 1_020.0, 1_020.0, 990.0, 1_050.0]
    daily = [closes[i + 1] / closes[i] - 1 for i in range(len(closes) - 1)]
    assert fig.sharpe == pytest.approx(plain_sharpe(daily, per_year))


def test_a_single_day_has_no_sharpe_and_the_table_leaves_it_out() -> None:
    one_day = trades([("2024-03-01T01:00Z", 10.0, 0.01, 1_010.0), ("2024-03-01T02:00Z", 10.0, 0.0099, 1_020.0)])
    fig = figures_from_trades("D", one_day)
    assert math.isnan(fig.sharpe) and fig.value("sharpe") is None
    assert fig.max_drawdown == 0.0  # never below a previous peak
    other = figures_from_trades("E", trades(MULTI))
    assert "sharpe" not in [row.key for row in compare(fig, other)]


def test_an_empty_history_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="empty: the trade history has no valid trades"):
        figures_from_trades("empty", trades([]))


def test_compare_trades_takes_winner_and_confidence_from_the_bootstrap() -> None:
    good = [(f"2024-03-{d:02d}T10:00Z", 10.0, 0.01 + 0.001 * d, 1_000.0 + 10 * d) for d in range(1, 11)]
    bad = [(f"2024-03-{d:02d}T10:00Z", -10.0, -0.01 - 0.001 * d, 1_000.0 - 10 * d) for d in range(1, 11)]
    a_wins = compare_trades("old", trades(good), "new", trades(bad), resamples=500, seed=4)
    assert a_wins.mode == "trades" and a_wins.winner == "old"
    assert a_wins.bootstrap is not None and a_wins.bootstrap.observed_diff < 0
    assert a_wins.confidence == pytest.approx(100 * a_wins.bootstrap.share_a_better) and a_wins.confidence == 100.0
    assert a_wins.recommendation == "Keep old in production"
    b_wins = compare_trades("old", trades(bad), "new", trades(good), resamples=500, seed=4)
    assert b_wins.winner == "new" and b_wins.confidence == 100.0
    assert b_wins.recommendation == "Deploy new to production"
    assert [row.better for row in b_wins.rows] == ["B", "B", "B", "B"]


def test_compare_trades_with_equal_means_is_a_tie() -> None:
    rows = [("2024-03-01T10:00Z", 10.0, 0.01, 1_010.0), ("2024-03-02T10:00Z", -10.0, -0.01, 1_000.0),
            ("2024-03-03T10:00Z", 5.0, 0.005, 1_005.0)]
    result = compare_trades("A", trades(rows), "B", trades(rows), resamples=200, seed=0)
    assert result.winner is None and result.confidence == 50.0
    assert result.recommendation == "No clear winner: keep A and keep testing"
    assert result.bootstrap is not None and result.bootstrap.observed_diff == 0.0


def test_the_bootstrap_of_compare_trades_is_the_one_of_the_pnl_pct_columns() -> None:
    a, b = trades(MULTI), trades([(t, p * 2, r * 2, e) for t, p, r, e in MULTI])
    result = compare_trades("A", a, "B", b, resamples=300, seed=9)
    assert result.bootstrap == bootstrap_mean_difference(a["pnl_pct"], b["pnl_pct"], resamples=300, seed=9)


# --- the record -----------------------------------------------------------------------------------------------------


def test_the_history_record_is_strict_json() -> None:
    one_day = trades([("2024-03-01T01:00Z", 10.0, 0.01, 1_010.0), ("2024-03-01T02:00Z", -5.0, -0.005, 1_005.0)])
    result = compare_trades("A", one_day, "B", trades(MULTI), resamples=200, seed=1)
    result = replace(result, sources={"a": "a.csv", "b": "b.csv"})
    record = history_record(result, "2024-03-06T00:00:00Z")
    text = json.dumps(record, allow_nan=False)  # a NaN Sharpe became null
    back = json.loads(text)
    assert back["a"]["sharpe"] is None and back["b"]["sharpe"] == pytest.approx(result.b.sharpe)
    assert back["tested_at"] == "2024-03-06T00:00:00Z" and back["mode"] == "trades"
    assert back["bootstrap"]["resamples"] == 200 and back["bootstrap"]["seed"] == 1
    assert back["winner"] == result.winner and back["confidence"] == result.confidence
    assert back["sources"] == {"a": "a.csv", "b": "b.csv"}
    figures = compare_figures(SystemFigures("A", total_pnl=1.0), SystemFigures("B", total_pnl=2.0))
    assert history_record(figures, "t")["bootstrap"] is None


def test_render_history_tolerates_incomplete_records() -> None:
    text = render_history([{"tested_at": "t1", "mode": "figures", "a": {"name": "x"}, "b": {"name": "y"},
                            "winner": "y", "confidence": 75.0}, {}])
    assert "A/B TEST HISTORY (2 tests)" in text
    lines = text.splitlines()
    assert lines[-2].split() == ["t1", "figures", "x", "y", "y", "75.0%"]
    assert lines[-1].split() == ["?", "?", "?", "?", "none", "?"]
