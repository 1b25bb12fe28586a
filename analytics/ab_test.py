"""A/B comparison of two trading systems: a metric table, a winner, a confidence figure and a recommendation.

Two ways in:

- **figures** given by hand (total P&L, win rate as a fraction, Sharpe ratio, maximum drawdown as a positive
  size, any subset): each metric given for both systems votes for the better one (a lower drawdown is
  better); the winner has most votes and the confidence is its share of the votes. Figures carry no sample,
  so this is a tally, not a statistical test.
- **trade histories** (two files in the ``state/pnl_history.csv`` format): the metrics come from
  :mod:`analytics.metrics` (total P&L is the sum of ``pnl``; win rate the share of trades with ``pnl_pct > 0``;
  Sharpe the annualized ratio of the daily returns of the ``equity_after`` curve, days without trades at 0;
  maximum drawdown of that curve, trade by trade, as a positive fraction), and the winner and confidence come
  from a seeded bootstrap of the difference in mean per-trade ``pnl_pct`` (B minus A): both samples are
  resampled with replacement, independently, ``resamples`` times; the winner is the system with the higher
  observed mean, the confidence the share of resampled differences on the winner's side, the 95 % interval
  the 2.5 and 97.5 percentiles, and the two-sided p-value twice the smaller tail share (at most 1).

Recommendation: confidence of 95 % or more deploys the winner (keeps A when A wins), 75 % to 95 % leans towards
it but asks for more data, below that (or a tie) keeps A. Results are appended to a bounded JSON Lines history.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analytics import metrics

RULE = "=" * 80
LINE = "-" * 80
DEPLOY_CONFIDENCE = 95.0
LEAN_CONFIDENCE = 75.0
DEFAULT_RESAMPLES = 10_000
_MAX_DRAWS_PER_CHUNK = 2_000_000
"""Bootstrap indices drawn at once (memory bound: about 16 MB)."""


@dataclass(frozen=True)
class MetricSpec:
    key: str
    label: str
    higher_is_better: bool


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("total_pnl", "Total Pnl", True),
    MetricSpec("win_rate", "Win Rate", True),
    MetricSpec("sharpe", "Sharpe Ratio", True),
    MetricSpec("max_drawdown", "Max Drawdown", False),
)


@dataclass(frozen=True)
class SystemFigures:
    """One system's metrics; None when not given (figures) or undefined (too few days for a Sharpe ratio)."""

    name: str
    total_pnl: float | None = None
    win_rate: float | None = None
    sharpe: float | None = None
    max_drawdown: float | None = None
    trades: int | None = None
    mean_pnl_pct: float | None = None

    def value(self, key: str) -> float | None:
        value = getattr(self, key)
        return None if value is None or not math.isfinite(value) else float(value)


@dataclass(frozen=True)
class MetricRow:
    """One line of the table: the values, B's difference relative to A in percent, and which is better."""

    key: str
    label: str
    a: float
    b: float
    diff_pct: float | None
    better: str  # "A", "B" or "tie"


@dataclass(frozen=True)
class BootstrapResult:
    """Bootstrap of mean(B) - mean(A) of per-trade returns."""

    observed_diff: float
    ci_low: float
    ci_high: float
    share_b_better: float
    share_a_better: float
    p_value: float
    resamples: int
    seed: int


@dataclass
class ABResult:
    mode: str  # "figures" or "trades"
    a: SystemFigures
    b: SystemFigures
    rows: list[MetricRow]
    winner: str | None
    confidence: float
    recommendation: str
    bootstrap: BootstrapResult | None = None
    sources: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- metrics


def figures_from_trades(name: str, trades: pd.DataFrame, calendar: str = "crypto") -> SystemFigures:
    """A system's metrics from its closed trades (columns of ``state/pnl_history.csv``, sorted by close)."""
    if trades.empty:
        raise ValueError(f"{name}: the trade history has no valid trades")
    pnl_pct = trades["pnl_pct"].to_numpy(np.float64)
    equity = equity_with_start(trades)
    per_trade = equity[1:] / equity[:-1] - 1.0
    daily = daily_returns(trades, equity[0])
    return SystemFigures(
        name=name,
        total_pnl=float(trades["pnl"].sum()),
        win_rate=metrics.win_rate(pnl_pct),
        sharpe=metrics.sharpe_ratio(daily, metrics.periods_per_year_for("1d", calendar)),
        max_drawdown=-metrics.max_drawdown(per_trade),
        trades=len(trades),
        mean_pnl_pct=float(np.mean(pnl_pct)),
    )


def equity_with_start(trades: pd.DataFrame) -> np.ndarray:
    """``equity_after`` of every trade, preceded by the equity before the first one (its equity minus its pnl)."""
    equity = trades["equity_after"].to_numpy(np.float64)
    start = equity[0] - float(trades["pnl"].iloc[0])
    return np.concatenate([[start], equity])


