"""Helpers shared by the strategy-weight agent's tests: trade rows of the 8 strategies, a writer of them into
the history, planted-edge trades, a configuration that trains in seconds (conftest.py gives them as
fixtures), and a daemon run as its own process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.config import STRATEGIES, Config, PPOConfig, replace_section
from core.contracts.pnl_history import append_trades, history_path

REPO = Path(__file__).resolve().parents[3]
START = pd.Timestamp("2024-01-02", tz="UTC")
FAST_PPO_SETTINGS: dict[str, Any] = {"n_steps": 16, "batch_size": 32, "n_epochs": 2, "hidden_sizes": [16, 16],
                                     "threads": 1, "device": "cpu"}
FAST_PPO = PPOConfig(**FAST_PPO_SETTINGS)
# Random trades have no edge, so the performance gate would refuse every candidate: the tests of training,
# promotion mechanics and inference turn it off; the gate's own tests (test_validation.py) turn it on.
FAST_AGENT: dict[str, Any] = {"episodes": 2, "episode_length": 10, "window_periods": 5,
                              "market_window_candles": 24, "num_envs": 2, "gate_confidence": 0.0}


def trade_rows(n: int, seed: int = 0, start: pd.Timestamp = START, days: float = 30) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = []
    for hours in np.sort(rng.uniform(0, days * 24, n)):
        closed = start + pd.Timedelta(hours=float(hours))
        pct = float(rng.normal(0.001, 0.01))
        rows.append({"closed_at": closed.isoformat(), "opened_at": (closed - pd.Timedelta(hours=2)).isoformat(),
                     "symbol": "BTC/USDT", "strategy": STRATEGIES[int(rng.integers(0, 8))], "side": "long",
                     "qty": 0.01, "entry_price": 40_000.0, "exit_price": 40_000.0 * (1 + pct), "pnl": 400.0 * pct,
                     "pnl_pct": pct, "fees": 0.4, "equity_after": 10_000.0})
    return rows


def write_trades(cfg: Config, n: int, seed: int = 0, start: pd.Timestamp = START, days: float = 30) -> None:
    append_trades(history_path(cfg), trade_rows(n, seed, start, days))


def planted_trades(edge: float, days: int = 120, seed: int = 0) -> list[dict[str, Any]]:
    """Two trades a day per strategy, N(0, 1 %) each, except turtle_trading whose mean is ``edge``."""
    rng = np.random.default_rng(seed)
    start = START
    rows = []
    for day in range(days):
        for name in STRATEGIES:
            for _ in range(2):
                closed = start + pd.Timedelta(days=day, hours=float(rng.uniform(1, 23)))
                pct = float(rng.normal(edge if name == "turtle_trading" else 0.0, 0.01))
                rows.append({"closed_at": closed.isoformat(), "opened_at": (closed - pd.Timedelta(hours=1)).isoformat(),
                             "symbol": "BTC/USDT", "strategy": name, "side": "long", "qty": 1.0,
                             "entry_price": 100.0, "exit_price": 100.0 * (1 + pct), "pnl": pct, "pnl_pct": pct,
                             "fees": 0.0, "equity_after": 10_000.0})
    return sorted(rows, key=lambda r: str(r["closed_at"]))


def fast(cfg: Config, **changes: Any) -> Config:
    """``cfg`` with an agent that trains in seconds (plus ``changes`` to ``[strategy_agent]``)."""
    return replace_section(cfg, "strategy_agent", **{**FAST_AGENT, "ppo": FAST_PPO, **changes})


def fast_toml(**changes: Any) -> str:
    """The settings of :func:`fast` as a configuration file, for a daemon run as its own process."""
    agent = "\n".join(f"{key} = {json.dumps(value)}" for key, value in {**FAST_AGENT, **changes}.items())
    ppo = "\n".join(f"{key} = {json.dumps(value)}" for key, value in FAST_PPO_SETTINGS.items())
    return f"[strategy_agent]\n{agent}\n\n[strategy_agent.ppo]\n{ppo}\n"


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds (a file not written yet, or half a document, counts as not yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout}s")


@contextmanager
def daemon_process(out: Path, module: str, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m module args...`` from the repository root, its output into ``out``; on leaving, SIGTERM and
    its exit within 20 s (``returncode``; killed when it does not exit)."""
    with open(out, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, env=os.environ.copy(),
                                stdout=sink, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
