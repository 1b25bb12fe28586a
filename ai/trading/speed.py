"""Speed of the trading environments against gym-anytrading, measured side by side in one process.

:func:`env_speed` times one :class:`ai.trading.env.TradingEnv` (fast path and reference path) and
gym-anytrading's ``StocksEnv`` with the settings of its ``stocks-v0`` (a 30-candle window) on the same hourly
candles, with random actions drawn beforehand (so no policy is timed). :func:`vector_env_speed` times
:class:`ai.trading.vector_env.TradingVectorEnv` with its numba kernel, its numpy core and the reference core.
Rates are transitions per second; each figure is the best of ``repeat`` timed runs of ``steps`` transitions
(the best is the least disturbed by other work on the machine), the runs of the compared environments
interleaved.

The candles default to gym-anytrading's bundled EURUSD hourly series (:func:`eurusd_hourly`); a missing peer
(the ``bench`` extra is not installed) is reported as missing in the result, never skipped silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ai.trading.env import TradingEnv
from ai.trading.market_features import MarketFeatures, compute_market_features
from ai.trading.vector_env import TradingVectorEnv, numba_available

PEER = "gym-anytrading StocksEnv (stocks-v0 settings, window 30)"
PEER_WINDOW = 30


def eurusd_hourly() -> pd.DataFrame:
    """The EURUSD hourly candles bundled with gym-anytrading, in this project's candle layout.

    Raises ImportError when gym-anytrading is not installed (``pip install '.[bench]'``).
    """
    from gym_anytrading import datasets  # type: ignore[import-untyped]  # the optional bench extra

    raw = datasets.FOREX_EURUSD_1H_ASK
    opened = pd.to_datetime(raw.index, format="%d.%m.%Y %H:%M:%S.%f", utc=True).as_unit("ms")
    return pd.DataFrame({"timestamp": opened.asi8, "open": raw["Open"].to_numpy(np.float64),
                         "high": raw["High"].to_numpy(np.float64), "low": raw["Low"].to_numpy(np.float64),
                         "close": raw["Close"].to_numpy(np.float64),
                         "volume": raw["Volume"].to_numpy(np.float64)})


def _rate(run: Callable[[], int]) -> float:
    start = time.perf_counter()
    steps = run()
    return steps / (time.perf_counter() - start)


def _single_runner(env: Any, actions: list[int]) -> Callable[[], int]:
    def run() -> int:
        env.reset(seed=0)
        step, reset = env.step, env.reset
        for action in actions:
            _, _, terminated, truncated, _ = step(action)
            if terminated or truncated:
                reset()
        return len(actions)
    return run


def _peer_env(candles: pd.DataFrame) -> tuple[Any, str | None]:
    """gym-anytrading's StocksEnv over ``candles``, or (None, why it is missing)."""
    try:
        from gym_anytrading.envs import StocksEnv  # type: ignore[import-untyped]
    except ImportError as exc:
        return None, f"gym-anytrading is not installed ({exc}); install the bench extra"
    frame = pd.DataFrame({"Close": candles["close"].to_numpy(np.float64)})
    return StocksEnv(frame, window_size=PEER_WINDOW, frame_bound=(PEER_WINDOW, len(frame))), None


def _best(runners: dict[str, Callable[[], int]], repeat: int) -> dict[str, float]:
    for run in runners.values():
        run()  # warm-up: caches, first allocations, numba compilation
    best = dict.fromkeys(runners, 0.0)
    for _ in range(repeat):
        for name, run in runners.items():
            best[name] = max(best[name], _rate(run))
    return best


def _candles_and_features(candles: pd.DataFrame | None) -> tuple[pd.DataFrame, MarketFeatures, str]:
    if candles is None:
        candles, source = eurusd_hourly(), "EURUSD 1h (gym-anytrading's FOREX_EURUSD_1H_ASK)"
    else:
        source = "given candles"
    return candles, compute_market_features(candles.reset_index(drop=True)), source


