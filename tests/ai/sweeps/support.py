"""Helpers shared by the sweep tests: a configuration whose trials train in a fraction of a second, and a
runner of the sweep command that returns what it wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ai.sweeps.cli import main
from core.config import Config, load_config
from core.contracts.experiments import sweep_dir

TINY = """
[trading_agent]
position_size = 0.1
episode_length = 48
warmup_candles = 30
num_envs = 2
benchmark_episodes = 2
train_episodes = 4
lookback_hours = 300
gate_bootstrap_samples = 200

[trading_agent.ppo]
n_steps = 48
batch_size = 48
n_epochs = 1
hidden_sizes = [16, 16]

[strategy_agent]
episodes = 4
episode_length = 10
window_periods = 5
market_window_candles = 24
num_envs = 2
gate_bootstrap_samples = 200

[strategy_agent.ppo]
n_steps = 16
batch_size = 32
n_epochs = 2
hidden_sizes = [16, 16]
"""
TIMING_KEYS = ("wall_s", "finished_at", "checkpoint", "log_dir", "sweep")
"""Record keys that differ between two runs of the same trial (times, where it was written)."""


def write_tiny(folder: Path) -> Path:
    path = folder / "tiny.toml"
    path.write_text(TINY)
    return path


def tiny_config(path: Path) -> Config:
    return load_config(path)


def sweep(config: Path, *args: str) -> int:
    """``python ai/experiments.py --config CONFIG sweep ARGS --quiet``; returns the exit code."""
    return main(["--config", str(config), "sweep", *args, "--quiet"])


def records(cfg: Config, sweep_id: str) -> dict[str, dict[str, Any]]:
    """Every trial record of a sweep by trial name (envelope removed)."""
    out = {}
    for path in sorted(sweep_dir(cfg, sweep_id).glob("*/trial.json")):
        doc = json.loads(path.read_text())
        out[doc["trial"]] = {k: v for k, v in doc.items() if k not in ("schema_version", "generated_at", "producer")}
    return out


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A record without what legitimately differs between runs."""
    return {k: v for k, v in record.items() if k not in TIMING_KEYS}
