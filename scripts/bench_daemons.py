"""Daemon benchmarks: how fast the file loop answers a new trade, how long one prediction takes, and how much
memory each daemon holds at rest.

    python scripts/bench_daemons.py                                # all three, with 1k and 100k trades
    python scripts/bench_daemons.py --only reaction --trades 1000 --samples 60 --json

``reaction``: a throwaway home with ``--trades`` closed trades (a year of them, ending now) and a small trained
strategy-weight model; ``rl_inference --loop`` and ``weights_bridge --watch`` run as real processes; one trade
at a time is appended and the time until ``runtime/allocations_override.json`` changes is measured.
``prediction``: one observation at a time through the trading agent's policy and the strategy-weight agent's
policy, numpy forward pass against the torch network of the same weights. ``memory``: the whole suite is
started in a throwaway home (``scripts/rl_system.py start``), left to settle, and each daemon's resident memory
is read from ``/proc/<pid>/status``.

The functions (:func:`reaction_latency`, :func:`prediction_latency`, :func:`suite_memory`, :func:`daemon_rss`)
return plain dicts for other benchmark commands. Exit codes: 0 done, 1 a measurement failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from core.config import STRATEGIES, Config, load_config
from core.contracts.pnl_history import append_trades, history_path
from core.contracts.weights import allocations_path, read_weights
from core.daemon import pid_path
from core.errors import ExitCode
from core.supervisor import alive, rss_bytes

REPO = Path(__file__).resolve().parents[1]
Progress = Callable[[str], None]
BENCH_CONFIG = """
[strategy_agent]
episodes = 2
episode_length = 10
num_envs = 2
gate_confidence = 0.0

[strategy_agent.ppo]
n_steps = 16
batch_size = 32
n_epochs = 2
hidden_sizes = [64, 64]

