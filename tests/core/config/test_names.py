"""The closed sets of names: exact members and order, no duplicates, one object re-exported, and each set is
exactly what the configuration accepts for its key (anything else is refused, naming the key)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

import core.config as config_package
from core.config import load_config, names

# The 8 strategies of the file contracts (weight files, pnl_history.csv `strategy`), in weight-vector order.
README_STRATEGIES = (
    "turtle_trading",
    "mean_reversion_rsi",
    "momentum_sma_crossover",
    "breakout_trading",
    "pairs_trading",
    "macd_momentum",
    "bollinger_bands",
    "vix_strategy",
)

EXPECTED = {
    "STRATEGIES": README_STRATEGIES,
    "DATA_SOURCES": ("synthetic", "csv", "ccxt"),
    "CALENDARS": ("crypto", "equity"),
    "LOG_LEVELS": ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
    "TRADER_MODES": ("replay", "live"),
    "OPTIMIZER_METHODS": ("inverse_vol", "erc"),
    "ACTIVATIONS": ("tanh", "relu"),
    "DEVICES": ("auto", "cpu", "cuda"),
}

# Which configuration key each set closes: (TOML section, key).
KEYS = {
    "DATA_SOURCES": ("market", "data_source"),
    "CALENDARS": ("market", "calendar"),
    "LOG_LEVELS": ("logging", "level"),
    "TRADER_MODES": ("trader", "mode"),
    "OPTIMIZER_METHODS": ("portfolio_optimizer", "method"),
    "ACTIVATIONS": ("strategy_agent.ppo", "activation"),
    "DEVICES": ("trading_agent.ppo", "device"),
}


def public_sets() -> dict[str, tuple[str, ...]]:
    return {name: value for name, value in vars(names).items() if name.isupper() and not name.startswith("_")}


def test_the_module_defines_exactly_the_expected_sets() -> None:
    assert set(public_sets()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_set_has_its_exact_members_in_order(name: str) -> None:
    value = getattr(names, name)
    assert isinstance(value, tuple), f"{name} must be immutable"
    assert value == EXPECTED[name]
    assert all(isinstance(item, str) and item == item.strip() and item for item in value)
    assert len(set(value)) == len(value), f"{name} has a duplicate"


def test_the_eight_strategies() -> None:
    assert len(names.STRATEGIES) == 8
    assert names.STRATEGIES == README_STRATEGIES
    assert all(s.isidentifier() and s == s.lower() for s in names.STRATEGIES)  # usable as TOML keys and columns


def test_the_strategies_match_the_strategy_functions() -> None:
    from agents.strategies import STRATEGY_FUNCS

    assert tuple(STRATEGY_FUNCS) == names.STRATEGIES
    assert all(func.__name__ == name for name, func in STRATEGY_FUNCS.items())


def test_the_package_reexports_the_same_objects() -> None:
    for name in ("STRATEGIES", "DATA_SOURCES", "CALENDARS", "LOG_LEVELS", "TRADER_MODES", "OPTIMIZER_METHODS"):
        assert getattr(config_package, name) is getattr(names, name)


def test_log_levels_are_logging_levels() -> None:
    for level in names.LOG_LEVELS:
        assert isinstance(logging.getLevelName(level), int), level


@pytest.mark.parametrize("name", sorted(KEYS))
def test_every_member_is_accepted_for_its_key(name: str, tmp_path: Path,
                                              write_toml: Callable[..., Path]) -> None:
    section, key = KEYS[name]
    for value in getattr(names, name):
        cfg = load_config(write_toml(tmp_path, f'[{section}]\n{key} = "{value}"\n'))
        holder = cfg
        for part in section.split("."):
            holder = getattr(holder, part)
        assert getattr(holder, key) == value


@pytest.mark.parametrize("name", sorted(KEYS))
def test_a_value_outside_the_set_is_refused_naming_the_key(
        name: str, tmp_path: Path, write_toml: Callable[..., Path],
        assert_config_error: Callable[..., str]) -> None:
    section, key = KEYS[name]
    path = write_toml(tmp_path, f'[{section}]\n{key} = "not_a_member"\n')
    message = assert_config_error(path, f"{section}.{key}")
    for member in getattr(names, name):
        assert member in message  # the error lists the accepted values
