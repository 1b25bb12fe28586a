"""The trading PPO manager: training, prediction, benchmark, staged rollout, status and the shadow daemon.

    python ai/shadow_ppo.py train --symbol BTC/USDT --timeframe 1h --lookback-hours 720 --episodes 100
    python ai/shadow_ppo.py train --candles data/btc_1h.csv --episodes 50
    python ai/shadow_ppo.py progress --watch
    python ai/shadow_ppo.py predict --obs '{"price_change_1m": 0.001, "rsi": 55, "regime": "TREND"}'
    python ai/shadow_ppo.py predict --latest
    python ai/shadow_ppo.py benchmark --candles data/btc_1h.csv --train-frac 0.7 --fee 0.001 --episodes 10 \\
        --train-episodes 50 --save-model --json
    python ai/shadow_ppo.py walk-forward --candles data/btc_1h.csv --folds 4 --train-episodes 50 --json
    python ai/shadow_ppo.py rollout --capital-pct 5 --max-position 50000
    python ai/shadow_ppo.py rollout-status
    python ai/shadow_ppo.py status
    python ai/shadow_ppo.py experiences --limit 10
    python ai/shadow_ppo.py shadow --enable
    python ai/shadow_ppo.py run                      # the shadow_ppo daemon

Exit codes (:class:`core.errors.ExitCode`): 0 done, 2 bad input (file, option, configuration), 3 not possible
now (no model yet, a training already running, a rollout refused by the benchmark gate, too few candles for
the walk-forward folds). The files and their
contracts are listed in :mod:`ai.trading.common`; the environment, features and accounting in
:mod:`ai.trading.env`, :mod:`ai.trading.features`, :mod:`ai.trading.account` and
:mod:`analytics.baselines`; the daemon in :mod:`ai.trading.shadow_daemon`; the rollout and shadow
switch in :mod:`core.contracts.rollout`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from ai.ppo import CheckpointError
from ai.trading.account import Account
from ai.trading.common import DAEMON_NAME, TrainingBusyError, load_candle_set, load_model, trading_symbol
from ai.trading.features import assemble
from ai.trading.market_features import compute_market_features
from ai.trading.observation_dict import observation_from_dict
from ai.trading.options import options_from_config
from ai.trading.shadow_daemon import run_daemon
from ai.trading.status import publish_status
from analytics.walk_forward import SCHEMES, NotEnoughForFoldsError
from core.atomic import read_json
from core.config import Config, load_config, replace_section
from core.contracts.rollout import (
    read_rollout,
    rollout_path,
    set_shadow_mode,
    shadow_mode,
    stage_for,
    write_rollout,
)
from core.contracts.shadow_status import read_experiences, saved_account
from core.contracts.trading_model import MODEL_DISPLAY, model_path
from core.contracts.trading_reports import PROGRESS_DISPLAY, read_benchmark
from core.errors import ExitCode, FatalError, RLSystemError
from core.logging_setup import setup_logging
from core.timeframes import ms_to_iso, timeframe_to_ms

log = logging.getLogger(__name__)

def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, allow_nan=False))


# ---------------------------------------------------------------------------------------------------- commands


def cmd_train(cfg: Config, args: argparse.Namespace) -> int:
    from ai.trading.training import train_and_install  # torch: only the commands that train load it

    candle_set = load_candle_set(cfg, candles_file=args.candles, symbol=args.symbol, timeframe=args.timeframe,
                                 lookback_hours=args.lookback_hours, source=args.source,
                                 min_candles=cfg.trading_agent.warmup_candles + 2)
    episodes = args.episodes or cfg.trading_agent.train_episodes
    log.info("training on %d candles of %s %s (%s) for %d episodes", len(candle_set.frame), candle_set.symbol,
             candle_set.timeframe, candle_set.data_source, episodes)
    meta = train_and_install(cfg, candle_set, episodes, show_bar=not args.quiet)
    _print_json({"model_path": str(model_path(cfg)), "train_range": meta["train_range"], "symbol": meta["symbol"],
                 "timeframe": meta["timeframe"], "data_source": meta["data_source"], "metrics": meta["metrics"]})
    return ExitCode.OK


def cmd_progress(cfg: Config, args: argparse.Namespace) -> int:
    from ai.trading.training import read_progress

    while True:
        doc = read_progress(cfg)
        _print_json(doc)
        if not args.watch or not doc.get("active"):
            return ExitCode.OK
        time.sleep(args.interval)


def cmd_predict(cfg: Config, args: argparse.Namespace) -> int:
    model = load_model(model_path(cfg))
    if args.obs is not None:
        try:
            data = json.loads(args.obs)
        except json.JSONDecodeError as exc:
            raise FatalError(f"--obs is not valid JSON ({exc}); pass an object such as '{{\"rsi\": 55}}'") from exc
        if not isinstance(data, dict):
            raise FatalError(f"--obs must be a JSON object of feature values, got {type(data).__name__}")
        built = observation_from_dict(data)
        answer = {**model.predict(built.vector).as_dict(), "defaulted": built.defaulted, "ignored": built.ignored}
    else:
        answer = {**_predict_latest(cfg, model), "defaulted": [], "ignored": []}
    _print_json({**answer, "model_path": str(model.path)})
    return ExitCode.OK


def _predict_latest(cfg: Config, model: Any) -> dict[str, Any]:
    """The decision on the newest candle, with the shadow account's position when the daemon keeps one."""
    candle_set = load_candle_set(cfg, lookback_hours=cfg.trading_agent.feature_history
                                 * _timeframe_hours(cfg.market.timeframe), min_candles=2)
    options = options_from_config(cfg)
    features = compute_market_features(candle_set.frame, options.high_volatility_percentile)
    account = _shadow_account(cfg) or Account.flat(1, options.initial_equity)
    last = len(features) - 1
    obs = assemble(features.values[last:], account.raw_features(features.direction[last:], options))[0]
    return {**model.predict(obs).as_dict(), "symbol": candle_set.symbol, "timeframe": candle_set.timeframe,
            "candle_time": ms_to_iso(int(features.timestamps[last])), "close": float(features.closes[last]),
            "position_exposure": float(account.exposure[0])}


