"""The performance report: the allocated portfolio against equal weights, the portfolio optimizer, the strategy
lab and each single strategy, over the configured windows, with the training log's latest records.

    python analytics/rl_performance.py --report [--as-of D] [--no-plots]

The report's window ends by default on the day of the newest trade (the history's own clock: today for a live
trader, the simulated day of a replay). The replay (:mod:`analytics.performance.replay`) gives each portfolio's
daily returns, :mod:`analytics.performance.figures` the figures of each window, and the report and its plots are
written through :mod:`core.contracts.performance` (plots first, so the report names only plots on disk).
:func:`summary_text` is the few lines the command prints.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from analytics.performance.figures import NOT_ENOUGH_DATA, iso, not_enough, window_report
from analytics.performance.plots import render_plots
from analytics.performance.replay import ALLOCATED, EQUAL, LAB, OPTIMIZER, Replay, build_replay
from analytics.performance.settings import check_performance_config
from analytics.performance.tracking import WeightHistory, load_weight_history
from analytics.returns import AGGREGATION, history_day, load_strategy_trades, periods_per_year
from core.config import Config
from core.contracts.performance import (
    WEIGHT_HISTORY_NAME,
    ReportDocument,
    ReportPayload,
    publish_report,
    report_path,
    weight_history_path,
    write_plots,
)
from core.contracts.training_log import read_training_log

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportResult:
    """What :func:`write_report` wrote: the report document and the plot files (kind -> path)."""

    path: Path
    document: ReportDocument
    plots: dict[str, Path]


METHODOLOGY: dict[str, str] = {
    "daily_returns": AGGREGATION,
    ALLOCATED: "weights in force each day (time-weighted over the day) from state/" + WEIGHT_HISTORY_NAME + "; "
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
                 ) -> tuple[ReportPayload, Replay, WeightHistory]:
    """The report payload (without the envelope), and the replay and weight history it was computed from."""
    check_performance_config(cfg)
    now = now or datetime.now(timezone.utc)
    loaded = load_strategy_trades(cfg)
    # The history's own clock: today for a live trader, the simulated day of a replay (whose trades may be old).
    as_of = as_of or history_day(loaded[0])
    history = load_weight_history(cfg)
    replay = build_replay(cfg, as_of, history, loaded)
    payload: ReportPayload = {
        "as_of": as_of.isoformat(),
        "status": "ok" if replay.size else NOT_ENOUGH_DATA,
        "periods_per_year": periods_per_year(cfg),
        "data_range": {"start": replay.days[0].date().isoformat() if replay.size else None,
                       "end": as_of.isoformat(), "days": replay.size, "trades": replay.trades},
        "history_rows_skipped": replay.skipped_rows,
        "weight_history": {"file": _relative(cfg, weight_history_path(cfg)), "records": history.size,
                           "skipped": history.skipped,
                           "first_at": iso(history.times[0]) if history.size else None,
                           "last_at": iso(history.times[-1]) if history.size else None},
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


def write_report(cfg: Config, as_of: date | None = None, now: datetime | None = None,
                 with_plots: bool | None = None) -> ReportResult:
    """Compute the report, write the plots (if enabled and there is data) and then the report, atomically.

    Plots of an earlier report are removed when the data gives none (fewer than two days), so the files never
    disagree; with plots off (``--no-plots``, ``performance.plots = false``) the plots on disk are left alone.
    """
    payload, replay, history = build_report(cfg, as_of, now)
    with_plots = cfg.performance.plots if with_plots is None else with_plots
    if not with_plots:
        payload["plots"] = {"status": "disabled"}
        written: dict[str, Path] = {}
    else:
        written = write_plots(cfg, render_plots(replay, history, date.fromisoformat(payload["as_of"])))
        payload["plots"] = ({kind: path.name for kind, path in written.items()} if written
                            else not_enough("fewer than 2 days of history"))
    document = publish_report(cfg, payload)
    path = report_path(cfg)
    log.info("wrote %s (%d days, %d trades, %d plots)", path, replay.size, replay.trades, len(written))
    return ReportResult(path, document, written)


def _relative(cfg: Config, path: Path) -> str:
    # The report names files relative to the home folder, so it reads the same on every machine.
    try:
        return str(path.relative_to(cfg.home))
    except ValueError:
        return path.name


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
