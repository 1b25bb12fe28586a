"""The page in a real browser: headless Chromium (Debian's package) loads the page served by the dashboard daemon.

Every panel renders with data and charts, without a console error; the allocation table holds the 8 weights
summing to 1; a trade appended to the history shows up without a reload; a fresh home's page says what to run.
Screenshots (full page, and phone width) go to ``$RL_DASHBOARD_SCREENSHOTS`` or the test's temporary folder.
Skipped only where chromium is missing outside CI; in CI (``$CI`` set) a missing browser fails the test.
"""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from core.contracts.pnl_history import append_trades
from tests.dashboard.support import SuiteHome, dashboard_process, free_port

CHROMIUM = shutil.which("chromium")
if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip("chromium is not installed (apt-get install chromium); CI installs it and runs this test",
                allow_module_level=True)

from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright  # noqa: E402

pytestmark = pytest.mark.slow
PANELS = ("health", "loop", "trader", "trades", "performance", "strategy-agent", "trading-agent", "qlearning")
CHARTS = ("chart-equity", "chart-weights", "chart-portfolios", "chart-decisions", "chart-rewards")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM is not None, "chromium is missing: CI must install it (see .ci/run)"
    args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("RL_DASHBOARD_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_page(browser: Browser, url: str, width: int = 1400, height: int = 900) -> tuple[Page, list[str]]:
    """The page at ``url`` once no panel is loading, and the list its console errors are collected in."""
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            errors.append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    expect(page.locator('.panel[data-state="loading"]')).to_have_count(0, timeout=30_000)
    return page, errors


def test_every_panel_renders_and_follows_a_new_trade(browser: Browser, suite_home: SuiteHome, tmp_path: Path,
                                                     screenshots: Path) -> None:
    suite = suite_home.copy(tmp_path / "copy")
    port = free_port()
    with dashboard_process(suite, port):
        page, errors = open_page(browser, f"http://127.0.0.1:{port}/")
        for panel in PANELS:
            expect(page.locator(f"#panel-{panel}")).to_have_attribute("data-state", "ready")
        for chart in CHARTS:  # plotly drew each: its SVG is in the page
            expect(page.locator(f"#{chart} .main-svg").first).to_be_visible()
        rows = page.locator("#loop-weights tbody tr")
        expect(rows).to_have_count(8)
        weights = [float(rows.nth(i).get_attribute("data-weight") or "nan") for i in range(8)]
        assert sum(weights) == pytest.approx(1.0, abs=1e-9) and all(w >= 0 for w in weights)
        expect(page.locator("#health-table tbody tr[data-daemon=paper_trader]")).to_have_count(1)
        expect(page.locator("#live")).to_have_attribute("data-state", "live", timeout=10_000)
        page.wait_for_timeout(500)  # the last chart's transition
        page.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)

        # A new trade in the history: on the page within seconds, without a reload.
        history = suite.home / "state" / "pnl_history.csv"
        with open(history, newline="") as fh:
            last = list(csv.DictReader(fh))[-1]
        closed = pd.Timestamp(last["closed_at"]) + timedelta(hours=1)
        trade = {**last, "closed_at": closed.strftime("%Y-%m-%dT%H:%M:%SZ"), "strategy": "vix_strategy",
                 "side": "long", "pnl": 1234.5, "pnl_pct": 0.05, "equity_after": float(last["equity_after"]) + 1234.5}
        append_trades(history, [trade])
        first = page.locator("#trades-table tbody tr").first
        expect(first).to_contain_text(trade["closed_at"], timeout=10_000)
        expect(first).to_contain_text("1,234.50")
        expect(page.locator("#trades-page")).to_contain_text(f"({sum(1 for _ in open(history)) - 1} trades)")
        # The table pages: the older page starts with the 11th newest trade.
        with open(history, newline="") as fh:
            eleventh = list(csv.DictReader(fh))[-11]["closed_at"]
        page.click("#trades-next")
        expect(page.locator("#trades-page")).to_contain_text("page 2 of")
        expect(page.locator("#trades-table tbody tr").first).to_contain_text(eleventh)
        assert errors == []

        phone, phone_errors = open_page(browser, f"http://127.0.0.1:{port}/", width=390, height=844)
        expect(phone.locator("#chart-equity .main-svg").first).to_be_visible()
        phone.wait_for_timeout(500)
        phone.screenshot(path=str(screenshots / "dashboard_phone.png"), full_page=True)
        assert phone_errors == []
    assert (screenshots / "dashboard.png").stat().st_size > 50_000


def test_a_fresh_home_says_what_to_run(browser: Browser, tmp_path: Path, screenshots: Path) -> None:
    config = tmp_path / "rl_system.toml"
    config.write_text("")
    (tmp_path / "fresh").mkdir()
    port = free_port()
    with dashboard_process(SuiteHome(tmp_path / "fresh", config), port):
        page, errors = open_page(browser, f"http://127.0.0.1:{port}/")
        expect(page.locator("#panel-strategy-agent")).to_have_attribute("data-state", "empty")
        expect(page.locator("#panel-strategy-agent .empty").first).to_contain_text(
            "no model yet: run python ai/rl_trainer.py --train")
        expect(page.locator("#panel-strategy-agent .empty code").first).to_have_text("python ai/rl_trainer.py --train")
        expect(page.locator("#panel-trades .empty")).to_contain_text("no trades yet: the trader has not closed a trade")
        expect(page.locator("#panel-trader .empty")).to_contain_text("bash scripts/start_rl_system.sh")
        expect(page.locator("#panel-qlearning .empty").first).to_contain_text("python ai/qlearning.py --loop")
        expect(page.locator("#panel-trading-agent .empty").first).to_contain_text("python ai/shadow_ppo.py train")
        expect(page.locator("#panel-performance .empty").first).to_contain_text("rl_performance.py")
        # The dashboard's own heartbeat is the one daemon of a fresh home.
        expect(page.locator("#health-table tbody tr")).to_have_count(1)
        page.screenshot(path=str(screenshots / "dashboard_fresh.png"), full_page=True)
        assert errors == []