def _timeframe_hours(timeframe: str) -> float:
    return timeframe_to_ms(timeframe) / 3_600_000


def _shadow_account(cfg: Config) -> Account | None:
    row = saved_account(cfg, trading_symbol(cfg))
    if row is None:
        return None
    try:
        return Account.from_row(row)
    except (KeyError, TypeError, ValueError):
        return None


def cmd_benchmark(cfg: Config, args: argparse.Namespace) -> int:
    from ai.trading.benchmark import BenchmarkRequest, run_benchmark

    if args.save_model and not args.train_episodes:
        raise FatalError("--save-model needs --train-episodes N (it installs the freshly trained model)")
    candle_set = load_candle_set(cfg, candles_file=args.candles, symbol=args.symbol, timeframe=args.timeframe,
                                 lookback_hours=args.lookback_hours, source=args.source)
    request = BenchmarkRequest(
        train_frac=args.train_frac, fee=cfg.costs.fee if args.fee is None else args.fee,
        episodes=args.episodes or cfg.trading_agent.benchmark_episodes, train_episodes=args.train_episodes,
        periods_per_year=args.periods_per_year, ma_fast=args.ma_fast, ma_slow=args.ma_slow,
        save_model=args.save_model, seed=args.seed, show_bar=not (args.json or args.quiet))
    doc = run_benchmark(cfg, candle_set, request)
    if args.json:
        _print_json(doc)
    else:
        _print_benchmark(doc)
    return ExitCode.OK


