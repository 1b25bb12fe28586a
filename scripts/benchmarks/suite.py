"""Daemon rows, measured on real processes in temporary homes: the file loop (a trade appended -> the
allocations file updated, with ``rl_inference`` and ``weights_bridge`` running) and each daemon's memory at rest,
both measured by ``scripts/bench_daemons.py`` (:func:`bench_daemons.reaction_latency`,
:func:`bench_daemons.suite_memory`), and the cost of one reaction as the history grows
(``rl_inference.py --update`` and ``rl_performance.py --report``, whole processes).

For the reaction cost each history size gets its own home with trades every 30 minutes up to an hour ago
(:func:`write_history`) and a copy of one small strategy-weight model.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import bench_daemons
import rl_system

from benchmarks.rows import Row, at_most, seconds_text
from benchmarks.stats import median, ratio
from core.config import REPO_ROOT, STRATEGIES, Config, config_from_dict
from core.contracts.allocation_model import model_dir
from core.contracts.pnl_history import append_trades, history_path

PYTHON = sys.executable
TRADE_EVERY = timedelta(minutes=30)
LOOP_GOAL_S = 0.5
SEED_POLL_S = 300.0
"""The seed's loop: inference polled the history every 5 minutes."""
CONFIG = """
[strategy_agent]
episodes = 2
episode_length = 10
window_periods = 5
market_window_candles = 24
num_envs = 2
gate_confidence = 0.0
retrain_after_new_trades = 100000000
[strategy_agent.ppo]
n_steps = 16
batch_size = 32
n_epochs = 2
hidden_sizes = [16, 16]
threads = 1
device = "cpu"
"""
# A model trained in seconds is enough: these rows time the plumbing around it (reads, features, a forward
# pass, the writes), which does not depend on how well it learned. The gate is off so that it is installed.
DAEMON_GOALS_MB = {"weights_bridge": 120.0, "paper_trader": 120.0}
SUITE_GOAL_MB = 1024.0


@dataclass(frozen=True)
class SuiteSizes:
    histories: tuple[int, ...]
    """Trades in the history for the reaction rows, ascending; the file loop uses the first and the last."""
    loop_samples: int
    gap_s: float
    """Seconds between one reaction of the file loop and the next append (each append its own burst)."""
    rest_s: float
    """How long the whole suite rests after every daemon's first heartbeat before its memory is read."""


QUICK_SUITE_SIZES = SuiteSizes(histories=(200, 1_000), loop_samples=3, gap_s=0.3, rest_s=1.0)
FULL_SUITE_SIZES = SuiteSizes(histories=(1_000, 10_000, 100_000), loop_samples=20, gap_s=0.6, rest_s=20.0)


# ------------------------------------------------------------------------------------------------ homes


@dataclass(frozen=True)
class Home:
    folder: Path
    cfg: Config
    env: dict[str, str]


@contextmanager
def scratch_home(prefix: str) -> Iterator[Home]:
    """A temporary home with the benchmark's configuration, in force for this process too while it is open
    (``$RL_SYSTEM_HOME`` wins over a configuration's home, so it is pointed here and put back afterwards)."""
    previous = os.environ.get("RL_SYSTEM_HOME")
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        folder = Path(tmp)
        config = folder / "rl_system.toml"
        config.write_text(CONFIG)
        env = {**os.environ, "RL_SYSTEM_HOME": str(folder), "RL_SYSTEM_CONFIG": str(config),
               "PYTHONPATH": str(REPO_ROOT)}
        os.environ["RL_SYSTEM_HOME"] = str(folder)
        try:
            home = Home(folder, config_from_dict({"paths": {"home": str(folder)}}), env)
            home.cfg.state_dir.mkdir(parents=True, exist_ok=True)
            yield home
        finally:
            if previous is None:
                os.environ.pop("RL_SYSTEM_HOME", None)
            else:
                os.environ["RL_SYSTEM_HOME"] = previous


