"""Performance tracking: the allocations as actually used against baselines, weight evolution, reports, plots.

    python analytics/rl_performance.py --track               # record the weights in force now
    python analytics/rl_performance.py --report [--as-of D]  # write the report and its plots, print a summary
    python analytics/rl_performance.py --loop                # the ``performance_tracker`` daemon

Weight history. ``--track`` appends one record to ``state/rl_weight_history.jsonl``: JSON Lines rather than one
JSON document, because a record every few minutes would make a single document ever larger to rewrite, while an
append is cheap and a torn line costs one record, not the file. The file is bounded to
``performance.history_max_lines`` records (:mod:`core.jsonl` trims the oldest). A record holds ``at`` (UTC),
the ``weights`` and ``source`` in force, that is what the trader uses: ``runtime/allocations_override.json``,
or equal weights (source ``equal``) when that file is absent or invalid, exactly as the trader falls back;
``allocations`` (its status, reason, generated_at, fallback_reasons, input_ages_s) and ``rl`` (the status of
``runtime/rl_strategy_weights.json`` with its weights and model version when readable).

Replay. Per-strategy daily returns are the portfolio optimizer's (:func:`analytics.portfolio_optimizer.
daily_strategy_returns`: the sum of ``pnl_pct`` of a strategy's trades closed that UTC day, 0 on days without
trades), from the first trade to the report day. A portfolio's return on day d is ``sum_i w_i(d) r_i(d)``:

* ``allocated``: ``w(d)`` is the time-weighted mean over day d of the weights in force according to the weight
  history. A record holds until the next one (the last one onwards, gaps included); before the first record
  equal weights are assumed and that time is counted as ``untracked`` in the source shares.
* ``equal_weight``: 1/8 each.
* ``portfolio_optimizer`` and ``strategy_lab``: recomputed every ``performance.rebalance_days`` days (the first
  on the first day of the history) with their configured settings, from the trades closed *before* the
  rebalance day only (``as_of`` = the day before), so there is no look-ahead; equal weights while a source would
  publish nothing (not enough history). The weights are those of the sources' own ``compute_weights`` (a test
  holds them equal): the replay runs their steps on the trades read once, instead of re-reading the history file
  at every rebalance, which would take minutes on a year of trades.
* each single strategy on its own.

Figures per window (``performance.windows``: ``<N>d`` = the last N days up to the report day, ``all``), from
:mod:`analytics.metrics` on the daily returns: total return, Sharpe, Sortino, max drawdown, annualized
volatility, win rate = share of positive days among the days with at least one trade of the portfolio's
strategies (a day without trades is not a day played), and turnover = the sum over the window's days of the
one-way change of the weights, ``sum_i |w_i(d) - w_i(d-1)| / 2``. A figure that is undefined (a Sharpe ratio of
constant returns, a Sortino ratio without a losing day) is ``null``. A window with fewer than
``performance.min_days`` days or without any trade is reported as ``{"status": "not enough data", "reason": ...}``
instead of figures; nothing NaN is ever written.

Per window the report also says which source was in force for what share of the time and summarizes the
weight records (mean, min, max per strategy; concentration as the Herfindahl index ``sum w^2`` and the
effective number of strategies ``1 / HHI``). The latest records of ``state/rl_training_log.json`` (written by
the strategy-weight trainer; any list of objects under ``records``/``history``/``runs``/... or a top-level list)
are copied in. The report is ``state/rl_performance_report.json``; the PNG plots (equity curves, weights over
time as a stacked area, drawdowns) are written next to it.

Daemon (``--loop``, name ``performance_tracker``). At start it runs the portfolio optimizer, the strategy lab,
one track and one report; then an APScheduler BackgroundScheduler with one worker thread (jobs never overlap)
tracks every ``performance.track_interval_s`` seconds and runs the report, the optimizer and the lab on their
cron schedules (UTC), so the bridge's fallback sources exist in a running system. Every job refreshes the
heartbeat; SIGTERM lets the running job finish and exits 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from analytics import plots
from analytics import portfolio_optimizer as po
from analytics import strategy_lab as lab
from analytics.metrics import (
    annual_volatility,
    drawdown_series,
    equity_curve,
    max_drawdown,
    sharpe_ratio,
    sortino_ratio,
    total_return,
    win_rate,
)
from core.atomic import atomic_write_bytes, parse_iso, publish_json, read_json, utc_now_iso
from core.config import STRATEGIES, Config, load_config
from core.contracts.weights import equal_weights, normalize, read_weights, validate_weights
from core.daemon import DaemonContext, run_daemon_main
from core.errors import ConfigError, FatalError
from core.jsonl import append_jsonl, read_jsonl
from core.logging_setup import setup_logging
from core.schedule import cron_trigger
from market.candles import timeframe_to_ms

log = logging.getLogger(__name__)

DAEMON_NAME = "performance_tracker"
PRODUCER = DAEMON_NAME
WEIGHT_HISTORY_NAME = "rl_weight_history.jsonl"
REPORT_NAME = "rl_performance_report.json"
TRAINING_LOG_NAME = "rl_training_log.json"
ALLOCATIONS_NAME = "allocations_override.json"
RL_WEIGHTS_NAME = "rl_strategy_weights.json"
PLOT_NAMES: dict[str, str] = {
    "equity_curves": "rl_performance_equity.png",
    "weights": "rl_performance_weights.png",
    "drawdowns": "rl_performance_drawdowns.png",
}
NOT_ENOUGH_DATA = "not enough data"
UNTRACKED = "untracked"
ALLOCATED = "allocated"
EQUAL = "equal_weight"
OPTIMIZER = "portfolio_optimizer"
LAB = "strategy_lab"
PORTFOLIOS: tuple[str, ...] = (ALLOCATED, EQUAL, OPTIMIZER, LAB)
TRAINING_LIST_KEYS: tuple[str, ...] = ("records", "history", "runs", "trainings", "sessions", "entries", "log")
HEARTBEAT_S = 30.0
"""Seconds between heartbeats while no job runs."""
TRADER_STATUS_NAME = "trader_status.json"
JOB_IDS: tuple[str, ...] = ("track", "report", "portfolio_optimizer", "strategy_lab", "unpublished_sources")
_WINDOW = re.compile(r"^([1-9]\d*)d$")
_EQUAL_VECTOR = np.full(len(STRATEGIES), 1.0 / len(STRATEGIES))
SECONDS_PER_DAY = 86_400.0


# ------------------------------------------------------------------------------------------------ paths


def weight_history_path(cfg: Config) -> Path:
    return cfg.state_dir / WEIGHT_HISTORY_NAME


def report_path(cfg: Config) -> Path:
    return cfg.state_dir / REPORT_NAME


def training_log_path(cfg: Config) -> Path:
    return cfg.state_dir / TRAINING_LOG_NAME


def plot_paths(cfg: Config) -> dict[str, Path]:
    """Where each plot goes: next to the report."""
    return {kind: cfg.state_dir / name for kind, name in PLOT_NAMES.items()}


def _relative(cfg: Config, path: Path) -> str:
    # The report names files relative to the home folder, so it reads the same on every machine.
    try:
        return str(path.relative_to(cfg.home))
    except ValueError:
        return path.name


# ------------------------------------------------------------------------------------------------ config


def parse_window(text: str) -> int | None:
    """``"7d"`` -> 7, ``"all"`` -> None; ValueError for anything else."""
    if text == "all":
        return None
    match = _WINDOW.match(text)
    if match is None:
        raise ValueError(f"window {text!r} is not `<N>d` (e.g. 7d, 30d) or `all`")
    return int(match.group(1))


def check_performance_config(cfg: Config) -> None:
    """Reject settings that cannot work, naming the key."""
    pc = cfg.performance
    if not pc.windows:
        raise ConfigError("`performance.windows` is empty; list at least one window, e.g. [\"7d\", \"30d\", \"all\"]")
    for text in pc.windows:
        try:
            parse_window(text)
        except ValueError as exc:
            raise ConfigError(f"`performance.windows`: {exc}") from exc
    if len(set(pc.windows)) != len(pc.windows):
        raise ConfigError("`performance.windows` lists a window twice; list each once")
    positive = {"min_days": pc.min_days, "rebalance_days": pc.rebalance_days, "history_max_lines": pc.history_max_lines,
                "training_records": pc.training_records, "misfire_grace_s": pc.misfire_grace_s}
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"`performance.{key}` = {value}: must be at least 1")
    if not (math.isfinite(pc.track_interval_s) and pc.track_interval_s > 0):
        raise ConfigError(f"`performance.track_interval_s` = {pc.track_interval_s}: must be a positive number of seconds")
    for key in ("report_cron", "portfolio_optimizer_cron", "strategy_lab_cron"):
        cron_trigger(getattr(pc, key), f"performance.{key}")


def check_all_config(cfg: Config) -> None:
    """Everything the daemon runs, checked before it starts: its own section, the optimizer's and the lab's."""
    check_performance_config(cfg)
    po.check_optimizer_config(cfg)
    lab.check_lab_config(cfg)


# ------------------------------------------------------------------------------------------------ tracking


def weights_in_force(cfg: Config) -> dict[str, Any]:
    """What the trader allocates now and what RL proposes, as one weight-history record (not yet written)."""
    alloc = read_weights(cfg.runtime_dir / ALLOCATIONS_NAME)
    if alloc.ok and alloc.data is not None:
        doc = alloc.data
        weights = normalize({s: float(doc["weights"][s]) for s in STRATEGIES})
        source = str(doc.get("source") or "unknown")
        allocations: dict[str, Any] = {"status": "ok", "generated_at": doc.get("generated_at"),
                                       "fallback_reasons": doc.get("fallback_reasons", {}),
                                       "input_ages_s": doc.get("input_ages_s", {})}
    else:
        # The trader trades equal weights when it cannot use the allocations file; so does the record.
        weights, source = equal_weights(), "equal"
        allocations = {"status": alloc.status, "reason": alloc.reason}
    record = {"at": utc_now_iso(), "weights": weights, "source": source, "allocations": allocations,
              "rl": _rl_status(cfg)}
    market_at = trader_clock(cfg)
    if market_at is not None:
        record["market_at"] = market_at
    return record


def trader_clock(cfg: Config) -> str | None:
    """The close time of the candle the paper trader processed last (``runtime/trader_status.json``), or None.

    It is the time the weights are in force *for*: the wall clock for a live trader, the simulated time of a
    replay, whose trades are dated in the market's past. The report places each record at this time.
    """
    status = read_json(cfg.runtime_dir / TRADER_STATUS_NAME)
    candle = (status.data or {}).get("last_candle") if status.ok else None
    stamp = candle.get("timestamp") if isinstance(candle, Mapping) else None
    if isinstance(stamp, bool) or not isinstance(stamp, int):
        return None
    closed_ms = stamp + timeframe_to_ms(cfg.market.timeframe)
    return datetime.fromtimestamp(closed_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rl_status(cfg: Config) -> dict[str, Any]:
    result = read_weights(cfg.runtime_dir / RL_WEIGHTS_NAME, max_age_s=cfg.bridge.rl_max_age_s)
    status: dict[str, Any] = {"status": result.status}
    if result.reason:
        status["reason"] = result.reason
    if result.data is not None:
        status["weights"] = normalize({s: float(result.data["weights"][s]) for s in STRATEGIES})
        status["generated_at"] = result.data.get("generated_at")
        if "model_version" in result.data:
            status["model_version"] = result.data["model_version"]
    elif result.status == "stale":
        status["age_s"] = None if result.age_s is None else round(result.age_s, 1)
    return status


def track_weights(cfg: Config) -> dict[str, Any]:
    """Append the weights in force now to ``state/rl_weight_history.jsonl`` (bounded); returns the record."""
    record = weights_in_force(cfg)
    append_jsonl(weight_history_path(cfg), record, max_lines=cfg.performance.history_max_lines)
    log.debug("tracked weights from %s", record["source"])
    return record


@dataclass(frozen=True)
class WeightHistory:
    """The usable weight records, oldest first: times (UTC epoch seconds), weights (n x 8), sources."""

    times: np.ndarray
    weights: np.ndarray
    sources: list[str]
    skipped: int = 0

    @property
    def size(self) -> int:
        return int(self.times.size)


def load_weight_history(cfg: Config) -> WeightHistory:
    """Read the weight history tolerantly: a record without a valid time or weight vector is skipped, counted."""
    rows: list[tuple[float, np.ndarray, str]] = []
    skipped = 0
    for rec in read_jsonl(weight_history_path(cfg)):
        parsed = _parse_record(rec)
        if parsed is None:
            skipped += 1
        else:
            rows.append(parsed)
    if skipped:
        log.warning("%s: skipped %d record(s) without a valid `at` or `weights`", WEIGHT_HISTORY_NAME, skipped)
    rows.sort(key=lambda row: row[0])  # stable: records of the same second keep their order
    if not rows:
        return WeightHistory(np.empty(0), np.empty((0, len(STRATEGIES))), [], skipped)
    return WeightHistory(np.array([r[0] for r in rows]), np.vstack([r[1] for r in rows]),
                         [r[2] for r in rows], skipped)


def _parse_record(rec: Mapping[str, Any]) -> tuple[float, np.ndarray, str] | None:
    weights, at = rec.get("weights"), rec.get("market_at") or rec.get("at")
    if not isinstance(at, str) or not isinstance(weights, Mapping) or validate_weights(weights) is not None:
        return None
    try:
        stamp = parse_iso(at).timestamp()
    except ValueError:
        return None
    vector = np.array([float(weights[s]) for s in STRATEGIES])
    source = rec.get("source")
    return stamp, vector / vector.sum(), source if isinstance(source, str) and source else "unknown"


def time_weighted_mean(times: np.ndarray, values: np.ndarray, initial: np.ndarray,
                       bounds: np.ndarray) -> np.ndarray:
    """Mean of a step function over each interval ``[bounds[i], bounds[i+1])``; one row per interval.

    The function is ``values[j]`` from ``times[j]`` (ascending) until the next time, and ``initial`` before
    ``times[0]``. Integrated exactly by cumulative sums over the union of times and bounds (vectorized: a year
    of 5-minute records takes milliseconds).
    """
    bounds = np.asarray(bounds, dtype=float)
    n = bounds.size - 1
    if times.size == 0:
        return np.tile(initial, (n, 1))
    points = np.union1d(bounds, times[(times > bounds[0]) & (times < bounds[-1])])
    idx = np.searchsorted(times, points, side="right") - 1
    vals = np.where((idx >= 0)[:, None], values[np.clip(idx, 0, None)], initial)
    integral = np.vstack([np.zeros((1, vals.shape[1])), np.cumsum(vals[:-1] * np.diff(points)[:, None], axis=0)])
    at_bounds = integral[np.searchsorted(points, bounds)]
    return np.diff(at_bounds, axis=0) / np.diff(bounds)[:, None]


# ------------------------------------------------------------------------------------------------ replay


def _epoch_seconds(days: pd.DatetimeIndex) -> np.ndarray:
    return days.to_numpy().astype("datetime64[s]").astype(np.int64).astype(float)


def day_bounds(days: pd.DatetimeIndex, calendar: str) -> np.ndarray:
    """Start of every day of ``days`` plus the end of the last one (UTC epoch seconds).

    With the equity calendar a Friday runs to Monday, as the weekend's trades are folded into the Friday.
    """
    step = pd.offsets.BDay(1) if calendar == "equity" else pd.Timedelta(days=1)
    return np.append(_epoch_seconds(days), _epoch_seconds(pd.DatetimeIndex([days[-1] + step])))


def optimizer_weights_as_of(cfg: Config, trades: pd.DataFrame, as_of: date) -> dict[str, float] | None:
    """The portfolio optimizer's weights from the trades closed up to ``as_of``; None when it would publish none."""
    try:
        return po.payload_from_trades(cfg, trades, as_of)["weights"]
    except po.InsufficientHistoryError:
        return None


