"""One home made by a short real run of the suite, shared by the dashboard's tests (they only read it, or copy it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import Config, load_config
from tests.dashboard.support import SuiteHome, build_home


@pytest.fixture(scope="session")
def suite_home(tmp_path_factory: pytest.TempPathFactory) -> SuiteHome:
    return build_home(tmp_path_factory.mktemp("suite"))


@pytest.fixture
def suite_cfg(suite_home: SuiteHome, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The configuration of the suite's home, as its daemons load it."""
    monkeypatch.setenv("RL_SYSTEM_HOME", str(suite_home.home))
    monkeypatch.setenv("RL_SYSTEM_CONFIG", str(suite_home.config))
    return load_config(None)


@pytest.fixture
def fresh_cfg(rl_home: Path) -> Config:
    """A fresh, empty home: nothing has run there."""
    return load_config(None)
