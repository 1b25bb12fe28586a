"""Benchmark of the data path: synthetic market generation, indicators and the 8 strategies' signals.

    python scripts/bench_data.py [--candles 10000] [--repeat 5] [--json]

Prints the best-of-N wall time of each stage (speed goals live here, not in timed tests).
"""

from __future__ import annotations

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import sys
import time
from collections.abc import Callable

from agents.strategies import compute_signals
from core.config import Config
from core.errors import ExitCode
from market.regime import classify_regime
from market.synthetic import generate_market

SYMBOLS = ["BTC/USDT", "ETH/USDT"]


def best_of(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up: imports, caches
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=10_000, help="candles per symbol (default 10000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed repetitions; the best is reported")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args(argv)
    if args.candles < 100 or args.repeat < 1:
        parser.error("--candles must be >= 100 and --repeat >= 1")
    cfg = Config()
    frames = generate_market(SYMBOLS, args.candles, seed=7).candles
    results = {
        "candles": args.candles,
        "synthetic_market_s": best_of(lambda: generate_market(SYMBOLS, args.candles, seed=7), args.repeat),
        "regime_classifier_s": best_of(lambda: classify_regime(frames["BTC/USDT"]), args.repeat),
        "signals_8_strategies_s": best_of(lambda: compute_signals(frames, "BTC/USDT", cfg.strategies), args.repeat),
    }
    if args.json:
        print(json.dumps(results))
    else:
        for key, value in results.items():
            print(f"{key:<26} {value:.4f}" if isinstance(value, float) else f"{key:<26} {value}")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
