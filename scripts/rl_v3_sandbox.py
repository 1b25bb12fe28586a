"""The trading agent's quick check: train, predict and benchmark a small model in a temporary home.

    python scripts/rl_v3_sandbox.py            # about half a minute on one core; a verdict line per step
    python scripts/rl_v3_sandbox.py --json     # the same as one JSON document

On a fresh machine it shows that the trading PPO works end to end, without touching your state: everything it
writes (candles' cache, model, progress, benchmark) goes to a temporary folder removed at the end (``--keep``
keeps it). The steps are the agent's own functions (:mod:`ai.trading.training`, :mod:`ai.trading.benchmark`,
:mod:`ai.trading.common`), on a seeded synthetic market:

1. data: synthetic candles, split into a training window and a later test window (``trading_agent.train_frac``);
2. train: a small model on the training window only (``--episodes`` short episodes), installed in the sandbox;
3. predict: the installed model's decision on the first few candles of the test window (flat account);
4. benchmark: that model against Buy & Hold, MA crossover and Random on the test window, out of sample, after fees.

A model this small is not expected to pass the benchmark gate: the verdict says what it measured, and a step
fails only when it cannot run. Exit codes: 0 every step ran, 1 a step failed, 2 bad arguments or configuration.
"""

from __future__ import annotations

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ai.trading.account import Account
from ai.trading.benchmark import BenchmarkRequest, features_for, run_benchmark, split_index
from ai.trading.common import CandleSet, load_candle_set, load_model
from ai.trading.features import assemble
from ai.trading.options import options_from_config
from ai.trading.training import train_and_install
from core.config import Config, load_config, replace_section
from core.contracts.trading_model import model_path
from core.errors import ExitCode, RLSystemError
from core.logging_setup import setup_logging
from core.timeframes import ms_to_iso

CANDLES = 1200
"""Synthetic hourly candles of the sandbox: 840 to train on, 360 to test on at the default split."""
EPISODE_LENGTH = 128
"""Decisions per training episode (the daemon's 512 would take longer than the check should)."""
NUM_ENVS = 2
PREDICTIONS = 3
"""Test-window candles the installed model decides on."""


@dataclasses.dataclass
class Step:
    """One step's outcome: ``ok`` and a one-line verdict, with the figures behind it."""

    name: str
    ok: bool
    verdict: str
    seconds: float
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


@contextmanager
def temporary_home(keep: bool) -> Iterator[Path]:
    """A fresh folder as ``$RL_SYSTEM_HOME`` (which wins over any configured home) for the duration."""
    home = Path(tempfile.mkdtemp(prefix="rl_v3_sandbox_"))
    previous = os.environ.get("RL_SYSTEM_HOME")
    os.environ["RL_SYSTEM_HOME"] = str(home)
    try:
        yield home
    finally:
        if previous is None:
            os.environ.pop("RL_SYSTEM_HOME", None)
        else:
            os.environ["RL_SYSTEM_HOME"] = previous
        if not keep:
            shutil.rmtree(home, ignore_errors=True)


def sandbox_config(cfg: Config, seed: int) -> Config:
    """The user's configuration on a seeded synthetic market with short episodes and a seeded PPO."""
    cfg = replace_section(cfg, "market", data_source="synthetic", timeframe="1h")
    cfg = replace_section(cfg, "synthetic", seed=seed, n_candles=CANDLES)
    ppo = dataclasses.replace(cfg.trading_agent.ppo, seed=seed, threads=1)
    return replace_section(cfg, "trading_agent", episode_length=EPISODE_LENGTH, num_envs=NUM_ENVS, ppo=ppo)


def timed(name: str, action: Callable[[], tuple[str, dict[str, Any]]]) -> Step:
    """Run one step; an error becomes a failed step with its message, never a traceback."""
    started = time.perf_counter()
    try:
        verdict, details = action()
        ok = True
    except (RLSystemError, OSError, ValueError, RuntimeError) as exc:
        verdict, details, ok = f"failed: {exc}", {}, False
    return Step(name, ok, verdict, round(time.perf_counter() - started, 2), details)


