"""A home filled by a short real run of the suite's commands, and the dashboard daemon as a process.

:func:`build_home` runs the commands a user runs (the paper trader's replay in two parts, the fallback sources,
the strategy-weight trainer and inference, the bridge, the performance tracker, Q-learning, the shadow daemon
and the benchmark), independent ones at the same time, so every panel has real data in about half a minute.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.config import REPO_ROOT

CONFIG = """
[strategy_agent]
episodes = 5
gate_confidence = 0.0  # the panel shows a promoted model; the gate itself is tested in tests/ai/allocation
[trading_agent]
bootstrap_episodes = 2
episode_length = 128
retrain_candles = 1000
[dashboard]
refresh = 0.5
"""
TIMEOUT = 240


@dataclass(frozen=True)
class SuiteHome:
    home: Path
    config: Path

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RL_DASHBOARD_TOKEN")}
        env.update(RL_SYSTEM_HOME=str(self.home), RL_SYSTEM_CONFIG=str(self.config), RL_SYSTEM_LOG_CONSOLE="0")
        return env

    def copy(self, to: Path) -> SuiteHome:
        """An independent copy (a test that changes files works on its own)."""
        to.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.home, to / "home", ignore=shutil.ignore_patterns("pids", "*.lock"))
        config = to / "rl_system.toml"
        shutil.copy(self.config, config)
        return SuiteHome(to / "home", config)


def run(suite: SuiteHome, *args: str) -> None:
    """One command of the suite, as a user runs it; an unexpected exit code fails with its output."""
    done = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=suite.env(), capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {done.returncode}: {(done.stdout + done.stderr)[-2000:]}")


def run_all(suite: SuiteHome, chains: Sequence[Sequence[str]]) -> None:
    """Independent chains of commands at the same time; the commands of a chain run in order."""
    with ThreadPoolExecutor(max_workers=len(chains)) as pool:
        for future in [pool.submit(_run_chain, suite, chain) for chain in chains]:
            future.result()


def _run_chain(suite: SuiteHome, chain: Sequence[str]) -> None:
    for command in chain:
        run(suite, *command.split())


def build_home(root: Path) -> SuiteHome:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "rl_system.toml"
    config.write_text(CONFIG)
    suite = SuiteHome(root / "home", config)
    suite.home.mkdir()
    run(suite, "agents/paper_trader.py", "--replay", "--speed", "0", "--max-candles", "1000")
    run_all(suite, [["analytics/portfolio_optimizer.py", "analytics/strategy_lab.py"],
                    ["ai/qlearning.py --once"], ["ai/rl_trainer.py --train --quiet"]])
    run(suite, "agents/weights_bridge.py", "--once")
    run(suite, "analytics/rl_performance.py", "--track")
    # The trader goes on from its saved state; the RL weights then take over.
    run(suite, "agents/paper_trader.py", "--replay", "--speed", "0", "--max-candles", "500")
    run_all(suite, [["ai/rl_inference.py --update", "agents/weights_bridge.py --once",
                     "analytics/rl_performance.py --track", "analytics/rl_performance.py --report"],
                    ["ai/shadow_ppo.py run --max-decisions 30", "ai/shadow_ppo.py benchmark --quiet"],
                    ["ai/qlearning.py --once"]])
    return suite


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 (loopback only)
        return bytes(answer.read())


@contextmanager
def dashboard_process(suite: SuiteHome, port: int, *extra: str) -> Iterator[subprocess.Popen[str]]:
    """``python scripts/dashboard.py --port PORT`` serving ``suite``'s home; stopped with SIGTERM at the end."""
    proc = subprocess.Popen([sys.executable, "scripts/dashboard.py", "--port", str(port), *extra], cwd=REPO_ROOT,
                            env=suite.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get(f"http://127.0.0.1:{port}/api/meta", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read() if proc.stdout else ""
                    raise AssertionError(f"the dashboard did not answer (exit {proc.poll()}): {out[-2000:]}") from None
                time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
