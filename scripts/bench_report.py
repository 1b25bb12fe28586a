"""Benchmark of the performance report on a long history: a year of hourly trades of the 8 strategies.

    python scripts/bench_report.py [--days 365] [--repeat 3] [--no-plots] [--goal-s 20] [--json]

Writes, in a temporary home folder, one closed trade per strategy and hour for ``--days`` days and a weight
record every 4 hours, then times :func:`analytics.performance.report.write_report` (replay of the four portfolios,
every window, the plots) and prints the best-of-N wall time. Speed goals live here, not in timed tests: the exit
code is 1 when the best time is over ``--goal-s`` ("a year of hourly trades in seconds"), else 0.
"""

from __future__ import annotations

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from analytics.performance.report import write_report
from core.config import STRATEGIES, Config, config_from_dict
from core.contracts.performance import weight_history_path
from core.contracts.pnl_history import append_trades, history_path
from core.errors import ExitCode

AS_OF = date(2024, 12, 31)
RECORD_EVERY_H = 4


def synthetic_year(cfg: Config, days: int, seed: int = 11) -> int:
    """Write ``days`` days of hourly trades (8 a hour) and the weight history; returns the number of trades."""
    rng = np.random.default_rng(seed)
    first = datetime.combine(AS_OF - timedelta(days=days - 1), datetime.min.time(), timezone.utc)
    hours = days * 24
    pnl = np.round(rng.normal(0.0001, 0.003, size=(hours, len(STRATEGIES))), 6)
    rows = []
    for h in range(hours):
        closed = first + timedelta(hours=h, minutes=30)
        stamp, opened = closed.isoformat(), (closed - timedelta(hours=2)).isoformat()
        for k, strategy in enumerate(STRATEGIES):
            rows.append({"closed_at": stamp, "opened_at": opened, "symbol": "BTC/USDT", "strategy": strategy,
                         "side": "long", "qty": 1.0, "entry_price": 100.0, "exit_price": 100.0 * (1 + pnl[h, k]),
                         "pnl": 100.0 * pnl[h, k], "pnl_pct": float(pnl[h, k]), "fees": 0.0,
                         "equity_after": 10_000.0})
    append_trades(history_path(cfg), rows)
    weights = rng.dirichlet(np.ones(len(STRATEGIES)), size=hours // RECORD_EVERY_H)
    lines = [json.dumps({"at": (first + timedelta(hours=RECORD_EVERY_H * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "weights": dict(zip(STRATEGIES, w.tolist(), strict=True)), "source": "rl"})
             for i, w in enumerate(weights)]
    weight_history_path(cfg).write_text("\n".join(lines) + "\n")
    return len(rows)


def time_report(cfg: Config, repeat: int, plots: bool) -> tuple[float, dict[str, Any]]:
    """Best wall time of ``repeat`` reports and the last report's document."""
    now = datetime.combine(AS_OF + timedelta(days=1), datetime.min.time(), timezone.utc)
    best, document = float("inf"), {}
    for _ in range(repeat):
        started = time.perf_counter()
        document = dict(write_report(cfg, AS_OF, now=now, with_plots=plots).document)
        best = min(best, time.perf_counter() - started)
    return best, document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_report.py", description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365, help="days of hourly trades (default 365)")
    parser.add_argument("--repeat", type=int, default=3, help="timed reports; the best is reported (default 3)")
    parser.add_argument("--no-plots", action="store_true", help="time the report without its PNG plots")
    parser.add_argument("--goal-s", type=float, default=20.0, help="exit 1 when slower than this (default 20)")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args(argv)
    if args.days < 1 or args.repeat < 1 or args.goal_s <= 0:
        parser.error("--days and --repeat must be >= 1, --goal-s > 0")
    with tempfile.TemporaryDirectory(prefix="bench_report_") as home:
        # The environment's home wins over the config's: point it at the scratch folder, never at real data.
        os.environ["RL_SYSTEM_HOME"] = home
        cfg = config_from_dict({"paths": {"home": home}})
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        trades = synthetic_year(cfg, args.days)
        best, document = time_report(cfg, args.repeat, plots=not args.no_plots)
    windows = document.get("windows", {})
    results = {"days": args.days, "trades": trades, "report_s": round(best, 3), "goal_s": args.goal_s,
               "windows_ok": sorted(k for k, w in windows.items() if w.get("status") == "ok"),
               "plots": not args.no_plots}
    if args.json:
        print(json.dumps(results))
    else:
        for key, value in results.items():
            print(f"{key:<12} {value}")
    return ExitCode.OK if best <= args.goal_s else ExitCode.FAILURE


if __name__ == "__main__":
    sys.exit(main())