def lab_weights_as_of(cfg: Config, trades: pd.DataFrame, as_of: date) -> dict[str, float] | None:
    """The strategy lab's weights from the trades closed up to ``as_of``; None when it would publish none."""
    try:
        return lab.payload_from_trades(cfg, trades, as_of)["weights"]
    except po.InsufficientHistoryError:
        return None


WeightsAsOf = Callable[[date], dict[str, float] | None]


@dataclass(frozen=True)
class RebalancedWeights:
    """Daily weights (n x 8) of a periodically recomputed source and how many recomputations had no weights."""

    weights: np.ndarray
    rebalances: int
    without_weights: int
    first_with_weights: str | None


def replay_rebalanced(days: pd.DatetimeIndex, every_days: int, weights_as_of: WeightsAsOf) -> RebalancedWeights:
    """Recompute the weights on the first day and then every ``every_days`` days, each time from the data up to
    the day before (equal weights when there are none); each set holds until the next recomputation."""
    rows = np.empty((len(days), len(STRATEGIES)))
    current, last = _EQUAL_VECTOR, None
    rebalances = without = 0
    first_with: str | None = None
    for i, day in enumerate(days):
        if last is None or (day - last).days >= every_days:
            weights = weights_as_of((day - pd.Timedelta(days=1)).date())
            rebalances += 1
            if weights is None:
                without += 1
                current = _EQUAL_VECTOR
            else:
                current = np.array([weights[s] for s in STRATEGIES])
                first_with = first_with or day.date().isoformat()
            last = day
        rows[i] = current
    return RebalancedWeights(rows, rebalances, without, first_with)


