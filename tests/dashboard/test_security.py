"""The token rule: loopback needs none; any other address needs $RL_DASHBOARD_TOKEN, then every request carries it."""

from __future__ import annotations

import hmac

import pytest
from fastapi.testclient import TestClient

from core.config import Config
from core.errors import ConfigError
from dashboard import security
from dashboard.app import create_app
from dashboard.security import COOKIE, is_loopback, startup_token, token_matches

TOKEN = "s3cret-token-of-32-characters-xx"


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("192.168.1.5", False), ("::", False), ("example.org", False),
])
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_loopback_needs_no_token_and_other_addresses_refuse_to_start_without_one() -> None:
    assert startup_token("127.0.0.1", {}) is None
    with pytest.raises(ConfigError, match=r"dashboard.host = '0.0.0.0' is not loopback: set \$RL_DASHBOARD_TOKEN"):
        startup_token("0.0.0.0", {})
    with pytest.raises(ConfigError, match="at least 16"):
        startup_token("0.0.0.0", {"RL_DASHBOARD_TOKEN": "short"})
    assert startup_token("0.0.0.0", {"RL_DASHBOARD_TOKEN": TOKEN}) == TOKEN


def test_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    assert token_matches(TOKEN, TOKEN) and not token_matches(TOKEN[:-1] + "y", TOKEN)
    assert not token_matches(None, TOKEN)
    assert calls == [(TOKEN.encode(), TOKEN.encode()), ((TOKEN[:-1] + "y").encode(), TOKEN.encode())]


def test_with_a_token_every_request_must_carry_it(cfg: Config) -> None:
    client = TestClient(create_app(cfg, token=TOKEN))
    for route in ("/", "/api/health", "/static/app.js", "/api/events"):
        refused = client.get(route)
        assert refused.status_code == 401, route
        assert TOKEN not in refused.text
    assert client.get("/api/health", headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
    assert client.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/api/health?token=" + TOKEN).status_code == 401  # only the page takes it in the address
    page = client.get("/?token=" + TOKEN)
    assert page.status_code == 200
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get("/api/loop").status_code == 200  # the page's own requests carry the cookie now
    assert client.get("/api/meta").json()["refresh_s"] == cfg.dashboard.refresh


def test_without_a_token_nothing_asks_for_one(cfg: Config) -> None:
    client = TestClient(create_app(cfg))
    assert client.get("/api/health").status_code == 200
    assert "set-cookie" not in client.get("/").headers
