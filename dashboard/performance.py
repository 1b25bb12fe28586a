"""The performance panel: the weights in force over time (``state/rl_weight_history.jsonl``) and the
performance report (``state/rl_performance_report.json``): the allocated portfolio against equal weights, the
portfolio optimizer and the strategy lab, as equity curves and as the report's metrics table per window.

The curves come from the report's own daily replay (:func:`analytics.performance.replay.build_replay`) up to
the day of the newest trade (the history's clock), recomputed when the history or the weight history changed, at
most every :data:`REPLAY_MIN_S` (a year of trades takes about two seconds).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from analytics.metrics import equity_curve
from analytics.performance.replay import PORTFOLIOS, build_replay
from analytics.performance.tracking import load_weight_history
from analytics.returns import history_day, load_strategy_trades
from core.config import STRATEGIES, Config
from core.contracts.performance import (
    WEIGHT_HISTORY_NAME,
    read_report,
    read_weight_history,
    weight_history_path,
)
from core.errors import FatalError
from dashboard.common import Panel, clean, empty, file_state

NO_WEIGHT_HISTORY = ("no weight history yet: the performance tracker records the weights in force every "
                     "`performance.track_interval_s`; start it with `python analytics/rl_performance.py --loop` "
                     "(or `bash scripts/start_rl_system.sh`)")
NO_REPORT = ("no performance report yet: the performance tracker writes it hourly; write one now with "
             "`python analytics/rl_performance.py --report`")
HISTORY_POINTS = 1500
"""At most this many records of the weight history are sent (evenly thinned, the newest kept)."""
REPLAY_MIN_S = 30.0
"""Shortest time between two replays of the whole history for the curves (a fast replay changes it often)."""
METRICS = ("total_return", "sharpe_ratio", "sortino_ratio", "max_drawdown", "annual_volatility", "win_rate",
           "turnover", "days")


def weights_over_time(cfg: Config) -> Panel:
    """The weight history as one series per strategy (for a stacked area), with the source of each record."""
    read = read_weight_history(cfg)
    if not read.records:
        return empty(NO_WEIGHT_HISTORY)
    records = sorted(read.records, key=lambda r: r.at)
    # Records taken before the trader's first candle have only the wall clock; once the trader's clock is
    # there (a replay runs in the past), the wall-clock ones would stretch the time axis over years.
    market = [r for r in records if r.record.get("market_at")]
    records = market or records
    step = max(1, len(records) // HISTORY_POINTS)
    picked = records[::step]
    if picked[-1] is not records[-1]:
        picked.append(records[-1])
    return {
        "empty": False,
        "file": f"state/{WEIGHT_HISTORY_NAME}",
        "records": len(records), "skipped": read.skipped,
        "time": [r.at.strftime("%Y-%m-%dT%H:%M:%SZ") for r in picked],
        "source": [str(r.record.get("source") or "unknown") for r in picked],
        "weights": {s: [float(r.record["weights"][s]) for r in picked] for s in STRATEGIES},
        "time_basis": "market" if market else "wall clock",
    }


class CurveCache:
    """The portfolios' equity curves of the last replay, and when and for what it was computed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._at = -float("inf")
        self._value: dict[str, Any] | None = None

    def get(self, cfg: Config) -> dict[str, Any] | None:
        key = (*_signature(weight_history_path(cfg)), *_signature(cfg.state_dir / "pnl_history.csv"))
        with self._lock:
            due = key != self._key and time.monotonic() - self._at >= REPLAY_MIN_S
            if self._value is None and self._key is None or due:
                self._value, self._key, self._at = portfolio_curves(cfg), key, time.monotonic()
            return self._value


def _signature(path: Any) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)
    return (stat.st_size, stat.st_mtime_ns)


def portfolio_curves(cfg: Config) -> dict[str, Any] | None:
    """Daily equity (from 1) of each portfolio of the report up to the newest trade; None with fewer than two
    days of trades."""
    try:
        loaded = load_strategy_trades(cfg)
        replay = build_replay(cfg, history_day(loaded[0]), load_weight_history(cfg), loaded)
    except (FatalError, ValueError):
        return None
    if replay.size < 2:
        return None
    return clean({"time": [d.strftime("%Y-%m-%d") for d in replay.days],
                  "equity": {name: equity_curve(replay.portfolio_returns(name)).tolist() for name in PORTFOLIOS}})


def metrics_table(windows: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per window and portfolio with the report's figures; a window without data gives its reason."""
    rows: list[dict[str, Any]] = []
    for label, win in windows.items():
        if not isinstance(win, dict) or win.get("status") != "ok":
            reason = win.get("reason") if isinstance(win, dict) else "unreadable"
            rows.append({"window": label, "portfolio": None, "reason": reason})
            continue
        for name, figures in (win.get("portfolios") or {}).items():
            rows.append({"window": label, "portfolio": name, "start": win.get("start"), "end": win.get("end"),
                         **{m: figures.get(m) for m in METRICS}})
    return rows


def performance_panel(cfg: Config, curves: CurveCache) -> Panel:
    weights = weights_over_time(cfg)
    result = read_report(cfg)
    if not result.ok or result.data is None:
        reason = "" if result.status == "absent" else f" ({result.reason})"
        return {"weights_over_time": weights, "report": empty(NO_REPORT + reason)}
    doc = result.data
    as_of = str(doc.get("as_of"))
    report = {
        "empty": False, "as_of": as_of, "generated_at": doc.get("generated_at"), "file": file_state(result),
        "status": doc.get("status"), "data_range": doc.get("data_range"),
        "metrics": metrics_table(doc.get("windows") or {}), "portfolios": list(PORTFOLIOS),
        "curves": curves.get(cfg),
    }
    return clean({"weights_over_time": weights, "report": report})
