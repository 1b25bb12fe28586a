"""Shared fixtures: every test runs with its own RL_SYSTEM_HOME so nothing touches the repository's state/."""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Iterator
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


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Commands' main() configure the root logger; put pytest's handlers and level back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    """A command may call torch.set_num_threads for the whole process; later tests get the old count back."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    yield
    torch = sys.modules.get("torch")
    if torch is not None and before is not None:
        torch.set_num_threads(before)
