"""The real ccxt client against a local Binance stand-in: paging, incremental updates, retries, errors, gaps,
and ``scripts/download_candles.py`` end to end."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from core.config import Config, ExchangeConfig, replace_section
from core.errors import ConfigError, FatalError, RetryableError
from market.cache import cache_path, meta_path, read_cached_candles
from market.exchange import (
    ExchangeRejectedError,
    ExchangeUnavailableError,
    UnknownSymbolError,
    make_exchange,
    override_api_urls,
    update_cache,
)
from market.gaps import Gap
from market.sources import load_candles

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_binance import (  # noqa: E402 - the helper sits next to this file, outside any package
    BAD_GATEWAY,
    HOUR_MS,
    INTERNAL_ERROR,
    RATE_LIMITED,
    FakeBinance,
    reference_candle,
)

LISTED = 1_716_000_000_000 // HOUR_MS * HOUR_MS  # 2024-05-18T02:00:00Z
CLOSED = 250  # candles closed at NOW: pages of 100 give 100, 100, then 50 and the open candle
NOW = LISTED + CLOSED * HOUR_MS + 1_234_567  # 20 min into the candle still open
BACKOFF = 0.001


class Clock:
    """The one 'now' shared by the server and the client, moved by the tests."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def server(clock: Clock) -> Iterator[FakeBinance]:
    gap = (LISTED + 150 * HOUR_MS, LISTED + 153 * HOUR_MS)  # 4 candles missing on BTC
    with FakeBinance(clock, listed_from_ms=LISTED, gaps={"BTCUSDT": [gap]}, rejected=("XRPUSDT",)) as fake:
        yield fake


@pytest.fixture
def ex_cfg(cfg: Config, server: FakeBinance) -> Config:
    return replace_section(cfg, "exchange", url=server.url, page_limit=100, max_retries=3, backoff_s=BACKOFF)


def expected_frame(symbol: str, times: list[int]) -> pd.DataFrame:
    rows = [[t, *reference_candle(symbol, t)] for t in times]
    return pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close", "volume"])


def klines_starts(server: FakeBinance) -> list[int]:
    return [int(r.params["startTime"]) for r in server.klines_requests()]


# ----------------------------------------------------------------------------------------- downloads


def test_first_download_pages_by_limit_and_drops_the_open_candle(ex_cfg: Config, server: FakeBinance) -> None:
    result = update_cache(ex_cfg, "ETH/USDT", since_ms=LISTED, now_ms=NOW)

    open_candle = LISTED + CLOSED * HOUR_MS
    assert open_candle in server.served_open_times  # the exchange did send it
    closed = [LISTED + i * HOUR_MS for i in range(CLOSED)]
    assert klines_starts(server) == [LISTED, LISTED + 100 * HOUR_MS, LISTED + 200 * HOUR_MS]
    assert all(r.params["limit"] == "100" for r in server.klines_requests())
    cached = read_cached_candles(result.path)
    pd.testing.assert_frame_equal(cached, expected_frame("ETHUSDT", closed))
    assert (result.rows_added, result.total_rows, result.gaps) == (CLOSED, CLOSED, [])
    assert int(cached["timestamp"].iloc[-1]) == open_candle - HOUR_MS
    assert result.path == ex_cfg.state_dir / "candles" / "binance" / "ETH_USDT-1h.csv"


def test_cache_file_and_sidecar_follow_the_contract(ex_cfg: Config) -> None:
    result = update_cache(ex_cfg, "ETH/USDT", since_ms=LISTED + 240 * HOUR_MS, now_ms=NOW)
    lines = result.path.read_text().splitlines()
    assert lines[0] == "timestamp,open,high,low,close,volume"
    assert lines[1].startswith(f"{LISTED + 240 * HOUR_MS},")
    meta = pd.read_json(meta_path(result.path), typ="series")
    assert meta["data_source"] == "ccxt" and meta["exchange"] == "binance"
    assert meta["symbol"] == "ETH/USDT" and meta["timeframe"] == "1h" and meta["rows"] == 10
    assert {"schema_version", "generated_at", "producer", "updated_at"} <= set(meta.index)


