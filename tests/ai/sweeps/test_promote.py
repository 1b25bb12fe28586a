"""Tests of :mod:`ai.sweeps.promote`: a trial that fails the rollout gate is refused with exit 4 and nothing
changes; one that passes (its benchmark's gate marked passed) is installed where the daemon loads it, its
benchmark lets ``rollout`` go ahead, and its settings come back as a TOML overlay the configuration loads; a
strategy-weight trial on a history with an edge passes the trainer's gate and is promoted with its record."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from ai.allocation.agent import load_agent
from ai.sweeps.cli import main
from ai.trading.benchmark import rollout_blockers
from ai.trading.common import file_sha256
from core.config import config_from_dict
from core.contracts.experiments import sweep_dir
from core.contracts.pnl_history import append_trades, history_path
from core.contracts.trading_model import model_path
from core.contracts.training_log import read_training_records
from core.errors import ExitCode
from tests.ai.allocation.support import planted_trades
from tests.ai.sweeps.support import records, sweep, tiny_config, write_tiny


@pytest.fixture
def trading_trial(tmp_path: Path) -> tuple[Path, Path]:
    """A finished trading sweep of one trial: (config file, trial folder)."""
    config = write_tiny(tmp_path)
    assert sweep(config, "--symbols", "ETH/USDT", "--seeds", "0", "--backend", "sequential", "--id", "p",
                 "--grid", "ppo.learning_rate=0.001") == ExitCode.OK
    return config, sweep_dir(tiny_config(config), "p") / "ETH-USDT-seed0-g0"


def test_a_trial_that_fails_the_gate_is_refused_and_nothing_changes(
        trading_trial: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    config, folder = trading_trial
    cfg = tiny_config(config)
    benchmark = json.loads((folder / "benchmark.json").read_text())
    assert benchmark["gate"]["passed"] is False  # tiny training: the real gate says no
    assert main(["--config", str(config), "promote", "p", "ETH-USDT-seed0-g0"]) == ExitCode.NOT_PROMOTED
    err = capsys.readouterr().err
    failed = [k for k, v in benchmark["gate"].items() if isinstance(v, dict) and not v["passed"]]
    assert "refused" in err and "rollout gate" in err and failed and all(k in err for k in failed)
    assert len(err.strip().splitlines()) == 1
    assert not model_path(cfg).exists() and not (folder / "promoted.toml").exists()


def test_a_trial_past_the_gate_is_installed_with_its_benchmark_and_settings(
        trading_trial: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    config, folder = trading_trial
    cfg = tiny_config(config)
    benchmark = json.loads((folder / "benchmark.json").read_text())
    benchmark["gate"]["passed"] = True  # the passing case, constructed
    (folder / "benchmark.json").write_text(json.dumps(benchmark))
    assert main(["--config", str(config), "promote", "p", "ETH-USDT-seed0-g0"]) == ExitCode.OK
    assert "promoted" in capsys.readouterr().out
    assert model_path(cfg).read_bytes() == (folder / "model.pt").read_bytes()
    assert rollout_blockers(cfg) == []  # the published benchmark is of the installed model, out of sample
    overlay = tomllib.loads((folder / "promoted.toml").read_text())
    assert overlay == {"trading_agent": {"symbol": "ETH/USDT", "ppo": {"learning_rate": 0.001, "seed": 0}}}
    promoted = config_from_dict(overlay)
    assert promoted.trading_agent.ppo.learning_rate == 0.001 and promoted.trading_agent.symbol == "ETH/USDT"
    assert file_sha256(model_path(cfg)) == file_sha256(folder / "model.pt")


def test_an_unknown_trial_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_tiny(tmp_path)
    assert main(["--config", str(config), "promote", "nope", "BTC-USDT-seed0"]) == ExitCode.BAD_INPUT
    assert "no trial record" in capsys.readouterr().err


def test_a_strategy_weight_trial_passes_the_trainers_gate_and_is_promoted_with_a_record(tmp_path: Path) -> None:
    config = write_tiny(tmp_path)
    cfg = tiny_config(config)
    append_trades(history_path(cfg), planted_trades(0.01, days=60))
    assert sweep(config, "--agent", "allocation", "--symbols", "BTC/USDT", "--seeds", "1", "--backend",
                 "sequential", "--id", "alloc") == ExitCode.OK
    record = records(cfg, "alloc")["BTC-USDT-seed1"]
    assert record["metrics"]["gate_passed"] is True
    assert set(record["metrics"]) >= {"equal_weights_sharpe", "portfolio_optimizer_sharpe", "strategy_lab_sharpe"}
    assert main(["--config", str(config), "promote", "alloc", "BTC-USDT-seed1"]) == ExitCode.OK
    agent = load_agent(cfg)
    assert agent is not None and agent.model_version == 1
    logged = read_training_records(cfg)
    assert logged[-1]["promoted"] is True and logged[-1]["model_version"] == 1
    assert "BTC-USDT-seed1" in logged[-1]["reason"]
