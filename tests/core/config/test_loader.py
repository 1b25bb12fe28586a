"""core.config.loader: which file, TOML overrides, strict keys and types, the file named in every error."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import core.config.loader as config_module
from core.config import (
    REPO_ROOT,
    Config,
    PPOConfig,
    as_dict,
    config_from_dict,
    config_path,
    load_config,
    ppo_config_from_dict,
    replace_section,
)
from core.errors import ConfigError, FatalError


def test_as_dict_round_trips_through_the_loader() -> None:
    # Every field's type must be one the TOML loader can check, and the defaults must pass their own check.
    cfg = Config()
    assert config_from_dict(as_dict(cfg)) == cfg


def test_replace_section_changes_one_copy_only() -> None:
    cfg = Config()
    changed = replace_section(cfg, "costs", fee=0.01)
    assert changed.costs.fee == 0.01
    assert cfg.costs.fee == 0.001
    assert changed.market == cfg.market


def test_toml_file_overrides_only_the_keys_it_names(tmp_path: Path, write_toml: Callable[..., Any]) -> None:
    path = write_toml(tmp_path, """
        [market]
        symbols = ["SOL/USDT"]
        timeframe = "4h"
        csv_paths = { "SOL/USDT" = "data/sol.csv" }

        [costs]
        fee = 0.002
    """)
    cfg = load_config(path)
    assert cfg.market.symbols == ["SOL/USDT"]
    assert cfg.market.timeframe == "4h"
    assert cfg.market.csv_paths == {"SOL/USDT": "data/sol.csv"}
    assert cfg.costs.fee == 0.002
    default = Config()
    assert cfg.costs.slippage == default.costs.slippage
    assert cfg.market.data_source == default.market.data_source
    assert cfg.synthetic == default.synthetic


def test_dotted_keys_and_nested_tables_reach_their_section(tmp_path: Path, write_toml: Callable[..., Any]) -> None:
    path = write_toml(tmp_path, """
        market.timeframe = "15m"
        synthetic = { seed = 7, n_candles = 100 }
    """)
    cfg = load_config(path)
    assert cfg.market.timeframe == "15m"
    assert (cfg.synthetic.seed, cfg.synthetic.n_candles) == (7, 100)


def test_explicit_path_wins_over_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_toml: Callable[..., Any]) -> None:
    from_env = write_toml(tmp_path, '[market]\ntimeframe = "1d"\n', "env.toml")
    explicit = write_toml(tmp_path, '[market]\ntimeframe = "5m"\n', "explicit.toml")
    monkeypatch.setenv("RL_SYSTEM_CONFIG", str(from_env))
    assert load_config(None).market.timeframe == "1d"
    assert load_config(explicit).market.timeframe == "5m"
    assert load_config(str(explicit)).market.timeframe == "5m"


def test_repository_file_is_used_when_nothing_else_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_toml: Callable[..., Any]) -> None:
    root_file = write_toml(tmp_path, '[market]\ntimeframe = "1m"\n', "rl_system.toml")
    monkeypatch.delenv("RL_SYSTEM_CONFIG")
    monkeypatch.setattr(config_module, "DEFAULT_CONFIG_FILE", root_file)
    assert config_path(None) == root_file
    assert load_config(None).market.timeframe == "1m"
    root_file.unlink()
    assert config_path(None) is None
    assert load_config(None) == Config()


def test_default_file_is_rl_system_toml_at_the_repository_root() -> None:
    assert config_module.DEFAULT_CONFIG_FILE == REPO_ROOT / "rl_system.toml"
    assert (REPO_ROOT / "core" / "config" / "__init__.py").is_file()


def test_missing_explicit_file_is_an_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.toml"
    monkeypatch.setenv("RL_SYSTEM_CONFIG", str(missing))
    with pytest.raises(ConfigError, match="nope.toml"):
        load_config(None)


def test_unreadable_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=str(tmp_path)):
        load_config(tmp_path)  # a folder, not a file


def test_config_error_is_fatal() -> None:
    assert issubclass(ConfigError, FatalError)


def test_unknown_section_names_key_and_file(tmp_path: Path, write_toml: Callable[..., Any], assert_config_error: Callable[..., Any]) -> None:
    path = write_toml(tmp_path, "[markets]\ntimeframe = '1h'\n")
    message = assert_config_error(path, "`markets`")
    assert "market" in message.split("known keys")[1]  # the likely intended name is listed


def test_unknown_key_in_a_section_names_the_dotted_key(tmp_path: Path, write_toml: Callable[..., Any], assert_config_error: Callable[..., Any]) -> None:
    path = write_toml(tmp_path, "[costs]\nfees = 0.1\n")
    assert_config_error(path, "`costs.fees`", "fee, slippage")


def test_wrong_type_names_key_file_and_expected_type(tmp_path: Path, write_toml: Callable[..., Any], assert_config_error: Callable[..., Any]) -> None:
    path = write_toml(tmp_path, "[market]\ntimeframe = 60\n")
    assert_config_error(path, "`market.timeframe`", "str", "int")


def test_section_given_as_a_value_is_an_error(tmp_path: Path, write_toml: Callable[..., Any], assert_config_error: Callable[..., Any]) -> None:
    path = write_toml(tmp_path, "market = 3\n")
    assert_config_error(path, "`market`", "table")


def test_int_is_accepted_for_float(tmp_path: Path, write_toml: Callable[..., Any]) -> None:
    path = write_toml(tmp_path, "[costs]\nfee = 0\n[synthetic]\nstart_prices = [100, 2.5]\n")
    cfg = load_config(path)
    assert cfg.costs.fee == 0.0 and type(cfg.costs.fee) is float
    assert cfg.synthetic.start_prices == [100.0, 2.5]
    assert all(type(v) is float for v in cfg.synthetic.start_prices)


@pytest.mark.parametrize("body, key", [
    ("[synthetic]\nseed = true\n", "`synthetic.seed`"),        # bool is an int subclass in Python, not here
    ("[costs]\nfee = false\n", "`costs.fee`"),                # nor a float
    ("[synthetic]\nseed = 1.5\n", "`synthetic.seed`"),        # a float is not silently truncated
    ("[synthetic]\nseed = \"42\"\n", "`synthetic.seed`"),     # nor a string converted
])
def test_near_miss_scalar_types_are_rejected(tmp_path: Path, body: str, key: str, write_toml: Callable[..., Any], assert_config_error: Callable[..., Any]) -> None:
    assert_config_error(write_toml(tmp_path, body), key)


@pytest.mark.parametrize("literal", ["nan", "inf", "-inf"])
def test_non_finite_floats_are_refused(tmp_path: Path, literal: str, write_toml: Callable[..., Any], assert_config_error: Callable[..., Any]) -> None:
    # TOML has nan and inf literals; a NaN fee would turn every pnl downstream into NaN.
    assert_config_error(write_toml(tmp_path, f"[costs]\nslippage = {literal}\n"), "`costs.slippage`", "finite")
    assert_config_error(write_toml(tmp_path, f"[synthetic]\nstart_prices = [1.0, {literal}]\n"),
                        "`synthetic.start_prices[1]`")


def test_list_elements_are_typed_one_by_one(tmp_path: Path, write_toml: Callable[..., Any], assert_config_error: Callable[..., Any]) -> None:
    path = write_toml(tmp_path, '[market]\nsymbols = ["BTC/USDT", 3]\n')
    assert_config_error(path, "`market.symbols[1]`", "str")
    path = write_toml(tmp_path, '[synthetic]\nstart_prices = [1.0, "2"]\n')
    assert_config_error(path, "`synthetic.start_prices[1]`", "float")


def test_scalar_where_a_list_is_expected_is_an_error(tmp_path: Path, write_toml: Callable[..., Any], assert_config_error: Callable[..., Any]) -> None:
    path = write_toml(tmp_path, '[market]\nsymbols = "BTC/USDT"\n')
    assert_config_error(path, "`market.symbols`", "list")


def test_mapping_values_are_typed(tmp_path: Path, write_toml: Callable[..., Any], assert_config_error: Callable[..., Any]) -> None:
    path = write_toml(tmp_path, '[market]\ncsv_paths = { "BTC/USDT" = 3 }\n')
    assert_config_error(path, "`market.csv_paths.BTC/USDT`", "str")


def test_invalid_toml_syntax_names_the_file(tmp_path: Path, write_toml: Callable[..., Any], assert_config_error: Callable[..., Any]) -> None:
    path = write_toml(tmp_path, "[market\ntimeframe = \n")
    assert_config_error(path, "not valid TOML")


def test_non_utf8_file_names_the_file(tmp_path: Path, assert_config_error: Callable[..., Any]) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[market]\ntimeframe = "h\xe9"\n'.encode("latin-1"))
    assert_config_error(path)


def test_config_from_dict_names_its_source() -> None:
    with pytest.raises(ConfigError, match=r"my-source: unknown key `market\.nope`"):
        config_from_dict({"market": {"nope": 1}}, source="my-source")


def test_section_range_checks_also_name_the_file(tmp_path: Path, write_toml: Callable[..., Any], assert_config_error: Callable[..., Any]) -> None:
    # Sections may validate values in __post_init__; the loader adds the file to their message.
    if "strategies" not in {f.name for f in dataclasses.fields(Config)}:
        pytest.skip("no section with range checks")
    path = write_toml(tmp_path, "[strategies]\nsma_fast = 60\nsma_slow = 50\n")
    message = assert_config_error(path, "strategies.sma_fast")
    assert message.count(str(path)) == 1


def test_ppo_settings_from_a_mapping_are_checked_like_the_file() -> None:
    assert ppo_config_from_dict({"n_epochs": 4, "hidden_sizes": [32, 32]}) == PPOConfig(n_epochs=4, hidden_sizes=[32, 32])
    with pytest.raises(ConfigError, match=r"checkpoint meta: unknown key `ppo\.n_epoch`"):
        ppo_config_from_dict({"n_epoch": 4}, source="checkpoint meta")
    with pytest.raises(ConfigError, match=r"--set: ppo\.gamma = 1\.5: must be within \[0, 1\]"):
        ppo_config_from_dict({"gamma": 1.5}, source="--set")
