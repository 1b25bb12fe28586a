"""Tests of :mod:`ai.sweeps.spec`: grid parsing and checking, the trials of a sweep, their folder names, the
random draw of ``--samples`` and the sweep id."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai.sweeps.spec import (
    SweepSpec,
    build_trials,
    parse_fixed,
    parse_grid,
    settings_list,
    split_values,
    trial_name,
)
from core.errors import ConfigError


def test_grid_values_are_toml_and_commas_inside_brackets_stay_with_their_value() -> None:
    assert split_values("[64, 64],[128, 128]") == ["[64, 64]", "[128, 128]"]
    grid = parse_grid(["ppo.hidden_sizes=[64, 64],[128, 128]", "ppo.learning_rate=1e-4,3e-4",
                       "ppo.activation=relu,tanh", "mirror_training=true,false"], "trading")
    assert grid == {"ppo.hidden_sizes": [[64, 64], [128, 128]], "ppo.learning_rate": [1e-4, 3e-4],
                    "ppo.activation": ["relu", "tanh"], "mirror_training": [True, False]}


@pytest.mark.parametrize(("entry", "named"), [
    ("ppo.learnin_rate=1e-3", "ppo.learnin_rate"),        # unknown key
    ("ppo.learning_rate=-1", "learning_rate"),            # out of range
    ("ppo.gamma=0.9,2", "gamma"),                         # one bad value among good ones
    ("ppo.seed=1,2", "--seeds"),                          # seeds have their own option
    ("ppo.learning_rate", "KEY=V1,V2"),                   # no values
])
def test_a_bad_grid_entry_is_refused_naming_the_key(entry: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        parse_grid([entry], "trading")


def test_fixed_settings_are_checked_against_the_agents_own_section() -> None:
    assert parse_fixed(["episodes=7"], "allocation") == {"episodes": 7}
    with pytest.raises(ConfigError, match="episodes"):
        parse_fixed(["episodes=7"], "trading")  # the trading agent's key is train_episodes
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_fixed(["train_episodes"], "trading")


def test_trials_are_the_product_of_settings_symbols_and_seeds_in_safe_folders(tmp_path: Path) -> None:
    spec = SweepSpec("trading", ["BTC/USDT", str(tmp_path / "data" / "GOOGL daily.csv")], [0, 1],
                     {"ppo.learning_rate": [1e-4, 3e-4]}, fixed={"train_episodes": 5})
    trials = build_trials(spec, "s", tmp_path / "s", {}, tmp_path, tensorboard=False)
    assert [t.name for t in trials] == [
        "BTC-USDT-seed0-g0", "BTC-USDT-seed1-g0", "GOOGL-daily-seed0-g0", "GOOGL-daily-seed1-g0",
        "BTC-USDT-seed0-g1", "BTC-USDT-seed1-g1", "GOOGL-daily-seed0-g1", "GOOGL-daily-seed1-g1"]
    assert all(Path(t.folder).parent == tmp_path / "s" for t in trials)  # no '/' of a symbol makes a subfolder
    assert trials[0].settings == {"train_episodes": 5, "ppo.learning_rate": 1e-4}
    assert trials[2].candles_file is not None and trials[2].label == "GOOGL daily"
    assert trial_name("../x", 0, None) == "x-seed0"


def test_samples_draw_the_same_settings_for_the_same_sweep_id() -> None:
    spec = SweepSpec("trading", ["BTC/USDT"], [0], {"ppo.n_epochs": [1, 2, 3, 4], "ppo.batch_size": [16, 32]},
                     samples=3)
    first = settings_list(spec, "sweep-a")
    assert len(first) == 3 and first == settings_list(spec, "sweep-a")
    assert all(s in settings_list(SweepSpec("trading", ["BTC/USDT"], [0], spec.grid), "x") for s in first)
    assert len(settings_list(SweepSpec("trading", ["BTC/USDT"], [0], spec.grid, samples=50), "x")) == 8


def test_the_default_id_depends_on_what_the_sweep_is() -> None:
    a = SweepSpec("trading", ["BTC/USDT"], [0, 1])
    assert a.default_id() == SweepSpec("trading", ["BTC/USDT"], [0, 1]).default_id()
    assert a.default_id().startswith("trading-")
    assert a.default_id() != SweepSpec("trading", ["BTC/USDT"], [0, 2]).default_id()
    assert a.default_id({"costs": {"fee": 0.002}}) != a.default_id()  # another configuration, another sweep
