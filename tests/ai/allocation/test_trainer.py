"""The ``rl_trainer`` command: refusal below the minimum of trades or without a history, configuration errors
named by key, the agent's own PPO defaults, and the performance gate (exit 4 without an edge, promotion with
a planted one, the model in force kept against a candidate that does not beat it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ai.allocation.inference import main as inference_main
from ai.allocation.inference import output_path as weights_output_path
from ai.allocation.trainer import main
from ai.allocation.training_data import prepare_training_data
from ai.allocation.validation import check_candidate
from core.config import Config, StrategyAgentConfig, load_config
from core.contracts.allocation_model import candidate_path, latest_path
from core.contracts.pnl_history import append_trades, history_path
from core.contracts.training_log import read_training_records
from core.errors import ConfigError, ExitCode

# Signatures of the helper fixtures of conftest.py.
WriteTrades = Callable[..., None]
PlantedTrades = Callable[..., list[dict[str, object]]]


def test_fewer_than_50_trades_is_refused_with_exit_3(write_trades: WriteTrades, cfg: Config,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    write_trades(cfg, 49)
    assert main(["--train", "--episodes", "1", "--quiet"]) == 3
    err = capsys.readouterr().err
    assert "49 closed trade(s)" in err and "at least 50" in err and "strategy_agent.min_trades" in err
    assert not (cfg.state_dir / "rl_model").exists()
    assert not (cfg.state_dir / "rl_training_log.json").exists()


def test_a_missing_history_is_refused_by_name(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--train", "--quiet"]) == 3
    err = capsys.readouterr().err
    assert "pnl_history.csv not found" in err and "paper trader" in err and len(err.strip().splitlines()) == 1


def test_a_bad_cron_expression_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[strategy_agent]\nretrain_cron = "0 99 * * *"\n')
    assert main(["--train", "--config", str(config)]) == 2
    assert "strategy_agent.retrain_cron" in capsys.readouterr().err


def test_a_partial_ppo_table_keeps_the_agents_own_defaults(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text("[strategy_agent]\nmin_trades = 20\n\n[strategy_agent.ppo]\nn_epochs = 3\n")
    acfg = load_config(config).strategy_agent
    assert acfg.min_trades == 20 and acfg.ppo.n_epochs == 3
    assert acfg.ppo.n_steps == StrategyAgentConfig().ppo.n_steps == 128  # not PPOConfig's 2048
    assert acfg.ppo.hidden_sizes == [64, 64] and acfg.retrain_cron == "0 3 * * 0"
    config.write_text("[strategy_agent]\nretrain_after_trades = 5\n")
    with pytest.raises(ConfigError, match="strategy_agent.retrain_after_trades"):
        load_config(config)
    config.write_text("[strategy_agent]\nholdout_fraction = 0.9\n")
    with pytest.raises(ConfigError, match="strategy_agent.holdout_fraction"):
        load_config(config)


GATED_TOML = """
[strategy_agent]
episodes = 300
episode_length = 20
window_periods = 5
market_window_candles = 24
num_envs = 2
gate_confidence = 0.9

[strategy_agent.ppo]
n_steps = 32
batch_size = 64
n_epochs = 4
hidden_sizes = [16, 16]
threads = 1
device = "cpu"
"""


def test_a_candidate_without_an_edge_is_refused_with_exit_4_and_nothing_is_published(
        planted_trades: PlantedTrades, cfg: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "gated.toml"
    config.write_text(GATED_TOML)
    append_trades(history_path(cfg), planted_trades(edge=0.0))
    assert main(["--train", "--quiet", "--config", str(config)]) == ExitCode.NOT_PROMOTED
    err = capsys.readouterr().err
    assert "not promoted" in err and "does not beat equal weights with 90% confidence" in err
    assert not latest_path(cfg).exists() and candidate_path(cfg).exists()  # kept for inspection only
    (record,) = read_training_records(cfg)
    assert record["promoted"] is False and "strategy_agent.gate_confidence" in record["reason"]
    gate = record["holdout"]["gate"]["equal weights"]
    assert gate["positive"] is False and gate["lower"] <= 0 and gate["confidence"] == 0.9
    # Without a model, inference publishes nothing, so the weights bridge falls through to the optimizer/lab.
    assert inference_main(["--update", "--config", str(config)]) == ExitCode.NOT_READY
    assert not weights_output_path(cfg).exists()


def test_a_candidate_with_a_planted_edge_is_promoted_and_must_then_beat_the_model_in_force(
        planted_trades: PlantedTrades, cfg: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "gated.toml"
    config.write_text(GATED_TOML)
    append_trades(history_path(cfg), planted_trades(edge=0.01))
    assert main(["--train", "--quiet", "--config", str(config)]) == ExitCode.OK
    record = read_training_records(cfg)[-1]
    assert record["promoted"] is True and "beats equal weights with 90% confidence" in record["reason"]
    gate = record["holdout"]["gate"]["equal weights"]
    assert gate["positive"] is True and gate["lower"] > 0
    assert record["holdout"]["model"]["sharpe"] > record["holdout"]["equal_weights"]["sharpe"]
    promoted = latest_path(cfg).read_bytes()
    # A barely trained candidate (one episode: close to equal weights) may still beat equal weights, but not the
    # model in force that found the edge: refused, and the model in force stays.
    assert main(["--train", "--quiet", "--episodes", "1", "--config", str(config)]) == ExitCode.NOT_PROMOTED
    second = read_training_records(cfg)[-1]
    assert second["promoted"] is False and second["holdout"]["current_model"]["model_version"] == 1
    assert latest_path(cfg).read_bytes() == promoted
    # The model in force itself as the candidate beats equal weights but not the model in force (a difference of
    # exactly 0): a retrained model must be better than the one it replaces, not merely as good.
    loaded = load_config(config)
    check = check_candidate(latest_path(cfg), prepare_training_data(loaded), loaded.strategy_agent, latest_path(cfg))
    assert not check.ok and "does not beat the current model (version 1)" in check.reason
    assert check.holdout["gate"]["equal weights"]["positive"] is True


def test_train_with_tensorboard_writes_event_files_beside_the_model(planted_trades: PlantedTrades, cfg: Config,
                                                                   tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tmp_path / "board.toml"
    config.write_text(GATED_TOML.replace("episodes = 300", "episodes = 4").replace("gate_confidence = 0.9",
                                                                                  "gate_confidence = 0.0"))
    append_trades(history_path(cfg), planted_trades(edge=0.01))
    assert main(["--train", "--quiet", "--tensorboard", "--config", str(config)]) == ExitCode.OK
    runs = list((latest_path(cfg).parent / "tensorboard").iterdir())
    assert len(runs) == 1
    events = EventAccumulator(str(runs[0]))
    events.Reload()
    rows = (latest_path(cfg).parent / "training_metrics.csv").read_text().splitlines()[1:]
    assert [s.step for s in events.Scalars("ppo/value_loss")] == [int(row.split(",")[1]) for row in rows] != []
