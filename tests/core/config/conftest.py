"""Helpers of the configuration tests: write a TOML file, expect a ConfigError naming the file and the key."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from core.config import load_config
from core.errors import ConfigError


def write_toml(folder: Path, text: str, name: str = "custom.toml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def assert_config_error(path: Path, *fragments: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.fixture(name="write_toml")
def write_toml_fixture() -> Callable[..., Path]:
    """:func:`write_toml`: a dedented TOML text written to a file in a folder."""
    return write_toml


@pytest.fixture(name="assert_config_error")
def assert_config_error_fixture() -> Callable[..., str]:
    """:func:`assert_config_error`: loading the file raises a ConfigError naming it and every fragment."""
    return assert_config_error
