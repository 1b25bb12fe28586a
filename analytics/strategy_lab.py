"""Strategy weights from recent risk-adjusted returns: the bridge's third source.

    python analytics/strategy_lab.py [--window-days N] [--temperature T] [--config PATH]

Writes its weight file (:func:`core.contracts.weights.lab_weights_path`: weights, scores, ranks) and exits 0, or exits 3 with a one-line
reason when the recent history is too short. A scheduler calls :func:`run_once` instead.

Window. It ends on ``--as-of``, by default the UTC day of the newest trade in the history (the history's own
clock: today for a live trader, the simulated day of a replay; see :func:`analytics.returns.history_day`).

Score. The annualized Sharpe ratio (:func:`analytics.metrics.sharpe_ratio`) of each strategy's daily returns
over the last ``window_days`` days, built exactly as the portfolio optimizer builds them (sum of ``pnl_pct`` of
the trades closed that day, 0 on days without trades). A strategy with fewer than ``min_trades`` trades in the
window, or with an undefined Sharpe (all days equal), is unscored.

Weights. A softmax over the scores with a temperature, on top of a floor every strategy keeps::

    w_i = floor + (1 - 8 * floor) * exp(score_i / T) / sum_j exp(score_j / T)     (sum over scored j)

Unscored strategies get the floor alone: recent evidence is what this source is about, and without it a
strategy neither leads nor goes to zero. Ranks are 1 for the best score, ties broken by the strategies' order;
unscored strategies have no rank. Nothing is written unless ``min_strategies`` strategies are scored and the
history spans ``min_days`` days of the window.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import pandas as pd

from analytics.metrics import sharpe_ratio
from analytics.returns import AGGREGATION, daily_strategy_returns, periods_per_year
from analytics.weight_source import (
    InsufficientHistoryError,
    WeightSource,
    eligible_strategies,
    parse_date,
    run_weights_command,
)
from core.cli import add_config_argument
from core.config import STRATEGIES, Config
from core.contracts.pnl_history import HISTORY_NAME
from core.contracts.weights import LAB_WEIGHTS_NAME, lab_weights_path
from core.errors import ConfigError

log = logging.getLogger(__name__)

PRODUCER = "strategy_lab"
METHOD = "softmax_sharpe"


def score_strategies(returns: Mapping[str, Sequence[float]], trades: Mapping[str, int], min_trades: int,
                     periods_per_year: float) -> dict[str, float | None]:
    """Annualized Sharpe of each strategy's daily returns; None when unscored (too few trades, undefined)."""
    scores: dict[str, float | None] = {}
    for name in STRATEGIES:
        value = sharpe_ratio(returns[name], periods_per_year) if trades.get(name, 0) >= min_trades else math.nan
        scores[name] = value if math.isfinite(value) else None
    return scores


def rank_strategies(scores: Mapping[str, float | None]) -> dict[str, int | None]:
    """Rank 1 for the highest score; ties keep the strategies' order; unscored strategies get None."""
    scored = sorted((s for s in STRATEGIES if scores.get(s) is not None),
                    key=lambda s: (-float(scores[s]), STRATEGIES.index(s)))  # type: ignore[arg-type]
    ranks: dict[str, int | None] = {s: None for s in STRATEGIES}
    ranks.update({s: i for i, s in enumerate(scored, start=1)})
    return ranks


def softmax_floor_weights(scores: Mapping[str, float | None], temperature: float,
                          floor: float) -> dict[str, float]:
    """The floor for every strategy plus the rest shared by a softmax of the scored ones' ``score / T``."""
    scored = {s: float(v) for s, v in scores.items() if v is not None}
    if not scored:
        raise ValueError("no scored strategy to weigh")
    top = max(scored.values())
    # Subtracting the top score keeps exp() from overflowing; the softmax is unchanged by the shift.
    exps = {s: math.exp((v - top) / temperature) for s, v in scored.items()}
    total = math.fsum(exps.values())
    rest = 1.0 - floor * len(STRATEGIES)
    return {s: floor + rest * exps.get(s, 0.0) / total for s in STRATEGIES}


