"""The report's plots: real PNGs next to the report, and titles, axis labels and legends that say what they show."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from analytics import plots as charts
from analytics.metrics import drawdown_series, equity_curve
from analytics.performance.plots import MAX_PLOT_DAYS, daily_sources, render_plots
from analytics.performance.replay import PORTFOLIOS, Replay, day_bounds
from analytics.performance.report import build_report, write_report
from analytics.performance.tracking import WeightHistory
from core.config import STRATEGIES, Config
from core.contracts.performance import report_path
from tests.analytics.performance.support import AS_OF, FIRST_DAY, NOW


def colored_share(path: Path) -> float:
    """Share of the image's pixels in a clear colour (not white, grey or black: axes and text are not)."""
    pixels = mpimg.imread(io.BytesIO(path.read_bytes()), format="png")[..., :3]
    spread = pixels.max(axis=2) - pixels.min(axis=2)
    return float((spread > 0.25).mean())


def test_plots_are_written_as_real_pngs(cfg: Config, history: object) -> None:
    result = write_report(cfg, AS_OF, now=NOW)
    assert set(result.plots) == {"equity_curves", "weights", "drawdowns"}
    for kind, path in result.plots.items():
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.parent == report_path(cfg).parent
        image = mpimg.imread(io.BytesIO(data), format="png")
        assert image.shape[:2] == (550, 1100), kind
        # Curves are drawn (coloured lines over a fair part of the canvas), the stacked area fills most of it.
        assert colored_share(path) > (0.3 if kind == "weights" else 0.005), kind
    assert result.document["plots"]["weights"] == "rl_performance_weights.png"


def test_plots_show_what_they_are_about(cfg: Config, history: object, monkeypatch: pytest.MonkeyPatch) -> None:
    _, replay, weights = build_report(cfg, AS_OF, NOW)
    seen: dict[str, list[str]] = {}
    original = charts._to_png

    def capture(fig: Any) -> bytes:
        ax = fig.axes[0]
        legend = ax.get_legend()
        seen[ax.get_title()] = [ax.get_xlabel(), ax.get_ylabel(), *(t.get_text() for t in legend.get_texts())]
        return original(fig)

    monkeypatch.setattr(charts, "_to_png", capture)
    render_plots(replay, weights, AS_OF)
    span = f"{FIRST_DAY} to {AS_OF}"
    equity, area, drawdowns = (seen[f"Equity: allocated vs baselines, {span}"],
                               seen[f"Weights in force (daily), {span}"], seen[f"Drawdowns, {span}"])
    for labels in (equity, drawdowns):
        assert labels[0] == "date (UTC)" and set(PORTFOLIOS) <= set(labels)
    assert equity[1] == "equity (start = 1)" and "drawdown" in drawdowns[1]
    assert set(STRATEGIES) <= set(area) and "untracked (equal weights assumed)" in area


