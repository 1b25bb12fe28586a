"""Fixtures of the trading agent's tests: a tiny configuration and helpers shared by several test modules."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ai.trading.cli import main
from core.atomic import publish_json
from core.config import Config, load_config
from market.synthetic import generate_market

TINY = """
[trading_agent]
position_size = 0.1
episode_length = 48
warmup_candles = 30
num_envs = 2
bootstrap_episodes = 2
retrain_candles = 300
retrain_episodes = 2
benchmark_episodes = 2
poll_interval_s = 0.1
replay_lead_candles = 0

[trading_agent.ppo]
n_steps = 48
batch_size = 48
n_epochs = 1
hidden_sizes = [16, 16]
threads = 1
device = "cpu"
"""


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    monkeypatch.setenv("RL_SYSTEM_CONFIG", str(path))
    return path


@pytest.fixture
def tcfg(tiny: Path) -> Config:
    return load_config(tiny)


def _write_binance_csv(path: Path, n: int = 360, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """A Binance kline export (12 columns, no header, open times in ms); returns (open times, closes)."""
    rng = np.random.default_rng(seed)
    closes = np.round(30_000 * np.exp(np.cumsum(rng.normal(0.0002, 0.008, n))), 2)
    opens = np.concatenate([[30_000.0], closes[:-1]])
    times = 1_704_067_200_000 + np.arange(n, dtype=np.int64) * 3_600_000
    with open(path, "w") as fh:
        for t, o, c in zip(times, opens, closes, strict=True):
            high, low = max(o, c) * 1.002, min(o, c) * 0.998
            volume = float(rng.uniform(5, 50))
            fh.write(f"{t},{o:.2f},{high:.2f},{low:.2f},{c:.2f},{volume:.4f},{t + 3_599_999},"
                     f"{volume * c:.2f},{rng.integers(50, 500)},{volume / 2:.4f},{volume * c / 2:.2f},0\n")
    return times, closes


def _run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    try:
        return code, json.loads(out), err
    except json.JSONDecodeError:
        return code, out, err


def _set_trader(cfg: Config, ts: int) -> None:
    publish_json(cfg.runtime_dir / "trader_status.json", "paper_trader",
                 {"symbol": "BTC/USDT", "timeframe": "1h", "last_candle": {"timestamp": ts}, "equity": 10_000.0})


@pytest.fixture
def write_binance_csv() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """``write_binance_csv(path, n=360, seed=5)``: a Binance kline export; returns (open times, closes)."""
    return _write_binance_csv


@pytest.fixture
def run_cli() -> Callable[..., tuple[int, Any, str]]:
    """``run_cli(capsys, *argv)``: run the command; returns (exit code, parsed JSON or text output, stderr)."""
    return _run_cli


@pytest.fixture
def set_trader() -> Callable[[Config, int], None]:
    """``set_trader(cfg, ts)``: publish a fresh trader status whose last candle opened at ``ts``."""
    return _set_trader



@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    """700 synthetic hourly candles of one symbol."""
    return generate_market(["BTC/USDT"], n_candles=700, seed=7).candles["BTC/USDT"]
