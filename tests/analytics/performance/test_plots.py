"""The report's plots: real PNGs next to the report, and titles, axis labels and legends that say what they show."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib.image as mpimg
import pytest

from analytics import plots as charts
from analytics.performance.plots import render_plots
from analytics.performance.replay import PORTFOLIOS
from analytics.performance.report import build_report, write_report
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
