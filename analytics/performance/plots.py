"""The report's three plots over the whole history (at most :data:`MAX_PLOT_DAYS` days drawn): equity curves of the portfolios (each single strategy
behind them, labelled, and the source that drove the allocation each day shaded), the weights in force as a
stacked area (the untracked start shaded), and the drawdowns.

Drawing is :mod:`analytics.plots`' (PNG bytes); the files and their names are the performance contract's
(:func:`core.contracts.performance.write_plots`).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from analytics import plots as charts
from analytics.metrics import drawdown_series, equity_curve
from analytics.performance.figures import UNTRACKED
from analytics.performance.replay import ALLOCATED, PORTFOLIOS, Replay, day_bounds
from analytics.performance.tracking import WeightHistory
from core.config import STRATEGIES

MAX_PLOT_DAYS = 600
"""Days drawn at most per plot: a longer history is thinned to evenly spaced days (keeping the first, the last
and each portfolio's deepest drawdown), so drawing costs the same at any history length; the curves are computed
on every day first, so each point drawn is exact."""


def plotted_days(size: int, keep: list[int]) -> np.ndarray:
    """Indexes of the days drawn: all of them up to :data:`MAX_PLOT_DAYS`, else evenly spaced ones plus ``keep``."""
    if size <= MAX_PLOT_DAYS:
        return np.arange(size)
    spaced = np.linspace(0, size - 1, MAX_PLOT_DAYS - len(keep)).round().astype(int)
    return np.unique(np.concatenate([spaced, np.asarray(keep, dtype=int)]))


def render_plots(replay: Replay, history: WeightHistory, as_of: date) -> dict[str, bytes]:
    """PNG bytes of each plot over the whole history (empty when there are fewer than two days); a long history
    is drawn on :func:`plotted_days`."""
    if replay.size < 2:
        return {}
    days = replay.days
    returns = {name: replay.portfolio_returns(name) for name in PORTFOLIOS}
    equity = {n: equity_curve(r) for n, r in returns.items()}
    singles = {s: equity_curve(replay.returns[:, i]) for i, s in enumerate(STRATEGIES)}
    drawdowns = {n: drawdown_series(r) for n, r in returns.items()}
    drawn = plotted_days(replay.size, [int(np.argmin(dd)) for dd in drawdowns.values()])
    sources = daily_sources(history, day_bounds(days, "crypto"))
    first = pd.Timestamp(history.times[0], unit="s") if history.size else days[-1] + pd.Timedelta(days=1)
    span = f"{days[0].date()} to {as_of}"
    shown = days[drawn]
    return {
        "equity_curves": charts.equity_curves_png(shown, {n: c[drawn] for n, c in equity.items()},
                                                  {s: c[drawn] for s, c in singles.items()},
                                                  f"Equity: allocated vs baselines, {span}",
                                                  sources=[sources[i] for i in drawn]),
        "weights": charts.weights_area_png(shown, replay.weights[ALLOCATED][drawn], STRATEGIES,
                                           f"Weights in force (daily), {span}", untracked_until=first),
        "drawdowns": charts.drawdowns_png(shown, {n: dd[drawn] for n, dd in drawdowns.items()},
                                          f"Drawdowns, {span}"),
    }


def daily_sources(history: WeightHistory, bounds: np.ndarray) -> list[str]:
    """The source that drove the allocation for most of each day (``untracked`` before the first record).

    ``bounds`` are the days' starts plus the last day's end (UTC epoch seconds). A tie goes to the source in
    force later in the day. Linear in days plus records: each day looks only at the records inside it.
    """
    times = np.asarray(history.times, dtype=float)
    out = []
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        first = int(np.searchsorted(times, start, side="right")) - 1  # the record in force at the start
        last = int(np.searchsorted(times, end, side="left"))  # records before the end
        edges = [start, *times[first + 1:last].tolist(), end]
        held: dict[str, float] = {}
        for k, index in enumerate(range(first, last)):
            name = history.sources[index] if index >= 0 else UNTRACKED
            held[name] = held.get(name, 0.0) + edges[k + 1] - edges[k]
        out.append(max(reversed(held), key=held.__getitem__))  # reversed: a tie goes to the later source
    return out