def test_update_fetches_only_candles_newer_than_the_cache(ex_cfg: Config, server: FakeBinance,
                                                           clock: Clock) -> None:
    first = update_cache(ex_cfg, "ETH/USDT", since_ms=LISTED, now_ms=clock())
    before = read_cached_candles(first.path)
    last = int(before["timestamp"].iloc[-1])
    server.requests.clear()

    clock.ms += 5 * HOUR_MS
    second = update_cache(ex_cfg, "ETH/USDT", since_ms=LISTED, now_ms=clock())

    assert klines_starts(server) == [last + HOUR_MS]
    assert second.rows_added == 5 and second.total_rows == CLOSED + 5
    after = read_cached_candles(first.path)
    pd.testing.assert_frame_equal(after.iloc[:CLOSED], before)
    pd.testing.assert_frame_equal(after.iloc[CLOSED:].reset_index(drop=True),
                                  expected_frame("ETHUSDT", [last + i * HOUR_MS for i in range(1, 6)]))


def test_up_to_date_cache_asks_for_nothing_and_is_not_rewritten(ex_cfg: Config, server: FakeBinance) -> None:
    first = update_cache(ex_cfg, "ETH/USDT", since_ms=LISTED, now_ms=NOW)
    stamp = first.path.stat().st_mtime_ns
    server.requests.clear()
    again = update_cache(ex_cfg, "ETH/USDT", now_ms=NOW + 60_000)
    assert server.klines_requests() == [] and again.rows_added == 0
    assert first.path.stat().st_mtime_ns == stamp


def test_an_earlier_start_backfills_only_the_missing_head(ex_cfg: Config, server: FakeBinance) -> None:
    update_cache(ex_cfg, "ETH/USDT", since_ms=LISTED + 200 * HOUR_MS, now_ms=NOW)
    server.requests.clear()
    result = update_cache(ex_cfg, "ETH/USDT", since_ms=LISTED + 190 * HOUR_MS, now_ms=NOW)
    assert klines_starts(server) == [LISTED + 190 * HOUR_MS]
    assert result.rows_added == 10 and result.total_rows == 60


def test_until_bounds_the_download(ex_cfg: Config) -> None:
    result = update_cache(ex_cfg, "ETH/USDT", since_ms=LISTED, until_ms=LISTED + 10 * HOUR_MS, now_ms=NOW)
    cached = read_cached_candles(result.path)
    assert cached["timestamp"].tolist() == [LISTED + i * HOUR_MS for i in range(10)]


