"""PNG plots: each function returns a real, non-empty PNG of the figure size, with the title, axis labels and
legend entries the code sets (checked on the figure, not on pixels), and a log scale only for curves that
span orders of magnitude."""

from __future__ import annotations

import io
from typing import Any

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from analytics import plots

DAYS = pd.date_range("2024-01-01", periods=30, freq="D")
NAMES = ("allocated", "equal_weight", "portfolio_optimizer")


def curves(growth: float = 0.001) -> dict[str, np.ndarray]:
    return {name: np.cumprod(np.full(len(DAYS), 1.0 + growth * (k + 1))) for k, name in enumerate(NAMES)}


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures passed to the PNG writer, kept for inspection."""
    seen: list[Any] = []
    original = plots._to_png

    def keep(fig: Any) -> bytes:
        seen.append(fig)
        return original(fig)

    monkeypatch.setattr(plots, "_to_png", keep)
    return seen


def assert_png(data: bytes) -> None:
    assert data[:8] == plots.PNG_SIGNATURE
    assert len(data) > 1000
    image = mpimg.imread(io.BytesIO(data), format="png")
    assert image.shape[:2] == (int(plots.FIGSIZE[1] * plots.DPI), int(plots.FIGSIZE[0] * plots.DPI))


def legend_texts(ax: Any) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def test_equity_curves_png(figures: list[Any]) -> None:
    singles = {"turtle_trading": np.linspace(1.0, 1.1, len(DAYS)), "vix_strategy": np.linspace(1.0, 0.9, len(DAYS))}
    data = plots.equity_curves_png(DAYS, curves(), singles, "Equity test")
    assert_png(data)
    ax = figures[-1].axes[0]
    assert ax.get_title() == "Equity test"
    assert ax.get_xlabel() == plots.XLABEL and ax.get_ylabel() == "equity (start = 1)"
    texts = legend_texts(ax)
    # each single strategy named in the legend, in a colour of its own (no longer one grey unnamed bundle)
    assert set(NAMES) <= set(texts) and {"single: turtle_trading", "single: vix_strategy"} <= set(texts)
    colours = {line.get_label(): line.get_color() for line in ax.get_lines()}
    assert colours["single: turtle_trading"] != colours["single: vix_strategy"]
    assert ax.get_yscale() == "linear"


def test_equity_curves_use_a_log_scale_across_orders_of_magnitude(figures: list[Any]) -> None:
    plots.equity_curves_png(DAYS, curves(growth=0.2), {}, "Long run")
    assert figures[-1].axes[0].get_yscale() == "log"


def test_weights_area_png_shades_the_untracked_start(figures: list[Any]) -> None:
    labels = ["a", "b", "c", "d"]
    weights = np.full((len(DAYS), len(labels)), 0.25)
    data = plots.weights_area_png(DAYS, weights, labels, "Weights test", untracked_until=DAYS[10])
    assert_png(data)
    ax = figures[-1].axes[0]
    assert ax.get_title() == "Weights test" and ax.get_xlabel() == plots.XLABEL and ax.get_ylabel() == "weight"
    assert ax.get_ylim() == (0.0, 1.0)
    texts = legend_texts(ax)
    assert set(labels) <= set(texts) and "untracked (equal weights assumed)" in texts


def test_weights_area_png_without_an_untracked_start(figures: list[Any]) -> None:
    weights = np.full((len(DAYS), 2), 0.5)
    assert_png(plots.weights_area_png(DAYS, weights, ["a", "b"], "No shade", untracked_until=None))
    assert "untracked (equal weights assumed)" not in legend_texts(figures[-1].axes[0])


def test_drawdowns_png(figures: list[Any]) -> None:
    drawdowns = {name: np.minimum(0.0, np.sin(np.arange(len(DAYS)) / 3.0) / 10.0) for name in NAMES}
    data = plots.drawdowns_png(DAYS, drawdowns, "Drawdowns test")
    assert_png(data)
    ax = figures[-1].axes[0]
    assert ax.get_title() == "Drawdowns test" and ax.get_xlabel() == plots.XLABEL
    assert "drawdown" in ax.get_ylabel()
    assert set(NAMES) <= set(legend_texts(ax))
    # Drawn in percent: the lowest point of the curves is -10 %.
    lowest = min(float(np.min(line.get_ydata())) for line in ax.get_lines() if line.get_label() in NAMES)
    assert lowest == pytest.approx(-10.0, abs=0.5)


def test_the_allocated_portfolio_is_highlighted_and_equal_weight_dashed(figures: list[Any]) -> None:
    plots.equity_curves_png(DAYS, curves(), {}, "Styles")
    lines = {line.get_label(): line for line in figures[-1].axes[0].get_lines()}
    assert lines["allocated"].get_linewidth() > lines["portfolio_optimizer"].get_linewidth()
    assert lines["equal_weight"].get_linestyle() == "--"


def test_figures_are_not_left_in_pyplot() -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plots.drawdowns_png(DAYS, {"allocated": np.zeros(len(DAYS))}, "No registry")
    assert plt.get_fignums() == before
