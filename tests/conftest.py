"""Shared fixtures: every test runs with its own RL_SYSTEM_HOME so nothing touches the repository's state/."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from core.config import Config, load_config


@pytest.fixture(autouse=True)
def rl_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("RL_SYSTEM_HOME", str(home))
    empty = tmp_path / "rl_system.toml"
    empty.write_text("")  # a developer's own rl_system.toml at the repo root must not leak into tests
    monkeypatch.setenv("RL_SYSTEM_CONFIG", str(empty))
    return home


@pytest.fixture
def cfg(rl_home: Path) -> Config:
    return load_config(None)


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests reach loopback only: any other connect attempt fails loudly."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address, *args, **kwargs):  # type: ignore[no-untyped-def]
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1")) \
                and self.family in (socket.AF_INET, socket.AF_INET6):
            raise OSError(f"tests may not reach the internet (tried {address!r})")
        return real_connect(self, address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded)
