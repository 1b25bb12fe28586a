"""Risk-parity strategy weights from the closed-trade history: the bridge's second source.

    python analytics/portfolio_optimizer.py [--method inverse_vol|erc] [--lookback-days N] [--config PATH]

Writes its weight file (:func:`core.contracts.weights.optimizer_weights_path`) and exits 0, or exits 3 with a one-line reason when the
history is too short. A scheduler calls :func:`run_once` instead.

Window and daily returns: those of :mod:`analytics.returns` (the sum of ``pnl_pct`` of a strategy's trades
closed that UTC day, 0 on days without trades), over the ``lookback_days`` days ending ``--as-of``, by default
the day of the newest trade in the history. Rows of books other than the 8 strategies (``rl_v3_ppo``) are
ignored.

Methods. ``inverse_vol``: weight proportional to 1 / daily volatility (sample standard deviation).
``erc``: equal risk contribution, ``w_i * (C w)_i`` the same for every strategy, solved from the covariance
matrix ``C`` by cyclical coordinate descent on ``1/2 w'Cw - sum(ln w_i) / n`` (Griveau-Billion, Richard and
Roncalli, 2013), which converges for any covariance matrix with a positive diagonal.

Minimum history. Nothing is written unless the series span at least ``min_days`` days and at least
``min_strategies`` strategies closed ``min_trades`` trades in them. A strategy with fewer trades gets the mean
weight of the others (1/k of the mass before renormalizing, k = strategies with enough trades): its volatility
estimate is not trusted, and neither starving nor favouring it is justified by the data.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from analytics.metrics import annual_volatility
from analytics.returns import (
    AGGREGATION,
    daily_strategy_returns,
    periods_per_year,
)
from analytics.weight_source import (
    WeightSource,
    eligible_strategies,
    parse_date,
    run_weights_command,
)
from core.cli import add_config_argument
from core.config import STRATEGIES, Config
from core.contracts.pnl_history import HISTORY_NAME
from core.contracts.weights import OPTIMIZER_WEIGHTS_NAME, normalize, optimizer_weights_path
from core.errors import ConfigError

log = logging.getLogger(__name__)

PRODUCER = "portfolio_optimizer"
METHODS = ("inverse_vol", "erc")


def inverse_vol_weights(volatility: Mapping[str, float]) -> dict[str, float]:
    """Weights proportional to ``1 / volatility`` (every volatility must be positive)."""
    return normalize({s: 1.0 / v for s, v in volatility.items()})


def risk_contributions(weights: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Each asset's share of the portfolio variance, ``w_i (C w)_i / w'Cw`` (sums to 1)."""
    marginal = cov @ weights
    return weights * marginal / float(weights @ marginal)


@dataclass(frozen=True)
class ErcSolution:
    weights: np.ndarray
    iterations: int
    converged: bool
    max_deviation: float
    """Largest relative gap between a risk contribution and their mean."""


def erc_weights(cov: np.ndarray, max_iter: int = 10_000, tol: float = 1e-10) -> ErcSolution:
    """Equal-risk-contribution weights of covariance ``cov`` (positive diagonal) by cyclical coordinate descent.

    Each step solves ``C_ii x_i^2 + c_i x_i - 1/n = 0`` for ``x_i > 0`` with the others fixed (``c_i`` the
    off-diagonal part of ``(C x)_i``); at the fixed point ``x_i (C x)_i = 1/n`` for all i.
    """
    cov = np.asarray(cov, dtype=float)
    n = cov.shape[0]
    diag = np.diag(cov)
    if n == 0 or np.any(diag <= 0) or not np.all(np.isfinite(cov)):
        raise ValueError("covariance matrix must be finite with a positive diagonal")
    budget = 1.0 / n
    x = 1.0 / np.sqrt(diag)
    x /= x.sum()
    deviation = math.inf
    for iteration in range(1, max_iter + 1):
        for i in range(n):
            c = float(cov[i] @ x - diag[i] * x[i])
            x[i] = (-c + math.sqrt(c * c + 4.0 * diag[i] * budget)) / (2.0 * diag[i])
        rc = risk_contributions(x, cov)
        deviation = float(np.max(np.abs(rc * n - 1.0)))
        if deviation <= tol:
            return ErcSolution(x / x.sum(), iteration, True, deviation)
    return ErcSolution(x / x.sum(), max_iter, False, deviation)


