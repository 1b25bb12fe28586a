"""The ``rl_trainer`` command: train the strategy-weight agent once, or run the retraining daemon.

    python ai/rl_trainer.py --train --episodes 100   # train once (progress bar), promote if it passes the gate
    python ai/rl_trainer.py --loop                   # daemon `rl_trainer`: weekly, or after 50 new trades
    python ai/rl_trainer.py --evaluate --folds 4     # walk-forward evaluation against the baselines (a report)

One training (:mod:`ai.allocation.training`) fits PPO on the history's training slice, validates the candidate
on the held-out periods (:mod:`ai.allocation.validation`), promotes it only when valid and, with ``strategy_agent.gate_confidence``, better than equal weights (and the
model in force) out of sample, and appends a record to
the training log (:mod:`core.contracts.training_log`). The daemon is :mod:`ai.allocation.trainer_daemon`;
the walk-forward evaluation :mod:`ai.allocation.evaluation` (it installs nothing).

Exit codes (:class:`core.errors.ExitCode`): 0 trained and promoted (or the daemon stopped cleanly), 2 bad
configuration or input, 3 not enough trades or history to train (or for the folds of ``--evaluate``), 4 trained
but the candidate was not promoted (the reason is printed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import Any

from ai.allocation.agent import latest_path
from ai.allocation.evaluation import AGENT, HINDSIGHT, REALIZABLE, equity_plot, evaluate
from ai.allocation.trainer_daemon import CRON_KEY, DAEMON_NAME, JOB_NAME, TrainerDaemon
from ai.allocation.training import train_once
from ai.allocation.training_data import NotEnoughDataError
from analytics.walk_forward import NotEnoughForFoldsError
from core.atomic import atomic_write_bytes
from core.cli import add_config_argument, load_command_config
from core.config import Config, replace_section
from core.contracts.allocation_model import LATEST_NAME, MODEL_DIR_NAME
from core.contracts.training_log import TRAINING_LOG_NAME
from core.daemon import run_daemon_main
from core.errors import ConfigError, ExitCode, FatalError
from core.jobs import job_lock, lock_path
from core.logging_setup import setup_logging
from core.schedule import cron_trigger


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rl_trainer",
        description="Train the strategy-weight agent from state/pnl_history.csv and the candles. A candidate is "
                    f"promoted to state/{MODEL_DIR_NAME}/{LATEST_NAME} only when valid and it beats equal weights "
                    "(and the model in force) on the held-out periods with strategy_agent.gate_confidence; "
                    "every training is logged "
                    f"in state/{TRAINING_LOG_NAME}. Exit codes: 0 promoted (or daemon stopped), 2 bad config or "
                    "input, 3 not enough trades or history, 4 trained but not promoted.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--train", action="store_true", help="train once, promote if it passes the gate, exit")
    mode.add_argument("--loop", action="store_true",
                      help="daemon: retrain on the cron schedule or after enough new trades; SIGTERM stops it")
    mode.add_argument("--evaluate", action="store_true",
                      help="walk-forward: train on each fold's past, test on its next window, against equal "
                           "weights, the portfolio optimizer, the strategy lab and the best single strategy in "
                           "hindsight, with bootstrap intervals; installs nothing")
    parser.add_argument("--folds", type=int, metavar="K",
                        help="walk-forward test windows of --evaluate (default: strategy_agent.evaluation_folds)")
    parser.add_argument("--json", action="store_true", help="with --evaluate: print the JSON document")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="with --evaluate: also draw the agent's equity over the test windows against every "
                             "baseline into this PNG file")
    parser.add_argument("--episodes", type=int, metavar="N",
                        help="training episodes (default: strategy_agent.episodes)")
    parser.add_argument("--seed", type=int, help="seed of the training (default: strategy_agent.ppo.seed)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--tensorboard", action="store_true",
                        help="also write the training curve as TensorBoard event files in state/rl_model/tensorboard/ "
                             "(as strategy_agent.ppo.tensorboard = true; needs `pip install -e .[tensorboard]`)")
    add_config_argument(parser)
    return parser


def trainer_config(cfg: Config, args: argparse.Namespace) -> Config:
    """``cfg`` with the command line's ``--episodes``, ``--seed`` and ``--tensorboard``; a bad cron is refused
    here."""
    if args.episodes is not None:
        if args.episodes < 1:
            raise ConfigError(f"--episodes {args.episodes}: must be >= 1")
        cfg = replace_section(cfg, "strategy_agent", episodes=args.episodes)
    if args.seed is not None:
        acfg = cfg.strategy_agent
        cfg = replace_section(cfg, "strategy_agent", ppo=dataclasses.replace(acfg.ppo, seed=args.seed))
    if args.tensorboard:
        cfg = replace_section(cfg, "strategy_agent", ppo=dataclasses.replace(cfg.strategy_agent.ppo, tensorboard=True))
    cron_trigger(cfg.strategy_agent.retrain_cron, CRON_KEY)  # a bad expression stops every mode, naming its key
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_command_config("rl_trainer", args.config, lambda c: trainer_config(c, args))
    if cfg is None:
        return ExitCode.BAD_INPUT
    if args.train:
        return run_train_command(cfg, progress=not args.quiet)
    if args.evaluate:
        return run_evaluate_command(cfg, args.folds or cfg.strategy_agent.evaluation_folds,
                                    progress=not (args.quiet or args.json), as_json=args.json, plot=args.plot)
    return run_daemon_main(DAEMON_NAME, cfg, lambda ctx: TrainerDaemon(cfg, ctx).run())


def run_train_command(cfg: Config, progress: bool) -> int:
    """``--train``: one training with a progress bar; prints the outcome."""
    setup_logging(cfg)
    with job_lock(cfg, JOB_NAME) as held:
        if not held:
            print(f"rl_trainer: not training: another training holds {lock_path(cfg, JOB_NAME)} (the trainer "
                  "daemon or a crontab `job trainer` run); try again when it ends", file=sys.stderr)
            return ExitCode.NOT_READY
        return _train_and_report(cfg, progress)


def _train_and_report(cfg: Config, progress: bool) -> int:
    try:
        record = train_once(cfg, progress=progress)
    except NotEnoughDataError as exc:
        print(f"rl_trainer: not training: {exc}", file=sys.stderr)
        return ExitCode.NOT_READY
    except FatalError as exc:
        print(f"rl_trainer: error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except OSError as exc:
        print(f"rl_trainer: error: cannot write under {cfg.state_dir}: {exc}", file=sys.stderr)
        return ExitCode.FAILURE
    if not record["promoted"]:
        print(f"rl_trainer: model version {record['model_version']} not promoted: {record['reason']}",
              file=sys.stderr)
        return ExitCode.NOT_PROMOTED
    model = record.get("holdout", {}).get("model", {})
    print(f"model version {record['model_version']} promoted to {latest_path(cfg)} "
          f"({record['episodes']} episodes, {record['total_steps']} steps, {record['duration_s']:.1f}s; "
          f"held-out mean reward {model.get('mean_reward')})")
    return ExitCode.OK


def run_evaluate_command(cfg: Config, folds: int, progress: bool, as_json: bool, plot: str | None = None) -> int:
    """``--evaluate``: the walk-forward report as a table or JSON (and, with ``plot``, its equity curves)."""
    setup_logging(cfg)
    if folds < 1:
        print(f"rl_trainer: error: --folds {folds}: must be >= 1", file=sys.stderr)
        return ExitCode.BAD_INPUT
    try:
        doc = evaluate(cfg, folds, progress=progress)
    except (NotEnoughDataError, NotEnoughForFoldsError) as exc:
        print(f"rl_trainer: not enough data to evaluate: {exc}", file=sys.stderr)
        return ExitCode.NOT_READY
    except FatalError as exc:
        print(f"rl_trainer: error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    if plot:
        try:
            atomic_write_bytes(plot, equity_plot(doc))
        except OSError as exc:
            print(f"rl_trainer: error: cannot write the plot {plot}: {exc}", file=sys.stderr)
            return ExitCode.FAILURE
    if as_json:
        print(json.dumps(doc, indent=2, allow_nan=False))
    else:
        print_evaluation(doc)
    return ExitCode.OK


def print_evaluation(doc: dict[str, Any]) -> None:
    """The per-fold and pooled table of ``--evaluate``."""
    def cell(m: dict[str, Any]) -> str:
        sharpe, ret = m["sharpe_ratio"], m["total_return"]
        return ("n/a" if sharpe is None else f"{sharpe:.2f}") + " (" + ("n/a" if ret is None else f"{ret:+.2%}") + ")"

    names = (AGENT, *REALIZABLE, HINDSIGHT)
    print(f"{len(doc['folds'])} expanding folds over {doc['data_range']['periods']} periods; Sharpe ratio (return); "
          f"interval: {doc['confidence']:.0%} bootstrap of the agent's {doc['metric']} minus the best baseline's")
    width = max(22, *(len(n) + 2 for n in names))
    print(f"{'fold':<7}{'test':<24}" + "".join(f"{n:>{width}}" for n in names) + f"{'vs best':>26}")
    rows = [(str(f["fold"]), f"{f['test_start'][:10]}..{f['test_end'][:10]}", f) for f in doc["folds"]]
    rows.append(("pooled", "all test windows", doc["pooled"]))
    for label, window, row in rows:
        ci = row["intervals"][row["best_baseline"]]
        lower, upper = ci["lower"], ci["upper"]
        interval = ("n/a" if lower is None else f"[{lower:.2f}, {upper:.2f}]") + (
            " beats" if row["beats_best_baseline"] else " not above")
        print(f"{label:<7}{window:<24}" + "".join(f"{cell(row['metrics'][n]):>{width}}" for n in names)
              + f"{interval:>26}")
    pooled = doc["pooled"]
    print(f"pooled: best realizable baseline {pooled['best_baseline']}; the agent "
          + ("beats" if pooled["beats_best_baseline"] else "does not beat")
          + f" it and {'beats' if pooled['beats_equal_weights'] else 'does not beat'} equal weights with "
          f"{doc['confidence']:.0%} confidence")


if __name__ == "__main__":
    sys.exit(main())