def test_gaps_are_detected_and_reported(ex_cfg: Config, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        result = update_cache(ex_cfg, "BTC/USDT", since_ms=LISTED, now_ms=NOW)
    assert result.gaps == [Gap(LISTED + 150 * HOUR_MS, LISTED + 153 * HOUR_MS, 4)]
    assert result.total_rows == CLOSED - 4
    assert "1 gap, 4 candle(s) missing: 2024-05-24T08:00:00Z..2024-05-24T11:00:00Z" in result.summary()
    assert "1 gap" in caplog.text
    assert pd.read_json(meta_path(result.path), typ="series")["missing_candles"] == 4


# ------------------------------------------------------------------------------------------- retries


def test_rate_limit_and_server_errors_are_retried_with_backoff(ex_cfg: Config, server: FakeBinance) -> None:
    server.fail_klines(RATE_LIMITED, INTERNAL_ERROR, BAD_GATEWAY)
    pauses: list[float] = []
    result = update_cache(ex_cfg, "ETH/USDT", since_ms=LISTED + 200 * HOUR_MS, now_ms=NOW, sleep=pauses.append)
    assert pauses == [BACKOFF, 2 * BACKOFF, 4 * BACKOFF]
    assert [r.status for r in server.klines_requests()] == [429, 500, 502, 200]
    assert result.total_rows == 50


def test_exhausted_retries_raise_a_clear_error_and_leave_the_cache(ex_cfg: Config, server: FakeBinance,
                                                                   clock: Clock) -> None:
    first = update_cache(ex_cfg, "ETH/USDT", since_ms=LISTED, now_ms=clock())
    content, meta = first.path.read_bytes(), meta_path(first.path).read_bytes()
    server.requests.clear()
    clock.ms += 3 * HOUR_MS
    server.always_fail = RATE_LIMITED

    with pytest.raises(ExchangeUnavailableError) as caught:
        update_cache(ex_cfg, "ETH/USDT", now_ms=clock(), sleep=lambda s: None)

    assert isinstance(caught.value, RetryableError)
    assert "after 3 retries" in str(caught.value) and "DDoSProtection" in str(caught.value)
    assert len(server.klines_requests()) == 4  # the first try and 3 retries
    assert first.path.read_bytes() == content and meta_path(first.path).read_bytes() == meta
    assert sorted(p.name for p in first.path.parent.iterdir()) == ["ETH_USDT-1h.csv", "ETH_USDT-1h.csv.meta.json"]


def test_a_failure_on_a_later_page_writes_nothing(ex_cfg: Config, server: FakeBinance) -> None:
    server.fail_after_klines = 2  # two pages arrive, then every klines request fails
    server.always_fail = BAD_GATEWAY
    with pytest.raises(ExchangeUnavailableError):
        update_cache(ex_cfg, "ETH/USDT", since_ms=LISTED, now_ms=NOW, sleep=lambda s: None)
    assert [r.status for r in server.klines_requests()] == [200, 200, 502, 502, 502, 502]
    assert not cache_path(ex_cfg, "ETH/USDT").exists()


# ---------------------------------------------------------------------------------------- bad input


def test_unknown_symbol_is_fatal_at_once(ex_cfg: Config, server: FakeBinance) -> None:
    with pytest.raises(UnknownSymbolError) as caught:
        update_cache(ex_cfg, "BTC/USDX", since_ms=LISTED, now_ms=NOW, sleep=pytest.fail)
    assert isinstance(caught.value, FatalError)
    assert "no market `BTC/USDX`" in str(caught.value) and "BTC/USDT" in str(caught.value)
    assert server.count("/api/v3/exchangeInfo") == 1 and server.klines_requests() == []
    assert not (ex_cfg.state_dir / "candles" / "binance").exists()


def test_symbol_rejected_by_the_exchange_is_not_retried(ex_cfg: Config, server: FakeBinance) -> None:
    with pytest.raises(UnknownSymbolError) as caught:
        update_cache(ex_cfg, "XRP/USDT", since_ms=LISTED, now_ms=NOW, sleep=pytest.fail)
    assert "Invalid symbol" in str(caught.value)
    assert len(server.klines_requests()) == 1


def test_unsupported_timeframe_is_bad_input(ex_cfg: Config) -> None:
    with pytest.raises(ConfigError, match="has no `7m` candles"):
        update_cache(ex_cfg, "ETH/USDT", timeframe="7m", since_ms=LISTED, now_ms=NOW)


def test_unknown_exchange_id_names_close_matches() -> None:
    with pytest.raises(ConfigError, match="did you mean binance"):
        make_exchange(ExchangeConfig(id="binanse"))


def test_client_is_public_rate_limited_and_spot_only(server: FakeBinance) -> None:
    client = make_exchange(ExchangeConfig(url=server.url))
    assert client.enableRateLimit is True and not client.apiKey and not client.secret
    assert client.options["fetchMarkets"]["types"] == ["spot"]
    assert client.urls["api"]["public"] == f"{server.url}/api/v3"
    client.load_markets()
    assert [r.path for r in server.requests] == ["/api/v3/exchangeInfo"]


def test_url_override_keeps_paths_and_structure() -> None:
    api = {"public": "https://api.binance.com/api/v3", "nested": {"x": "https://fapi.binance.com/fapi/v1?a=1"},
           "flag": True}
    moved = override_api_urls(api, "https://proxy.local:8443/binance/")
    assert moved == {"public": "https://proxy.local:8443/binance/api/v3",
                     "nested": {"x": "https://proxy.local:8443/binance/fapi/v1?a=1"}, "flag": True}
    assert override_api_urls("https://api.kraken.com", "http://127.0.0.1:9") == "http://127.0.0.1:9"
    with pytest.raises(ConfigError, match="absolute URL"):
        override_api_urls(api, "127.0.0.1:9")


def test_url_that_already_ends_in_the_api_path_is_not_extended_again() -> None:
    api = {"public": "https://api.binance.com/api/v3", "v1": "https://api.binance.com/api/v1",
           "sapi": "https://api.binance.com/sapi/v1"}
    for base in ("http://127.0.0.1:9/api/v3", "http://127.0.0.1:9/api/v3/", "http://127.0.0.1:9"):
        assert override_api_urls(api, base) == {"public": "http://127.0.0.1:9/api/v3",
                                                "v1": "http://127.0.0.1:9/api/v1",
                                                "sapi": "http://127.0.0.1:9/sapi/v1"}
    # a proxy prefix survives, only the repeated API path is taken off
    assert override_api_urls(api, "https://proxy.local/binance/api/v3")["sapi"] == "https://proxy.local/binance/sapi/v1"
    # a path that merely looks alike (not whole segments) is a prefix like any other
    assert override_api_urls(api, "http://h:1/xapi/v3")["public"] == "http://h:1/xapi/v3/api/v3"


@pytest.mark.parametrize("suffix", ["", "/api/v3", "/api/v3/"])
def test_download_with_either_url_form_hits_the_exact_paths(
    suffix: str, live_server: FakeBinance, config_file: Path, cfg: Config, capsys: pytest.CaptureFixture[str],
) -> None:
    from scripts.download_candles import main

    code = main(["--symbol", "ETH/USDT", "--days", "1", "--exchange-url", live_server.url + suffix,
                 "--config", str(config_file), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    paths = {r.path for r in live_server.requests}
    assert paths == {"/api/v3/exchangeInfo", "/api/v3/klines"}  # the fake answers 404 to any other path
    assert all(r.status == 200 for r in live_server.requests)
    assert read_cached_candles(cache_path(cfg, "ETH/USDT")).shape[0] >= 23


def test_other_exchange_errors_are_fatal(ex_cfg: Config, server: FakeBinance) -> None:
    server.fail_klines((400, {"code": -1100, "msg": "Illegal characters found in parameter 'symbol'."}))
    with pytest.raises(ExchangeRejectedError, match="retrying will not help"):
        update_cache(ex_cfg, "ETH/USDT", since_ms=LISTED, now_ms=NOW, sleep=pytest.fail)


# ------------------------------------------------------------------------------------- load_candles


def test_load_candles_from_ccxt_updates_then_falls_back_to_the_cache(
    ex_cfg: Config, server: FakeBinance, clock: Clock, caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = replace_section(ex_cfg, "market", data_source="ccxt")
    cfg = replace_section(cfg, "exchange", history_candles=20)
    clock.ms = int(time.time() * 1000)  # load_candles runs on the real clock
    frames = load_candles(cfg, ["ETH/USDT"], limit=5)
    assert list(frames) == ["ETH/USDT"] and len(frames["ETH/USDT"]) == 5
    full = read_cached_candles(cache_path(cfg, "ETH/USDT"))
    assert 19 <= len(full) <= 20
    assert int(full["timestamp"].iloc[-1]) + HOUR_MS <= int(time.time() * 1000)

    server.down = INTERNAL_ERROR  # every endpoint, so loading the markets fails too
    slow = replace_section(cfg, "exchange", max_retries=1)
    with caplog.at_level(logging.WARNING):
        stale = load_candles(slow, ["ETH/USDT"])
    pd.testing.assert_frame_equal(stale["ETH/USDT"], full)
    assert "ETH/USDT: update failed, using the cached candles as they are" in caplog.text
    assert server.requests[-1].status == 500
    with pytest.raises(RetryableError):
        load_candles(slow, ["BTC/USDT"])


# ------------------------------------------------------------------------------------------- script


@pytest.fixture
def live_server() -> Iterator[FakeBinance]:
    listed = (int(time.time() * 1000) - 30 * 86_400_000) // HOUR_MS * HOUR_MS
    with FakeBinance(lambda: int(time.time() * 1000), listed_from_ms=listed) as fake:
        yield fake


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    file = tmp_path / "download.toml"
    file.write_text("[exchange]\npage_limit = 20\nmax_retries = 2\nbackoff_s = 0.001\n")
    return file


def test_script_downloads_then_updates(live_server: FakeBinance, config_file: Path, cfg: Config,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from scripts.download_candles import main

    args = ["--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1h", "--days", "2",
            "--exchange-url", live_server.url, "--config", str(config_file)]
    before = int(time.time() * 1000)
    assert main(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    path = cache_path(cfg, "BTC/USDT", exchange="binance", timeframe="1h")
    frame = read_cached_candles(path)
    assert len(out) == 1 and out[0].startswith(f"BTC/USDT 1h: +{len(frame)} rows, {len(frame)} total, no gaps")
    assert out[0].endswith(str(path))
    assert 47 <= len(frame) <= 48 and len(live_server.klines_requests()) == 3  # pages of 20
    assert int(frame["timestamp"].iloc[-1]) >= before // HOUR_MS * HOUR_MS - HOUR_MS  # newest closed one
    pd.testing.assert_frame_equal(frame, expected_frame("BTCUSDT", frame["timestamp"].tolist()))

    live_server.requests.clear()
    assert main(args) == 0
    again = capsys.readouterr().out
    last = int(frame["timestamp"].iloc[-1])
    if live_server.klines_requests():  # an hour turned between the two runs: exactly the new candle
        assert klines_starts(live_server) == [last + HOUR_MS] and "+1 rows" in again
    else:
        assert again.startswith(f"BTC/USDT 1h: +0 rows, {len(frame)} total")


@pytest.mark.parametrize(("extra", "code", "message"), [
    (["--symbol", "NOPE/USDT"], 2, "no market `NOPE/USDT`"),
    (["--symbol", "btc/usdt"], 2, "no market `btc/usdt`; did you mean BTC/USDT?"),
    (["--symbol", "BTC/USDT", "--since", "last tuesday"], 2, "--since `last tuesday` is not an ISO-8601 date"),
    (["--symbol", "BTC/USDT", "--timeframe", "3x"], 2, "timeframe `3x` is not valid"),
    (["--symbol", "BTC/USDT", "--exchange", "nosuchexchange"], 2, "not a ccxt exchange id"),
])
def test_script_bad_input_exits_2(live_server: FakeBinance, config_file: Path, extra: list[str], code: int,
                                  message: str, capsys: pytest.CaptureFixture[str]) -> None:
    from scripts.download_candles import main

    assert main(["--exchange-url", live_server.url, "--config", str(config_file), *extra]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_script_exchange_failure_exits_1(live_server: FakeBinance, config_file: Path, cfg: Config,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from scripts.download_candles import main

    live_server.always_fail = RATE_LIMITED
    code = main(["--symbol", "ETH/USDT", "--days", "1", "--exchange-url", live_server.url,
                 "--config", str(config_file), "--no-progress"])
    assert code == 1
    assert "failed after 2 retries" in capsys.readouterr().err
    assert len(live_server.klines_requests()) == 3
    assert not cache_path(cfg, "ETH/USDT").exists()


def test_script_prints_finished_symbols_before_a_later_failure(live_server: FakeBinance, config_file: Path,
                                                               cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    from scripts.download_candles import main

    code = main(["--symbol", "ETH/USDT", "--symbol", "NOPE/USDT", "--days", "1", "--exchange-url", live_server.url,
                 "--config", str(config_file), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 2 and "no market `NOPE/USDT`" in captured.err
    assert captured.out.startswith("ETH/USDT 1h: +")  # the first symbol's cache was written and reported
    assert read_cached_candles(cache_path(cfg, "ETH/USDT")).shape[0] >= 23


@pytest.mark.parametrize("body", [
    b'[[1716000000000,"1.0","2.0","0.5"',  # JSON cut off mid-way, labelled JSON
    "<html><body><h1>Down for maintenance</h1></body></html>",  # a proxy's page with status 200
])
def test_script_a_200_answer_that_is_not_json_is_an_error_not_a_short_download(
        live_server: FakeBinance, config_file: Path, cfg: Config, body: bytes | str,
        capsys: pytest.CaptureFixture[str]) -> None:
    from scripts.download_candles import main

    live_server.fail_klines(*[(200, body)] * 3)  # every attempt (max_retries = 2) gets the broken answer
    code = main(["--symbol", "ETH/USDT", "--days", "1", "--exchange-url", live_server.url,
                 "--config", str(config_file), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1 and "body that is not JSON" in captured.err and "Traceback" not in captured.err
    assert "+0 rows" not in captured.out and "no gaps" not in captured.out
    assert not cache_path(cfg, "ETH/USDT").exists()


def test_a_broken_answer_once_is_retried_and_the_download_completes(ex_cfg: Config, server: FakeBinance) -> None:
    server.fail_klines((200, b'[[1716000000000,"1.0"'))
    result = update_cache(ex_cfg, "ETH/USDT", since_ms=LISTED, now_ms=NOW)
    closed = [LISTED + i * HOUR_MS for i in range(CLOSED)]
    pd.testing.assert_frame_equal(read_cached_candles(result.path), expected_frame("ETHUSDT", closed))


def _leftovers(cfg: Config) -> list[str]:
    """Every file under the candle cache's folder (a half-written file or a temporary one would show here)."""
    root = cache_path(cfg, "ETH/USDT").parent
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.parametrize("fault,message", [
    ("stall", "RequestTimeout"),  # each answer comes after the client's timeout
    ("cut", "NetworkError"),  # the server dies mid-answer: headers and half the body, then the socket closes
    ("gone", "NetworkError"),  # the server goes away after the first page and stops listening
])
def test_script_an_exchange_that_stalls_or_goes_away_mid_download_is_one_line_and_writes_nothing(
        live_server: FakeBinance, tmp_path: Path, cfg: Config, fault: str, message: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    from scripts.download_candles import main

    config = tmp_path / "faults.toml"
    config.write_text("[exchange]\npage_limit = 20\nmax_retries = 2\nbackoff_s = 0.001\ntimeout_ms = 300\n")
    if fault == "stall":
        live_server.stall_klines_s = 0.6
    elif fault == "cut":
        live_server.cut_klines_after = 1
    else:
        live_server.gone_after_klines = 1
    started = time.monotonic()
    code = main(["--symbol", "ETH/USDT", "--days", "1", "--exchange-url", live_server.url,
                 "--config", str(config), "--no-progress"])
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if "retry" not in line]  # the retries are logged
    assert code == 1 and len(errors) == 1, captured.err
    assert errors[0].startswith("error: ") and "failed after 2 retries" in errors[0] and message in errors[0]
    assert "check the network" in errors[0] and "Traceback" not in captured.err
    assert captured.out == "" and _leftovers(cfg) == []  # the first page fetched was not written either
    assert time.monotonic() - started < 20  # the timeout holds: no waiting on a dead server
    assert "retry 1 of 2" in captured.err and "retry 2 of 2" in captured.err  # retried before giving up


def test_a_cache_in_place_is_left_byte_for_byte_when_the_exchange_goes_away(
        ex_cfg: Config, server: FakeBinance, clock: Clock) -> None:
    first = update_cache(ex_cfg, "ETH/USDT", since_ms=LISTED, now_ms=NOW)
    before = first.path.read_bytes(), meta_path(first.path).read_bytes()
    clock.ms = NOW + 150 * HOUR_MS  # 150 new candles: two pages of 100 are needed
    server.gone_after_klines = len(server.klines_requests()) + 1  # one more page, then the server is gone
    with pytest.raises(ExchangeUnavailableError, match="failed after 3 retries"):
        update_cache(ex_cfg, "ETH/USDT", now_ms=clock.ms)
    assert (first.path.read_bytes(), meta_path(first.path).read_bytes()) == before
    assert sorted(p.name for p in first.path.parent.iterdir()) == sorted([first.path.name,
                                                                         meta_path(first.path).name])