def daily_returns(trades: pd.DataFrame, start_equity: float) -> np.ndarray:
    """Daily returns of the equity curve (last ``equity_after`` of each UTC day, unchanged on days without
    trades), from the day of the first trade; the first day is measured against ``start_equity``."""
    closes = pd.Series(trades["equity_after"].to_numpy(np.float64),
                       index=pd.DatetimeIndex(pd.to_datetime(trades["closed_at"], utc=True)))
    per_day = closes.groupby(closes.index.floor("D")).last()
    per_day = per_day.reindex(pd.date_range(per_day.index[0], per_day.index[-1], freq="D")).ffill()
    values = np.concatenate([[start_equity], per_day.to_numpy()])
    return values[1:] / values[:-1] - 1.0


def compare(a: SystemFigures, b: SystemFigures) -> list[MetricRow]:
    """The rows of the metrics both systems have, in table order."""
    rows = []
    for spec in METRICS:
        va, vb = a.value(spec.key), b.value(spec.key)
        if va is None or vb is None:
            continue
        diff = (vb - va) / abs(va) * 100.0 if va != 0 else None
        if vb == va:
            better = "tie"
        else:
            better = "B" if (vb > va) == spec.higher_is_better else "A"
        rows.append(MetricRow(spec.key, spec.label, va, vb, diff, better))
    return rows


# ------------------------------------------------------------------------------------------- decisions


