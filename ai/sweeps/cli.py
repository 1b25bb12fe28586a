"""``python ai/experiments.py``: sweeps of an agent over symbols, seeds and settings, and promotion of a trial.

    python ai/experiments.py sweep --agent trading --symbols BTC/USDT ETH/USDT --seeds 0 1 2 \\
        --grid ppo.learning_rate=1e-4,3e-4 --set train_episodes=30
    python ai/experiments.py promote trading-1a2b3c4d BTC-USDT-seed1-g0

Exit codes: 0 done, 1 some trials failed (recorded in the leaderboard; rerun the same command to retry them),
2 bad input (a key, a value, Ray missing for ``--backend ray``), 4 the trial did not pass its promotion gate.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from ai.ppo.metrics_log import summary_writer_class
from ai.sweeps.backends import BACKENDS, RAY_INSTALL, ray_available
from ai.sweeps.promote import PromotionRefused, print_promotion, promote
from ai.sweeps.spec import AGENT_SECTIONS, SweepSpec, parse_fixed, parse_grid
from ai.sweeps.sweep import SweepRun, run_sweep
from core.cli import add_config_argument, load_command_config
from core.config import Config, config_path
from core.contracts.experiments import LEADERBOARD_MD
from core.errors import ConfigError, ExitCode, RetryableError, RLSystemError
from core.logging_setup import setup_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python ai/experiments.py",
        description="Train an agent over many symbols, seeds and settings (in parallel on Ray, or one after "
                    "the other), rank the trials by out-of-sample Sharpe ratio, and promote a chosen trial.",
        epilog="Exit codes: 0 done, 1 some trials failed, 2 bad input, 4 promotion refused by the gate.")
    add_config_argument(parser, "TOML configuration file (default: $RL_SYSTEM_CONFIG or rl_system.toml)",
                        metavar="CONFIG")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sweep = sub.add_parser("sweep", help="run (or resume) a sweep into state/experiments/<id>/")
    sweep.add_argument("--agent", choices=sorted(AGENT_SECTIONS), default="trading", help="which agent to train")
    sweep.add_argument("--symbols", nargs="+", metavar="SYMBOL",
                       help="symbols (default: market.symbols); a path ending in .csv trains on that file's candles")
    sweep.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="N", help="training seeds (default: 0)")
    sweep.add_argument("--grid", nargs="+", action="extend", default=[], metavar="KEY=V1,V2",
                       help="settings to try, keys of the agent's section, e.g. ppo.learning_rate=1e-4,3e-4 "
                            "reward_drawdown=0,0.5 (every combination is a setting)")
    sweep.add_argument("--set", dest="fixed", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                       help="a setting every trial shares, e.g. train_episodes=30")
    sweep.add_argument("--samples", type=int, metavar="N", help="try N settings drawn at random from the grid")
    sweep.add_argument("--backend", choices=BACKENDS,
                       help="ray (parallel; the default when Ray is installed) or sequential")
    sweep.add_argument("--address", metavar="ADDR", help="join this Ray cluster (ray://HOST:10001, or HOST:6379 "
                       "from `ray start --head`) instead of starting a local Ray")
    sweep.add_argument("--cpus", type=int, metavar="N", help="trials at once on the local Ray (default: every core)")
    sweep.add_argument("--id", dest="sweep_id", metavar="NAME",
                       help="sweep id (default: derived from the agent, symbols, seeds, grid and configuration "
                            "file, so rerunning the same command resumes it)")
    sweep.add_argument("--tensorboard", action="store_true",
                       help="also write each trial's training curve as TensorBoard event files in its folder "
                            "(as ppo.tensorboard = true; needs `pip install -e .[tensorboard]`)")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    prom = sub.add_parser("promote", help="install a trial's model and write its settings as a TOML overlay, "
                          "if it passes the agent's promotion gate")
    prom.add_argument("sweep_id", metavar="ID", help="the sweep's id (its folder under state/experiments/)")
    prom.add_argument("trial", metavar="TRIAL", help="the trial's name (a row of leaderboard.csv)")
    prom.add_argument("--overlay", metavar="PATH", help="write the settings here (default: <trial>/promoted.toml)")
    return parser


def base_tables(args: argparse.Namespace) -> dict[str, Any]:
    """The configuration file's tables as plain data (trials rebuild their configuration from them)."""
    path = config_path(args.config)
    if path is None:
        return {}
    tables: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    return tables


def choose_backend(requested: str | None) -> str:
    """``--backend``, else Ray when installed, else sequential (with a note); Ray asked for but missing is an error."""
    if requested == "ray" and not ray_available():
        raise ConfigError(f"--backend ray needs Ray, which is not installed; install it with `{RAY_INSTALL}` "
                          "or use --backend sequential")
    if requested:
        return requested
    if ray_available():
        return "ray"
    print(f"note: Ray is not installed, running the trials one after the other (`{RAY_INSTALL}` runs them in "
          "parallel)", file=sys.stderr)
    return "sequential"


def cmd_sweep(cfg: Config, args: argparse.Namespace) -> int:
    if args.samples is not None and args.samples < 1:
        raise ConfigError(f"--samples {args.samples}: must be >= 1")
    if args.cpus is not None and args.cpus < 1:
        raise ConfigError(f"--cpus {args.cpus}: must be >= 1")
    symbols = [str(Path(s).expanduser().resolve()) if s.lower().endswith(".csv") else s
               for s in (args.symbols or list(cfg.market.symbols))]
    spec = SweepSpec(args.agent, symbols, list(dict.fromkeys(args.seeds)), parse_grid(args.grid, args.agent),
                     args.samples, parse_fixed(args.fixed, args.agent))
    backend = choose_backend(args.backend)
    section = getattr(cfg, AGENT_SECTIONS[args.agent])
    base = base_tables(args)
    run = SweepRun(args.sweep_id or spec.default_id(base), backend, args.cpus, args.address,
                   args.tensorboard or section.ppo.tensorboard, args.quiet, base)
    if run.tensorboard:
        summary_writer_class()  # missing TensorBoard stops the sweep here, not every trial
    started = time.perf_counter()
    outcome = run_sweep(cfg, spec, run)
    wall = time.perf_counter() - started
    print((outcome.folder / LEADERBOARD_MD).read_text(encoding="utf-8"))
    print(f"sweep {run.sweep_id}: {outcome.ran} trial(s) run on {backend}, {outcome.skipped} already finished, "
          f"{len(outcome.failed)} failed; {wall:.1f}s; results in {outcome.folder}")
    return ExitCode.FAILURE if outcome.failed else ExitCode.OK


def cmd_promote(cfg: Config, args: argparse.Namespace) -> int:
    try:
        result = promote(cfg, args.sweep_id, args.trial, base_tables(args), Path(args.overlay) if args.overlay else None)
    except PromotionRefused as exc:
        print(f"promote: refused, nothing changed: {exc}", file=sys.stderr)
        return ExitCode.NOT_PROMOTED
    print_promotion(result)
    return ExitCode.OK


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    cfg = load_command_config(None, args.config)
    if cfg is None:
        return ExitCode.BAD_INPUT
    try:
        setup_logging(cfg)
        return cmd_sweep(cfg, args) if args.command == "sweep" else cmd_promote(cfg, args)
    except RetryableError as exc:  # a cluster that cannot be reached: not the input's fault
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.FAILURE
    except RLSystemError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return ExitCode.FAILURE
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume (finished trials are kept)", file=sys.stderr)
        return ExitCode.INTERRUPTED
