"""Shared data of the performance tests: a synthetic, gappy trade history with known daily returns, weight
records, and the report's figures computed independently with plain numpy."""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analytics.performance.figures import NOT_ENOUGH_DATA
from core.config import STRATEGIES, Config, replace_section
from core.contracts.performance import weight_history_path
from tests.analytics.support import trade_at as trade

AS_OF = date(2024, 3, 31)
N_DAYS = 40
FIRST_DAY = AS_OF - timedelta(days=N_DAYS - 1)
PPY = 365.0
GAP = range(25, 30)
"""Day indexes without any trade (a gappy history)."""
W_A = dict(zip(STRATEGIES, np.arange(1.0, 9.0) / 36.0, strict=True))
W_B = dict(zip(STRATEGIES, np.array([4.0, 0, 0, 1, 1, 0, 2, 0]) / 8.0, strict=True))


def at(day: date, hour: float = 0.0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(hours=hour)


def synthetic_trades(seed: int, n_days: int = N_DAYS, gap: range = GAP, first: date = FIRST_DAY) -> list[dict]:
    """0-3 trades a strategy and day at random hours; none at all on the ``gap`` days."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_days):
        if i in gap:
            continue
        for k, name in enumerate(STRATEGIES):
            for _ in range(rng.choice((0, 1, 1, 2, 3))):
                pnl = round(rng.gauss(0.001 * (k - 3), 0.004 * (1 + k % 3)), 6)
                rows.append(trade(at(first + timedelta(days=i), rng.uniform(0.0, 23.99)), name, pnl))
    rng.shuffle(rows)  # the history file need not be sorted
    return rows


def expected_daily(rows: list[dict], first: date, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-day sums of pnl_pct and trade counts (n_days x 8), computed from the rows with plain Python."""
    sums: dict[tuple[int, int], float] = defaultdict(float)
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for row in rows:
        day = datetime.fromisoformat(str(row["closed_at"])).date()
        key = ((day - first).days, STRATEGIES.index(str(row["strategy"])))
        sums[key] += float(row["pnl_pct"])
        counts[key] += 1
    r, c = np.zeros((n_days, 8)), np.zeros((n_days, 8))
    for (d, s), v in sums.items():
        r[d, s] = v
        c[d, s] = counts[(d, s)]
    return r, c


def numpy_figures(r: np.ndarray, active: np.ndarray) -> dict[str, float | None]:
    """The report's figures by their textbook formulas; None where a ratio is undefined (zero denominator)."""
    equity = np.concatenate([[1.0], np.cumprod(1.0 + r)])
    downside = math.sqrt(np.mean(np.minimum(r, 0.0) ** 2))
    return {
        "total_return": float(np.prod(1.0 + r) - 1.0),
        "sharpe_ratio": float(r.mean() / r.std(ddof=1) * math.sqrt(PPY)) if np.ptp(r) > 0 else None,
        "sortino_ratio": float(r.mean() / downside * math.sqrt(PPY)) if downside > 0 else None,
        "max_drawdown": float((equity / np.maximum.accumulate(equity) - 1.0).min()),
        "annual_volatility": float(r.std(ddof=1) * math.sqrt(PPY)),
        "win_rate": float((r[active] > 0).sum() / active.sum()),
    }


def assert_figures(actual: dict[str, Any], expected: dict[str, float | None]) -> None:
    for key, value in expected.items():
        if value is None:
            assert actual[key] is None, key
        else:
            assert actual[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def strict_load(path: Path) -> dict:
    def refuse(name: str) -> float:
        raise AssertionError(f"{name} written to {path.name}")
    return json.loads(path.read_text(), parse_constant=refuse)


def write_history_records(cfg: Config, lines: list[str]) -> None:
    path = weight_history_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


def record(when: datetime, weights: dict[str, float], source: str) -> str:
    return json.dumps({"at": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "weights": weights, "source": source})


NOW = at(AS_OF + timedelta(days=1))


def expected_allocated_weights() -> np.ndarray:
    a, b = np.array(list(W_A.values())), np.array(list(W_B.values()))
    w = np.tile(np.full(8, 1 / 8), (N_DAYS, 1))
    w[10:20] = a
    w[20] = (a + b) / 2
    w[21:] = b
    return w


def baseline_cfg(cfg: Config, method: str = "inverse_vol") -> Config:
    cfg = replace_section(cfg, "portfolio_optimizer", lookback_days=20, min_days=5, min_trades=3, method=method)
    return replace_section(cfg, "strategy_lab", window_days=10, min_days=3, min_trades=2)


def assert_no_figures_anywhere(doc: dict) -> None:
    for win in doc["windows"].values():
        assert win["status"] == NOT_ENOUGH_DATA and win["reason"]
        assert "portfolios" not in win