@dataclass(frozen=True)
class Replay:
    """Daily per-strategy returns and trade counts, and each portfolio's daily weights, over the whole history."""

    days: pd.DatetimeIndex
    returns: np.ndarray
    """(days x 8) daily returns per strategy."""
    counts: np.ndarray
    """(days x 8) trades closed per strategy and day."""
    weights: dict[str, np.ndarray]
    """Per portfolio, (days x 8) weights in force each day."""
    baselines: dict[str, RebalancedWeights] = field(default_factory=dict)
    trades: int = 0
    skipped_rows: int = 0

    @property
    def size(self) -> int:
        return len(self.days)

    def portfolio_returns(self, name: str) -> np.ndarray:
        return (self.returns * self.weights[name]).sum(axis=1)

    def active_days(self, name: str) -> np.ndarray:
        """Days on which a strategy with a positive weight closed a trade."""
        return ((self.counts * (self.weights[name] > 0)).sum(axis=1)) > 0


def build_replay(cfg: Config, as_of: date, history: WeightHistory,
                 loaded: tuple[pd.DataFrame, int] | None = None) -> Replay:
    """Daily returns of the 8 strategies from the first trade to ``as_of`` and the portfolios' daily weights.

    ``loaded`` is the (trades, skipped rows) of :func:`analytics.portfolio_optimizer.load_strategy_trades` when
    the caller has read them already.
    """
    trades, skipped = loaded if loaded is not None else po.load_strategy_trades(cfg)
    calendar = cfg.market.calendar
    first_day = trades["closed_at"].min().tz_convert("UTC").date() if not trades.empty else as_of
    lookback = max((as_of - first_day).days + 1, 1)
    daily = po.daily_strategy_returns(trades, lookback, as_of, calendar)
    # The same aggregation with every pnl_pct set to 1 counts the trades of each strategy and day.
    counts = po.daily_strategy_returns(trades.assign(pnl_pct=1.0), lookback, as_of, calendar)
    days = pd.DatetimeIndex(daily.returns.index)
    if daily.days == 0:
        empty = np.empty((0, len(STRATEGIES)))
        return Replay(days, empty, empty, {name: empty for name in PORTFOLIOS}, trades=0, skipped_rows=skipped)
    every = cfg.performance.rebalance_days
    optimizer = replay_rebalanced(days, every, lambda d: optimizer_weights_as_of(cfg, trades, d))
    lab_w = replay_rebalanced(days, every, lambda d: lab_weights_as_of(cfg, trades, d))
    weights = {
        ALLOCATED: time_weighted_mean(history.times, history.weights, _EQUAL_VECTOR, day_bounds(days, calendar)),
        EQUAL: np.tile(_EQUAL_VECTOR, (len(days), 1)),
        OPTIMIZER: optimizer.weights,
        LAB: lab_w.weights,
    }
    return Replay(days, daily.returns.to_numpy(dtype=float), counts.returns.to_numpy(dtype=float), weights,
                  {OPTIMIZER: optimizer, LAB: lab_w}, int(sum(daily.trades.values())), skipped)


