"""Candles from a ccxt exchange (public market data only) into the local cache.

:func:`update_cache` reads the cache file, asks the exchange only for what is missing (candles newer than
the last cached one, and older ones when an earlier start is asked for), in pages of
``exchange.page_limit`` candles with ``since``, drops the still-open candle, merges, validates and replaces
the file atomically, then reports gaps. Network, rate-limit, DDoS-protection and "try again" server errors
are retried with exponential backoff (``exchange.max_retries``, ``exchange.backoff_s``); when they persist
an :class:`ExchangeUnavailableError` (retryable) is raised and the cache is left as it was. An exchange
that rejects the request (unknown symbol, bad parameter) is fatal at once.
"""

from __future__ import annotations

import difflib
import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import ccxt
import pandas as pd

from core.config import Config, ExchangeConfig
from core.errors import ConfigError, FatalError, RetryableError
from core.timeframes import ms_to_iso, timeframe_to_ms
from market.cache import cache_path, read_cached_candles, write_candles_atomic, write_candles_meta
from market.frames import COLUMNS, validate_candles
from market.gaps import Gap, describe_gaps, find_gaps

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    ccxt.NetworkError,  # the parent of the four below, and of InvalidNonce / OnMaintenance
    ccxt.DDoSProtection,
    ccxt.RateLimitExceeded,
    ccxt.RequestTimeout,
    ccxt.ExchangeNotAvailable,
    # ccxt's class for "the request failed, it may succeed later", e.g. Binance's HTTP 500 with
    # {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."}.
    ccxt.OperationFailed,
)
"""ccxt errors worth another try after a pause; every other ccxt error (ExchangeError: bad symbol, bad
parameter, authentication) is final."""


class ExchangeUnavailableError(RetryableError):
    """The exchange could not be reached (network, rate limit, maintenance) even after the retries."""


class ExchangeRejectedError(FatalError):
    """The exchange answered with an error that retrying cannot fix."""


class UnknownSymbolError(ExchangeRejectedError):
    """The exchange does not list the symbol."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failing request is repeated."""

    max_retries: int = 5
    backoff_s: float = 1.0
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_config(cls, ex: ExchangeConfig, sleep: Callable[[float], None] = time.sleep) -> RetryPolicy:
        return cls(max_retries=max(0, ex.max_retries), backoff_s=max(0.0, ex.backoff_s), sleep=sleep)

    def delay(self, retry: int) -> float:
        """Pause before retry number ``retry`` (0-based): ``backoff_s * 2**retry``."""
        return self.backoff_s * 2.0 ** retry


@dataclass(frozen=True)
class FetchResult:
    """Closed candles fetched for one range, with what the fetch cost and dropped."""

    frame: pd.DataFrame
    requests: int
    open_candle_dropped: bool


@dataclass(frozen=True)
class UpdateResult:
    """What :func:`update_cache` did to one cache file."""

    path: Path
    symbol: str
    timeframe: str
    rows_added: int
    total_rows: int
    requests: int
    gaps: list[Gap] = field(default_factory=list)

    def summary(self) -> str:
        """One line: rows added, total rows, gaps and the file."""
        return (f"{self.symbol} {self.timeframe}: +{self.rows_added} rows, {self.total_rows} total, "
                f"{describe_gaps(self.gaps)}, {self.path}")


# ---------------------------------------------------------------------------------------------- client


