"""Learning benchmark on planted-edge markets: does an agent find an edge that is known to be there?

For every market of :mod:`market.planted` (``--markets``) and every seed (``--seeds``) the agent is trained on
the first ``--train-frac`` of a fresh seeded market and evaluated out of sample on the rest, after fees, with
the benchmark's own evaluation; the planted rule (which knows the generator) is measured on the same test
window. A table per market gives the Sharpe ratio and total return of the agent, the planted rule and the
baselines as mean +- standard deviation across seeds, and the goals of the learning benchmark:

- the agent's mean Sharpe ratio beats every baseline's and reaches at least half of the planted rule's;
- how many seeds pass the agent's gate (on ``random_walk``, which has no edge, none should).

    python scripts/bench_learning.py --agent trading --seeds 0 1 2 [--markets mean_reverting momentum] [--json]

The markets' seeds are the given seeds; training uses the agent's configuration with its PPO seed set to the
same seed. Nothing is written to ``state/`` or ``runtime/``: the models live in memory only. Each agent has its
function in :data:`AGENTS` (``--agent`` picks it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from ai.trading.benchmark import benchmark_document, evaluate_window, resolve_periods_per_year, split_index
from ai.trading.common import CandleSet, TradingModel, window_info
from ai.trading.market_features import compute_market_features
from ai.trading.training import train_agent
from analytics.baselines import strategy_metrics
from core.config import Config, load_config
from core.errors import ConfigError, DataError, ExitCode
from market.planted import PLANTED_KINDS, PlantedSpec, generate_planted, planted_exposures

STRATEGIES: dict[str, str] = {"agent": "agent", "planted_rule": "planted rule", "buy_hold": "Buy & Hold",
                              "moving_avg": "MA crossover", "random": "Random"}
"""Row key -> label of the tables."""
BASELINES = ("buy_hold", "moving_avg", "random")
MA = (10, 20)
"""The MA crossover baseline's windows (the benchmark command's defaults)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench_learning.py",
        description="Train an agent on seeded planted-edge markets and compare it out of sample, after fees, "
                    "with the planted rule and the baselines (mean +- sd across seeds).")
    parser.add_argument("--agent", choices=sorted(AGENTS), default="trading", help="which agent to benchmark")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (market and training)")
    parser.add_argument("--markets", nargs="+", choices=PLANTED_KINDS, default=list(PLANTED_KINDS),
                        help="planted markets to run (default: all)")
    parser.add_argument("--candles", type=int, default=6000, help="candles per market (default 6000)")
    parser.add_argument("--episodes", type=int, default=None,
                        help="training episodes (default: trading_agent.train_episodes, strategy_agent.episodes)")
    parser.add_argument("--days", type=int, default=365, help="days of each planted history (--agent allocation)")
    parser.add_argument("--fee", type=float, default=None, help="fee per unit of exposure traded (default costs.fee)")
    parser.add_argument("--train-frac", type=float, default=None,
                        help="share of the candles trained on (default trading_agent.train_frac)")
    parser.add_argument("--random-episodes", type=int, default=10, help="seeds the Random baseline averages")
    parser.add_argument("--config", default=None, help="configuration file (TOML)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


# ------------------------------------------------------------------------------------------------- trading


def seeded(cfg: Config, seed: int) -> Config:
    """``cfg`` with the trading agent's PPO seed set to ``seed``."""
    agent = cfg.trading_agent
    return dataclasses.replace(cfg, trading_agent=dataclasses.replace(
        agent, ppo=dataclasses.replace(agent.ppo, seed=seed)))


def trading_run(cfg: Config, kind: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Train on one seeded planted market and evaluate out of sample (the benchmark's evaluation and gate)."""
    cfg = seeded(cfg, seed)
    spec = PlantedSpec(kind, args.candles, seed)
    frame = generate_planted(spec).candles
    split = split_index(len(frame), args.train_frac)
    periods = resolve_periods_per_year(cfg, spec.timeframe, None)
    started = time.perf_counter()
    result = train_agent(cfg, frame.iloc[:split], args.episodes, fee=args.fee)
    train_s = time.perf_counter() - started
    model = TradingModel(result.agent.policy.eval(), result.agent.checkpoint_meta(), Path("memory"), None)
    features = compute_market_features(frame, cfg.trading_agent.high_volatility_percentile)
    window = evaluate_window(cfg, features, split, model, args.fee, args.random_episodes, periods, *MA, seed)
    candle_set = CandleSet(frame, f"PLANTED/{kind}", spec.timeframe, f"planted:{kind}:seed{seed}")
    doc = benchmark_document(cfg, candle_set, split, window, fee=args.fee, periods_per_year=periods,
                             episodes=args.random_episodes, ma=MA, train_frac=args.train_frac,
                             train_window=window_info(frame, 0, split), in_sample=False, model_info={})
    closes = frame["close"].to_numpy()
    rule = strategy_metrics(closes[split:], planted_exposures(spec, closes, split, len(frame) - 1), args.fee, periods)
    metrics = {"agent": window.metrics["rl_v3"], "planted_rule": rule,
               **{name: window.metrics[name] for name in BASELINES}}
    return {"market": kind, "seed": seed, "test_candles": len(frame) - split, "train_seconds": round(train_s, 1),
            "timesteps": result.agent.num_timesteps, "gate_passed": bool(doc["gate"]["passed"]),
            "metrics": {name: {k: _finite(v) for k, v in m.items()} for name, m in metrics.items()}}


def bench_trading(cfg: Config, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every (market, seed) run of the trading agent, with a progress bar."""
    from tqdm import tqdm

    torch.set_num_threads(1)  # small networks: one thread is fastest, and leaves the other cores free
    args.episodes = args.episodes or cfg.trading_agent.train_episodes
    args.fee = cfg.costs.fee if args.fee is None else args.fee
    args.train_frac = cfg.trading_agent.train_frac if args.train_frac is None else args.train_frac
    jobs = [(kind, seed) for kind in args.markets for seed in args.seeds]
    runs = []
    with tqdm(jobs, unit="run", file=sys.stderr, disable=args.quiet, dynamic_ncols=True) as bar:
        for kind, seed in bar:
            bar.set_description(f"{kind} seed {seed}")
            runs.append(trading_run(cfg, kind, seed, args))
    return runs


def bench_allocation(cfg: Config, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every (history, seed) run of the strategy-weight agent: a planted history whose strategy edges switch with
    the candles' regime, and one with no edge (:mod:`ai.allocation.planted`); agent vs equal weights vs oracle."""
    from tqdm import tqdm

    from ai.allocation.planted import HISTORIES, bench_run

    torch.set_num_threads(1)
    episodes = args.episodes or cfg.strategy_agent.episodes
    jobs = [(history, seed) for history in HISTORIES for seed in args.seeds]
    runs = []
    with tqdm(jobs, unit="run", file=sys.stderr, disable=args.quiet, dynamic_ncols=True) as bar:
        for history, seed in bar:
            bar.set_description(f"{history} seed {seed}")
            runs.append(bench_run(cfg, history, seed, args.days, episodes))
    return runs


AGENTS: dict[str, Callable[[Config, argparse.Namespace], list[dict[str, Any]]]] = {
    "trading": bench_trading, "allocation": bench_allocation}
"""``--agent`` -> the function that runs its (market, seed) runs; each run holds ``market``, ``seed``,
``gate_passed`` and ``metrics`` per row of :data:`STRATEGIES` (at least ``sharpe_ratio``, ``total_return``)."""


# ------------------------------------------------------------------------------------------------- summary


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per market: mean and sd across seeds of each strategy's Sharpe ratio and return, and the goals."""
    out: dict[str, dict[str, Any]] = {}
    for market in dict.fromkeys(run["market"] for run in runs):
        mine = [run for run in runs if run["market"] == market]
        table = {name: {key: _spread([run["metrics"][name][key] for run in mine])
                        for key in ("sharpe_ratio", "total_return")}
                 for name in STRATEGIES if name in mine[0]["metrics"]}
        agent = table["agent"]["sharpe_ratio"]["mean"]
        rule = table["planted_rule"]["sharpe_ratio"]["mean"]
        best = max((table[b]["sharpe_ratio"]["mean"] for b in BASELINES if b in table), key=_rank)
        out[market] = {
            "seeds": [run["seed"] for run in mine], "table": table,
            "beats_baselines": _above(agent, best),
            "half_rule": _above(agent, 0.5 * rule) if rule is not None else None,
            "gate_passed": sum(run["gate_passed"] for run in mine),
        }
    return out


def render(summary: dict[str, dict[str, Any]], runs: list[dict[str, Any]]) -> str:
    lines = []
    for market, s in summary.items():
        run = next(r for r in runs if r["market"] == market)
        lines.append(f"\n{market}: {len(s['seeds'])} seed(s) {s['seeds']}, out of sample ({run['test_candles']} test "
                     "candles), after fees")
        lines.append(f"  {'strategy':<14} {'Sharpe (mean +- sd)':>22} {'return (mean +- sd)':>24}")
        for name, row in s["table"].items():
            sharpe, ret = row["sharpe_ratio"], row["total_return"]
            lines.append(f"  {STRATEGIES[name]:<14} {_fmt(sharpe, '{:+.2f}'):>22} {_fmt(ret, '{:+.1%}'):>24}")
        half = {True: "yes", False: "no", None: "n/a (no edge)"}[s["half_rule"]]
        lines.append(f"  beats every baseline: {'yes' if s['beats_baselines'] else 'no'}; half the rule's Sharpe: "
                     f"{half}; gate passed: {s['gate_passed']}/{len(s['seeds'])}")
    seconds = [r["train_seconds"] for r in runs]
    lines.append(f"\ntraining: {np.mean(seconds):.0f} s per run on average ({runs[0]['timesteps']} steps)")
    return "\n".join(lines)


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _spread(values: list[float | None]) -> dict[str, float | None]:
    finite = [v for v in values if v is not None]
    if not finite:
        return {"mean": None, "sd": None}
    return {"mean": float(np.mean(finite)), "sd": float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0}


def _rank(value: float | None) -> float:
    return -math.inf if value is None else value


def _above(value: float | None, threshold: float | None) -> bool:
    return value is not None and (threshold is None or value > threshold)


def _fmt(spread: dict[str, float | None], pattern: str) -> str:
    if spread["mean"] is None or spread["sd"] is None:
        return "undefined"
    return f"{pattern.format(spread['mean'])} +- {pattern.format(spread['sd']).lstrip('+')}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.config)
        if args.candles < 500:
            raise DataError(f"--candles must be >= 500 for a useful test window, got {args.candles}")
        runs = AGENTS[args.agent](cfg, args)
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    if args.agent == "allocation":
        from ai.allocation.planted import bench_summary, render_summary
        summary, text = bench_summary(runs), render_summary
    else:
        summary, text = summarize(runs), render
    if args.json:
        print(json.dumps({"agent": args.agent, "markets": summary, "runs": runs}, indent=2))
    else:
        print(text(summary, runs))
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
