"""Tests of :mod:`ai.sweeps.trial`: the trial's configuration (file, then settings, then seed and one thread),
and a trial that fails returns a record instead of raising."""

from __future__ import annotations

from pathlib import Path

from ai.sweeps.spec import TrialSpec
from ai.sweeps.trial import merge, run_trial, trial_config


def spec(tmp_path: Path, **changes: object) -> TrialSpec:
    values: dict[str, object] = {
        "sweep": "s", "name": "BTC-USDT-seed7", "agent": "trading", "symbol": "BTC/USDT", "seed": 7,
        "settings": {"ppo.learning_rate": 0.002, "reward_drawdown": 0.25},
        "base": {"trading_agent": {"ppo": {"n_epochs": 3, "learning_rate": 0.1}}, "costs": {"fee": 0.002}},
        "folder": str(tmp_path / "trial"), "home": str(tmp_path / "home"), **changes}
    return TrialSpec(**values)  # type: ignore[arg-type]


def test_merge_keeps_both_sides_key_by_key() -> None:
    assert merge({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": 3}, "c": 4}) == {"a": {"x": 1, "y": 3}, "b": 1, "c": 4}


def test_the_trial_config_is_the_file_then_the_settings_then_the_seed(tmp_path: Path) -> None:
    cfg = trial_config(spec(tmp_path))
    ppo = cfg.trading_agent.ppo
    assert (ppo.n_epochs, ppo.learning_rate, ppo.seed, ppo.threads, ppo.device) == (3, 0.002, 7, 1, "cpu")
    assert cfg.trading_agent.reward_drawdown == 0.25 and cfg.costs.fee == 0.002
    assert cfg.home == (tmp_path / "home").resolve()


def test_a_failing_trial_returns_a_failed_record(tmp_path: Path) -> None:
    record = run_trial(spec(tmp_path, settings={"ppo.n_steps": 0}))  # refused by the configuration's checks
    assert record["status"] == "failed" and record["checkpoint"] is None and record["metrics"] == {}
    assert record["error"] is not None and "n_steps" in record["error"]
    assert record["seed"] == 7 and record["symbol"] == "BTC/USDT" and record["wall_s"] >= 0
