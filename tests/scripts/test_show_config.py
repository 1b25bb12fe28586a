"""`scripts/show_config.py` prints a TOML file that loads back to the same configuration."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from core.config import REPO_ROOT, Config, config_from_dict

_spec = importlib.util.spec_from_file_location("show_config", REPO_ROOT / "scripts" / "show_config.py")
show_config = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(show_config)  # type: ignore[union-attr]


def test_defaults_round_trip(capsys: pytest.CaptureFixture[str]) -> None:
    assert show_config.main([]) == 0
    text = capsys.readouterr().out
    assert config_from_dict(tomllib.loads(text)) == Config()
    assert "# Proportional fee per traded notional" in text


def test_overrides_show_and_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "mine.toml"
    file.write_text('[costs]\nfee = 0.002\n[market]\nsymbols = ["SOL/USDT", "ETH/USDT"]\n')
    assert show_config.main(["--config", str(file)]) == 0
    loaded = config_from_dict(tomllib.loads(capsys.readouterr().out))
    assert loaded.costs.fee == 0.002 and loaded.market.symbols == ["SOL/USDT", "ETH/USDT"]


def test_unknown_section_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert show_config.main(["--section", "nope"]) == 2
    assert "unknown section 'nope'" in capsys.readouterr().err
