"""core.config.checks: the one message style of every section's checks."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from core.config.checks import (
    InvalidSetting,
    cron_check,
    is_iso_time,
    is_plain_file_name,
    one_of,
    require,
    require_order,
)
from core.errors import ConfigError


@dataclass(frozen=True)
class Sample:
    low: int = 1
    high: int = 2
    name: str = "x"


def test_require_names_section_key_value_and_rule() -> None:
    require("sample", Sample(), (("low", True, ">= 0"),))
    with pytest.raises(InvalidSetting) as caught:
        require("sample", Sample(name="y"), (("low", True, ">= 0"), ("name", False, one_of(("x", "z")))))
    assert str(caught.value) == "sample.name = 'y': must be one of x, z"
    assert isinstance(caught.value, ConfigError)


def test_an_invalid_setting_is_located_under_its_dotted_section_and_file() -> None:
    error = InvalidSetting("ppo", "gamma", 1.5, "must be within [0, 1]")
    located = error.located("strategy_agent.ppo", "custom.toml")
    assert str(located) == "custom.toml: strategy_agent.ppo.gamma = 1.5: must be within [0, 1]"
    assert (located.name, located.value, located.file) == ("gamma", 1.5, "custom.toml")


def test_require_order_names_both_keys() -> None:
    require_order("sample", Sample(), (("low", "high", "be below"),))
    require_order("sample", Sample(high=1), (("low", "high", "not exceed"),))
    with pytest.raises(ConfigError, match=r"sample.low \(1\) must be below sample.high \(1\)"):
        require_order("sample", Sample(high=1), (("low", "high", "be below"),))
    with pytest.raises(ConfigError, match=r"sample.low \(3\) must not exceed sample.high \(2\)"):
        require_order("sample", Sample(low=3), (("low", "high", "not exceed"),))


def test_cron_check_carries_the_exact_problem() -> None:
    assert cron_check("retrain_cron", "0 3 * * 0") == ("retrain_cron", True, cron_check("x", "0 3 * * 0")[2])
    name, ok, rule = cron_check("retrain_cron", "0 3 * *")
    assert (name, ok) == ("retrain_cron", False) and "expected five fields" in rule
    assert not cron_check("retrain_cron", "0 3 1 * 1")[1]  # crontab's either-or of day and weekday
    assert not cron_check("retrain_cron", "61 3 * * *")[1]


def test_small_predicates() -> None:
    assert is_iso_time("2024-01-01T00:00:00Z") and not is_iso_time("yesterday")
    assert is_plain_file_name("state.json")
    assert not any(map(is_plain_file_name, ("", "../state.json", "a/b.json", ".hidden", "a\\b")))
