"""The sweep's leaderboard: every trial ranked by its out-of-sample Sharpe ratio, with the spread across seeds.

``leaderboard.csv`` has one row per trial: ``rank``, ``trial``, ``symbol``, ``seed``, ``settings``
(``key=value; ...``), ``sharpe`` (out of sample), ``total_return``, ``max_drawdown``, ``best_baseline_sharpe``
(the best baseline's Sharpe ratio on the same window), ``gate_passed``, ``seed_sharpe_mean``,
``seed_sharpe_sd`` and ``seeds`` (over the trials of the same symbol and settings), ``wall_s``, ``status``,
``error``. A failed trial or an undefined Sharpe ratio ranks last; an undefined value is an empty cell.
``leaderboard.md`` shows the groups (symbol and settings, mean +- sd across seeds) and then the trials.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from core.contracts.experiments import TrialRecord

COLUMNS = ("rank", "trial", "symbol", "seed", "settings", "sharpe", "total_return", "max_drawdown",
           "best_baseline_sharpe", "gate_passed", "seed_sharpe_mean", "seed_sharpe_sd", "seeds", "wall_s", "status",
           "error")
BASELINE_KEYS = ("buy_hold_sharpe", "moving_avg_sharpe", "random_sharpe", "equal_weights_sharpe",
                 "portfolio_optimizer_sharpe", "strategy_lab_sharpe")
"""Baseline Sharpe ratios a trial may report (trading, then allocation)."""


def score(record: TrialRecord) -> float:
    """The ranking key: the out-of-sample Sharpe ratio, -inf for a failed trial or an undefined one."""
    value = record["metrics"].get("sharpe") if record["status"] == "ok" else None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else -math.inf


def settings_text(settings: dict[str, Any]) -> str:
    return "; ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"


def best_baseline_sharpe(metrics: dict[str, Any]) -> float | None:
    values = [metrics[k] for k in BASELINE_KEYS if isinstance(metrics.get(k), (int, float))]
    return max(values) if values else None


def group_key(record: TrialRecord) -> tuple[str, str]:
    return record["symbol"], settings_text(record["settings"])


def spreads(records: Iterable[TrialRecord]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per symbol and settings: mean and sd of the defined Sharpe ratios across seeds, and how many."""
    groups: dict[tuple[str, str], list[float]] = {}
    for record in records:
        values = groups.setdefault(group_key(record), [])
        if math.isfinite(score(record)):
            values.append(score(record))
    return {key: {"mean": statistics.fmean(v) if v else None,
                  "sd": statistics.stdev(v) if len(v) > 1 else (0.0 if v else None), "seeds": len(v)}
            for key, v in groups.items()}


def ranked(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    return sorted(records, key=lambda r: (-score(r), r["trial"]))


def rows(records: Sequence[TrialRecord]) -> list[dict[str, Any]]:
    """The leaderboard's rows, best first."""
    spread = spreads(records)
    out = []
    for rank, record in enumerate(ranked(records), start=1):
        metrics, group = record["metrics"], spread[group_key(record)]
        out.append({
            "rank": rank, "trial": record["trial"], "symbol": record["symbol"], "seed": record["seed"],
            "settings": settings_text(record["settings"]), "sharpe": metrics.get("sharpe"),
            "total_return": metrics.get("total_return"), "max_drawdown": metrics.get("max_drawdown"),
            "best_baseline_sharpe": best_baseline_sharpe(metrics), "gate_passed": metrics.get("gate_passed"),
            "seed_sharpe_mean": group["mean"], "seed_sharpe_sd": group["sd"], "seeds": group["seeds"],
            "wall_s": record["wall_s"], "status": record["status"], "error": record["error"],
        })
    return out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)  # floats in full: they read back exactly


def leaderboard_csv(records: Sequence[TrialRecord]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows(records):
        writer.writerow([_cell(row[c]) for c in COLUMNS])
    return buffer.getvalue()


def _num(value: Any, pattern: str = "{:.2f}") -> str:
    return "n/a" if value is None else pattern.format(value)


def leaderboard_markdown(sweep_id: str, records: Sequence[TrialRecord]) -> str:
    """Groups by mean Sharpe across seeds, then every trial."""
    spread = spreads(records)
    order = sorted(spread, key=lambda k: -(spread[k]["mean"] if spread[k]["mean"] is not None else -math.inf))
    lines = [f"# Sweep {sweep_id}: out-of-sample Sharpe ratio", "",
             "| symbol | settings | Sharpe, mean +- sd across seeds | seeds |", "| --- | --- | --- | --- |"]
    for key in order:
        g = spread[key]
        lines.append(f"| {key[0]} | {key[1]} | {_num(g['mean'])} +- {_num(g['sd'])} | {g['seeds']} |")
    lines += ["", "| rank | trial | Sharpe | return | max drawdown | best baseline Sharpe | gate | wall s |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows(records):
        if row["status"] != "ok":
            lines.append(f"| {row['rank']} | {row['trial']} | failed: {row['error']} | | | | | {row['wall_s']:.1f} |")
            continue
        gate = {True: "passed", False: "failed"}.get(row["gate_passed"], "n/a")
        lines.append(f"| {row['rank']} | {row['trial']} | {_num(row['sharpe'])} | {_num(row['total_return'], '{:+.1%}')} "
                     f"| {_num(row['max_drawdown'], '{:.1%}')} | {_num(row['best_baseline_sharpe'])} | {gate} "
                     f"| {row['wall_s']:.1f} |")
    return "\n".join(lines) + "\n"


def leaderboard_png(sweep_id: str, records: Sequence[TrialRecord]) -> bytes:
    """PNG: per symbol and setting, each seed's out-of-sample Sharpe ratio (dots), their mean (bar) and the best
    baseline's Sharpe ratio on the same window (a dash), best group first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spread = spreads(records)
    order = sorted(spread, key=lambda k: -(spread[k]["mean"] if spread[k]["mean"] is not None else -math.inf))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(order) + 2), 4.5))
    try:
        for x, key in enumerate(order):
            mine = [r for r in records if group_key(r) == key]
            values = [score(r) for r in mine if math.isfinite(score(r))]
            if values:
                ax.bar(x, statistics.fmean(values), color="tab:blue", alpha=0.35, width=0.6)
                ax.scatter([x] * len(values), values, color="tab:blue", zorder=3, s=18)
            baselines = [b for b in (best_baseline_sharpe(r["metrics"]) for r in mine) if b is not None]
            if baselines:
                ax.hlines(max(baselines), x - 0.3, x + 0.3, colors="tab:red", zorder=4)
        ax.set_xticks(range(len(order)), [f"{k[0]}\n{k[1]}" for k in order], fontsize=8)
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.set_ylabel("out-of-sample Sharpe ratio")
        ax.set_title(f"sweep {sweep_id}: seeds (dots), their mean (bar), best baseline (red)")
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
    finally:
        plt.close(fig)
    return buffer.getvalue()
