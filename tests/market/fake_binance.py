"""A local stand-in for Binance's public spot REST API, for tests of the real ccxt client.

Serves ``GET /api/v3/exchangeInfo`` and ``GET /api/v3/klines`` with Binance's response shapes on
127.0.0.1 (a free port), from a thread. Candles exist on a regular grid from ``listed_from_ms`` up to the
server's clock, the last one still open, like the real exchange; ranges can be left out (gaps), answers
can be replaced by injected errors (429, 500, ...), klines answers can stall (a timeout) or be cut off mid-body,
the server can go away mid-download, and every request is recorded.
"""

from __future__ import annotations

import json
import math
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

INTERVAL_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000, "4h": 14_400_000,
               "1d": 86_400_000}
HOUR_MS = 3_600_000

RATE_LIMITED = (429, {"code": -1003, "msg": "Too many requests; current limit of IP(127.0.0.1) is 6000 "
                                           "requests per minute. Please use the websocket for live updates "
                                           "to avoid polling the API."})
INTERNAL_ERROR = (500, {"code": -1001, "msg": "Internal error; unable to process your request. "
                                             "Please try again."})
BAD_GATEWAY = (502, "<html><body><h1>502 Bad Gateway</h1></body></html>")
INVALID_SYMBOL = (400, {"code": -1121, "msg": "Invalid symbol."})


@dataclass(frozen=True)
class Recorded:
    """One request the server received."""

    path: str
    params: dict[str, str]
    status: int


def reference_candle(symbol: str, open_ms: int) -> list[float]:
    """The candle the server publishes (open, high, low, close, volume), as plain floats.

    A smooth wave per symbol, so consecutive candles differ and tests can compare exact values.
    """
    base = 40_000.0 if symbol.startswith("BTC") else 2_500.0
    phase = open_ms / (7 * HOUR_MS)
    open_ = round(base * (1.0 + 0.05 * math.sin(phase)), 2)
    close = round(base * (1.0 + 0.05 * math.sin(phase + 1.0 / 7)), 2)
    high = round(max(open_, close) * 1.002, 2)
    low = round(min(open_, close) * 0.998, 2)
    volume = round(100.0 + 50.0 * math.cos(phase), 5)
    return [open_, high, low, close, volume]


