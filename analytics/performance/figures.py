"""The figures of one report window: each portfolio's and each single strategy's metrics, the sources in force
and how the recorded weights evolved.

Figures per window (``performance.windows``: ``<N>d`` = the last N days up to the report day, ``all``), from
:mod:`analytics.metrics` on the daily returns of the replay: total return, Sharpe, Sortino, max drawdown,
annualized volatility, win rate = share of positive days among the days with at least one trade of the
portfolio's strategies (a day without trades is not a day played), and turnover = the sum over the window's days
of the one-way change of the weights, ``sum_i |w_i(d) - w_i(d-1)| / 2``. A figure that is undefined (a Sharpe
ratio of constant returns, a Sortino ratio without a losing day) is ``null``. A window with fewer than
``performance.min_days`` days or without any trade is ``{"status": "not enough data", "reason": ...}`` instead
of figures; nothing NaN is ever written.

Per window the source shares say which source was in force for what share of the time (``untracked`` before
the first record), and the weight evolution summarizes the weight records (mean, min, max per strategy;
concentration as the Herfindahl index ``sum w^2`` and the effective number of strategies ``1 / HHI``).
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd

from analytics.metrics import (
    annual_volatility,
    max_drawdown,
    sharpe_ratio,
    sortino_ratio,
    total_return,
    win_rate,
)
from analytics.performance.replay import PORTFOLIOS, Replay, day_bounds, epoch_seconds
from analytics.performance.settings import parse_window
from analytics.performance.tracking import WeightHistory, time_weighted_mean
from analytics.returns import periods_per_year
from core.config import STRATEGIES, Config
from core.contracts.pnl_history import HISTORY_NAME

NOT_ENOUGH_DATA = "not enough data"
UNTRACKED = "untracked"


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def turnover_series(weights: np.ndarray) -> np.ndarray:
    """One-way turnover of each day, ``sum_i |w_i(d) - w_i(d-1)| / 2`` (0 on the first day)."""
    if len(weights) == 0:
        return np.empty(0)
    return np.concatenate([[0.0], 0.5 * np.abs(np.diff(weights, axis=0)).sum(axis=1)])


def series_figures(returns: np.ndarray, active: np.ndarray, turnover: float, periods_per_year: float
                   ) -> dict[str, Any]:
    """The report's figures of one daily return series (undefined ones as None)."""
    return {
        "days": int(returns.size),
        "active_days": int(np.count_nonzero(active)),
        "total_return": _finite(total_return(returns)),
        "sharpe_ratio": _finite(sharpe_ratio(returns, periods_per_year)),
        "sortino_ratio": _finite(sortino_ratio(returns, periods_per_year)),
        "max_drawdown": _finite(max_drawdown(returns)),
        "annual_volatility": _finite(annual_volatility(returns, periods_per_year)),
        "win_rate": _finite(win_rate(returns[active])),
        "turnover": _finite(turnover),
    }


def not_enough(reason: str) -> dict[str, str]:
    """The entry standing for figures that cannot be computed, with the reason."""
    return {"status": NOT_ENOUGH_DATA, "reason": reason}