def capture_equity_legend(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace the PNG encoder with one that keeps the equity figure's legend texts and shaded spans."""
    seen: dict[str, Any] = {}
    original = charts._to_png

    def capture(fig: Any) -> bytes:
        ax = fig.axes[0]
        if ax.get_title().startswith("Equity"):
            seen["legend"] = [t.get_text() for t in ax.get_legend().get_texts()]
        return original(fig)

    monkeypatch.setattr(charts, "_to_png", capture)
    return seen


def test_single_strategies_are_labelled_each_in_its_own_colour(cfg: Config, history: object,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _, replay, weights = build_report(cfg, AS_OF, NOW)
    seen = capture_equity_legend(monkeypatch)
    render_plots(replay, weights, AS_OF)
    assert [f"single: {s}" for s in STRATEGIES] == [t for t in seen["legend"] if t.startswith("single: ")]
    assert "single strategies" not in seen["legend"]  # no longer one grey, unnamed bundle


def test_daily_sources_follow_the_weight_history(cfg: Config, history: object) -> None:
    _, replay, weights = build_report(cfg, AS_OF, NOW)
    sources = daily_sources(weights, day_bounds(replay.days, "crypto"))
    # the fixture: untracked days 0-9, rl from day 10, portfolio_optimizer from noon of day 20 (a tie: the later)
    assert sources == ["untracked"] * 10 + ["rl"] * 10 + ["portfolio_optimizer"] * (len(replay.days) - 20)


def test_daily_sources_take_the_source_in_force_longest_in_a_day() -> None:
    day = 86_400.0
    history = WeightHistory(times=np.array([0.3 * day, 0.5 * day, 1.9 * day]), weights=np.full((3, 8), 1 / 8),
                            sources=["strategy_lab", "rl", "equal"], skipped=0)
    bounds = np.array([0.0, day, 2 * day, 3 * day])
    # day 0: untracked 30 %, lab 20 %, rl 50 %; day 1: rl 90 %, equal 10 %; day 2: equal all day
    assert daily_sources(history, bounds) == ["rl", "rl", "equal"]


def test_equity_plot_shades_which_source_was_in_force(cfg: Config, history: object,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _, replay, weights = build_report(cfg, AS_OF, NOW)
    seen = capture_equity_legend(monkeypatch)
    render_plots(replay, weights, AS_OF)
    shaded = [t for t in seen["legend"] if t.startswith("in force: ")]
    assert shaded == ["in force: untracked", "in force: rl", "in force: portfolio_optimizer"]
    assert charts.source_runs(["lab", "lab", "rl", "rl", "rl", "lab"]) == [("lab", 0, 1), ("rl", 2, 4), ("lab", 5, 5)]


def test_shaded_sources_colour_the_background() -> None:
    days = pd.date_range("2024-01-01", periods=20, freq="D")
    curves = {"allocated": np.linspace(1.0, 1.1, 20)}
    plain = charts.equity_curves_png(days, curves, {}, "t")
    shaded = charts.equity_curves_png(days, curves, {}, "t", sources=["strategy_lab"] * 8 + ["rl"] * 12)
    tinted = mpimg.imread(io.BytesIO(shaded), format="png")[..., :3]
    blank = mpimg.imread(io.BytesIO(plain), format="png")[..., :3]
    assert (np.abs(tinted - blank).max(axis=2) > 0.05).mean() > 0.2  # most of the plot area takes a colour
    with pytest.raises(ValueError, match="one source a day"):
        charts.equity_curves_png(days, curves, {}, "t", sources=["rl"])


def test_a_long_history_is_drawn_on_a_bounded_number_of_exact_days(monkeypatch: pytest.MonkeyPatch) -> None:
    n = 5 * MAX_PLOT_DAYS + 7
    rng = np.random.default_rng(11)
    returns = rng.normal(0.0, 0.01, (n, len(STRATEGIES)))
    returns[n // 3] = -0.3  # one deep fall: the deepest drawdown must be drawn
    weights = {name: np.full((n, len(STRATEGIES)), 1.0 / len(STRATEGIES)) for name in PORTFOLIOS}
    replay = Replay(pd.date_range("2020-01-01", periods=n, freq="D"), returns, np.ones_like(returns), weights)
    seen: dict[str, Any] = {}
    monkeypatch.setattr(charts, "drawdowns_png", lambda days, dds, title: seen.update(days=days, dds=dds) or b"")
    monkeypatch.setattr(charts, "equity_curves_png", lambda days, p, s, t, sources: seen.update(eq=p, src=sources)
                        or b"")
    monkeypatch.setattr(charts, "weights_area_png", lambda days, w, labels, title, untracked_until: b"")
    render_plots(replay, WeightHistory(np.empty(0), np.empty((0, len(STRATEGIES))), []), AS_OF)
    days = seen["days"]
    assert len(days) <= MAX_PLOT_DAYS and days[0] == replay.days[0] and days[-1] == replay.days[-1]
    drawn = replay.days.get_indexer(days)
    full_dd = drawdown_series(replay.portfolio_returns("equal_weight"))
    assert np.array_equal(seen["dds"]["equal_weight"], full_dd[drawn])
    assert seen["dds"]["equal_weight"].min() == full_dd.min()
    assert np.array_equal(seen["eq"]["allocated"], equity_curve(replay.portfolio_returns("allocated"))[drawn])
    assert len(seen["src"]) == len(days)
