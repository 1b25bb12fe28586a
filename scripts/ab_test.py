"""Compare two trading systems (A, the one in place, and B, the challenger) and record the result.

    python scripts/ab_test.py --a-name "RL v1" --b-name "RL v2" \\
        --a-pnl 1000 --a-winrate 0.55 --a-sharpe 1.2 --a-drawdown 150 \\
        --b-pnl 1200 --b-winrate 0.58 --b-sharpe 1.5 --b-drawdown 120
    python scripts/ab_test.py --a-trades old/pnl_history.csv --b-trades state/pnl_history.csv
    python scripts/ab_test.py --history

Prints the metric table (A, B, B's difference in percent, which is better; a lower drawdown is better), the
winner, a confidence figure and a recommendation. From figures the confidence is the share of metrics that
favour the winner; from two trade histories it comes from a seeded bootstrap of the difference in mean
per-trade ``pnl_pct`` (see :mod:`analytics.ab_test`). Every comparison is appended to
the comparison history in ``state/`` (:data:`AB_HISTORY_NAME`, private to this command; bounded by
``logging.jsonl_max_lines``) unless ``--no-record`` is given.
Exit codes: 0 done, 2 bad input (arguments, config, an unreadable trade file).
"""

from __future__ import annotations

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from analytics.ab_test import (
    DEFAULT_RESAMPLES,
    ABResult,
    SystemFigures,
    compare_figures,
    compare_trades,
    history_record,
    render_history,
    render_result,
)
from core.atomic import utc_now_iso
from core.config import Config, load_config
from core.contracts.pnl_history import read_history
from core.errors import ExitCode, FatalError
from core.jsonl import append_jsonl, read_jsonl

FIGURES = (("pnl", "total_pnl", "total P&L in currency"), ("winrate", "win_rate", "win rate as a fraction, 0.55"),
           ("sharpe", "sharpe", "Sharpe ratio"), ("drawdown", "max_drawdown", "maximum drawdown as a positive size"))


AB_HISTORY_NAME = "ab_test_history.jsonl"
"""The recorded comparisons inside ``state/``. Private to this command: nothing else reads or writes it."""


class BadInput(ValueError):
    """A command-line value or file that cannot be used; the message says which and how to fix it."""


def history_path(cfg: Config) -> Path:
    """The comparison history in ``state/``: one recorded comparison a line, bounded."""
    return cfg.state_dir / AB_HISTORY_NAME


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ab_test.py",
        description="A/B comparison of two trading systems from hand-given figures or from two trade histories "
                    "(CSV in the state/pnl_history.csv format): metric table, winner, confidence, recommendation.",
        epilog="A lower drawdown is better. Exit codes: 0 done, 2 bad input.")
    for side in ("a", "b"):
        who = "system A (in place)" if side == "a" else "system B (challenger)"
        parser.add_argument(f"--{side}-name", default=f"System {side.upper()}", help=f"name of {who}")
        for flag, _, meaning in FIGURES:
            parser.add_argument(f"--{side}-{flag}", type=float, metavar="X", help=f"{who}: {meaning}")
        parser.add_argument(f"--{side}-trades", metavar="CSV", help=f"{who}: trade history file")
    parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES,
                        help=f"bootstrap resamples with trade histories (default: {DEFAULT_RESAMPLES})")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    parser.add_argument("--history", action="store_true", help="print the recorded comparisons and exit")
    parser.add_argument("--no-record", action="store_true", help="do not append this comparison to the history")
    parser.add_argument("--config", metavar="PATH", help="TOML configuration file")
    return parser


def figures_from_args(args: argparse.Namespace, side: str) -> SystemFigures:
    """One system's figures from ``--<side>-pnl`` etc., validated (BadInput naming the flag)."""
    values: dict[str, float | None] = {}
    for flag, key, _ in FIGURES:
        value = getattr(args, f"{side}_{flag}")
        if value is not None and not math.isfinite(value):
            raise BadInput(f"--{side}-{flag} {value}: give a finite number")
        if key == "win_rate" and value is not None and not 0.0 <= value <= 1.0:
            raise BadInput(f"--{side}-{flag} {value:g}: give the win rate as a fraction between 0 and 1 "
                           f"(0.55 for 55 %)")
        if key == "max_drawdown" and value is not None and value < 0:
            raise BadInput(f"--{side}-{flag} {value:g}: give the drawdown as a positive size "
                           f"(e.g. {abs(value):g})")
        values[key] = value
    return SystemFigures(name=getattr(args, f"{side}_name"), total_pnl=values["total_pnl"],
                         win_rate=values["win_rate"], sharpe=values["sharpe"], max_drawdown=values["max_drawdown"])


def read_trades(path_text: str, flag: str) -> pd.DataFrame:
    """The valid trades of a history file (BadInput when missing, empty or without a required column)."""
    path = Path(path_text)
    if not path.is_file():
        raise BadInput(f"{flag} {path}: file not found; give a trade history CSV")
    history = read_history(path)
    if history.skipped:
        print(f"ab_test: warning: {path}: skipped {history.skipped} malformed row(s), e.g. {history.problems[0]}",
              file=sys.stderr)
    if history.trades.empty:
        raise BadInput(f"{flag} {path}: no valid trades in the file")
    return history.trades


def run_comparison(args: argparse.Namespace, cfg: Config) -> ABResult:
    """The comparison the arguments ask for (BadInput on a mix-up of figures and trade files)."""
    figures_given = any(getattr(args, f"{s}_{f}") is not None for s in ("a", "b") for f, _, _ in FIGURES)
    trades_given = [args.a_trades is not None, args.b_trades is not None]
    if any(trades_given):
        if not all(trades_given):
            raise BadInput("give both --a-trades and --b-trades to compare two trade histories")
        if figures_given:
            raise BadInput("give either figures (--a-pnl ...) or trade histories (--a-trades/--b-trades), not both")
        if args.resamples < 100:
            raise BadInput(f"--resamples {args.resamples}: use at least 100")
        result = compare_trades(args.a_name, read_trades(args.a_trades, "--a-trades"), args.b_name,
                                read_trades(args.b_trades, "--b-trades"), calendar=cfg.market.calendar,
                                resamples=args.resamples, seed=args.seed)
        result.sources = {"a": str(args.a_trades), "b": str(args.b_trades)}
        return result
    if not figures_given:
        raise BadInput("nothing to compare; give figures (--a-pnl 1000 --b-pnl 1200 ...) or "
                       "--a-trades FILE --b-trades FILE (see --help)")
    return compare_figures(figures_from_args(args, "a"), figures_from_args(args, "b"))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")
    try:
        cfg = load_config(args.config)
        if args.history:
            sys.stdout.write(render_history(read_jsonl(history_path(cfg))))
            return ExitCode.OK
        result = run_comparison(args, cfg)
    except (BadInput, FatalError, ValueError) as exc:
        print(f"ab_test: error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    sys.stdout.write(render_result(result))
    if not args.no_record:
        append_jsonl(history_path(cfg), history_record(result, utc_now_iso()), max_lines=cfg.logging.jsonl_max_lines)
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