def _print_benchmark(doc: dict[str, Any]) -> None:
    def fmt(value: Any, pct: bool = False) -> str:
        if value is None:
            return "n/a"
        return f"{value * 100:.2f}%" if pct else f"{value:.3f}"

    test = doc["test_window"]
    print(f"{doc['symbol']} {doc['timeframe']} ({doc['data_source']}): test window {test['start_time']} .. "
          f"{test['end_time']} ({test['bars']} candles), fee {doc['fee']:g}"
          + ("  [IN SAMPLE]" if doc["in_sample"] else ""))
    print(f"{'strategy':<16}{'return':>10}{'sharpe':>9}{'max dd':>10}{'win rate':>10}{'trades':>8}")
    for key, label in (("rl_v3", "RL v3"), ("buy_hold", "Buy & Hold"), ("moving_avg", "Moving Average"),
                       ("random", "Random")):
        m = doc[f"{key}_metrics"]
        print(f"{label:<16}{fmt(m['total_return'], True):>10}{fmt(m['sharpe_ratio']):>9}"
              f"{fmt(m['max_drawdown'], True):>10}{fmt(m['win_rate'], True):>10}{m['n_trades'] if m['n_trades'] is None else round(m['n_trades'], 1):>8}")
    gate = doc["gate"]
    failed = [k for k, v in gate.items() if isinstance(v, dict) and not v["passed"]]
    print(f"winner: {doc['winner']}; gate: {'PASSED' if gate['passed'] else 'failed (' + ', '.join(failed) + ')'}")


def cmd_walk_forward(cfg: Config, args: argparse.Namespace) -> int:
    from ai.trading.walk_forward import WalkForwardRequest, run_walk_forward

    candle_set = load_candle_set(cfg, candles_file=args.candles, symbol=args.symbol, timeframe=args.timeframe,
                                 lookback_hours=args.lookback_hours, source=args.source)
    ta = cfg.trading_agent
    request = WalkForwardRequest(
        folds=args.folds or ta.walk_forward_folds, scheme=args.scheme,
        train_frac=ta.train_frac if args.train_frac is None else args.train_frac,
        fee=cfg.costs.fee if args.fee is None else args.fee, episodes=args.episodes or ta.benchmark_episodes,
        train_episodes=args.train_episodes or ta.train_episodes, periods_per_year=args.periods_per_year,
        ma_fast=args.ma_fast, ma_slow=args.ma_slow, seed=args.seed, show_bar=not (args.json or args.quiet))
    try:
        doc = run_walk_forward(cfg, candle_set, request)
    except NotEnoughForFoldsError as exc:
        print(f"error: not enough data: {exc}", file=sys.stderr)
        return ExitCode.NOT_READY
    if args.json:
        _print_json(doc)
    else:
        _print_walk_forward(doc)
    return ExitCode.OK


def _print_walk_forward(doc: dict[str, Any]) -> None:
    def pct(value: Any) -> str:
        return "n/a" if value is None else f"{value * 100:.2f}%"

    def num(value: Any) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    keys = ("rl_v3", "buy_hold", "moving_avg", "random")
    print(f"{doc['symbol']} {doc['timeframe']} ({doc['data_source']}): {len(doc['folds'])} {doc['scheme']} folds, "
          f"fee {doc['fee']:g}, {doc['train_episodes']} training episodes a fold; Sharpe ratio (return)")
    print(f"{'fold':<8}{'test window':<42}" + "".join(f"{STRATEGY_LABELS[k]:>18}" for k in keys)
          + f"{'RL - best: interval':>26}")
    rows = [(str(f["fold"]), f"{f['test_window']['start_time']} .. {f['test_window']['end_time']}", f)
            for f in doc["folds"]]
    rows.append(("pooled", "all test windows", doc["pooled"]))
    for label, window, row in rows:
        cells = "".join(f"{num(row['metrics'][k]['sharpe_ratio']) + ' (' + pct(row['metrics'][k]['total_return']) + ')':>18}"
                        for k in keys)
        ci = row["sharpe_difference"]
        interval = f"[{num(ci['lower'])}, {num(ci['upper'])}] " + ("beats" if row["beats_best_baseline"] else "not above")
        print(f"{label:<8}{window:<42}{cells}{interval:>26}")
    pooled = doc["pooled"]
    print(f"pooled: best baseline {pooled['best_baseline_name']}; the RL policy "
          + ("beats it" if pooled["beats_best_baseline"] else "does not beat it")
          + f" with {pooled['sharpe_difference']['confidence']:.0%} confidence")


