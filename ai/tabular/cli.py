"""The Q-learning command (``python ai/qlearning.py``, ``python -m ai.tabular.cli``): one pass or the daemon.

    python ai/qlearning.py --once             # learn from the trades not learned yet, publish the policy, exit
    python ai/qlearning.py --loop             # daemon: the same on every change of state/pnl_history.csv
    python ai/qlearning.py --loop --polling   # the same on a network filesystem

Exit codes: 0 done, 1 a failure outside the input (the disk), 2 bad configuration or input (a bad history,
candle or Q-table file; the message names it and the fix).
"""

from __future__ import annotations

import argparse
import sys

from ai.tabular.daemon import DAEMON_NAME, loop
from ai.tabular.learner import run_pass, summary_line
from core.cli import add_config_argument, load_command_config, with_changes
from core.contracts.pnl_history import HISTORY_NAME
from core.contracts.qlearning_policy import POLICY_NAME
from core.contracts.qtables import QTABLE_DIR_NAME
from core.daemon import run_daemon_main
from core.errors import ExitCode, FatalError
from core.logging_setup import setup_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qlearning",
        description="Tabular Q-learning strategy (meta) and position-sizing agents: learn from the closed trades "
                    f"of state/{HISTORY_NAME} (each exactly once), keep the Q-tables in state/{QTABLE_DIR_NAME}/ "
                    f"and publish the greedy choices for the current state to runtime/{POLICY_NAME}.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--once", action="store_true", help="learn from the new trades, publish the policy, exit")
    mode.add_argument("--loop", action="store_true",
                      help="run as a daemon: learn on every change of the history and every recheck interval")
    parser.add_argument("--polling", action="store_true",
                        help="with --loop, poll the state/ folder instead of OS file events (network filesystems)")
    add_config_argument(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_command_config("qlearning", args.config,
                              lambda c: with_changes(c, "qlearning", polling=args.polling or None))
    if cfg is None:
        return ExitCode.BAD_INPUT
    if args.once:
        setup_logging(cfg)
        try:
            result = run_pass(cfg)
        except FatalError as exc:  # a bad history, candle or Q-table file: the message names it and the fix
            print(f"qlearning: error: {exc}", file=sys.stderr)
            return ExitCode.BAD_INPUT
        except OSError as exc:
            print(f"qlearning: error: {exc}", file=sys.stderr)
            return ExitCode.FAILURE
        print(summary_line(result))
        return ExitCode.OK
    return run_daemon_main(DAEMON_NAME, cfg, lambda ctx: loop(cfg, ctx))


if __name__ == "__main__":
    sys.exit(main())
