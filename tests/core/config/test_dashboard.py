"""core.config.dashboard: where the dashboard listens and how often it looks, checked at load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.config import DashboardConfig, load_config


@pytest.mark.parametrize(("body", "fragment"), [
    ('[dashboard]\nhost = "http://0.0.0.0"\n', "dashboard.host = 'http://0.0.0.0': must be a host name or IP"),
    ('[dashboard]\nhost = ""\n', "dashboard.host = '': must be"),
    ("[dashboard]\nport = 65536\n", "dashboard.port = 65536: must be a TCP port between 1 and 65535, or 0"),
    ("[dashboard]\nport = -1\n", "dashboard.port = -1"),
    ("[dashboard]\nrefresh = 0\n", "dashboard.refresh = 0.0: must be between 0.2 and 60 seconds"),
    ("[dashboard]\nrefresh = 61\n", "dashboard.refresh = 61.0"),
    ('[dashboard]\ntoken = "abc"\n', "token"),  # the token comes from the environment only, never a file
])
def test_bad_dashboard_values_name_the_key_and_file(
    tmp_path: Path, body: str, fragment: str, write_toml: Callable[..., Any], assert_config_error: Callable[..., Any],
) -> None:
    assert_config_error(write_toml(tmp_path, body), fragment)


def test_defaults_listen_on_loopback_and_a_file_overrides_them(tmp_path: Path,
                                                               write_toml: Callable[..., Any]) -> None:
    assert DashboardConfig() == DashboardConfig(host="127.0.0.1", port=8765, refresh=2.0)
    cfg = load_config(write_toml(tmp_path, '[dashboard]\nhost = "::1"\nport = 0\nrefresh = 0.5\n'))
    assert (cfg.dashboard.host, cfg.dashboard.port, cfg.dashboard.refresh) == ("::1", 0, 0.5)
