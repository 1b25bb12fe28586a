"""Speed of the baseline backtest against backtesting.py, measured side by side in one process.

:func:`backtest_speed` times :func:`analytics.baselines.baseline_backtest` (Buy & Hold and the SMA(10/20)
crossover with their metrics) and backtesting.py's documented SMA(10/20) crossover example (``Backtest.run``
with its statistics; its progress bar off) on the same random-walk hourly closes. Rates are bars per second;
each is the best of ``repeat`` runs (the least disturbed by other work on the machine). A missing peer (the
``bench`` extra is not installed) is reported as missing, never skipped silently.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from analytics.baselines import baseline_backtest

PEER = "backtesting.py SMA(10/20) crossover"
FEE = 0.001
HOURS_PER_YEAR = 24 * 365


def random_walk_closes(bars: int, seed: int = 3) -> np.ndarray:
    """A geometric random walk of ``bars`` hourly closes starting at 100 (0.4 % moves)."""
    steps = np.random.default_rng(seed).normal(0.0, 0.004, size=bars)
    return 100.0 * np.exp(np.cumsum(steps))


def _best_rate(run: Callable[[], None], bars: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return bars / best


def _peer_run(closes: np.ndarray) -> tuple[Callable[[], None] | None, str | None]:
    """A run of backtesting.py's SMA crossover over ``closes``, or (None, why it is missing)."""
    try:
        import backtesting.backtesting as engine  # type: ignore[import-untyped]
        from backtesting import Backtest, Strategy  # type: ignore[import-untyped]
        from backtesting.lib import crossover  # type: ignore[import-untyped]
    except ImportError as exc:
        return None, f"backtesting.py is not installed ({exc}); install the bench extra"

    def sma(values: Any, n: int) -> Any:
        return pd.Series(values).rolling(n).mean()

    class SmaCross(Strategy):  # type: ignore[misc]  # the peer's documented example
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, 10)
            self.slow = self.I(sma, self.data.Close, 20)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                self.position.close()
                self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()
                self.sell()

    frame = pd.DataFrame({"Open": closes, "High": closes * 1.001, "Low": closes * 0.999, "Close": closes,
                          "Volume": 1.0}, index=pd.date_range("2000-01-01", periods=closes.size, freq="h"))

    def run() -> None:
        quiet = engine._tqdm
        engine._tqdm = lambda seq, **_: seq  # its progress bar is not part of its speed
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                Backtest(frame, SmaCross, cash=1_000_000, commission=FEE, finalize_trades=True).run()
        finally:
            engine._tqdm = quiet

    return run, None


def backtest_speed(bars: int = 1_000_000, *, repeat: int = 3, peer_bars: int | None = None,
                   seed: int = 3) -> dict[str, Any]:
    """Bars/s of the baseline backtest and of backtesting.py, one process.

    ``peer_bars`` (default: ``bars``) times the peer on a shorter series when a million bars would take too
    long. Returns ``{"bars", "ours_bars_per_s", "peer", "peer_bars", "peer_bars_per_s", "peer_missing",
    "ratio"}`` (``ratio`` = ours / peer, None when the peer is missing).
    """
    closes = random_walk_closes(bars, seed)

    def ours_run() -> None:
        baseline_backtest(closes, FEE, HOURS_PER_YEAR)

    ours_run()  # warm-up
    ours = _best_rate(ours_run, bars, repeat)
    peer_size = bars if peer_bars is None else peer_bars
    run, missing = _peer_run(random_walk_closes(peer_size, seed))
    peer = _best_rate(run, peer_size, repeat) if run is not None else None
    return {"bars": bars, "ours_bars_per_s": ours, "peer": PEER, "peer_bars": peer_size, "peer_bars_per_s": peer,
            "peer_missing": missing, "ratio": ours / peer if peer else None}