def check_lab_config(cfg: Config) -> None:
    """Reject settings that cannot work, naming the key."""
    lc = cfg.strategy_lab
    if lc.window_days < 2 or lc.min_days < 2:
        raise ConfigError("`strategy_lab.window_days` and `strategy_lab.min_days` must be at least 2")
    if not (lc.temperature > 0 and math.isfinite(lc.temperature)):
        raise ConfigError(f"`strategy_lab.temperature` must be a positive number, got {lc.temperature!r}")
    if not 0 <= lc.floor < 1 / len(STRATEGIES):
        raise ConfigError(f"`strategy_lab.floor` must be in [0, {1 / len(STRATEGIES)}), got {lc.floor!r}")
    if lc.min_trades < 2 or not 1 <= lc.min_strategies <= len(STRATEGIES):
        raise ConfigError("`strategy_lab.min_trades` must be at least 2 and `strategy_lab.min_strategies` "
                          f"between 1 and {len(STRATEGIES)}")


def payload_from_trades(cfg: Config, trades: pd.DataFrame, as_of: date | None = None,
                        skipped_rows: int = 0) -> dict[str, Any]:
    """:func:`compute_weights` on trades already in memory (a replay recomputing past weights calls this)."""
    check_lab_config(cfg)
    lc = cfg.strategy_lab
    daily = daily_strategy_returns(trades, lc.window_days, as_of, cfg.market.calendar)
    eligible_strategies(daily, lc.min_days, lc.min_trades, lc.min_strategies, "strategy_lab")
    ppy = periods_per_year(cfg)
    scores = score_strategies({s: daily.returns[s].to_numpy() for s in STRATEGIES}, daily.trades,
                              lc.min_trades, ppy)
    scored = [s for s in STRATEGIES if scores[s] is not None]
    if len(scored) < lc.min_strategies:
        raise InsufficientHistoryError(
            f"{len(scored)} strateg{'y' if len(scored) == 1 else 'ies'} could be scored in the last "
            f"{lc.window_days} days, {lc.min_strategies} needed (`strategy_lab.min_strategies`)")
    return {
        "weights": softmax_floor_weights(scores, lc.temperature, lc.floor),
        "method": METHOD,
        "window_days": lc.window_days,
        "temperature": lc.temperature,
        "floor": lc.floor,
        "scores": scores,
        "ranks": rank_strategies(scores),
        "unscored": [s for s in STRATEGIES if scores[s] is None],
        "mean_daily_return": {s: float(daily.returns[s].mean()) for s in STRATEGIES},
        "trades": daily.trades,
        "aggregation": AGGREGATION,
        "data_range": daily.data_range(),
        "periods_per_year": ppy,
        "history_rows_skipped": skipped_rows,
    }


SOURCE = WeightSource(PRODUCER, "strategy lab", lab_weights_path, payload_from_trades)
"""This source; its methods are also the module's functions below, the ones callers use."""
compute_weights, run_once, output_path = SOURCE.compute_weights, SOURCE.run_once, SOURCE.output_path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strategy_lab",
        description=f"Rank strategies by the Sharpe ratio of their recent daily returns (state/{HISTORY_NAME}) "
                    f"and write softmax weights with a floor to runtime/{LAB_WEIGHTS_NAME}. "
                    "Exit codes: 0 written, 2 bad config or input, 3 not enough history.")
    parser.add_argument("--window-days", type=int, metavar="N", help="days of recent history scored (default: config)")
    parser.add_argument("--temperature", type=float, metavar="T", help="softmax temperature (default: config)")
    parser.add_argument("--as-of", type=parse_date, metavar="YYYY-MM-DD",
                        help="last day of the window (default: the day of the newest trade in the history, UTC)")
    add_config_argument(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_weights_command(
        SOURCE, {"window_days": args.window_days, "temperature": args.temperature}, args.config, args.as_of,
        _describe)


def _describe(payload: dict[str, Any]) -> str:
    ranked = sorted((r, s) for s, r in payload["ranks"].items() if r is not None)
    return f"({payload['data_range']['days']} days): " + ", ".join(
        f"{r}. {s} ({payload['weights'][s]:.3f})" for r, s in ranked)


if __name__ == "__main__":
    sys.exit(main())