def run(home: Home, args: list[str]) -> float:
    """Run ``python ARGS`` in the home; returns its wall time. RuntimeError (with its output) when it fails."""
    started = time.perf_counter()
    done = subprocess.run([PYTHON, *args], cwd=REPO_ROOT, env=home.env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=900)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {tail[0]}")
    return seconds


def trade_row(closed: datetime, i: int) -> dict[str, Any]:
    """A trade closing at ``closed``; ``i`` picks its strategy and return (deterministic)."""
    pct = ((i * 7919) % 201 - 100) / 10_000.0  # -1 % .. +1 %, spread over the strategies
    return {"closed_at": closed.isoformat(), "opened_at": (closed - timedelta(hours=1)).isoformat(),
            "symbol": "BTC/USDT", "strategy": STRATEGIES[i % len(STRATEGIES)], "side": "long", "qty": 1.0,
            "entry_price": 100.0, "exit_price": 100.0 * (1 + pct), "pnl": pct * 100.0, "pnl_pct": pct,
            "fees": 0.1, "equity_after": 10_000.0}


def write_history(home: Home, count: int) -> None:
    """The home's history: ``count`` trades every 30 minutes, the last an hour ago (appended in batches)."""
    last = datetime.now(timezone.utc) - timedelta(hours=1)
    first = last - (count - 1) * TRADE_EVERY
    for start in range(0, count, 10_000):
        append_trades(history_path(home.cfg), [trade_row(first + i * TRADE_EVERY, i)
                                               for i in range(start, min(count, start + 10_000))])


# ------------------------------------------------------------------------------------------ the file loop


def file_loop_rows(sizes: SuiteSizes, progress: Any) -> list[Row]:
    """The file loop with the smallest and the largest history."""
    rows = []
    for key, trades in (("file_loop_small", sizes.histories[0]), ("file_loop_large", sizes.histories[-1])):
        progress(f"file loop with {trades:,} trades")
        result = bench_daemons.reaction_latency(trades, samples=sizes.loop_samples, gap_s=sizes.gap_s,
                                                progress=progress)
        rows.append(file_loop_row(key, result))
    return rows


def file_loop_row(key: str, result: dict[str, Any]) -> Row:
    """p50/p99 of the loop (nearest rank, a timeout counted as the timeout) against the seed's 5-minute poll;
    goal p99 < 0.5 s with no timeout."""
    p50, p99, timeouts = float(result["p50_s"]), float(result["p99_s"]), int(result["timeouts"])
    met = p99 < LOOP_GOAL_S and timeouts == 0
    note = ""
    if timeouts:
        note = (f"{timeouts} of {result['samples']} appends got no update within "
                f"{bench_daemons.REACTION_TIMEOUT_S:g} s")
    elif not met:
        note = f"p99 {p99:.2f} s"
    return Row(key, f"trade appended -> allocations file updated (inference + bridge running), "
                    f"{int(result['trades']):,}-trade history, {result['samples']} appends (p50, p99)",
               "seed: 5 min poll", SEED_POLL_S, "300 s", p99, f"p50 {seconds_text(p50)}, p99 {seconds_text(p99)}",
               "s", ratio(p99, SEED_POLL_S, higher_is_better=False), f"p99 < {LOOP_GOAL_S:g} s", met, note)


# -------------------------------------------------------------------------------------- reaction cost


def reaction_times(home: Home, repeats: int) -> tuple[float, float]:
    """Median whole-process seconds of ``rl_inference.py --update`` and ``rl_performance.py --report``."""
    update = [run(home, ["ai/rl_inference.py", "--update"]) for _ in range(repeats)]
    report = [run(home, ["analytics/rl_performance.py", "--report"]) for _ in range(repeats)]
    return median(update), median(report)


