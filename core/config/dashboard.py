"""The dashboard section: where the web page of the running suite listens and how often it refreshes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.config.checks import require

_HOST = re.compile(r"[A-Za-z0-9.:\-\[\]]+")
"""A host name or an IPv4/IPv6 address: no scheme, path, port or spaces."""


@dataclass(frozen=True)
class DashboardConfig:
    """The dashboard daemon (``python scripts/dashboard.py``): a read-only web page of the suite's files."""

    host: str = "127.0.0.1"
    """Address to listen on. Loopback by default; any other address needs ``$RL_DASHBOARD_TOKEN`` set (the page
    and the API then ask for it), and the dashboard refuses to start without it."""
    port: int = 8765
    """TCP port of the page (http://host:port/); 0 takes any free port (the URL is then in the dashboard's
    heartbeat, ``runtime/heartbeats/dashboard.json``, and the start command prints it)."""
    refresh: float = 2.0
    """Seconds between two looks at the files: the page shows a change within about this long."""

    def __post_init__(self) -> None:
        require("dashboard", self, (
            ("host", bool(_HOST.fullmatch(self.host)), "a host name or IP address such as 127.0.0.1 or 0.0.0.0 "
             "(no scheme, port or path)"),
            ("port", 0 <= self.port <= 65535, "a TCP port between 1 and 65535, or 0 for any free port"),
            ("refresh", 0.2 <= self.refresh <= 60, "between 0.2 and 60 seconds"),
        ))
