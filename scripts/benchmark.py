"""Speed benchmark of the suite against its peers, on this machine, in one run.

    python scripts/benchmark.py [--quick] [--json] [--markdown PATH] [--only PART ...] [--repeats N]

Rows (each against its named peer where there is one): one ``TradingEnv`` and ``TradingVectorEnv`` (256 envs)
against gym-anytrading, the Buy & Hold + MA crossover baselines against backtesting.py, PPO on CartPole-v1
against Stable-Baselines3 (equal settings and rl-baselines3-zoo's), PPO on the trading environment against
SB3 on the same environment, one trading-agent prediction (p50/p99), the file loop (a trade appended -> the
allocations file updated, with ``rl_inference`` and ``weights_bridge`` running, p50/p99 with a small and a
large history), the cost of ``rl_inference.py --update`` and ``rl_performance.py --report`` as the history
grows, each daemon's memory at rest, the data path and the performance report.

Figures are medians of ``--repeats`` runs (3; 1 with ``--quick``; the backtest row the best of them, as
:mod:`analytics.backtest_speed` times it) with one torch thread. Daemons run in
temporary homes; your state is not touched. Writes ``runtime/benchmarks.json`` (atomically) and prints the
Markdown table with the machine's description (``--json``: the document instead); ``--markdown PATH`` also
writes the table there. A peer that is not installed is shown as ``missing: pip install -e .[bench]``.
Progress goes to stderr. ``--quick`` runs every row at small sizes in about a minute; the full run takes
about 10-15 minutes on 2 cores. Exit 0 when every row ran (goals met or not), 1 when a part failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# The parts live in scripts/benchmarks/ and import their sibling commands (bench_ppo, soak...) by name.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

import torch  # noqa: E402
from benchmarks import data, envs, ppo, suite  # noqa: E402
from benchmarks.rows import Row, machine_description, markdown_document  # noqa: E402

from core.atomic import atomic_write_text  # noqa: E402
from core.config import Config, load_config  # noqa: E402
from core.contracts.benchmarks import BenchmarksDoc, benchmarks_path, publish_benchmarks  # noqa: E402
from core.errors import ConfigError, ExitCode  # noqa: E402

TORCH_THREADS = 1


@dataclass(frozen=True)
class Sizes:
    envs: envs.EnvSizes
    ppo: ppo.PPOSizes
    suite: suite.SuiteSizes
    data: data.DataSizes


QUICK = Sizes(envs.QUICK_ENV_SIZES, ppo.QUICK_PPO_SIZES, suite.QUICK_SUITE_SIZES, data.QUICK_DATA_SIZES)
FULL = Sizes(envs.FULL_ENV_SIZES, ppo.FULL_PPO_SIZES, suite.FULL_SUITE_SIZES, data.FULL_DATA_SIZES)


@dataclass(frozen=True)
class Part:
    """A group of rows measured together; ``keys`` name its rows, so a part that fails still shows them."""

    name: str
    keys: tuple[str, ...]
    measure: Callable[[Sizes, int, Config, Callable[[str], None]], list[Row]]


PARTS = (
    Part("envs", ("single_env", "vector_env"), lambda s, n, c, p: envs.env_rows(s.envs, n)),
    Part("backtest", ("baselines",), lambda s, n, c, p: envs.backtest_rows(s.envs, n)),
    Part("cartpole", ("ppo_cartpole_equal", "ppo_cartpole_zoo"), lambda s, n, c, p: ppo.cartpole_rows(s.ppo, n)),
    Part("trading_ppo", ("ppo_trading", "prediction"), lambda s, n, c, p: ppo.trading_rows(c, s.ppo, n)),
    Part("history", ("file_loop_small", "file_loop_large", "reaction_update", "reaction_report"),
         lambda s, n, c, p: suite.history_rows(s.suite, n, p)),
    Part("memory", suite.MEMORY_KEYS, lambda s, n, c, p: suite.memory_rows(s.suite, p)),
    Part("data", ("data_path", "performance_report"),
         lambda s, n, c, p: [data.data_path_row(s.data, n), data.report_row(s.data, n)]),
)
PART_NAMES = [part.name for part in PARTS]


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def part_progress(name: str) -> Callable[[str], None]:
    """A progress reporter for the steps inside one part."""
    return lambda message: progress(f"  {name}: {message}")


def failed_rows(part: Part, error: BaseException) -> list[Row]:
    """The rows of a part that failed: no figure, goal not met, the error as the reason."""
    reason = f"failed: {type(error).__name__}: {error}".splitlines()[0][:300]
    return [Row(key, f"{part.name}: {key}", "-", None, "-", None, "-", "", None, "-", False, reason)
            for key in part.keys]


def run_parts(parts: list[Part], sizes: Sizes, repeats: int, work_cfg: Config) -> tuple[list[Row], bool]:
    """Every part in order (progress on stderr); returns the rows and whether all parts ran."""
    rows: list[Row] = []
    ok = True
    for number, part in enumerate(parts, start=1):
        started = time.perf_counter()
        progress(f"[{number}/{len(parts)}] {part.name} ...")
        try:
            got = part.measure(sizes, repeats, work_cfg, part_progress(part.name))
        except Exception as exc:  # a part's failure is reported in its rows; the others still run
            got, ok = failed_rows(part, exc), False
        for row in got:
            progress(f"  {row.key}: {row.ours_text} (peer {row.peer_text})")
        progress(f"[{number}/{len(parts)}] {part.name} done in {time.perf_counter() - started:.1f} s")
        rows.extend(got)
    return rows, ok


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmark.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--quick", action="store_true", help="every row at small sizes, once (about a minute)")
    parser.add_argument("--json", action="store_true", help="print the JSON document instead of the table")
    parser.add_argument("--markdown", metavar="PATH", help="also write the Markdown table to PATH")
    parser.add_argument("--only", nargs="+", choices=PART_NAMES, metavar="PART",
                        help=f"run only these parts ({', '.join(PART_NAMES)})")
    parser.add_argument("--repeats", type=int, help="runs per figure, the median is kept (default 3; 1 quick)")
    parser.add_argument("--config", help="TOML configuration file (default: rl_system.toml or $RL_SYSTEM_CONFIG)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if repeats < 1:
        print("error: --repeats must be >= 1", file=sys.stderr)
        return ExitCode.BAD_INPUT
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    torch.set_num_threads(TORCH_THREADS)
    sizes = QUICK if args.quick else FULL
    parts = [p for p in PARTS if not args.only or p.name in args.only]
    started = time.perf_counter()
    with suite.scratch_home("bench-work-") as work:
        rows, ok = run_parts(parts, sizes, repeats, work.cfg)
    doc: BenchmarksDoc = {"quick": args.quick, "repeats": repeats, "seconds": round(time.perf_counter() - started, 1),
                          "machine": machine_description(TORCH_THREADS), "rows": [r.as_dict() for r in rows]}
    published = publish_benchmarks(cfg, doc)
    command = "python scripts/benchmark.py" + (" --quick" if args.quick else "")
    table = markdown_document(rows, doc["machine"], command, datetime.now(timezone.utc).strftime("%Y-%m-%d"))
    if args.markdown:
        atomic_write_text(args.markdown, table)
    print(json.dumps(published, indent=2) if args.json else table)
    progress(f"wrote {benchmarks_path(cfg)} ({doc['seconds']:.0f} s)")
    return ExitCode.OK if ok else ExitCode.FAILURE


if __name__ == "__main__":
    sys.exit(main())
