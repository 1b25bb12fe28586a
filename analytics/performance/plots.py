"""The report's three plots over the whole history: equity curves of the portfolios (single strategies behind
them), the weights in force as a stacked area (the untracked start shaded), and the drawdowns.

Drawing is :mod:`analytics.plots`' (PNG bytes); the files and their names are the performance contract's
(:func:`core.contracts.performance.write_plots`).
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from analytics import plots as charts
from analytics.metrics import drawdown_series, equity_curve
from analytics.performance.replay import ALLOCATED, PORTFOLIOS, Replay
from analytics.performance.tracking import WeightHistory
from core.config import STRATEGIES


def render_plots(replay: Replay, history: WeightHistory, as_of: date) -> dict[str, bytes]:
    """PNG bytes of each plot over the whole history (empty when there are fewer than two days)."""
    if replay.size < 2:
        return {}
    days = replay.days
    returns = {name: replay.portfolio_returns(name) for name in PORTFOLIOS}
    singles = {s: equity_curve(replay.returns[:, i]) for i, s in enumerate(STRATEGIES)}
    first = pd.Timestamp(history.times[0], unit="s") if history.size else days[-1] + pd.Timedelta(days=1)
    span = f"{days[0].date()} to {as_of}"
    return {
        "equity_curves": charts.equity_curves_png(days, {n: equity_curve(r) for n, r in returns.items()}, singles,
                                                  f"Equity: allocated vs baselines, {span}"),
        "weights": charts.weights_area_png(days, replay.weights[ALLOCATED], STRATEGIES,
                                           f"Weights in force (daily), {span}", untracked_until=first),
        "drawdowns": charts.drawdowns_png(days, {n: drawdown_series(r) for n, r in returns.items()},
                                          f"Drawdowns, {span}"),
    }