[dashboard]
port = 0
"""
"""A model that trains in seconds (the dashboard on any free port, so a running suite's port is never taken): the benchmark measures the file loop, not the quality of the weights."""
REACTION_TIMEOUT_S = 10.0
"""A reaction slower than this counts as this long (and as a timeout)."""


def _quiet(_: str) -> None:
    return None


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p99 and max of ``values`` (nearest-rank on the sorted values, so p99 is an observed value)."""
    data = np.sort(np.asarray(values, dtype=float))
    if data.size == 0:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan")}

    def rank(q: float) -> float:
        return float(data[min(data.size - 1, int(np.ceil(q * data.size)) - 1)])

    return {"p50": rank(0.50), "p99": rank(0.99), "max": float(data[-1])}


# ---------------------------------------------------------------------------------------------- homes


def trade_rows(n: int, days: float = 365.0, seed: int = 0, end: float | None = None) -> list[dict[str, Any]]:
    """``n`` closed trades of the 8 strategies spread over ``days`` ending at ``end`` (epoch seconds; default now)."""
    rng = np.random.default_rng(seed)
    stop = (time.time() if end is None else end) - 60.0
    closes = np.sort(stop - rng.uniform(0.0, days * 86_400.0, n))
    pct = rng.normal(0.001, 0.01, n)
    names = rng.integers(0, len(STRATEGIES), n)
    return [_trade(float(t), float(p), STRATEGIES[int(s)]) for t, p, s in zip(closes, pct, names, strict=True)]


def _trade(closed_s: float, pct: float, strategy: str) -> dict[str, Any]:
    closed = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(closed_s)) + f".{int(closed_s * 1e6) % 1_000_000:06d}Z"
    opened = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(closed_s - 7200))
    return {"closed_at": closed, "opened_at": opened, "symbol": "BTC/USDT", "strategy": strategy, "side": "long",
            "qty": 0.01, "entry_price": 40_000.0, "exit_price": 40_000.0 * (1 + pct), "pnl": 400.0 * pct,
            "pnl_pct": pct, "fees": 0.4, "equity_after": 10_000.0}


def home_env(home: Path) -> dict[str, str]:
    """The environment that points commands at ``home`` and its configuration."""
    return {**os.environ, "RL_SYSTEM_HOME": str(home), "RL_SYSTEM_CONFIG": str(home / "rl_system.toml"),
            "RL_SYSTEM_LOG_CONSOLE": "0"}


def make_home(home: Path, trades: int, progress: Progress = _quiet, trading_model: bool = False) -> Config:
    """A home with ``trades`` closed trades and a trained strategy-weight model (and with ``trading_model`` a
    small trading model, so the shadow daemon starts at rest instead of training one); returns its configuration
    (call it inside :func:`pointing_at` so that this process's paths are the home's too)."""
    (home / "state").mkdir(parents=True, exist_ok=True)
    (home / "rl_system.toml").write_text(BENCH_CONFIG)
    cfg = load_config(home / "rl_system.toml")
    progress(f"writing {trades} trades")
    append_trades(history_path(cfg), trade_rows(trades))
    progress("training a small strategy-weight model")
    done = subprocess.run([sys.executable, "-m", "ai.allocation.trainer", "--train", "--quiet"], cwd=REPO,
                          env=home_env(home), capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"training the benchmark model failed: {done.stderr.strip()[-400:]}")
    if trading_model:
        progress("training a small trading model")
        done = subprocess.run([sys.executable, "-m", "ai.trading.cli", "train", "--episodes", "2", "--quiet"],
                              cwd=REPO, env=home_env(home), capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"training the benchmark trading model failed: {done.stderr.strip()[-400:]}")
    return cfg


@contextmanager
def pointing_at(home: Path) -> Iterator[None]:
    """This process's ``RL_SYSTEM_HOME`` and ``RL_SYSTEM_CONFIG`` name ``home`` for the duration."""
    saved = {k: os.environ.get(k) for k in ("RL_SYSTEM_HOME", "RL_SYSTEM_CONFIG")}
    os.environ.update({"RL_SYSTEM_HOME": str(home), "RL_SYSTEM_CONFIG": str(home / "rl_system.toml")})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def running(home: Path, *modules: tuple[str, ...]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The given ``python -m`` commands as processes for the duration; terminated and waited for afterwards."""
    procs = [subprocess.Popen([sys.executable, "-m", *argv], cwd=REPO, env=home_env(home),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for argv in modules]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ---------------------------------------------------------------------------------------------- reaction


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def _wait_change(path: Path, before: tuple[int, int] | None, timeout_s: float) -> float | None:
    """Seconds until ``path`` is replaced or rewritten (polled every millisecond), None after ``timeout_s``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if _signature(path) != before:
            return time.monotonic() - start
        time.sleep(0.001)
    return None


def _wait_for_rl_allocations(cfg: Config, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        doc = read_weights(allocations_path(cfg))
        if doc.ok and doc.data is not None and doc.data.get("source") == "rl":
            return
        time.sleep(0.05)
    raise RuntimeError(f"{allocations_path(cfg)} did not follow the RL weights within {timeout_s:.0f}s")


def reaction_latency(trades: int, samples: int = 40, folder: Path | None = None, gap_s: float = 0.6,
                     progress: Progress = _quiet) -> dict[str, Any]:
    """Seconds from a trade appended to the allocations file changed, with inference and bridge running.

    Each sample appends one trade closing now, with a return large enough to move the weights, ``gap_s`` after
    the previous reaction (so every sample is its own burst). Returns p50/p99/max, the samples and timeouts.
    """
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        home = Path(tmp) / "home"
        with pointing_at(home):
            return _reactions(make_home(home, trades, progress), home, trades, samples, gap_s, progress)


def _reactions(cfg: Config, home: Path, trades: int, samples: int, gap_s: float, progress: Progress) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    seconds: list[float] = []
    timeouts = 0
    progress("starting rl_inference and weights_bridge")
    with running(home, ("ai.allocation.inference", "--loop"), ("agents.weights_bridge", "--watch")):
        _wait_for_rl_allocations(cfg, timeout_s=120.0)
        time.sleep(1.0)  # let the start-up evaluations settle
        for i in range(samples):
            before = _signature(allocations_path(cfg))
            name = STRATEGIES[i % len(STRATEGIES)]
            append_trades(history_path(cfg), [_trade(time.time(), float(rng.choice([-1, 1]) * 0.05), name)])
            took = _wait_change(allocations_path(cfg), before, REACTION_TIMEOUT_S)
            timeouts += took is None
            seconds.append(REACTION_TIMEOUT_S if took is None else took)
            progress(f"{trades} trades: sample {i + 1}/{samples}: {seconds[-1] * 1000:.0f} ms")
            time.sleep(gap_s)
    return {"trades": trades, "samples": samples, "timeouts": timeouts,
            **{f"{k}_s": v for k, v in percentiles(seconds).items()}, "seconds": seconds}


# ---------------------------------------------------------------------------------------------- prediction


def prediction_latency(samples: int = 20_000, folder: Path | None = None) -> dict[str, Any]:
    """Milliseconds per single-observation prediction, numpy forward pass against torch, for the trading agent
    (``TradingModel.predict``, what the shadow daemon calls) and the strategy-weight agent (``weights_array``)."""
    import torch

    from ai.ppo import PPO, ActionSpec
    from ai.ppo.numpy_policy import NumpyPolicy
    from ai.trading.account import N_ACTIONS
    from ai.trading.common import TradingModel
    from ai.trading.features import N_FEATURES
    from core.config import PPOConfig

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    result: dict[str, Any] = {"samples": samples}
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        for name, spec, dim in (("trading", ActionSpec("discrete", N_ACTIONS), N_FEATURES),
                                ("allocation", ActionSpec("simplex", len(STRATEGIES)), 42)):
            agent = PPO(None, PPOConfig(hidden_sizes=[64, 64], device="cpu", threads=1), action_spec=spec,
                        obs_dim=dim)
            path = agent.save(Path(tmp) / f"{name}.pt")
            numpy_policy, meta = NumpyPolicy.from_checkpoint(path)
            obs = rng.normal(size=(samples, dim)).astype(np.float32)
            fast: Callable[[np.ndarray], Any] = numpy_policy.predict
            slow: Callable[[np.ndarray], Any] = agent.policy.predict
            if name == "trading":
                fast = TradingModel(numpy_policy, meta, path, None).predict
                slow = TradingModel(agent.policy.eval(), meta, path, None).predict
            result[name] = {"numpy_ms": percentiles(_time_each(fast, obs)), "torch_ms": percentiles(_time_each(slow, obs))}
    return result


def _time_each(func: Callable[[np.ndarray], Any], observations: np.ndarray) -> list[float]:
    for obs in observations[:200]:
        func(obs)  # warm-up: caches, lazy initialisation
    times = []
    clock = time.perf_counter
    for obs in observations:
        start = clock()
        func(obs)
        times.append((clock() - start) * 1000.0)
    return times


# ---------------------------------------------------------------------------------------------- memory


def daemon_rss(cfg: Config) -> dict[str, int | None]:
    """Resident memory (bytes) of each daemon with a pid file in ``runtime/pids/`` (written by the start
    command and the supervisor); None for one whose process is gone. The supervisor itself is left out."""
    rss: dict[str, int | None] = {}
    for pid_file in sorted(pid_path(cfg, "supervisor").parent.glob("*.pid")):
        if pid_file.stem == "supervisor":
            continue
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
        rss[pid_file.stem] = rss_bytes(pid) if alive(pid) else None
    return rss


def suite_memory(trades: int = 1000, settle_s: float = 30.0, folder: Path | None = None,
                 progress: Progress = _quiet) -> dict[str, Any]:
    """Start the whole suite in a throwaway home with a trained model, wait ``settle_s`` after every daemon has
    written its heartbeat, and read each daemon's resident memory (MB) and the total."""
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        home = Path(tmp) / "home"
        with pointing_at(home):
            rss = _suite_rss(make_home(home, trades, progress, trading_model=True), home, settle_s, progress)
    mb = {name: (None if value is None else round(value / 2**20, 1)) for name, value in rss.items()}
    return {"rss_mb": mb, "total_mb": round(sum(v for v in mb.values() if v is not None), 1),
            "not_running": [name for name, value in mb.items() if value is None]}


def _suite_rss(cfg: Config, home: Path, settle_s: float, progress: Progress) -> dict[str, int | None]:
    env, script = home_env(home), str(REPO / "scripts" / "rl_system.py")
    progress("starting the suite")
    subprocess.run([sys.executable, script, "start"], cwd=REPO, env=env, capture_output=True, timeout=300)
    try:
        time.sleep(settle_s)
        rss = daemon_rss(cfg)
    finally:
        subprocess.run([sys.executable, script, "stop"], cwd=REPO, env=env, capture_output=True, timeout=120)
    return rss


# ---------------------------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench_daemons",
        description="Measure the daemons: reaction of the file loop to a new trade (p50/p99), single-observation "
                    "prediction time (numpy against torch) and resident memory of each daemon at rest.")
    parser.add_argument("--only", choices=("reaction", "prediction", "memory"), action="append",
                        help="run only this measurement (repeatable; default: all three)")
    parser.add_argument("--trades", type=int, nargs="+", default=[1000, 100_000], metavar="N",
                        help="history sizes of the reaction measurement (default: 1000 100000)")
    parser.add_argument("--samples", type=int, default=40, help="trades appended per history size (default: 40)")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds the suite settles before RSS is read")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON document")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    wanted = set(args.only or ("reaction", "prediction", "memory"))
    say: Progress = _quiet if args.json else (lambda text: print(f"  {text}", file=sys.stderr, flush=True))
    results: dict[str, Any] = {}
    try:
        if "prediction" in wanted:
            results["prediction"] = prediction_latency()
        if "reaction" in wanted:
            results["reaction"] = [reaction_latency(n, args.samples, progress=say) for n in args.trades]
        if "memory" in wanted:
            results["memory"] = suite_memory(settle_s=args.settle, progress=say)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"bench_daemons: error: {exc}", file=sys.stderr)
        return ExitCode.FAILURE
    print(json.dumps(results, indent=2) if args.json else render(results))
    return ExitCode.OK


def render(results: dict[str, Any]) -> str:
    """The results as short Markdown tables."""
    lines = []
    for name, row in (results.get("prediction") or {}).items():
        if isinstance(row, dict):
            lines.append(f"| prediction {name} | numpy p50 {row['numpy_ms']['p50']:.4f} ms, p99 "
                         f"{row['numpy_ms']['p99']:.4f} ms | torch p50 {row['torch_ms']['p50']:.4f} ms, p99 "
                         f"{row['torch_ms']['p99']:.4f} ms |")
    for row in results.get("reaction") or []:
        lines.append(f"| trade -> allocations, {row['trades']} trades | p50 {row['p50_s']:.3f} s, p99 "
                     f"{row['p99_s']:.3f} s, max {row['max_s']:.3f} s | {row['samples']} samples, "
                     f"{row['timeouts']} timeouts |")
    memory = results.get("memory")
    if memory:
        parts = ", ".join(f"{name} {mb if mb is not None else '-'} MB" for name, mb in memory["rss_mb"].items())
        lines.append(f"| RSS at rest | {parts} | total {memory['total_mb']} MB |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