def data_step(cfg: Config, store: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    candle_set = load_candle_set(cfg, lookback_hours=float(CANDLES), source="synthetic",
                                 min_candles=cfg.trading_agent.warmup_candles + 2)
    split = split_index(len(candle_set.frame), cfg.trading_agent.train_frac)
    store.update(candle_set=candle_set, split=split)
    return (f"{len(candle_set.frame)} synthetic {candle_set.timeframe} candles of {candle_set.symbol}: "
            f"{split} to train on, {len(candle_set.frame) - split} held out for the test"), {
        "candles": len(candle_set.frame), "split": split, "symbol": candle_set.symbol}


def train_step(cfg: Config, store: dict[str, Any], episodes: int, show_bar: bool) -> tuple[str, dict[str, Any]]:
    full: CandleSet = store["candle_set"]
    train_set = CandleSet(full.frame.iloc[: store["split"]].reset_index(drop=True), full.symbol, full.timeframe,
                          full.data_source)
    meta = train_and_install(cfg, train_set, episodes, show_bar=show_bar)
    metrics = meta["metrics"]
    reward = metrics.get("avg_reward")
    return (f"{episodes} episodes, {metrics.get('timesteps')} steps, average episode reward "
            f"{'n/a' if reward is None else f'{reward:+.3f}'}; model installed in the sandbox"), {
        "metrics": metrics, "train_range": meta["train_range"]}


def predict_step(cfg: Config, store: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    model = load_model(model_path(cfg))
    options = options_from_config(cfg)
    features = features_for(store["candle_set"], cfg)
    rows = list(range(store["split"], store["split"] + PREDICTIONS))
    account = Account.flat(len(rows), options.initial_equity)
    observations = assemble(features.values[rows], account.raw_features(features.direction[rows], options))
    answers = []
    for row, obs in zip(rows, observations, strict=True):
        prediction = model.predict(obs)
        if not math.isclose(sum(prediction.probs.values()), 1.0, abs_tol=1e-4):
            raise ValueError(f"action probabilities sum to {sum(prediction.probs.values())}, not 1")
        answers.append({"candle_time": ms_to_iso(int(features.timestamps[row])), **prediction.as_dict()})
    said = ", ".join(f"{a['action_name']} ({a['confidence']:.0%})" for a in answers)
    return f"decisions on the first {len(answers)} test candles: {said}", {"predictions": answers}


def benchmark_step(cfg: Config, store: dict[str, Any], seed: int) -> tuple[str, dict[str, Any]]:
    request = BenchmarkRequest(train_frac=cfg.trading_agent.train_frac, fee=cfg.costs.fee, episodes=3, seed=seed)
    doc = run_benchmark(cfg, store["candle_set"], request)
    if doc["in_sample"]:
        raise ValueError("the sandbox model saw the test window: the benchmark would be in sample")
    figures = {name: doc[f"{name}_metrics"] for name in ("rl_v3", "buy_hold", "moving_avg", "random")}
    returns = ", ".join(f"{name} {_pct(fig.get('total_return'))}" for name, fig in figures.items())
    gate = doc["gate"]
    passed = gate.get("passed") if isinstance(gate, dict) else None
    verdict = (f"out of sample after fees: {returns}; winner {doc['winner'] or 'none'}; gate "
               f"{'passed' if passed else 'not passed (expected of a model this small)'}")
    return verdict, {"metrics": figures, "winner": doc["winner"], "gate": gate, "in_sample": doc["in_sample"]}


def _pct(value: Any) -> str:
    return "n/a" if not isinstance(value, (int, float)) else f"{100.0 * value:+.2f}%"


def run_sandbox(cfg: Config, episodes: int, seed: int, show_bar: bool) -> list[Step]:
    """The four steps in order; a step after a failed one is not run."""
    store: dict[str, Any] = {}
    plan: list[tuple[str, Callable[[], tuple[str, dict[str, Any]]]]] = [
        ("data", lambda: data_step(cfg, store)),
        ("train", lambda: train_step(cfg, store, episodes, show_bar)),
        ("predict", lambda: predict_step(cfg, store)),
        ("benchmark", lambda: benchmark_step(cfg, store, seed)),
    ]
    steps: list[Step] = []
    for name, action in plan:
        steps.append(timed(name, action))
        if not steps[-1].ok:
            break
    return steps


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rl_v3_sandbox.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train, predict and benchmark a small trading PPO on synthetic candles in a temporary home "
                    "(your state/ and runtime/ are not touched), with a verdict per step.",
        epilog="Exit codes: 0 every step ran, 1 a step failed, 2 bad arguments or configuration.")
    parser.add_argument("--episodes", type=int, default=16,
                        help=f"training episodes of {EPISODE_LENGTH} decisions (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic market and of the PPO")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home and print where it is")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--config", metavar="PATH", help="TOML configuration file (the market is always synthetic)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error("--episodes must be >= 1")
    try:
        cfg = sandbox_config(load_config(args.config), args.seed)
    except RLSystemError as exc:
        print(f"rl_v3_sandbox: error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    started = time.perf_counter()
    with temporary_home(args.keep) as home:
        setup_logging(cfg)
        steps = run_sandbox(cfg, args.episodes, args.seed, show_bar=not (args.quiet or args.json))
    ok = len(steps) == 4 and all(step.ok for step in steps)
    seconds = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps({"ok": ok, "seconds": seconds, "home": str(home) if args.keep else None,
                          "steps": [dataclasses.asdict(step) for step in steps]}, indent=2, allow_nan=False))
    else:
        for step in steps:
            print(f"{step.name:<10}{'ok' if step.ok else 'FAILED':<8}{step.verdict} ({step.seconds:.1f}s)")
        print(f"sandbox {'works' if ok else 'failed'} in {seconds:.1f}s"
              + (f"; its files are in {home}" if args.keep else "; its temporary home was removed"))
    return ExitCode.OK if ok else ExitCode.FAILURE


if __name__ == "__main__":
    sys.exit(main())