# ------------------------------------------------------------------------------------------------ figures


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
        "first_at": _iso(times[0]),
        "last_at": _iso(times[-1]),
        "longest_gap_s": float(np.diff(times).max()) if times.size > 1 else 0.0,
        "per_strategy": {s: _stats(w[:, i]) for i, s in enumerate(STRATEGIES)},
        "hhi": _stats(hhi),
        "effective_strategies": _stats(effective),
        "latest": {"at": _iso(history.times[last]), "source": history.sources[last],
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


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(float(epoch_s), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_report(cfg: Config, replay: Replay, history: WeightHistory, label: str, as_of: date,
                  now: datetime) -> dict[str, Any]:
    """The figures of one window, or a "not enough data" entry saying why."""
    span = parse_window(label)
    if replay.size == 0:
        return not_enough("no closed trades in state/pnl_history.csv up to the report day")
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
    start_s = float(_epoch_seconds(pd.DatetimeIndex([replay.days[rows[0]]]))[0])
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
                          po.periods_per_year(cfg))


def _single_figures(replay: Replay, rows: np.ndarray, cfg: Config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, name in enumerate(STRATEGIES):
        active = replay.counts[rows, i] > 0
        if not active.any():
            out[name] = not_enough("no trades of this strategy in the window")
        else:
            out[name] = series_figures(replay.returns[rows, i], active, 0.0, po.periods_per_year(cfg))
    return out


# ------------------------------------------------------------------------------------------------ training log


def sanitize(value: Any) -> Any:
    """``value`` with every non-finite number replaced by None (records of other writers may hold NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): sanitize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [sanitize(v) for v in value]
    return value


def read_training_log(cfg: Config, limit: int) -> dict[str, Any]:
    """The latest ``limit`` records of ``state/rl_training_log.json``, read tolerantly (status and reason)."""
    path = training_log_path(cfg)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"status": "absent", "reason": f"{path.name}: file not found (no training has run yet)",
                "total_records": 0, "records": []}
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return {"status": "invalid", "reason": f"{path.name}: unreadable or not valid JSON ({exc})",
                "total_records": 0, "records": []}
    records = _training_list(doc)
    if records is None:
        return {"status": "invalid", "total_records": 0, "records": [],
                "reason": f"{path.name}: expected a list of records (top level or under one of: "
                          f"{', '.join(TRAINING_LIST_KEYS)})"}
    usable = [sanitize(r) for r in records if isinstance(r, dict)]
    result = {"status": "ok", "total_records": len(usable), "records": usable[-limit:]}
    if len(usable) < len(records):
        result["skipped"] = len(records) - len(usable)
    return result


def _training_list(doc: Any) -> list[Any] | None:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        for key in TRAINING_LIST_KEYS:
            if isinstance(doc.get(key), list):
                return doc[key]
    return None


# ------------------------------------------------------------------------------------------------ report


@dataclass(frozen=True)
class ReportResult:
    """What :func:`write_report` wrote: the report document and the plot files (kind -> path)."""

    path: Path
    document: dict[str, Any]
    plots: dict[str, Path]


METHODOLOGY: dict[str, str] = {
    "daily_returns": po.AGGREGATION,
    ALLOCATED: "weights in force each day (time-weighted over the day) from state/rl_weight_history.jsonl; "
               "equal weights before the first record",
    EQUAL: "1/8 on every strategy",
    OPTIMIZER: "portfolio optimizer weights recomputed every rebalance_days days from trades closed before the "
               "rebalance day (no look-ahead); equal weights while it has not enough history",
    LAB: "strategy lab weights recomputed like the portfolio optimizer's",
    "win_rate": "share of positive days among days with at least one trade of the portfolio's strategies",
    "turnover": "sum over the window of the daily one-way weight change, sum |w(d) - w(d-1)| / 2",
    "undefined_figures": "null (e.g. a Sharpe ratio of constant returns, a Sortino ratio without a losing day)",
}


def build_report(cfg: Config, as_of: date | None = None, now: datetime | None = None
                 ) -> tuple[dict[str, Any], Replay, WeightHistory]:
    """The report payload (without the envelope), and the replay and weight history it was computed from."""
    check_performance_config(cfg)
    now = now or datetime.now(timezone.utc)
    loaded = po.load_strategy_trades(cfg)
    # The history's own clock: today for a live trader, the simulated day of a replay (whose trades may be old).
    as_of = as_of or po.history_day(loaded[0])
    history = load_weight_history(cfg)
    replay = build_replay(cfg, as_of, history, loaded)
    payload: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "status": "ok" if replay.size else NOT_ENOUGH_DATA,
        "periods_per_year": po.periods_per_year(cfg),
        "data_range": {"start": replay.days[0].date().isoformat() if replay.size else None,
                       "end": as_of.isoformat(), "days": replay.size, "trades": replay.trades},
        "history_rows_skipped": replay.skipped_rows,
        "weight_history": {"file": _relative(cfg, weight_history_path(cfg)), "records": history.size,
                           "skipped": history.skipped,
                           "first_at": _iso(history.times[0]) if history.size else None,
                           "last_at": _iso(history.times[-1]) if history.size else None},
        "baselines": {name: {"rebalance_days": cfg.performance.rebalance_days, "rebalances": rb.rebalances,
                             "rebalances_without_weights": rb.without_weights,
                             "first_day_with_weights": rb.first_with_weights}
                      for name, rb in replay.baselines.items()},
        "windows": {label: window_report(cfg, replay, history, label, as_of, now)
                    for label in cfg.performance.windows},
        "training": read_training_log(cfg, cfg.performance.training_records),
        "methodology": METHODOLOGY,
    }
    return payload, replay, history


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
        "equity_curves": plots.equity_curves_png(days, {n: equity_curve(r) for n, r in returns.items()}, singles,
                                                 f"Equity: allocated vs baselines, {span}"),
        "weights": plots.weights_area_png(days, replay.weights[ALLOCATED], STRATEGIES,
                                          f"Weights in force (daily), {span}", untracked_until=first),
        "drawdowns": plots.drawdowns_png(days, {n: drawdown_series(r) for n, r in returns.items()},
                                         f"Drawdowns, {span}"),
    }


def write_report(cfg: Config, as_of: date | None = None, now: datetime | None = None,
                 with_plots: bool | None = None) -> ReportResult:
    """Compute the report, write the plots (if enabled and there is data) and then the report, atomically.

    Plots of an earlier report are removed when no new ones are drawn, so the files never disagree.
    """
    payload, replay, history = build_report(cfg, as_of, now)
    with_plots = cfg.performance.plots if with_plots is None else with_plots
    images = render_plots(replay, history, date.fromisoformat(payload["as_of"])) if with_plots else {}
    written: dict[str, Path] = {}
    for kind, path in plot_paths(cfg).items():
        if kind in images:
            atomic_write_bytes(path, images[kind])
            written[kind] = path
        else:
            path.unlink(missing_ok=True)
    if written:
        payload["plots"] = {kind: path.name for kind, path in written.items()}
    else:
        payload["plots"] = not_enough("fewer than 2 days of history") if with_plots else {"status": "disabled"}
    path = report_path(cfg)
    document = publish_json(path, PRODUCER, payload)
    log.info("wrote %s (%d days, %d trades, %d plots)", path, replay.size, replay.trades, len(written))
    return ReportResult(path, document, written)


# ------------------------------------------------------------------------------------------------ text summary


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100.0 * value:+.2f}%"


def _share(value: float) -> str:
    # A source in force for minutes of a long window is still named, but not as "0%".
    return "<1%" if value < 0.005 else f"{100.0 * value:.0f}%"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def summary_text(document: Mapping[str, Any]) -> str:
    """A few lines for a terminal: per window, each portfolio's main figures and the sources in force."""
    rng = document["data_range"]
    lines = [f"performance report as of {document['as_of']}: {rng['days']} day(s), {rng['trades']} trade(s), "
             f"{document['weight_history']['records']} weight record(s)"]
    for label, win in document["windows"].items():
        if win["status"] != "ok":
            lines.append(f"  {label}: {NOT_ENOUGH_DATA} ({win['reason']})")
            continue
        lines.append(f"  {label} ({win['start']} to {win['end']}, {win['days']} days, {win['trades']} trades):")
        lines.append(f"    {'portfolio':<22}{'return':>10}{'sharpe':>9}{'max dd':>10}{'win':>8}{'turnover':>10}")
        for name, fig in win["portfolios"].items():
            win_rate_text = "n/a" if fig["win_rate"] is None else f"{100 * fig['win_rate']:.0f}%"
            lines.append(f"    {name:<22}{_pct(fig['total_return']):>10}{_num(fig['sharpe_ratio']):>9}"
                         f"{_pct(fig['max_drawdown']):>10}{win_rate_text:>8}{_num(fig['turnover']):>10}")
        best = _best_single(win["single_strategies"])
        if best:
            lines.append(f"    best single strategy: {best[0]} {_pct(best[1])}")
        shares = ", ".join(f"{name} {_share(share)}" for name, share in win["source_shares"].items())
        lines.append(f"    sources in force: {shares or 'n/a'}")
    training = document["training"]
    lines.append(f"  training log: {training['status']}, {training['total_records']} record(s)")
    plots_doc = document.get("plots", {})
    if "status" not in plots_doc:
        lines.append(f"  plots: {', '.join(plots_doc.values())}")
    return "\n".join(lines)


def _best_single(singles: Mapping[str, Any]) -> tuple[str, float] | None:
    scored = [(fig["total_return"], name) for name, fig in singles.items()
              if "status" not in fig and fig["total_return"] is not None]
    if not scored:
        return None
    value, name = max(scored)
    return name, value


# ------------------------------------------------------------------------------------------------ daemon


def run_guarded(ctx: DaemonContext, job: str, action: Callable[[], object]) -> bool:
    """Run one job; log and record a failure in the heartbeat instead of letting it end the daemon."""
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - one failing job must not stop the other three
        log.exception("job %s failed", job)
        ctx.beat(state="error", last_error=f"{job}: {exc}", last_error_at=utc_now_iso())
        return False
    ctx.beat(state="running", **{f"last_{job}_at": utc_now_iso()})
    return True


def track_job(cfg: Config, ctx: DaemonContext) -> None:
    run_guarded(ctx, "track", lambda: track_weights(cfg))


def report_job(cfg: Config, ctx: DaemonContext) -> None:
    run_guarded(ctx, "report", lambda: write_report(cfg))


def optimizer_job(cfg: Config, ctx: DaemonContext) -> None:
    run_guarded(ctx, "portfolio_optimizer", lambda: po.run_once(cfg))


def lab_job(cfg: Config, ctx: DaemonContext) -> None:
    run_guarded(ctx, "strategy_lab", lambda: lab.run_once(cfg))


def unpublished_sources_job(cfg: Config, ctx: DaemonContext) -> None:
    """Retry the fallback sources that have not published yet: on a fresh machine the history is empty when the
    daemon starts, and their cron runs are hours apart, so the bridge would have no fallback until then."""
    if not po.output_path(cfg).exists():
        optimizer_job(cfg, ctx)
    if not lab.output_path(cfg).exists():
        lab_job(cfg, ctx)


def build_scheduler(cfg: Config, ctx: DaemonContext) -> BackgroundScheduler:
    """The report and the fallback sources on one worker thread (never two at once); tracking on its own, so a
    long report never delays the weight history. Missed runs coalesced, minutes of grace."""
    pc = cfg.performance
    scheduler = BackgroundScheduler(
        timezone=timezone.utc,
        executors={"default": ThreadPoolExecutor(max_workers=1), "track": ThreadPoolExecutor(max_workers=1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": pc.misfire_grace_s},
    )
    args = (cfg, ctx)
    scheduler.add_job(track_job, IntervalTrigger(seconds=pc.track_interval_s, timezone=timezone.utc), args=args,
                      id="track", name="record the weights in force", executor="track")
    scheduler.add_job(report_job, cron_trigger(pc.report_cron, "performance.report_cron"), args=args,
                      id="report", name="write the performance report")
    scheduler.add_job(optimizer_job, cron_trigger(pc.portfolio_optimizer_cron, "performance.portfolio_optimizer_cron"),
                      args=args, id="portfolio_optimizer", name="publish portfolio optimizer weights")
    scheduler.add_job(lab_job, cron_trigger(pc.strategy_lab_cron, "performance.strategy_lab_cron"), args=args,
                      id="strategy_lab", name="publish strategy lab weights")
    scheduler.add_job(unpublished_sources_job, IntervalTrigger(seconds=pc.track_interval_s, timezone=timezone.utc),
                      args=args, id="unpublished_sources", name="retry fallback sources that never published")
    return scheduler


def run_daemon(cfg: Config, ctx: DaemonContext) -> None:
    """Run the fallback sources, a track and a report once, then the scheduler until SIGTERM/SIGINT."""
    for job in (optimizer_job, lab_job, track_job, report_job):
        if ctx.stop.is_set():
            return
        job(cfg, ctx)
    scheduler = build_scheduler(cfg, ctx)
    scheduler.start()
    log.info("scheduled: %s", "; ".join(f"{j.id} ({j.trigger})" for j in scheduler.get_jobs()))
    try:
        while not ctx.wait(HEARTBEAT_S):
            ctx.beat()  # between jobs too: a status check must not take a daemon idle for minutes for dead
    finally:
        scheduler.shutdown(wait=True)  # lets a running job finish its write


# ------------------------------------------------------------------------------------------------ command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rl_performance",
        description="Track the strategy weights in force (state/rl_weight_history.jsonl), report the allocated "
                    "portfolio against equal weights, the portfolio optimizer, the strategy lab and each single "
                    "strategy (state/rl_performance_report.json and PNG plots next to it), or run all of it as "
                    "the performance_tracker daemon. Exit codes: 0 done, 1 cannot write, 2 bad config or input.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--track", action="store_true", help="record the weights in force now and exit")
    mode.add_argument("--report", action="store_true", help="write the report and plots, print a summary, exit")
    mode.add_argument("--loop", action="store_true",
                      help="daemon: track on an interval, report and run the fallback sources on cron schedules")
    parser.add_argument("--as-of", type=po.parse_date, metavar="YYYY-MM-DD",
                        help="with --report: last day of the report (default: the day of the newest trade, UTC)")
    parser.add_argument("--no-plots", action="store_true", help="with --report: skip the PNG plots")
    parser.add_argument("--config", metavar="PATH", help="TOML configuration file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.report and (args.as_of or args.no_plots):
        parser.error("--as-of and --no-plots only apply to --report")
    try:
        cfg = load_config(args.config)
        if args.loop:
            check_all_config(cfg)
        else:
            check_performance_config(cfg)
    except FatalError as exc:
        print(f"rl_performance: error: {exc}", file=sys.stderr)
        return 2
    if args.loop:
        return _loop(cfg)
    setup_logging(cfg)
    try:
        if args.track:
            record = track_weights(cfg)
            print(f"{weight_history_path(cfg)}: recorded weights from {record['source']}: "
                  + ", ".join(f"{s}={w:.3f}" for s, w in record["weights"].items()))
            return 0
        result = write_report(cfg, args.as_of, with_plots=False if args.no_plots else None)
    except FatalError as exc:  # e.g. a column missing in state/pnl_history.csv
        print(f"rl_performance: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"rl_performance: error: cannot write under {cfg.state_dir}: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {result.path}")
    print(summary_text(result.document))
    return 0


def _loop(cfg: Config) -> int:
    return run_daemon_main(DAEMON_NAME, cfg, lambda ctx: run_daemon(cfg, ctx))


if __name__ == "__main__":
    sys.exit(main())
