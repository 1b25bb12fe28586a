"""Download candles into the local cache, or refresh it with only the candles newer than its last one.

    python scripts/download_candles.py --exchange binance --symbol BTC/USDT --timeframe 1h --days 30
    python scripts/download_candles.py --symbol BTC/USDT --symbol ETH/USDT --since 2024-01-01 --until 2024-03-01
    python scripts/download_candles.py --exchange synthetic --days 90      # the offline synthetic market

Files: ``state/candles/<exchange>/<BASE>_<QUOTE>-<timeframe>.csv`` plus a ``.meta.json`` sidecar saying where
the candles came from. Public market data only: no API keys are needed or read. Prints one summary line per
symbol (rows added, total rows, gaps, file). Exit codes: 0 done, 2 bad input (arguments, config, unknown
symbol or timeframe, unusable cache file), 1 the exchange or the disk failed (unreachable after the retries, an
exchange error, a cache that cannot be written), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm

from core.atomic import parse_iso
from core.cli import add_config_argument, load_command_config, with_changes
from core.config import Config
from core.errors import ConfigError, DataError, ExitCode, FatalError, RetryableError
from core.logging_setup import setup_logging
from core.timeframes import timeframe_to_ms
from market.cache import cache_path, write_candles_atomic, write_candles_meta
from market.exchange import ExchangeRejectedError, UnknownSymbolError, open_exchange, update_cache
from market.gaps import describe_gaps, find_gaps
from market.synthetic import synthetic_candles

log = logging.getLogger(__name__)

DAY_MS = 86_400_000


class BadArgument(ValueError):
    """A command-line value that cannot be used; the message says which and how to fix it."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="download_candles.py",
        description="Download candles from a ccxt exchange (public data, no keys) into state/candles/, "
                    "fetching only what the cache lacks. `--exchange synthetic` writes the seeded "
                    "synthetic market instead.",
        epilog="Exit codes: 0 done, 2 bad input, 1 exchange or disk failure, 130 interrupted.",
    )
    parser.add_argument("--exchange", help="ccxt exchange id, or `synthetic` (default: exchange.id, binance)")
    parser.add_argument("--symbol", action="append", metavar="BASE/QUOTE",
                        help="symbol to download; repeat for several (default: market.symbols)")
    parser.add_argument("--timeframe", help="candle length in ccxt notation, e.g. 1m, 15m, 1h, 4h, 1d, 1w "
                                            "(default: market.timeframe)")
    span = parser.add_mutually_exclusive_group()
    span.add_argument("--days", type=float, help="start this many days before --until (or now)")
    span.add_argument("--since", help="start date, ISO-8601 UTC (2024-01-31 or 2024-01-31T12:00:00Z)")
    parser.add_argument("--until", help="end date (exclusive), ISO-8601 UTC (default: now)")
    parser.add_argument("--exchange-url", metavar="URL",
                        help="replace the exchange's public REST base URL (a proxy, a test server); "
                             "config key exchange.url")
    add_config_argument(parser, "TOML config file (default: $RL_SYSTEM_CONFIG or rl_system.toml)")
    parser.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_command_config(None, args.config,
                              lambda c: with_changes(c, "exchange", url=args.exchange_url or None))
    if cfg is None:
        return ExitCode.BAD_INPUT
    try:
        setup_logging(cfg)
        timeframe = args.timeframe or cfg.market.timeframe
        timeframe_to_ms(timeframe)
        symbols = args.symbol or list(cfg.market.symbols)
        since_ms, until_ms = time_span(args.days, args.since, args.until, now_ms=int(time.time() * 1000))
        exchange_id = (args.exchange or cfg.exchange.id).strip().lower()
        if exchange_id == "synthetic":
            lines = write_synthetic(cfg, symbols, timeframe, since_ms, until_ms)
        else:
            lines = download(cfg, exchange_id, symbols, timeframe, since_ms, until_ms, not args.no_progress)
        for line in lines:  # each symbol's line as soon as it is done, so a later failure keeps them
            print(line, flush=True)
    except (BadArgument, ConfigError, DataError, UnknownSymbolError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except (RetryableError, ExchangeRejectedError, FatalError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.FAILURE
    except OSError as exc:
        # Disk full, a read-only or missing state folder: the cache file is replaced atomically, so it is intact.
        print(f"error: cannot write the candle cache ({exc}); check the free space and permissions of "
              f"{exc.filename or 'the state folder'}", file=sys.stderr)
        return ExitCode.FAILURE
    except KeyboardInterrupt:
        print("interrupted; the cache files keep their last complete version", file=sys.stderr)
        return ExitCode.INTERRUPTED
    return ExitCode.OK


def time_span(days: float | None, since: str | None, until: str | None, *, now_ms: int) -> tuple[int | None, int | None]:
    """``(since_ms, until_ms)`` from the options; None means "from the cache / default" and "now"."""
    until_ms = _parse_date(until, "--until") if until else None
    if days is not None:
        if days <= 0:
            raise BadArgument(f"--days must be positive, got {days:g}")
        return int((until_ms if until_ms is not None else now_ms) - days * DAY_MS), until_ms
    since_ms = _parse_date(since, "--since") if since else None
    if since_ms is not None and until_ms is not None and since_ms >= until_ms:
        raise BadArgument(f"--since {since} is not before --until {until}; swap them")
    return since_ms, until_ms


def _parse_date(text: str, option: str) -> int:
    try:
        return int(parse_iso(text.strip()).timestamp() * 1000)
    except ValueError as exc:
        raise BadArgument(f"{option} `{text}` is not an ISO-8601 date such as 2024-01-31 or "
                          "2024-01-31T12:00:00Z") from exc


def download(cfg: Config, exchange_id: str, symbols: Sequence[str], timeframe: str, since_ms: int | None,
             until_ms: int | None, progress: bool) -> Iterator[str]:
    """Update every symbol's cache file, yielding the summary line of each once it is written."""
    client = open_exchange(cfg, exchange_id=exchange_id)
    for symbol in symbols:
        with tqdm(desc=f"{symbol} {timeframe}", unit="candle", disable=not progress, leave=False,
                  file=sys.stderr) as bar:
            result = update_cache(cfg, symbol, timeframe=timeframe, since_ms=since_ms, until_ms=until_ms,
                                  exchange=client, on_page=bar.update)
        yield result.summary()


def write_synthetic(cfg: Config, symbols: Sequence[str], timeframe: str, since_ms: int | None,
                    until_ms: int | None) -> Iterator[str]:
    """Write the synthetic market (``[synthetic]`` settings; the span moves its start and length), yielding
    the summary line of each symbol."""
    tf_ms = timeframe_to_ms(timeframe)
    n = cfg.synthetic.n_candles
    if since_ms is not None:
        end = until_ms if until_ms is not None else int(time.time() * 1000)
        since_ms = since_ms - since_ms % tf_ms
        n = max(1, (end - since_ms) // tf_ms)
    for symbol, frame in synthetic_candles(cfg, symbols, n_candles=n, timeframe=timeframe, start_ms=since_ms).items():
        path = cache_path(cfg, symbol, exchange="synthetic", timeframe=timeframe)
        gaps = find_gaps(frame, timeframe)
        write_candles_atomic(path, frame)
        write_candles_meta(path, data_source="synthetic", exchange="synthetic", symbol=symbol,
                           timeframe=timeframe, frame=frame, gaps=gaps, extra={"seed": cfg.synthetic.seed})
        yield (f"{symbol} {timeframe}: {len(frame)} rows (synthetic, seed {cfg.synthetic.seed}), "
               f"{len(frame)} total, {describe_gaps(gaps)}, {path}")


if __name__ == "__main__":
    sys.exit(main())