def env_speed(candles: pd.DataFrame | None = None, *, steps: int = 50_000, repeat: int = 5,
              seed: int = 0) -> dict[str, Any]:
    """Random-action steps/s of one ``TradingEnv`` (fast and reference paths) and of the peer, one process.

    Returns ``{"candles", "source", "steps", "ours_steps_per_s", "reference_steps_per_s", "peer",
    "peer_steps_per_s", "peer_missing", "ratio"}`` (``ratio`` = ours / peer; None values when the peer is
    missing).
    """
    candles, features, source = _candles_and_features(candles)
    rng = np.random.default_rng(seed)
    actions = rng.integers(6, size=steps).tolist()
    ours = TradingEnv(features=features, episode_length=None)
    reference = TradingEnv(features=features, episode_length=None, reference=True)
    runners = {"ours": _single_runner(ours, actions),
               "reference": _single_runner(reference, actions[: max(1, steps // 20)])}
    peer, missing = _peer_env(candles)
    if peer is not None:
        runners["peer"] = _single_runner(peer, rng.integers(2, size=steps).tolist())
    best = _best(runners, repeat)
    peer_rate = best.get("peer")
    return {"candles": len(candles), "source": source, "steps": steps, "ours_steps_per_s": best["ours"],
            "reference_steps_per_s": best["reference"], "peer": PEER, "peer_steps_per_s": peer_rate,
            "peer_missing": missing, "ratio": best["ours"] / peer_rate if peer_rate else None}


def _vector_runner(env: TradingVectorEnv, actions: np.ndarray) -> Callable[[], int]:
    def run() -> int:
        env.reset(seed=0)
        for row in actions:
            env.step(row)
        return actions.size
    return run


def vector_env_speed(candles: pd.DataFrame | None = None, *, num_envs: int = 256, vector_steps: int = 400,
                     repeat: int = 5, peer_steps: int = 50_000, seed: int = 0) -> dict[str, Any]:
    """Random-action transitions/s of ``TradingVectorEnv`` with ``num_envs`` episodes (numba kernel when
    available, numpy core, reference core) against the peer's single environment, one process.

    Returns ``{"candles", "source", "num_envs", "numba", "numba_steps_per_s", "numpy_steps_per_s",
    "reference_steps_per_s", "peer", "peer_steps_per_s", "peer_missing", "ratio"}``; ``ratio`` is the best of
    ours over the peer's single-environment rate (the issue's yardstick), None when the peer is missing.
    """
    candles, features, source = _candles_and_features(candles)
    rng = np.random.default_rng(seed)
    actions = rng.integers(6, size=(vector_steps, num_envs))
    runners: dict[str, Callable[[], int]] = {}
    if numba_available():
        runners["numba"] = _vector_runner(TradingVectorEnv(num_envs=num_envs, features=features, kernel="numba"),
                                          actions)
    runners["numpy"] = _vector_runner(TradingVectorEnv(num_envs=num_envs, features=features, kernel="numpy"),
                                      actions)
    runners["reference"] = _vector_runner(TradingVectorEnv(num_envs=num_envs, features=features, reference=True),
                                          actions[: max(1, vector_steps // 4)])
    peer, missing = _peer_env(candles)
    if peer is not None:
        runners["peer"] = _single_runner(peer, rng.integers(2, size=peer_steps).tolist())
    best = _best(runners, repeat)
    ours = max(best.get("numba", 0.0), best["numpy"])
    peer_rate = best.get("peer")
    return {"candles": len(candles), "source": source, "num_envs": num_envs, "numba": numba_available(),
            "numba_steps_per_s": best.get("numba"), "numpy_steps_per_s": best["numpy"],
            "reference_steps_per_s": best["reference"], "peer": PEER, "peer_steps_per_s": peer_rate,
            "peer_missing": missing, "ratio": ours / peer_rate if peer_rate else None}
