"""What the two fallback weight sources (:mod:`analytics.portfolio_optimizer`, :mod:`analytics.strategy_lab`)
share: the minimum-history check, the publish-once step a scheduler calls, and the body of their commands.

A source differs from the other only in how it turns recent trades into a payload and where it publishes;
:class:`WeightSource` holds those two and does the rest the same way for both.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from analytics.returns import DailyReturns, load_strategy_trades
from core.cli import with_changes
from core.config import STRATEGIES, Config, load_config
from core.contracts.weights import publish_payload
from core.errors import DataError, ExitCode, FatalError
from core.logging_setup import setup_logging

log = logging.getLogger(__name__)

PayloadFn = Callable[[Config, pd.DataFrame, "date | None", int], dict[str, Any]]
"""``payload_from_trades(cfg, trades, as_of, skipped_rows)`` of a source."""


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
            f"{len(eligible)} strateg{'y has' if len(eligible) == 1 else 'ies have'} at least {min_trades} "
            f"trades (`{section}.min_trades`), {min_strategies} needed (`{section}.min_strategies`); "
            f"trades: {counts}")
    return eligible


def parse_date(text: str) -> date:
    """An ``--as-of`` value (YYYY-MM-DD) for argparse."""
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


@dataclass(frozen=True)
class WeightSource:
    """One weight source: its name (the producer in the file, the command's name and its config section), its
    name in log lines, where it publishes and how it computes a payload from the closed trades."""

    producer: str
    label: str
    path: Callable[[Config], Path]
    payload: PayloadFn

    def output_path(self, cfg: Config) -> Path:
        """Where this source publishes (the weights contract's path)."""
        return self.path(cfg)

    def compute_weights(self, cfg: Config, as_of: date | None = None) -> dict[str, Any]:
        """The document payload from ``state/pnl_history.csv``; raises InsufficientHistoryError when the
        history is too short."""
        trades, skipped = load_strategy_trades(cfg)
        return self.payload(cfg, trades, as_of, skipped)

    def publish(self, cfg: Config, payload: Mapping[str, Any]) -> Path:
        """Write ``payload`` (from :meth:`compute_weights`) as this source's weight file."""
        return publish_payload(self.path(cfg), self.producer, payload)

    def run_once(self, cfg: Config, as_of: date | None = None) -> Path | None:
        """Compute and publish the weights; None (with a logged reason) when the history is too short."""
        try:
            payload = self.compute_weights(cfg, as_of)
        except InsufficientHistoryError as exc:
            log.warning("%s: not enough history, nothing written: %s", self.label, exc)
            return None
        path = self.publish(cfg, payload)
        log.info("%s: wrote %s", self.label, path)
        return path


def run_weights_command(source: WeightSource, changes: Mapping[str, Any], config: str | None,
                        as_of: date | None, describe: Callable[[dict[str, Any]], str]) -> int:
    """The body of both sources' commands: config with the command-line changes, compute, publish, one line
    out; exit 0 written, 3 not enough history, 2 bad config or input, 1 cannot write."""
    prog = section = source.producer
    try:
        cfg = with_changes(load_config(config), section, **changes)
        setup_logging(cfg)
        payload = source.compute_weights(cfg, as_of)
        path = source.publish(cfg, payload)
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