STRATEGY_LABELS = {"rl_v3": "RL v3", "buy_hold": "Buy & Hold", "moving_avg": "MA crossover", "random": "Random"}


def cmd_rollout(cfg: Config, args: argparse.Namespace) -> int:
    from ai.trading.benchmark import rollout_blockers

    pct, max_position = args.capital_pct, args.max_position
    if not 0 <= pct <= 100:
        raise FatalError(f"--capital-pct must be between 0 and 100, got {pct:g}")
    if not (math.isfinite(max_position) and max_position > 0):
        raise FatalError(f"--max-position must be a number > 0 (a notional in the account's currency), "
                         f"got {max_position:g}")
    extra: dict[str, Any] = {}
    if pct > 0:
        blockers = rollout_blockers(cfg)
        if blockers and not args.force:
            print("rollout refused: " + "; ".join(blockers) + ". Pass --force to override (it is recorded).",
                  file=sys.stderr)
            return ExitCode.NOT_READY
        if blockers:
            log.warning("rollout forced despite: %s", "; ".join(blockers))
            extra["forced_despite"] = blockers
        benchmark = read_benchmark(cfg)
        if benchmark.ok and benchmark.data is not None:
            extra["benchmark"] = {"generated_at": benchmark.data.get("generated_at"),
                                  "gate_passed": (benchmark.data.get("gate") or {}).get("passed"),
                                  "in_sample": benchmark.data.get("in_sample"),
                                  "model_sha256": (benchmark.data.get("model") or {}).get("sha256")}
    message = f"Rollout configured: {stage_for(pct)[1]} ({pct:g}%)"
    doc = write_rollout(cfg, pct, max_position, not args.no_risk_guard, forced=bool(args.force and pct > 0),
                        message=message, **extra)
    log.info("%s; max position %g; risk guard %s", message, max_position, "off" if args.no_risk_guard else "on")
    _print_json({"status": "success", "message": message, "config": doc})
    return ExitCode.OK


def cmd_rollout_status(cfg: Config, args: argparse.Namespace) -> int:
    result = read_json(rollout_path(cfg))
    rollout = read_rollout(cfg)
    _print_json({"configured": rollout is not None, "config": result.data if rollout is not None else None,
                 **({} if rollout is not None else {"reason": result.reason})})
    return ExitCode.OK


def cmd_status(cfg: Config, args: argparse.Namespace) -> int:
    doc = publish_status(cfg)
    _print_json(doc)
    return ExitCode.OK


def cmd_experiences(cfg: Config, args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise FatalError(f"--limit must be >= 1, got {args.limit}")
    records = read_experiences(cfg, limit=args.limit)
    if not args.full:
        records = [{k: v for k, v in r.items() if k not in ("observation", "next_observation")} for r in records]
    _print_json({"count": len(records), "experiences": records})
    return ExitCode.OK


def cmd_shadow(cfg: Config, args: argparse.Namespace) -> int:
    if args.enable == args.disable:
        current = shadow_mode(cfg)
        _print_json({"shadow_mode": current})
        return ExitCode.OK
    set_shadow_mode(cfg, args.enable, reason="set by the shadow command")
    rollout = read_rollout(cfg)
    note = ""
    if args.disable and (rollout is None or not rollout.live):
        note = "the rollout is at Stage 0 (0% capital), so decisions still move no capital; see `rollout`"
    elif args.enable and rollout is not None and rollout.live:
        note = (f"the rollout at {rollout.capital_percentage:g}% ({rollout.stage}) is paused: the PPO book follows "
                "no decision while shadow mode is on; `shadow --disable` resumes it")
    _print_json({"shadow_mode": args.enable, **({"note": note} if note else {})})
    return ExitCode.OK


def cmd_run(cfg: Config, args: argparse.Namespace) -> int:
    if args.max_decisions is not None and args.max_decisions < 1:
        raise FatalError(f"--max-decisions must be >= 1, got {args.max_decisions}")
    return run_daemon(cfg, args.max_decisions)


# ------------------------------------------------------------------------------------------------- arguments


def _add_candle_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--candles", metavar="FILE.csv", help="candle CSV file (a Binance kline export works); "
                        "wins over --symbol/--timeframe/--lookback-hours")
    parser.add_argument("--symbol", help="symbol, e.g. BTC/USDT (default: trading_agent.symbol or the first "
                        "market symbol)")
    parser.add_argument("--timeframe", help="candle timeframe, e.g. 1h (default: market.timeframe)")
    parser.add_argument("--lookback-hours", type=float, help="hours of candles up to the newest "
                        "(default: trading_agent.lookback_hours)")
    parser.add_argument("--source", choices=["synthetic", "csv", "ccxt"],
                        help="candle source (default: market.data_source)")