class FakeBinance:
    """The server; use as a context manager, ``url`` is its base (``http://127.0.0.1:PORT``)."""

    def __init__(
        self,
        now_ms: Callable[[], int],
        *,
        listed_from_ms: int,
        symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"),
        gaps: dict[str, list[tuple[int, int]]] | None = None,
        rejected: tuple[str, ...] = (),
    ) -> None:
        self.now_ms = now_ms
        self.listed_from_ms = listed_from_ms
        self.symbols = symbols
        self.gaps = gaps or {}
        self.rejected = rejected  # listed in exchangeInfo, but klines answers -1121 (a delisted market)
        self.requests: list[Recorded] = []
        self.klines_failures: deque[tuple[int, Any]] = deque()
        self.always_fail: tuple[int, Any] | None = None
        """Answer of every klines request (after the first ``fail_after_klines`` ones)."""
        self.fail_after_klines = 0
        self.down: tuple[int, Any] | None = None
        """Answer of every request on any endpoint (the exchange is down)."""
        self.stall_klines_s = 0.0
        """Every klines request waits this long before its answer (longer than the client's timeout: a stall)."""
        self.cut_klines_after: int | None = None
        """Klines requests after this many get their headers and half the body, then the connection closes."""
        self.gone_after_klines: int | None = None
        """After this many klines requests the server goes away: the next one and every later one is closed
        unanswered, and the server stops listening."""
        self._gone = False
        self._klines_seen = 0
        self.served_open_times: list[int] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeBinance:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _go_away(self) -> None:
        """Stop answering at once and stop listening (from a handler: the shutdown runs in its own thread)."""
        self._gone = True
        threading.Thread(target=lambda: (self._server.shutdown(), self._server.server_close()), daemon=True).start()

    def fail_klines(self, *answers: tuple[int, Any]) -> None:
        """The next klines requests get these answers (status, body) instead of candles.

        A ``str`` body is served as an HTML page, ``bytes`` verbatim as ``application/json`` (e.g. a JSON
        answer cut off mid-way), anything else as JSON.
        """
        self.klines_failures.extend(answers)

    def klines_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/api/v3/klines"]

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    # ------------------------------------------------------------------------------------ responses

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        if self.down is not None:
            return self.down
        if path == "/api/v3/exchangeInfo":
            return 200, self.exchange_info()
        if path == "/api/v3/klines":
            with self._lock:
                self._klines_seen += 1
                if self.klines_failures:
                    return self.klines_failures.popleft()
                seen = self._klines_seen
            if self.always_fail is not None and seen > self.fail_after_klines:
                return self.always_fail
            return self.klines(params)
        return 404, {"code": -1, "msg": f"no route {path} in the test server"}

    def exchange_info(self) -> dict[str, Any]:
        return {
            "timezone": "UTC",
            "serverTime": self.now_ms(),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
            ],
            "exchangeFilters": [],
            "symbols": [_symbol_info(s) for s in (*self.symbols, *self.rejected)],
        }

    def klines(self, params: dict[str, str]) -> tuple[int, Any]:
        symbol = params.get("symbol", "")
        if symbol not in self.symbols:
            return INVALID_SYMBOL
        interval = params.get("interval", "")
        if interval not in INTERVAL_MS:
            return 400, {"code": -1120, "msg": "Invalid interval."}
        step = INTERVAL_MS[interval]
        limit = min(int(params.get("limit", 500)), 1000)
        now = self.now_ms()
        last_open = self.listed_from_ms + (now - self.listed_from_ms) // step * step  # still open at `now`
        end = min(last_open, int(params["endTime"])) if "endTime" in params else last_open
        if "startTime" in params:
            start = max(int(params["startTime"]), self.listed_from_ms)
            first = self.listed_from_ms + -(-(start - self.listed_from_ms) // step) * step
        else:
            first = max(self.listed_from_ms, end - (limit - 1) * step)
        rows = []
        t = first
        while t <= end and len(rows) < limit:
            if not self._in_gap(symbol, t):
                rows.append(_kline(symbol, t, step))
            t += step
        with self._lock:
            self.served_open_times.extend(r[0] for r in rows)
        return 200, rows

    def _in_gap(self, symbol: str, t: int) -> bool:
        return any(lo <= t <= hi for lo, hi in self.gaps.get(symbol, []))

    # -------------------------------------------------------------------------------------- plumbing

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                parts = urlsplit(self.path)
                params = dict(parse_qsl(parts.query))
                if self._went_away(parts.path):
                    return
                if parts.path == "/api/v3/klines" and server.stall_klines_s:
                    time.sleep(server.stall_klines_s)
                status, body = server.answer(parts.path, params)
                with server._lock:
                    server.requests.append(Recorded(parts.path, params, status))
                # bytes are sent as they are, labelled JSON: a truncated or otherwise broken JSON answer.
                data = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_response(status)
                is_json = not isinstance(body, str)
                self.send_header("Content-Type", "application/json" if is_json else "text/html")
                self.send_header("Content-Length", str(len(data)))
                if status == 429:
                    self.send_header("Retry-After", "1")
                self.end_headers()
                cut = server.cut_klines_after
                if cut is not None and parts.path == "/api/v3/klines" and server._klines_seen > cut:
                    self.wfile.write(data[: len(data) // 2])  # the server dies mid-answer
                    self._hang_up()
                    return
                self.wfile.write(data)

            def _went_away(self, path: str) -> bool:
                if path == "/api/v3/klines" and server.gone_after_klines is not None and not server._gone:
                    with server._lock:
                        if server._klines_seen >= server.gone_after_klines:
                            server._go_away()
                if server._gone:
                    self._hang_up()
                return server._gone

            def _hang_up(self) -> None:
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
                pass  # keep test output clean

        return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return  # the client gave up on a stalled answer (its timeout): nothing to report
        super().handle_error(request, client_address)


def _kline(symbol: str, open_ms: int, step: int) -> list[Any]:
    o, h, low, c, v = reference_candle(symbol, open_ms)
    return [open_ms, f"{o:.8f}", f"{h:.8f}", f"{low:.8f}", f"{c:.8f}", f"{v:.8f}", open_ms + step - 1,
            f"{v * c:.8f}", 1200, f"{v / 2:.8f}", f"{v * c / 2:.8f}", "0"]


def _symbol_info(symbol: str) -> dict[str, Any]:
    base, quote = symbol[:-4], symbol[-4:]
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
             "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
             "stepSize": "0.00001000"},
            {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
        ],
        "permissions": [],
        "permissionSets": [["SPOT", "MARGIN"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }
