"""Tests of :mod:`ai.sweeps.trading_trial`: in the synthetic market every symbol of a sweep has its own path
(the configured ones keep theirs), and a trial's metrics are those of its benchmark document."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ai.sweeps.trading_trial import run_trading_trial, trading_candles
from core.config import Config
from core.contracts.experiments import BENCHMARK_NAME
from tests.ai.sweeps.support import tiny_config, write_tiny


def test_each_symbol_of_a_sweep_has_its_own_synthetic_path(cfg: Config) -> None:
    sweep = ["SOL/USDT", "BNB/USDT", "ETH/USDT"]
    closes = {s: trading_candles(cfg, s, None, sweep).frame["close"].to_numpy() for s in sweep}
    assert not np.array_equal(closes["SOL/USDT"], closes["BNB/USDT"])
    alone = trading_candles(cfg, "ETH/USDT", None).frame["close"].to_numpy()
    assert np.array_equal(closes["ETH/USDT"], alone)  # a configured symbol keeps its place in the market


def test_the_metrics_are_the_benchmark_documents(tmp_path: Path) -> None:
    cfg = tiny_config(write_tiny(tmp_path))
    folder = tmp_path / "trial"
    folder.mkdir()
    metrics, checkpoint = run_trading_trial(cfg, "BTC/USDT", None, folder)
    doc = json.loads((folder / BENCHMARK_NAME).read_text())
    assert metrics["sharpe"] == doc["rl_v3_metrics"]["sharpe_ratio"]
    assert metrics["buy_hold_sharpe"] == doc["buy_hold_metrics"]["sharpe_ratio"]
    assert metrics["gate_passed"] is doc["gate"]["passed"] and doc["in_sample"] is False
    assert doc["model"]["path"] == checkpoint and Path(checkpoint).is_file()
    assert doc["train_window"]["end"] < doc["test_window"]["start"]
