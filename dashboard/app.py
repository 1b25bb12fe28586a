"""The web application: the page, its static files and one read-only JSON route per panel.

Routes (all GET; any other method is refused):

=========================  ===============================================================================
``/``                      the page (``static/index.html``)
``/static/<name>``         ``app.js``, ``style.css`` and ``plotly.min.js`` (from the installed plotly package)
``/api/meta``              the refresh interval and the panels' routes
``/api/health``            every daemon: state, uptime, heartbeat age, restarts, last error; stale flagged
``/api/loop``              the allocation in force, the winning source, why others were passed over, ages
``/api/trader``            equity curve with drawdown, open positions, per-strategy P&L
``/api/trades``            closed trades, newest first: ``?page=N&size=10|25|50|100``
``/api/performance``       weights over time and the performance report (curves and metrics per window)
``/api/strategy-agent``    model version, trainings with their validation, when the next training is due
``/api/trading-agent``     training progress, shadow decisions, rollout and risk guard, benchmark and gate
``/api/qlearning``         health checks, epsilon, table sizes, recent rewards, tuning advice
``/api/events``            server-sent events: ``change`` when a file shown changed, ``tick`` now and then
=========================  ===============================================================================

No route takes a file path: static files are looked up by name in a fixed table.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse

from core.config import Config
from dashboard.common import clean
from dashboard.health import health_panel
from dashboard.live import ChangeFeed
from dashboard.loop import loop_panel
from dashboard.performance import CurveCache, performance_panel
from dashboard.qlearning import qlearning_panel
from dashboard.security import COOKIE, SECURITY_HEADERS, presented_token, token_matches
from dashboard.strategy_agent import strategy_agent_panel
from dashboard.trader import PAGE_SIZES, HistoryCache, trader_panel, trades_page
from dashboard.trading_agent import trading_agent_panel

STATIC = Path(__file__).resolve().parent / "static"


def plotly_js() -> Path:
    """plotly.js as the installed plotly package ships it (found without importing plotly, which is slow)."""
    spec = importlib.util.find_spec("plotly")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    if not folders:
        raise RuntimeError("the plotly package is not installed; install the project (pip install -e .)")
    return Path(folders[0]) / "package_data" / "plotly.min.js"


PLOTLY_JS = plotly_js()
STATIC_FILES: dict[str, tuple[Path, str]] = {
    "app.js": (STATIC / "app.js", "text/javascript"),
    "style.css": (STATIC / "style.css", "text/css"),
    "plotly.min.js": (PLOTLY_JS, "text/javascript"),
}
"""The only files served besides the page, by name."""
PANELS = ("health", "loop", "trader", "performance", "strategy-agent", "trading-agent", "qlearning")


class JSON(JSONResponse):
    """JSON answers are standard JSON (no NaN) and never cached."""

    def render(self, content: Any) -> bytes:
        return super().render(clean(content))


def create_app(cfg: Config, token: str | None = None, feed: ChangeFeed | None = None) -> FastAPI:
    """The dashboard over the home of ``cfg``; ``token`` (when set) is required from every request; ``feed``
    drives ``/api/events`` (a feed that never changes when None, as in tests of the JSON routes)."""
    app = FastAPI(title="rl-paper-trader dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    history, curves = HistoryCache(), CurveCache()
    changes = feed or ChangeFeed(cfg.dashboard.refresh)

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.method not in ("GET", "HEAD"):
            response: Response = JSON({"error": "read-only: only GET is served"}, status_code=405,
                                      headers={"Allow": "GET"})
        elif token is not None and not _authorized(request, token):
            response = JSON({"error": "token required: open /?token=<RL_DASHBOARD_TOKEN> or send "
                             "`Authorization: Bearer <token>`"}, status_code=401)
        else:
            response = await call_next(request)
            if token is not None and request.url.path == "/" and "token" in request.query_params:
                response.set_cookie(COOKIE, token, httponly=True, samesite="strict",
                                    secure=request.url.scheme == "https")
        response.headers.update(SECURITY_HEADERS)
        if request.url.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)  # no icon; answered so a browser's request is not an error

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        entry = STATIC_FILES.get(name)
        if entry is None:
            raise HTTPException(404, f"no static file {name!r}")
        return FileResponse(entry[0], media_type=entry[1])

    @app.get("/api/meta")
    def meta() -> JSON:
        return JSON({"refresh_s": cfg.dashboard.refresh, "panels": {p: f"/api/{p}" for p in PANELS},
                     "page_sizes": list(PAGE_SIZES)})

    @app.get("/api/health")
    def health() -> JSON:
        return JSON(health_panel(cfg))

    @app.get("/api/loop")
    def loop() -> JSON:
        return JSON(loop_panel(cfg))

    @app.get("/api/trader")
    def trader() -> JSON:
        return JSON(trader_panel(cfg, history.get(cfg)))

    @app.get("/api/trades")
    def trades(page: int = Query(1, ge=1, le=1_000_000), size: int = Query(PAGE_SIZES[0])) -> JSON:
        if size not in PAGE_SIZES:
            raise HTTPException(422, f"size must be one of {', '.join(map(str, PAGE_SIZES))}")
        return JSON(trades_page(history.get(cfg), page, size))

    @app.get("/api/performance")
    def performance() -> JSON:
        return JSON(performance_panel(cfg, curves))

    @app.get("/api/strategy-agent")
    def strategy_agent() -> JSON:
        return JSON(strategy_agent_panel(cfg, history.get(cfg).trades))

    @app.get("/api/trading-agent")
    def trading_agent() -> JSON:
        return JSON(trading_agent_panel(cfg))

    @app.get("/api/qlearning")
    def qlearning() -> JSON:
        return JSON(qlearning_panel(cfg, history.get(cfg).trades))

    @app.get("/api/events")
    def events(request: Request) -> StreamingResponse:
        return StreamingResponse(changes.events(request.is_disconnected), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return app


def _authorized(request: Request, token: str) -> bool:
    if request.url.path == "/" and token_matches(request.query_params.get("token"), token):
        return True
    return token_matches(presented_token(request.headers, request.cookies), token)
