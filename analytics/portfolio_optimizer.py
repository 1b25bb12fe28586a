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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analytics.metrics import annual_volatility
from analytics.returns import (
    AGGREGATION,
    DailyReturns,
    daily_strategy_returns,
    load_strategy_trades,
    periods_per_year,
)
from core.config import STRATEGIES, Config, load_config, replace_section
from core.contracts.pnl_history import HISTORY_NAME
from core.contracts.weights import OPTIMIZER_WEIGHTS_NAME, normalize, optimizer_weights_path, publish_payload
from core.errors import ConfigError, DataError, ExitCode, FatalError
from core.logging_setup import setup_logging

log = logging.getLogger(__name__)

PRODUCER = "portfolio_optimizer"
METHODS = ("inverse_vol", "erc")


class InsufficientHistoryError(DataError):
    """The history is too short to publish weights from it; the message says what is missing."""


def eligible_strategies(daily: DailyReturns, min_days: int, min_trades: int, min_strategies: int,
                        section: str) -> list[str]:
    """Strategies with enough trades; raises :class:`InsufficientHistoryError` when there is too little."""
    if daily.days < min_days:
        raise InsufficientHistoryError(
            f"{daily.days} day(s) of trades in the last {(daily.end - daily.window_start).days + 1} days, "
            f"{min_days} needed (`{section}.min_days`)")
    eligible = [s for s in STRATEGIES if daily.trades[s] >= min_trades]
    if len(eligible) < min_strategies:
        counts = ", ".join(f"{s}={daily.trades[s]}" for s in STRATEGIES)
        raise InsufficientHistoryError(
            f"{len(eligible)} strateg{'y has' if len(eligible) == 1 else 'ies have'} at least {min_trades} trades "
            f"(`{section}.min_trades`), {min_strategies} needed (`{section}.min_strategies`); trades: {counts}")
    return eligible


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


def compute_weights(cfg: Config, as_of: date | None = None) -> dict[str, Any]:
    """The document payload (``weights`` plus what they were derived from) from ``state/pnl_history.csv``.

    Raises InsufficientHistoryError when the history is too short (see the module docstring).
    """
    trades, skipped = load_strategy_trades(cfg)
    return payload_from_trades(cfg, trades, as_of, skipped)


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


def output_path(cfg: Config) -> Path:
    """Where this source publishes (the weights contract's path)."""
    return optimizer_weights_path(cfg)


def publish(cfg: Config, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` (from :func:`compute_weights`) as this source's weight file."""
    return publish_payload(output_path(cfg), PRODUCER, payload)


def run_once(cfg: Config, as_of: date | None = None) -> Path | None:
    """Compute and publish the weights; None (with a logged reason) when the history is too short."""
    try:
        payload = compute_weights(cfg, as_of)
    except InsufficientHistoryError as exc:
        log.warning("portfolio optimizer: not enough history, nothing written: %s", exc)
        return None
    path = publish(cfg, payload)
    log.info("portfolio optimizer (%s): wrote %s", payload["method"], path)
    return path


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


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
    parser.add_argument("--config", metavar="PATH", help="TOML configuration file")
    return parser


def run_weights_command(prog: str, section: str, changes: Mapping[str, Any], config: str | None,
                        as_of: date | None, compute: Callable[[Config, date | None], dict[str, Any]],
                        publish_fn: Callable[[Config, dict[str, Any]], Path],
                        describe: Callable[[dict[str, Any]], str]) -> int:
    """The body of both fallback sources' commands: config with the command-line changes, compute, publish,
    one line out; exit 0 written, 3 not enough history, 2 bad config or input, 1 cannot write."""
    try:
        cfg = load_config(config)
        given = {k: v for k, v in changes.items() if v is not None}
        cfg = replace_section(cfg, section, **given) if given else cfg
        setup_logging(cfg)
        payload = compute(cfg, as_of)
        path = publish_fn(cfg, payload)
    except InsufficientHistoryError as exc:
        print(f"{prog}: not enough history, nothing written: {exc}", file=sys.stderr)
        return ExitCode.NOT_READY
    except FatalError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except (OSError, ValueError) as exc:  # an unwritable runtime/ folder, or a value publishing refused
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return ExitCode.FAILURE
    print(f"wrote {path} {describe(payload)}")
    return ExitCode.OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_weights_command(
        "portfolio_optimizer", "portfolio_optimizer", {"method": args.method, "lookback_days": args.lookback_days},
        args.config, args.as_of, compute_weights, publish,
        lambda p: f"({p['method']}, {p['data_range']['days']} days): "
                  + ", ".join(f"{s}={w:.3f}" for s, w in p["weights"].items()))


if __name__ == "__main__":
    sys.exit(main())