def bootstrap_mean_difference(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                              resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> BootstrapResult:
    """Seeded bootstrap of ``mean(b) - mean(a)``; see the module docstring. Needs 2 values on each side."""
    xa, xb = metrics.clean_returns(a), metrics.clean_returns(b)
    if xa.size < 2 or xb.size < 2:
        raise ValueError(f"the bootstrap needs at least 2 trades per system, got {xa.size} and {xb.size}")
    if resamples < 100:
        raise ValueError(f"use at least 100 bootstrap resamples, got {resamples}")
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    chunk = max(1, _MAX_DRAWS_PER_CHUNK // max(xa.size, xb.size))
    for start in range(0, resamples, chunk):
        n = min(chunk, resamples - start)
        mean_a = xa[rng.integers(0, xa.size, size=(n, xa.size))].mean(axis=1)
        mean_b = xb[rng.integers(0, xb.size, size=(n, xb.size))].mean(axis=1)
        diffs[start:start + n] = mean_b - mean_a
    b_better = float(np.mean(diffs > 0))
    a_better = float(np.mean(diffs < 0))
    p_value = min(1.0, 2.0 * min(float(np.mean(diffs >= 0)), float(np.mean(diffs <= 0))))
    low, high = np.percentile(diffs, [2.5, 97.5])
    return BootstrapResult(float(xb.mean() - xa.mean()), float(low), float(high), b_better, a_better, p_value,
                           resamples, seed)


def recommendation(winner: str | None, confidence: float, a_name: str) -> str:
    """What to do, from the winner and the confidence (see the module docstring)."""
    if winner is None:
        return f"No clear winner: keep {a_name} and keep testing"
    if confidence >= DEPLOY_CONFIDENCE:
        return f"Keep {a_name} in production" if winner == a_name else f"Deploy {winner} to production"
    if confidence >= LEAN_CONFIDENCE:
        return f"{winner} looks better: keep testing to confirm before switching" if winner != a_name else \
            f"{a_name} looks better: keep it and keep testing"
    return f"No significant difference: keep {a_name} and keep testing"


def compare_figures(a: SystemFigures, b: SystemFigures) -> ABResult:
    """A/B result of hand-given figures: a vote of the metrics (ValueError when none is given for both)."""
    rows = compare(a, b)
    if not rows:
        raise ValueError("no metric was given for both systems; give e.g. --a-pnl and --b-pnl")
    votes = {"A": sum(r.better == "A" for r in rows), "B": sum(r.better == "B" for r in rows)}
    winner = None if votes["A"] == votes["B"] else max(votes, key=lambda k: votes[k])
    confidence = 100.0 * (votes[winner] if winner else max(votes.values())) / len(rows)
    name = None if winner is None else (a.name if winner == "A" else b.name)
    return ABResult("figures", a, b, rows, name, confidence, recommendation(name, confidence, a.name))


def compare_trades(a_name: str, a_trades: pd.DataFrame, b_name: str, b_trades: pd.DataFrame, *,
                   calendar: str = "crypto", resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> ABResult:
    """A/B result of two trade histories: metrics, then the bootstrap decides (see the module docstring)."""
    a = figures_from_trades(a_name, a_trades, calendar)
    b = figures_from_trades(b_name, b_trades, calendar)
    boot = bootstrap_mean_difference(a_trades["pnl_pct"].to_numpy(), b_trades["pnl_pct"].to_numpy(), resamples, seed)
    if boot.observed_diff > 0:
        winner, confidence = b.name, 100.0 * boot.share_b_better
    elif boot.observed_diff < 0:
        winner, confidence = a.name, 100.0 * boot.share_a_better
    else:
        winner, confidence = None, 50.0
    return ABResult("trades", a, b, compare(a, b), winner, confidence, recommendation(winner, confidence, a.name),
                    bootstrap=boot)


# ------------------------------------------------------------------------------------------- rendering


def _format_value(key: str, value: float, mode: str) -> str:
    if key == "total_pnl":
        return f"-${abs(value):,.2f}" if value < 0 else f"${value:,.2f}"
    if key == "win_rate" or (key == "max_drawdown" and mode == "trades"):
        return f"{value * 100:.2f}%"
    return f"{value:,.2f}"


def _format_diff(row: MetricRow) -> str:
    mark = {"B": "✅", "A": "❌", "tie": "➖"}[row.better]
    return ("n/a" if row.diff_pct is None else f"{row.diff_pct:+.1f}%") + f" {mark}"


def render_result(result: ABResult) -> str:
    """The comparison as text: the table, the result, and the test behind the confidence."""
    a, b = result.a, result.b
    width = max(16, len(a.name) + 2, len(b.name) + 2)
    better_name = {"A": a.name, "B": b.name, "tie": "-"}
    out = [RULE, f"{a.name} vs {b.name} A/B TEST COMPARISON", RULE, "", "📊 PERFORMANCE METRICS", LINE,
           f"{'Metric':<26}{a.name:<{width}}{b.name:<{width}}{'Diff %':<14}Better", LINE]
    for row in result.rows:
        note = " (lower is better)" if row.key == "max_drawdown" else ""
        out.append(f"{row.label:<26}{_format_value(row.key, row.a, result.mode):<{width}}"
                   f"{_format_value(row.key, row.b, result.mode):<{width}}{_format_diff(row):<14}"
                   f"{better_name[row.better]}{note}")
    if result.mode == "trades":
        out.append(f"{'Trades':<26}{a.trades!s:<{width}}{b.trades!s:<{width}}")
        if a.mean_pnl_pct is not None and b.mean_pnl_pct is not None:  # always set from trades
            out.append(f"{'Mean pnl_pct':<26}{a.mean_pnl_pct * 100:<{width}.4f}{b.mean_pnl_pct * 100:<{width}.4f}"
                       "(percent per trade)")
    out += ["", "🏆 RESULT", LINE,
            f"  Winner: {result.winner} 🎉" if result.winner else "  Winner: none (a tie)",
            f"  Confidence: {result.confidence:.1f}%",
            f"  Recommendation: {result.recommendation}", "", *_method_lines(result)]
    return "\n".join(line.rstrip() for line in out) + "\n"


def _method_lines(result: ABResult) -> list[str]:
    boot = result.bootstrap
    if boot is None:
        return [f"  Confidence is the share of the {len(result.rows)} compared metric(s) favouring the winner "
                "(hand-given figures carry no sample for a statistical test)."]
    return [
        f"  Test: bootstrap of the mean per-trade pnl_pct difference ({result.b.name} - {result.a.name}), "
        f"{boot.resamples:,} resamples, seed {boot.seed}",
        f"  Difference: {boot.observed_diff * 100:+.4f}% per trade, 95% interval "
        f"[{boot.ci_low * 100:+.4f}%, {boot.ci_high * 100:+.4f}%], p = {boot.p_value:.4f}",
    ]


def history_record(result: ABResult, tested_at: str) -> dict[str, Any]:
    """The JSON Lines record of a comparison (NaN metrics become null)."""
    def clean(fig: SystemFigures) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(fig).items()}
    return {
        "tested_at": tested_at, "mode": result.mode, "a": clean(result.a), "b": clean(result.b),
        "winner": result.winner, "confidence": result.confidence, "recommendation": result.recommendation,
        "bootstrap": asdict(result.bootstrap) if result.bootstrap else None, "sources": dict(result.sources),
    }


def render_history(records: Sequence[Mapping[str, Any]]) -> str:
    """Past comparisons, oldest first, one line each."""
    out = [RULE, f"A/B TEST HISTORY ({len(records)} test{'s' if len(records) != 1 else ''})", RULE]
    if not records:
        return "\n".join(out + ["  No A/B tests recorded yet."]) + "\n"
    out += [f"{'Tested at':<22}{'Mode':<9}{'A':<18}{'B':<18}{'Winner':<18}{'Confidence':>10}", LINE]
    for rec in records:
        a = str((rec.get("a") or {}).get("name", "?"))
        b = str((rec.get("b") or {}).get("name", "?"))
        confidence = rec.get("confidence")
        conf = f"{confidence:.1f}%" if isinstance(confidence, (int, float)) else "?"
        out.append(f"{str(rec.get('tested_at', '?')):<22}{str(rec.get('mode', '?')):<9}{a[:17]:<18}{b[:17]:<18}"
                   f"{str(rec.get('winner') or 'none')[:17]:<18}{conf:>10}")
    return "\n".join(out) + "\n"
