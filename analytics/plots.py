"""PNG plots of the performance report: equity curves, weights over time, drawdowns.

Each function returns the PNG bytes of one figure; the caller writes them (atomically). Figures are built with
matplotlib's object API on an Agg canvas, never through ``pyplot``: no global figure registry, no GUI backend,
nothing left open between calls, and safe in a daemon's worker thread.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIGSIZE = (11.0, 5.5)
DPI = 100
HIGHLIGHT = "allocated"
"""The series drawn thickest: the portfolio as actually allocated."""
DASHED = "equal_weight"
"""Drawn dashed: it often coincides with the allocated portfolio (equal weights before the first record)."""
XLABEL = "date (UTC)"
SINGLES_COLORMAP = "Set2"
"""Muted qualitative colours of the 8 single strategies, distinct from the portfolios' default cycle."""
SINGLE_PREFIX = "single: "
SOURCE_PREFIX = "in force: "
SOURCE_COLORS: dict[str, str] = {
    "rl": "#cfe2f3", "portfolio_optimizer": "#d9ead3", "strategy_lab": "#fff2cc", "equal": "#ead1dc",
    "untracked": "#eeeeee",
}
"""Light background colour per weight source (as named in the allocations file), so the curves stay legible."""
OTHER_SOURCE_COLOR = "#f4cccc"


def _new_figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _style(name: str) -> dict[str, Any]:
    # The highlighted series is wide but drawn beneath the others, so a baseline that coincides with it stays
    # visible as a thin line on top instead of being hidden.
    if name == HIGHLIGHT:
        return {"linewidth": 3.2, "zorder": 3, "alpha": 0.85}
    return {"linewidth": 1.4, "zorder": 4, "linestyle": "--" if name == DASHED else "-"}


def _legend_outside(ax: Axes) -> None:
    """The legend to the right of the plot, where it never covers a curve."""
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")


def equity_curves_png(days: pd.DatetimeIndex, portfolios: Mapping[str, np.ndarray],
                      singles: Mapping[str, np.ndarray], title: str,
                      sources: Sequence[str] | None = None) -> bytes:
    """Compounded equity (start 1) of each portfolio, each single strategy as a thin labelled line behind them,
    and, with ``sources`` (one name a day), the source that drove the allocation shaded under the curves: the
    allocated portfolio is only "RL" where the RL weights were in force."""
    fig, ax = _new_figure()
    if sources is not None:
        _shade_sources(ax, days, sources)
    palette = matplotlib.colormaps[SINGLES_COLORMAP]
    for i, (name, curve) in enumerate(singles.items()):
        ax.plot(days, curve, color=palette(i % palette.N), linewidth=0.8, alpha=0.75, zorder=2,
                label=f"{SINGLE_PREFIX}{name}")
    for name, curve in portfolios.items():
        ax.plot(days, curve, label=name, **_style(name))
    ax.axhline(1.0, color="0.3", linewidth=0.8, linestyle=":")
    if _spans_orders_of_magnitude([*portfolios.values(), *singles.values()]):
        ax.set_yscale("log")  # a year of compounding buries every other curve under the best one otherwise
    ax.set_title(title)
    ax.set_xlabel(XLABEL)
    ax.set_ylabel("equity (start = 1)")
    ax.grid(True, alpha=0.3)
    _legend_outside(ax)
    return _to_png(fig)


def source_runs(sources: Sequence[str]) -> list[tuple[str, int, int]]:
    """``(source, first, last)`` day indexes of each run of days with the same source, in order."""
    runs: list[tuple[str, int, int]] = []
    for i, name in enumerate(sources):
        if runs and runs[-1][0] == name:
            runs[-1] = (name, runs[-1][1], i)
        else:
            runs.append((name, i, i))
    return runs


def _shade_sources(ax: Axes, days: pd.DatetimeIndex, sources: Sequence[str]) -> None:
    if len(sources) != len(days):
        raise ValueError(f"one source a day expected: {len(sources)} sources for {len(days)} days")
    step = days[1] - days[0] if len(days) > 1 else pd.Timedelta(days=1)
    labelled: set[str] = set()
    for name, first, last in source_runs(sources):
        end = days[last + 1] if last + 1 < len(days) else days[last] + step
        ax.axvspan(days[first], end, facecolor=SOURCE_COLORS.get(name, OTHER_SOURCE_COLOR), alpha=0.6,
                   zorder=0, linewidth=0, label=None if name in labelled else f"{SOURCE_PREFIX}{name}")
        labelled.add(name)


def _spans_orders_of_magnitude(curves: Sequence[np.ndarray], ratio: float = 10.0) -> bool:
    values = np.concatenate([np.asarray(c, dtype=float).ravel() for c in curves] + [np.ones(1)])
    values = values[np.isfinite(values)]
    return bool(values.min() > 0 and values.max() / values.min() > ratio)


def weights_area_png(days: pd.DatetimeIndex, weights: np.ndarray, labels: Sequence[str], title: str,
                     untracked_until: pd.Timestamp | None = None) -> bytes:
    """Stacked area of the daily weights in force; the days before the first record are shaded."""
    fig, ax = _new_figure()
    ax.stackplot(days, np.asarray(weights, dtype=float).T, labels=list(labels), alpha=0.9)
    if untracked_until is not None and len(days) and untracked_until > days[0]:
        ax.axvspan(days[0], min(untracked_until, days[-1]), facecolor="white", edgecolor="0.35", alpha=0.45,
                   hatch="//", label="untracked (equal weights assumed)")
    ax.set_ylim(0.0, 1.0)
    if len(days) > 1:
        ax.set_xlim(days[0], days[-1])
    ax.set_title(title)
    ax.set_xlabel(XLABEL)
    ax.set_ylabel("weight")
    _legend_outside(ax)
    return _to_png(fig)


def drawdowns_png(days: pd.DatetimeIndex, drawdowns: Mapping[str, np.ndarray], title: str) -> bytes:
    """Drawdown below the running peak (<= 0) of each portfolio."""
    fig, ax = _new_figure()
    for name, dd in drawdowns.items():
        ax.plot(days, 100.0 * np.asarray(dd), label=name, **_style(name))
    ax.axhline(0.0, color="0.3", linewidth=0.8)
    ax.set_title(title)
    ax.set_xlabel(XLABEL)
    ax.set_ylabel("drawdown below the running peak (%)")
    ax.grid(True, alpha=0.3)
    _legend_outside(ax)
    return _to_png(fig)
