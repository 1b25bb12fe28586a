"""core.config.ppo: PPO hyperparameters PPO cannot train with are refused at load, naming the full key."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.config import Config, PPOConfig, StrategyAgentConfig, TradingAgentConfig
from core.errors import ConfigError

REFUSED = [
    ("gamma", 1.5, "must be within [0, 1]"),
    ("gamma", -0.1, "must be within [0, 1]"),
    ("gae_lambda", 1.01, "must be within [0, 1]"),
    ("gae_lambda", -0.5, "must be within [0, 1]"),
    ("batch_size", 0, "must be > 0"),
    ("n_epochs", 0, "must be > 0"),
    ("n_steps", 0, "must be > 0"),
    ("clip_range", 0.0, "must be > 0"),
    ("clip_range", -0.2, "must be > 0"),
    ("learning_rate", 0.0, "must be > 0"),
    ("learning_rate", -3e-4, "must be > 0"),
    ("adam_eps", 0.0, "must be > 0"),
    ("simplex_min_concentration", 0.0, "must be > 0"),
    ("clip_range_vf", -0.1, "must be >= 0"),
    ("ent_coef", -0.01, "must be >= 0"),
    ("vf_coef", -1.0, "must be >= 0"),
    ("max_grad_norm", -0.5, "must be >= 0"),
    ("target_kl", -0.01, "must be >= 0"),
    ("threads", -1, "must be >= 0"),
    ("hidden_sizes", [], "must be a non-empty list of positive layer widths"),
    ("hidden_sizes", [64, 0], "must be a non-empty list of positive layer widths"),
    ("activation", "gelu", "must be one of tanh, relu"),
    ("device", "tpu", "must be one of auto, cpu, cuda or cuda:N"),
]


def toml_value(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


@pytest.mark.parametrize(("key", "value", "rule"), REFUSED)
@pytest.mark.parametrize("section", ["strategy_agent.ppo", "trading_agent.ppo"])
def test_bad_ppo_values_are_refused_at_load_naming_the_full_key_and_file(
    tmp_path: Path, section: str, key: str, value: object, rule: str, write_toml: Callable[..., Any],
    assert_config_error: Callable[..., Any],
) -> None:
    path = write_toml(tmp_path, f"[{section}]\n{key} = {toml_value(value)}\n")
    message = assert_config_error(path, f"{section}.{key} = {value!r}: {rule}")
    assert message.count(str(path)) == 1


@pytest.mark.parametrize(("key", "value", "rule"), REFUSED)
def test_bad_ppo_values_are_refused_on_construction(key: str, value: object, rule: str) -> None:
    with pytest.raises(ConfigError, match=f"ppo.{key} = ") as caught:
        dataclasses.replace(PPOConfig(), **{key: value})
    assert rule in str(caught.value)


def test_a_top_level_ppo_table_is_an_unknown_section(tmp_path: Path, write_toml: Callable[..., Any],
                                                     assert_config_error: Callable[..., Any]) -> None:
    # Each agent has its own PPO settings (strategy_agent.ppo, trading_agent.ppo); a shared [ppo] read by
    # neither would only mislead.
    assert_config_error(write_toml(tmp_path, "[ppo]\ngamma = 0.9\n"), "unknown key `ppo`")


@pytest.mark.parametrize(("key", "value"), [
    ("gamma", 0.0), ("gamma", 1.0), ("gae_lambda", 0.0), ("gae_lambda", 1.0), ("clip_range_vf", 0.0),
    ("max_grad_norm", 0.0), ("target_kl", 0.0), ("ent_coef", 0.0), ("threads", 0), ("device", "cuda:1"),
    ("activation", "relu"), ("hidden_sizes", [8]),
])
def test_edge_values_ppo_can_run_with_are_accepted(key: str, value: object) -> None:
    assert getattr(dataclasses.replace(PPOConfig(), **{key: value}), key) == value


def test_defaults_of_every_ppo_section_pass_their_own_checks() -> None:
    # The trading agent's PPO is the library's but for a short horizon (gamma) and one torch thread.
    trading = PPOConfig(gamma=0.5, threads=1)
    assert Config().trading_agent.ppo == trading and not hasattr(Config(), "ppo")
    assert StrategyAgentConfig().ppo.n_steps == 128 and TradingAgentConfig().ppo == trading