def make_exchange(ex: ExchangeConfig, *, exchange_id: str | None = None, url: str | None = None) -> ccxt.Exchange:
    """A public (key-less) ccxt client with rate limiting on, spot markets only, and the base URL override."""
    name = (exchange_id or ex.id).strip().lower()
    if name not in ccxt.exchanges:
        close = difflib.get_close_matches(name, ccxt.exchanges, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see ccxt.exchanges for the list"
        raise ConfigError(f"exchange `{name}` is not a ccxt exchange id{hint}")
    client: ccxt.Exchange = getattr(ccxt, name)({"enableRateLimit": True, "timeout": int(ex.timeout_ms)})
    _restrict_to_spot(client)
    base = url if url is not None else ex.url
    if base:
        client.urls["api"] = override_api_urls(client.urls.get("api"), base)
    return client


def open_exchange(cfg: Config, *, exchange_id: str | None = None, url: str | None = None) -> ccxt.Exchange:
    """:func:`make_exchange` from the whole configuration."""
    return make_exchange(cfg.exchange, exchange_id=exchange_id, url=url)


def _restrict_to_spot(client: ccxt.Exchange) -> None:
    # Loading markets would otherwise also call the derivatives endpoints (three requests on Binance).
    options = client.options
    if "defaultType" in options:
        options["defaultType"] = "spot"
    markets_option = options.get("fetchMarkets")
    if isinstance(markets_option, dict) and "spot" in (markets_option.get("types") or []):
        options["fetchMarkets"] = {**markets_option, "types": ["spot"]}
    elif isinstance(markets_option, list) and "spot" in markets_option:
        options["fetchMarkets"] = ["spot"]
    if "fetchCurrencies" in options:
        options["fetchCurrencies"] = False  # a private endpoint on several exchanges; markets suffice


def override_api_urls(api: Any, base: str) -> Any:
    """Every URL in ccxt's ``urls['api']`` (a string or nested dicts) moved to ``base``, keeping its path.

    ``http://127.0.0.1:8080`` turns ``https://api.binance.com/api/v3`` into ``http://127.0.0.1:8080/api/v3``;
    a base with a path (``https://proxy/binance``) is put in front of the original path. A base that already
    ends in one of the exchange's API paths (``http://127.0.0.1:8080/api/v3``, as a proxy URL is often
    written) is not extended again: that path is taken off first, so every endpoint keeps its own path.
    """
    target = urlsplit(base.strip())
    if not target.scheme or not target.netloc:
        raise ConfigError(f"exchange.url `{base}` must be an absolute URL such as http://127.0.0.1:8080")
    prefix = proxy_prefix(target.path, api_paths(api))
    return _moved(api, target.scheme, target.netloc, prefix)


def api_paths(api: Any) -> set[str]:
    """The paths (without a trailing slash) of every URL in ccxt's ``urls['api']``; empty ones left out."""
    if isinstance(api, dict):
        paths: set[str] = set()
        for value in api.values():
            paths |= api_paths(value)
        return paths
    if isinstance(api, str) and "://" in api:
        path = urlsplit(api).path.rstrip("/")
        return {path} if path else set()
    return set()


def proxy_prefix(base_path: str, known_paths: set[str]) -> str:
    """``base_path`` without the longest of ``known_paths`` it ends with (whole path segments only)."""
    path = base_path.rstrip("/")
    for known in sorted(known_paths, key=len, reverse=True):
        if path.endswith(known):  # a URL's path starts with "/", so this matches whole segments
            return path[: -len(known)]
    return path


def _moved(api: Any, scheme: str, netloc: str, prefix: str) -> Any:
    if isinstance(api, dict):
        return {key: _moved(value, scheme, netloc, prefix) for key, value in api.items()}
    if not isinstance(api, str) or "://" not in api:
        return api
    original = urlsplit(api)
    return urlunsplit((scheme, netloc, prefix + original.path, original.query, original.fragment))


# --------------------------------------------------------------------------------------------- retries


def call_with_retries(fn: Callable[[], T], what: str, policy: RetryPolicy) -> T:
    """``fn()``, retried on network / rate-limit / DDoS errors with exponential backoff.

    Raises :class:`ExchangeUnavailableError` after ``policy.max_retries`` retries,
    :class:`UnknownSymbolError` or :class:`ExchangeRejectedError` at once for an exchange's refusal.
    """
    for attempt in range(policy.max_retries + 1):
        try:
            return fn()
        except RETRYABLE_ERRORS as exc:
            if attempt >= policy.max_retries:
                raise ExchangeUnavailableError(
                    f"{what}: failed after {policy.max_retries} retries ({type(exc).__name__}: "
                    f"{_short(exc)}); check the network or the exchange's status and try again later"
                ) from exc
            delay = policy.delay(attempt)
            log.warning("%s: %s (%s); retry %d of %d in %.3gs", what, type(exc).__name__, _short(exc),
                        attempt + 1, policy.max_retries, delay)
            policy.sleep(delay)
        except ccxt.BadSymbol as exc:
            raise UnknownSymbolError(f"{what}: the exchange does not know this symbol ({_short(exc)}); "
                                     "check the spelling (BASE/QUOTE) and that the market is listed") from exc
        except ccxt.BaseError as exc:
            raise ExchangeRejectedError(f"{what}: the exchange refused the request ({type(exc).__name__}: "
                                        f"{_short(exc)}); retrying will not help") from exc
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def _short(exc: Exception, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----------------------------------------------------------------------------------------------- fetch


def check_market(client: ccxt.Exchange, symbol: str, timeframe: str, policy: RetryPolicy) -> None:
    """Load the markets (with retries) and make sure the symbol and timeframe exist there."""
    call_with_retries(client.load_markets, f"{client.id}: loading markets", policy)
    if symbol not in client.markets:
        close = [s for s in client.markets if s.upper() == symbol.upper()] or \
            difflib.get_close_matches(symbol, list(client.markets), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownSymbolError(f"{client.id} has no market `{symbol}`{hint} (symbols are BASE/QUOTE, "
                                 "e.g. BTC/USDT)")
    if not client.has.get("fetchOHLCV"):
        raise ExchangeRejectedError(f"{client.id} does not publish candles (no fetchOHLCV); pick another exchange")
    timeframes = client.timeframes or {}
    if timeframes and timeframe not in timeframes:
        raise ConfigError(f"{client.id} has no `{timeframe}` candles; it offers {', '.join(timeframes)}")


def fetch_candles(
    client: ccxt.Exchange, symbol: str, timeframe: str, since_ms: int, until_ms: int, *, page_limit: int,
    policy: RetryPolicy, now_ms: int, on_page: Callable[[int], None] | None = None,
) -> FetchResult:
    """Closed candles with open times in ``[since_ms, until_ms)``, page after page.

    A page asks for ``page_limit`` candles from ``since``; the next page starts one timeframe after the last
    candle received. Paging stops at an empty page, when no closed candle can follow, or when the exchange
    stops making progress. The candle still open at ``now_ms`` is dropped.
    """
    tf_ms = timeframe_to_ms(timeframe)
    rows: list[list[Any]] = []
    requests = 0
    since = since_ms
    what = f"{client.id}: candles {symbol} {timeframe}"
    while since < until_ms and since + tf_ms <= now_ms:  # a candle opening at `since` is wanted and closed
        page = call_with_retries(
            functools.partial(_fetch_page, client, symbol, timeframe, since, page_limit),
            f"{what} from {ms_to_iso(since)}", policy,
        )
        requests += 1
        if not page:
            break
        rows.extend(row[:6] for row in page)
        if on_page is not None:
            on_page(len(page))
        last = max(int(row[0]) for row in page)
        if last < since:
            break  # the exchange ignored `since`; asking again would loop
        since = last + tf_ms
    frame = pd.DataFrame(rows, columns=list(COLUMNS)) if rows else pd.DataFrame(columns=list(COLUMNS))
    frame, _ = validate_candles(frame, what)
    is_open = frame["timestamp"] + tf_ms > now_ms
    in_range = (frame["timestamp"] >= since_ms) & (frame["timestamp"] < until_ms)
    kept = frame[in_range & ~is_open].reset_index(drop=True)
    return FetchResult(kept, requests, bool(is_open.any()))


def _fetch_page(client: ccxt.Exchange, symbol: str, timeframe: str, since: int, limit: int) -> list[list[Any]]:
    """One page of candles; a 200 answer whose body is not JSON raises a (retryable) ExchangeNotAvailable.

    ccxt turns such a body (a proxy's HTML page, JSON cut off mid-way) into an empty page, which would end the
    paging early and report a short download as complete.
    """
    page: list[list[Any]] = client.fetch_ohlcv(symbol, timeframe, since=since, limit=limit)
    body = getattr(client, "last_http_response", None)
    if not page and isinstance(body, str) and body.strip():
        try:
            json.loads(body)
        except ValueError:
            raise ccxt.ExchangeNotAvailable(
                f"answered with a body that is not JSON ({len(body)} bytes: {_short(Exception(body), 80)})"
            ) from None
    return page


def missing_ranges(cached: pd.DataFrame, tf_ms: int, since_ms: int | None, end_ms: int,
                   history_candles: int) -> list[tuple[int, int]]:
    """``[start, end)`` ranges to ask for: before the cache (when an earlier start is wanted) and after it."""
    if cached.empty:
        start = since_ms if since_ms is not None else end_ms - history_candles * tf_ms
        return [(start, end_ms)] if start < end_ms else []
    first, last = int(cached["timestamp"].iloc[0]), int(cached["timestamp"].iloc[-1])
    ranges = []
    if since_ms is not None and since_ms <= first - tf_ms:  # room for at least one candle before the cache
        ranges.append((since_ms, min(first, end_ms)))
    if last + tf_ms < end_ms:
        ranges.append((last + tf_ms, end_ms))
    return ranges


def update_cache(
    cfg: Config, symbol: str, *, timeframe: str | None = None, since_ms: int | None = None,
    until_ms: int | None = None, exchange: ccxt.Exchange | None = None, history_candles: int | None = None,
    now_ms: int | None = None, sleep: Callable[[float], None] = time.sleep,
    on_page: Callable[[int], None] | None = None,
) -> UpdateResult:
    """Bring ``state/candles/<exchange>/<symbol>-<timeframe>.csv`` up to date with only the missing candles.

    With no cache, ``since_ms`` (else the last ``history_candles``, default ``exchange.history_candles``)
    starts the download. The file (and its ``.meta.json``) is replaced only after every page succeeded,
    so a failure leaves the cache exactly as it was.
    """
    tf = timeframe or cfg.market.timeframe
    tf_ms = timeframe_to_ms(tf)
    client = exchange if exchange is not None else open_exchange(cfg)
    policy = RetryPolicy.from_config(cfg.exchange, sleep=sleep)
    path = cache_path(cfg, symbol, exchange=client.id, timeframe=tf)
    cached = read_cached_candles(path)
    check_market(client, symbol, tf, policy)
    now = int(now_ms if now_ms is not None else time.time() * 1000)
    end = min(until_ms, now) if until_ms is not None else now
    history = history_candles if history_candles is not None else cfg.exchange.history_candles
    fetched: list[pd.DataFrame] = []
    requests = 0
    for start, stop in missing_ranges(cached, tf_ms, since_ms, end, history):
        result = fetch_candles(client, symbol, tf, start, stop, page_limit=cfg.exchange.page_limit,
                               policy=policy, now_ms=now, on_page=on_page)
        fetched.append(result.frame)
        requests += result.requests
    merged = _merge(cached, fetched, path)
    gaps = find_gaps(merged, tf)
    added = len(merged) - len(cached)
    if added > 0 or (len(merged) and not path.exists()):
        write_candles_atomic(path, merged)
        write_candles_meta(path, data_source="ccxt", exchange=client.id, symbol=symbol, timeframe=tf,
                           frame=merged, gaps=gaps, extra={"gap_ranges": [g.describe() for g in gaps[:20]]})
    if gaps:
        log.warning("%s %s %s: %s", client.id, symbol, tf, describe_gaps(gaps))
    return UpdateResult(path=path, symbol=symbol, timeframe=tf, rows_added=added, total_rows=len(merged),
                        requests=requests, gaps=gaps)


def _merge(cached: pd.DataFrame, fetched: list[pd.DataFrame], path: Path) -> pd.DataFrame:
    parts = [f for f in (cached, *fetched) if len(f)]
    if not parts:
        return cached
    return validate_candles(pd.concat(parts, ignore_index=True), str(path))[0]