def check_optimizer_config(cfg: Config) -> None:
    """Reject settings that cannot work, naming the key."""
    oc = cfg.portfolio_optimizer
    if oc.method not in METHODS:
        raise ConfigError(f"`portfolio_optimizer.method` must be one of {', '.join(METHODS)}, got {oc.method!r}")
    for key in ("lookback_days", "min_days"):
        if getattr(oc, key) < 2:
            raise ConfigError(f"`portfolio_optimizer.{key}` must be at least 2 (a volatility needs two days)")
    if not 1 <= oc.min_strategies <= len(STRATEGIES):
        raise ConfigError(f"`portfolio_optimizer.min_strategies` must be between 1 and {len(STRATEGIES)}")
    if oc.min_trades < 1 or oc.min_volatility <= 0 or oc.erc_max_iter < 1 or oc.erc_tolerance <= 0:
        raise ConfigError("`portfolio_optimizer.min_trades`, `min_volatility`, `erc_max_iter` and "
                          "`erc_tolerance` must be positive")


def payload_from_trades(cfg: Config, trades: pd.DataFrame, as_of: date | None = None,
                        skipped_rows: int = 0) -> dict[str, Any]:
    """:func:`compute_weights` on trades already in memory (a replay recomputing past weights calls this)."""
    check_optimizer_config(cfg)
    oc = cfg.portfolio_optimizer
    daily = daily_strategy_returns(trades, oc.lookback_days, as_of, cfg.market.calendar)
    eligible = eligible_strategies(daily, oc.min_days, oc.min_trades, oc.min_strategies, "portfolio_optimizer")
    vol = daily.returns.std(ddof=1)
    floored = {s: max(float(vol[s]), oc.min_volatility) for s in eligible}
    cov = daily.returns[eligible].cov(ddof=1).to_numpy(copy=True)
    np.fill_diagonal(cov, [floored[s] ** 2 for s in eligible])  # the same floor as inverse_vol
    solver: dict[str, Any] = {}
    if oc.method == "erc":
        solution = erc_weights(cov, oc.erc_max_iter, oc.erc_tolerance)
        if not solution.converged:
            log.warning("ERC solver stopped after %d iterations, risk contributions within %.2g of equal",
                        solution.iterations, solution.max_deviation)
        core_w = dict(zip(eligible, solution.weights.tolist(), strict=True))
        solver = {"iterations": solution.iterations, "converged": solution.converged,
                  "max_deviation": solution.max_deviation}
    else:
        core_w = inverse_vol_weights(floored)
    weights = _fill_ineligible(core_w)
    rc = risk_contributions(np.array([core_w[s] for s in eligible]), cov)
    ppy = periods_per_year(cfg)
    return {
        "weights": weights,
        "method": oc.method,
        "lookback_days": oc.lookback_days,
        "aggregation": AGGREGATION,
        "data_range": daily.data_range(),
        "volatility_daily": {s: float(vol[s]) for s in STRATEGIES},
        "volatility_annualized": {s: annual_volatility(daily.returns[s], ppy) for s in STRATEGIES},
        "periods_per_year": ppy,
        "trades": daily.trades,
        "eligible": eligible,
        "insufficient_history": [s for s in STRATEGIES if s not in eligible],
        "risk_contributions": dict(zip(eligible, rc.tolist(), strict=True)),
        "solver": solver,
        "history_rows_skipped": skipped_rows,
    }


def _fill_ineligible(core_w: Mapping[str, float]) -> dict[str, float]:
    mean = 1.0 / len(core_w)
    return normalize({s: core_w.get(s, mean) for s in STRATEGIES})


SOURCE = WeightSource(PRODUCER, "portfolio optimizer", optimizer_weights_path, payload_from_trades)
"""This source; its methods are also the module's functions below, the ones callers use."""
compute_weights, run_once, output_path = SOURCE.compute_weights, SOURCE.run_once, SOURCE.output_path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portfolio_optimizer",
        description=f"Risk-parity strategy weights from state/{HISTORY_NAME}, written to "
                    f"runtime/{OPTIMIZER_WEIGHTS_NAME}. Exit codes: 0 written, 2 bad config or input, "
                    "3 not enough history.")
    parser.add_argument("--method", choices=METHODS, help="inverse_vol or erc (default: from the config)")
    parser.add_argument("--lookback-days", type=int, metavar="N", help="days of history used (default: config)")
    parser.add_argument("--as-of", type=parse_date, metavar="YYYY-MM-DD",
                        help="last day of the lookback window (default: the day of the newest trade in "
                             "the history, UTC)")
    add_config_argument(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_weights_command(
        SOURCE, {"method": args.method, "lookback_days": args.lookback_days}, args.config, args.as_of,
        lambda p: f"({p['method']}, {p['data_range']['days']} days): "
                  + ", ".join(f"{s}={w:.3f}" for s, w in p["weights"].items()))


if __name__ == "__main__":
    sys.exit(main())
