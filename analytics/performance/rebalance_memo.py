"""The replay's recomputed baseline weights, kept between reports in ``state/cache/rl_performance_rebalances.npz``.

The replay (:mod:`analytics.performance.replay`) recomputes the portfolio optimizer's and the strategy lab's
weights every ``performance.rebalance_days`` days of the whole history: hundreds of recomputations on a few years
of trades, nearly all of them the same as in the previous report, since appended trades close after them. Each
recomputation is keyed by a digest of everything it reads: the source and its settings, the calendar, the day
and look-back, the history's first day and every trade (close time, strategy, ``pnl_pct``) inside its look-back
window. A recomputation whose key was saved takes the saved weights; any other one is computed and saved. A trade
inserted or changed in the past changes the keys of the windows that hold it, and only those are recomputed, so
the weights are always those a full recomputation gives.

The file holds plain arrays (loaded with ``allow_pickle=False``) and is written atomically; an unreadable file is
ignored with the reason logged and rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from core.atomic import atomic_write_bytes
from core.config import STRATEGIES, Config

log = logging.getLogger(__name__)

MEMO_VERSION = 1
"""Part of every key: bumped when a source's weight rule changes, so no weights of the old rule are reused."""
MEMO_NAME = "rl_performance_rebalances.npz"
DIGEST_BYTES = 16

Weights = dict[str, float] | None


def memo_path(cfg: Config) -> Path:
    """``state/cache/rl_performance_rebalances.npz``."""
    return cfg.state_dir / "cache" / MEMO_NAME


_SAVING: set[Path] = set()
"""Memo files this process writes (:func:`save_between_runs`); every replay reads the memo."""


def save_between_runs(cfg: Config) -> None:
    """From now on replays of ``cfg`` save their recomputations for the next report (the report command and the
    performance daemon do; readers that must not write, the dashboard, only use what was saved)."""
    _SAVING.add(memo_path(cfg))


class RebalanceMemo:
    """Saved recomputations of the baseline sources over one set of trades (see the module docstring)."""

    def __init__(self, cfg: Config, trades: pd.DataFrame) -> None:
        self.path = memo_path(cfg)
        self.calendar = cfg.market.calendar
        closed = trades["closed_at"]
        # Unsorted trades (never from a history read) would need a scan per window: then nothing is memoised.
        self.enabled = bool(closed.is_monotonic_increasing)
        self._closed = closed.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]").view(np.int64)
        self._codes = pd.Categorical(trades["strategy"], categories=list(STRATEGIES)).codes.astype(np.int8)
        self._pnl = trades["pnl_pct"].to_numpy(np.float64)
        self._first = str(pd.Timestamp(self._closed[0]).date()) if len(self._closed) else ""
        self._saved = self._load() if self.enabled else {}
        self._used: dict[bytes, Weights] = {}
        self.hits = 0
        self.misses = 0

    def _load(self) -> dict[bytes, Weights]:
        try:
            with np.load(self.path, allow_pickle=False) as saved:
                if int(saved["version"]) != MEMO_VERSION:
                    return {}
                keys, weights, present = saved["keys"], saved["weights"], saved["present"]
                if keys.shape[1:] != (DIGEST_BYTES,) or weights.shape != (len(keys), len(STRATEGIES)):
                    raise ValueError(f"arrays of shapes {keys.shape} and {weights.shape}")
                if len(present) != len(keys) or not np.isfinite(weights[present]).all():
                    raise ValueError("weights missing or not finite")
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("%s is unreadable (%s); recomputing every rebalance", self.path, exc or type(exc).__name__)
            return {}
        return {bytes(k): (dict(zip(STRATEGIES, w.tolist(), strict=True)) if p else None)
                for k, w, p in zip(keys, weights, present, strict=True)}

    def key(self, source: str, settings: str, as_of: date, lookback_days: int) -> bytes:
        """Digest of everything the recomputation of ``source`` for ``as_of`` reads."""
        start = as_of - timedelta(days=lookback_days - 1)
        lo, hi = np.searchsorted(self._closed, [pd.Timestamp(start).value,
                                                pd.Timestamp(as_of + timedelta(days=1)).value])
        digest = hashlib.blake2b(digest_size=DIGEST_BYTES)
        digest.update(f"{MEMO_VERSION}|{source}|{settings}|{self.calendar}|{as_of}|{lookback_days}|{self._first}"
                      .encode())
        for column in (self._closed, self._codes, self._pnl):
            digest.update(column[lo:hi].tobytes())
        return digest.digest()

    def weights_as_of(self, source: str, settings: str, lookback_days: int,
                      compute: Callable[[date], Weights]) -> Callable[[date], Weights]:
        """``compute``, answered from the saved recomputations where their key matches."""
        def memoised(as_of: date) -> Weights:
            if not self.enabled:
                return compute(as_of)
            key = self.key(source, settings, as_of, lookback_days)
            if key in self._saved:
                self.hits += 1
                weights = self._saved[key]
            else:
                self.misses += 1
                weights = compute(as_of)
            self._used[key] = weights
            return weights
        return memoised

    def save(self) -> None:
        """Keep the recomputations of this report (only those: the file stays as large as one report's), when
        :func:`save_between_runs` was called and something was recomputed. A failed write is logged, never fatal."""
        if self.path not in _SAVING or not self.enabled or (self.misses == 0 and len(self._used) == len(self._saved)):
            return
        keys = np.array([np.frombuffer(k, dtype=np.uint8) for k in self._used], dtype=np.uint8).reshape(
            len(self._used), DIGEST_BYTES)
        present = np.array([w is not None for w in self._used.values()], dtype=bool)
        weights = np.array([[w[s] for s in STRATEGIES] if w is not None else [0.0] * len(STRATEGIES)
                            for w in self._used.values()], dtype=np.float64).reshape(len(self._used), len(STRATEGIES))
        buf = io.BytesIO()
        np.savez(buf, version=np.array(MEMO_VERSION), keys=keys, weights=weights, present=present)
        try:
            atomic_write_bytes(self.path, buf.getvalue())
        except OSError as exc:
            log.warning("cannot write %s (%s); the next report recomputes every rebalance", self.path, exc)
