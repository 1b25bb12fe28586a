"""The ``rl_trainer`` command: refusal below the minimum of trades or without a history, configuration errors
named by key, the agent's own PPO defaults."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ai.allocation.trainer import main
from core.config import Config, StrategyAgentConfig, load_config
from core.errors import ConfigError

# Signatures of the helper fixtures of conftest.py.
WriteTrades = Callable[..., None]


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