def concentration(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Herfindahl index ``sum w^2`` of each row and the effective number of strategies ``1 / HHI``."""
    hhi = (weights**2).sum(axis=1)
    return hhi, 1.0 / hhi


def _stats(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(values.mean()), "min": float(values.min()), "max": float(values.max())}


def weight_evolution(history: WeightHistory, start_s: float, end_s: float) -> dict[str, Any]:
    """Summary of the weight records inside ``[start_s, end_s)``."""
    inside = (history.times >= start_s) & (history.times < end_s)
    if not inside.any():
        return not_enough("no weight records in the window; run `--track` or the `--loop` daemon")
    w, times = history.weights[inside], history.times[inside]
    hhi, effective = concentration(w)
    last = int(np.flatnonzero(inside)[-1])
    return {
        "status": "ok",
        "records": int(inside.sum()),
        "first_at": iso(times[0]),
        "last_at": iso(times[-1]),
        "longest_gap_s": float(np.diff(times).max()) if times.size > 1 else 0.0,
        "per_strategy": {s: _stats(w[:, i]) for i, s in enumerate(STRATEGIES)},
        "hhi": _stats(hhi),
        "effective_strategies": _stats(effective),
        "latest": {"at": iso(history.times[last]), "source": history.sources[last],
                   "weights": dict(zip(STRATEGIES, history.weights[last].tolist(), strict=True))},
    }


def source_shares(history: WeightHistory, start_s: float, end_s: float) -> dict[str, float]:
    """Share of ``[start_s, end_s)`` each source was in force (``untracked`` before the first record)."""
    if end_s <= start_s:
        return {}
    names = [UNTRACKED, *sorted(set(history.sources))]
    onehot = np.zeros((history.size, len(names)))
    onehot[np.arange(history.size), [names.index(s) for s in history.sources]] = 1.0
    initial = np.zeros(len(names))
    initial[0] = 1.0
    shares = time_weighted_mean(history.times, onehot, initial, np.array([start_s, end_s]))[0]
    ordered = sorted(((float(v), n) for n, v in zip(names, shares, strict=True) if v > 1e-12), reverse=True)
    return {n: v for v, n in ordered}


def iso(epoch_s: float) -> str:
    """UTC epoch seconds as ISO-8601 with a ``Z`` suffix, to the second."""
    return datetime.fromtimestamp(float(epoch_s), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_report(cfg: Config, replay: Replay, history: WeightHistory, label: str, as_of: date,
                  now: datetime) -> dict[str, Any]:
    """The figures of one window, or a "not enough data" entry saying why."""
    span = parse_window(label)
    if replay.size == 0:
        return not_enough(f"no closed trades in state/{HISTORY_NAME} up to the report day")
    start_day = pd.Timestamp(as_of - timedelta(days=span - 1)) if span else replay.days[0]
    rows = np.flatnonzero(replay.days >= start_day)
    head = {"start": replay.days[rows[0]].date().isoformat() if rows.size else start_day.date().isoformat(),
            "end": as_of.isoformat(), "days": int(rows.size), "requested_days": span}
    trades = int(replay.counts[rows].sum())
    min_days = cfg.performance.min_days
    if rows.size < min_days:
        return {**not_enough(f"{rows.size} day(s) of history in the window, {min_days} needed "
                             "(`performance.min_days`)"), **head}
    if trades == 0:
        return {**not_enough("no trades closed in the window"), **head}
    start_s = float(epoch_seconds(pd.DatetimeIndex([replay.days[rows[0]]]))[0])
    end_s = min(float(day_bounds(replay.days, cfg.market.calendar)[-1]), now.timestamp())
    return {
        "status": "ok", **head, "trades": trades,
        "portfolios": {name: _figures(replay, name, rows, cfg) for name in PORTFOLIOS},
        "single_strategies": _single_figures(replay, rows, cfg),
        "source_shares": source_shares(history, start_s, end_s),
        "weight_evolution": weight_evolution(history, start_s, end_s),
    }


def _figures(replay: Replay, name: str, rows: np.ndarray, cfg: Config) -> dict[str, Any]:
    turnover = float(turnover_series(replay.weights[name])[rows].sum())
    return series_figures(replay.portfolio_returns(name)[rows], replay.active_days(name)[rows], turnover,
                          periods_per_year(cfg))


def _single_figures(replay: Replay, rows: np.ndarray, cfg: Config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, name in enumerate(STRATEGIES):
        active = replay.counts[rows, i] > 0
        if not active.any():
            out[name] = not_enough("no trades of this strategy in the window")
        else:
            out[name] = series_figures(replay.returns[rows, i], active, 0.0, periods_per_year(cfg))
    return out