def reaction_row(key: str, command: str, sizes: tuple[int, ...], seconds: list[float]) -> Row:
    """One command's times by history size; goal: the largest history within 1.5x of the smallest's time."""
    growth = seconds[-1] / seconds[0]
    text = " / ".join(f"{s:.2f}" for s in seconds) + " s (" + " / ".join(_count(n) for n in sizes) + " trades)"
    met = growth <= 1.5
    return Row(key, f"`{command}` as the history grows (whole process)", "-", None, "-", seconds[-1], text, "s",
               None, "reaction cost independent of history length (largest within 1.5x of smallest)", met,
               "" if met else f"{growth:.1f}x from {_count(sizes[0])} to {_count(sizes[-1])} trades")


def _count(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def reaction_rows(sizes: SuiteSizes, repeats: int, progress: Any) -> list[Row]:
    """The reaction cost at every history size (a home each, sharing one model trained on the smallest)."""
    updates: list[float] = []
    reports: list[float] = []
    with scratch_home("bench-model-") as first:
        write_history(first, sizes.histories[0])
        progress(f"training a small strategy-weight model on {sizes.histories[0]:,} trades")
        run(first, ["ai/rl_trainer.py", "--train"])
        model = model_dir(first.cfg)
        for size in sizes.histories:
            with scratch_home("bench-history-") as home:
                write_history(home, size)
                shutil.copytree(model, model_dir(home.cfg))
                progress(f"reaction cost with {size:,} trades")
                update_s, report_s = reaction_times(home, repeats)
            updates.append(update_s)
            reports.append(report_s)
    return [reaction_row("reaction_update", "rl_inference.py --update", sizes.histories, updates),
            reaction_row("reaction_report", "rl_performance.py --report", sizes.histories, reports)]


def history_rows(sizes: SuiteSizes, repeats: int, progress: Any) -> list[Row]:
    """The file loop with the smallest and the largest history, then the reaction cost at every size."""
    return [*file_loop_rows(sizes, progress), *reaction_rows(sizes, repeats, progress)]


# ------------------------------------------------------------------------------------------------ memory


DAEMON_NAMES = tuple(spec.name for spec in rl_system.DAEMONS)
MEMORY_KEYS = (*(f"rss_{name}" for name in DAEMON_NAMES), "rss_total")


def memory_rows(sizes: SuiteSizes, progress: Any) -> list[Row]:
    """RSS of every daemon of the whole suite at rest and the suite's total."""
    memory = bench_daemons.suite_memory(trades=sizes.histories[0], settle_s=sizes.rest_s, progress=progress)
    rss: dict[str, float] = {name: mb for name, mb in memory["rss_mb"].items() if mb is not None}
    rows = [_memory_row(name, rss.get(name)) for name in DAEMON_NAMES]
    total = sum(rss.values())
    missing = [name for name in DAEMON_NAMES if name not in rss]
    note = f"{total - SUITE_GOAL_MB:.0f} MB over" if total >= SUITE_GOAL_MB else ""
    if missing:
        note = (note + "; " if note else "") + f"not running: {', '.join(missing)}"
    rows.append(Row("rss_total", f"memory at rest: whole suite ({len(rss)} daemons)", "-", None, "-", total,
                    f"{total:.0f} MB", "MB", None, "< 1 GB (1,024 MB)", total < SUITE_GOAL_MB and not missing,
                    note))
    return rows


def _memory_row(name: str, mb: float | None) -> Row:
    goal = DAEMON_GOALS_MB.get(name)
    met = at_most(mb, goal) if goal else None
    if mb is None:
        note = "daemon not running"
    elif met is False and goal is not None:
        note = f"{mb - goal:.0f} MB over"
    else:
        note = ""
    return Row(f"rss_{name}", f"memory at rest: `{name}` (RSS)", "-", None, "-", mb,
               "not running" if mb is None else f"{mb:.0f} MB", "MB", None,
               f"< {goal:.0f} MB" if goal else "part of the suite's < 1 GB", False if mb is None else met, note)