def _add_tensorboard_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tensorboard", action="store_true",
                        help="also write the training curve as TensorBoard event files in state/rl_v3/tensorboard/ "
                             "(as trading_agent.ppo.tensorboard = true; needs `pip install -e .[tensorboard]`)")


def _with_tensorboard(cfg: Config, args: argparse.Namespace) -> Config:
    if not getattr(args, "tensorboard", False):
        return cfg
    ppo = dataclasses.replace(cfg.trading_agent.ppo, tensorboard=True)
    return replace_section(cfg, "trading_agent", ppo=ppo)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python ai/shadow_ppo.py",
        description="The trading PPO agent (RL v3): train it, ask it, benchmark it out of sample against Buy & "
                    "Hold, MA crossover and Random, roll it out in stages, and run it in shadow mode.",
        epilog="Exit codes: 0 done, 2 bad input, 3 not possible now (no model, training busy, rollout refused).")
    parser.add_argument("--config", help="TOML configuration file (default: $RL_SYSTEM_CONFIG or rl_system.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help=f"train a model and save it to {MODEL_DISPLAY}")
    _add_candle_args(train)
    train.add_argument("--episodes", type=int, help="training episodes (default: trading_agent.train_episodes)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_tensorboard_arg(train)
    train.set_defaults(func=cmd_train)

    progress = sub.add_parser("progress", help=f"print {PROGRESS_DISPLAY}")
    progress.add_argument("--watch", action="store_true", help="print again every --interval s while active")
    progress.add_argument("--interval", type=float, default=2.0, help="seconds between prints with --watch")
    progress.set_defaults(func=cmd_progress)

    predict = sub.add_parser("predict", help="the model's action for an observation")
    what = predict.add_mutually_exclusive_group(required=True)
    what.add_argument("--obs", metavar="JSON", help="observation dictionary (feature names of "
                      "ai/trading/features.py or the original keys); missing keys take defaults, listed")
    what.add_argument("--latest", action="store_true", help="observe the newest candle of the configured source")
    predict.set_defaults(func=cmd_predict)

    bench = sub.add_parser("benchmark", help="out-of-sample benchmark against the baselines, with the gate")
    _add_candle_args(bench)
    bench.add_argument("--train-frac", type=float, default=0.7, help="share of candles before the test window")
    bench.add_argument("--fee", type=float, help="fee per traded notional (default: costs.fee)")
    bench.add_argument("--episodes", type=int, help="seeds of the Random baseline "
                       "(default: trading_agent.benchmark_episodes)")
    bench.add_argument("--train-episodes", type=int, help="first train a fresh model on the training window")
    bench.add_argument("--save-model", action="store_true", help="with --train-episodes: install that model")
    bench.add_argument("--periods-per-year", type=float, help="annualization (default: from the timeframe)")
    bench.add_argument("--ma-fast", type=int, default=10, help="fast SMA of the MA crossover")
    bench.add_argument("--ma-slow", type=int, default=20, help="slow SMA of the MA crossover")
    bench.add_argument("--seed", type=int, default=0, help="first seed of the Random baseline")
    bench.add_argument("--json", action="store_true", help="print the JSON document")
    bench.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_tensorboard_arg(bench)
    bench.set_defaults(func=cmd_benchmark)

    walk = sub.add_parser("walk-forward", help="train on each fold's past, test on its next window, against the "
                          "baselines with a bootstrap interval (exit 3 when the candles are too few for the folds)")
    _add_candle_args(walk)
    walk.add_argument("--folds", type=int, help="test windows (default: trading_agent.walk_forward_folds)")
    walk.add_argument("--scheme", choices=SCHEMES, default="expanding", help="expanding: train on all candles "
                      "before the window; rolling: on as many candles as the first fold, just before it")
    walk.add_argument("--train-frac", type=float, help="share of candles before the first test window "
                      "(default: trading_agent.train_frac)")
    walk.add_argument("--fee", type=float, help="fee per traded notional (default: costs.fee)")
    walk.add_argument("--episodes", type=int, help="seeds of the Random baseline "
                      "(default: trading_agent.benchmark_episodes)")
    walk.add_argument("--train-episodes", type=int, help="training episodes of each fold's model "
                      "(default: trading_agent.train_episodes)")
    walk.add_argument("--periods-per-year", type=float, help="annualization (default: from the timeframe)")
    walk.add_argument("--ma-fast", type=int, default=10, help="fast SMA of the MA crossover")
    walk.add_argument("--ma-slow", type=int, default=20, help="slow SMA of the MA crossover")
    walk.add_argument("--seed", type=int, default=0, help="first seed of the Random baseline")
    walk.add_argument("--json", action="store_true", help="print the JSON document")
    walk.add_argument("--quiet", action="store_true", help="no progress bar")
    walk.set_defaults(func=cmd_walk_forward)

    rollout = sub.add_parser("rollout", help="set the capital share of the PPO book (staged rollout)")
    rollout.add_argument("--capital-pct", type=float, required=True, help="0 (shadow), 1, 5, 10 or more")
    rollout.add_argument("--max-position", type=float, required=True, help="largest notional of the book")
    rollout.add_argument("--no-risk-guard", action="store_true", help="disable the risk guard")
    rollout.add_argument("--force", action="store_true", help="go above 0%% without a passed, recent, "
                         "out-of-sample benchmark of the current model (recorded in the file)")
    rollout.set_defaults(func=cmd_rollout)

    sub.add_parser("rollout-status", help="print the rollout in force").set_defaults(func=cmd_rollout_status)
    sub.add_parser("status", help="print (and publish) the status").set_defaults(func=cmd_status)

    experiences = sub.add_parser("experiences", help="print the newest recorded experiences")
    experiences.add_argument("--limit", type=int, default=10, help="how many (default 10)")
    experiences.add_argument("--full", action="store_true", help="include the observation vectors")
    experiences.set_defaults(func=cmd_experiences)

    shadow = sub.add_parser("shadow", help="switch shadow mode (observation only) on or off; no flag prints it")
    toggle = shadow.add_mutually_exclusive_group()
    toggle.add_argument("--enable", action="store_true", help="observation only")
    toggle.add_argument("--disable", action="store_true", help="decisions may move the rollout's capital")
    shadow.set_defaults(func=cmd_shadow)

    run = sub.add_parser("run", help=f"the {DAEMON_NAME} daemon (decisions, experiences, scheduled retraining)")
    run.add_argument("--max-decisions", type=int, help="stop after this many decisions")
    run.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        cfg = _with_tensorboard(load_config(args.config), args)
    except RLSystemError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    setup_logging(cfg, daemon=DAEMON_NAME if args.command == "run" else None,
                  console=args.command in ("run", "train", "benchmark", "walk-forward"))
    handler: Callable[[Config, argparse.Namespace], int] = args.func
    try:
        return handler(cfg, args)
    except (TrainingBusyError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.NOT_READY
    except (RLSystemError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: stop quietly instead of a traceback at interpreter exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return ExitCode.FAILURE


if __name__ == "__main__":
    sys.exit(main())
