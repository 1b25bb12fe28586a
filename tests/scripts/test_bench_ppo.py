"""Tests of scripts/bench_ppo.py: the hint without stable-baselines3, SB3 settings equal to the config."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from core.config import PPOConfig

REPO = Path(__file__).resolve().parents[2]


def _load_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_ppo", REPO / "scripts" / "bench_ppo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_without_stable_baselines3_says_how_to_install(monkeypatch, capsys) -> None:
    bench = _load_bench()
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)  # makes the import fail
    assert bench.main(["--total-steps", "64"]) == 2
    assert ".venv/bin/pip install stable-baselines3" in capsys.readouterr().err


def test_bench_sb3_settings_mirror_the_config() -> None:
    bench = _load_bench()
    cfg = PPOConfig(learning_rate=1e-3, n_steps=32, batch_size=256, clip_range_vf=0.0, hidden_sizes=[64, 64])
    kwargs = bench.sb3_kwargs(cfg)
    assert kwargs["learning_rate"](0.5) == pytest.approx(5e-4)
    assert kwargs["clip_range_vf"] is None and kwargs["target_kl"] is None
    assert (kwargs["n_steps"], kwargs["batch_size"], kwargs["n_epochs"]) == (32, 256, 10)
    assert kwargs["policy_kwargs"]["net_arch"] == {"pi": [64, 64], "vf": [64, 64]}
