"""Who may read the dashboard: anyone on this machine when it listens on loopback; elsewhere only with the token.

Binding to any address other than loopback needs ``$RL_DASHBOARD_TOKEN`` (at least :data:`MIN_TOKEN_LENGTH`
characters); the dashboard refuses to start without it. When a token is set, every request must carry it: as
``Authorization: Bearer <token>`` (scripts), or once as ``?token=<token>`` on the page, which sets an HttpOnly,
SameSite=Strict cookie for the page's own requests. Tokens are compared in constant time. Every answer carries
a Content-Security-Policy that allows scripts, styles and connections from the dashboard itself only.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping

from core.errors import ConfigError

TOKEN_ENV = "RL_DASHBOARD_TOKEN"
MIN_TOKEN_LENGTH = 16
COOKIE = "rl_dashboard_token"
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    # plotly.js inserts its own style rules at run time; without 'unsafe-inline' for styles its charts
    # break (scripts stay 'self' only: no inline script, no eval).
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
))
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def startup_token(host: str, environ: Mapping[str, str]) -> str | None:
    """The token requests must carry (None: none needed), or ConfigError when ``host`` needs one and there is
    none or it is too short."""
    token = environ.get(TOKEN_ENV, "")
    if token and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"${TOKEN_ENV} is {len(token)} characters long; use at least {MIN_TOKEN_LENGTH} "
                          "(e.g. `export RL_DASHBOARD_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe())')`)")
    if not token and not is_loopback(host):
        raise ConfigError(f"dashboard.host = {host!r} is not loopback: set ${TOKEN_ENV} (at least "
                          f"{MIN_TOKEN_LENGTH} characters) to serve it there, or listen on 127.0.0.1")
    return token or None


def token_matches(given: str | None, token: str) -> bool:
    """Constant-time comparison of a presented token with the configured one."""
    return given is not None and hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


def presented_token(headers: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
    """The token a request carries: its bearer authorization, else the dashboard's cookie."""
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return cookies.get(COOKIE)
