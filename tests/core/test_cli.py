"""The commands' shared preamble: ``--config PATH`` in the help, the file's values with the command line's on top,
and an unusable file or value as one error line and None (the command exits 2)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from core.cli import add_config_argument, load_command_config, with_changes
from core.config import Config
from core.errors import ConfigError


def test_the_option_reads_config_path() -> None:
    parser = argparse.ArgumentParser(prog="demo")
    add_config_argument(parser)
    assert parser.parse_args(["--config", "x.toml"]).config == "x.toml"
    assert parser.parse_args([]).config is None
    assert "--config PATH  TOML configuration file" in parser.format_help()


def test_values_not_given_keep_the_files(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("[qlearning]\npolling = false\n[dashboard]\nport = 9000\n")
    cfg = load_command_config("demo", str(file), lambda c: with_changes(c, "dashboard", host=None, port=None))
    assert cfg is not None and cfg.dashboard.port == 9000
    cfg = load_command_config("demo", str(file), lambda c: with_changes(c, "qlearning", polling=True))
    assert cfg is not None and cfg.qlearning.polling is True and cfg.dashboard.port == 9000


def test_prepare_may_return_more_than_the_config(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("[dashboard]\nport = 9001\n")
    prepared = load_command_config("demo", str(file), lambda c: (c, c.dashboard.port * 2))
    assert prepared is not None and prepared[1] == 18002 and isinstance(prepared[0], Config)


def test_a_bad_file_is_one_error_line_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "c.toml"
    file.write_text("[dashboard]\nprot = 1\n")
    assert load_command_config("demo", str(file)) is None
    err = capsys.readouterr().err
    assert err.startswith("demo: error: ") and "prot" in err and err.count("\n") == 1


def test_a_missing_file_and_a_refused_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert load_command_config(None, str(tmp_path / "absent.toml")) is None
    assert capsys.readouterr().err.startswith("error: ")

    def refuse(cfg: Config) -> Config:
        raise ConfigError("--interval -1: must be > 0 seconds")

    assert load_command_config("rl_inference", None, refuse) is None
    assert capsys.readouterr().err == "rl_inference: error: --interval -1: must be > 0 seconds\n"
