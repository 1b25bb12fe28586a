"""The weight history: recording the weights in force, reading them back, and their time-weighted means.

``--track`` appends one record to the weight history (:mod:`core.contracts.performance`, bounded to
``performance.history_max_lines`` records). A record holds ``at`` (UTC), the ``weights`` and ``source`` in force,
that is what the trader uses: the allocations file, or equal weights (source ``equal``) when that file is absent
or invalid, exactly as the trader falls back; ``allocations`` (its status, reason, generated_at,
fallback_reasons, input_ages_s) and ``rl`` (the status of the RL weight file with its weights and model version
when readable). When the trader publishes its last candle, ``market_at`` says the time the weights are in force
*for* (the simulated time of a replay); the report places each record at that time.

A record holds until the next one (the last one onwards, gaps included); :func:`time_weighted_mean` integrates
that step function over any intervals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from core.atomic import utc_now_iso
from core.config import STRATEGIES, Config
from core.contracts.performance import (
    AllocationsStatus,
    RlStatus,
    TimedRecord,
    WeightRecord,
    append_weight_record,
    read_weight_history,
)
from core.contracts.trader_status import read_trader_status
from core.contracts.weights import allocations_path, equal_weights, normalize, read_weights, rl_weights_path
from core.timeframes import timeframe_to_ms

log = logging.getLogger(__name__)

def weights_in_force(cfg: Config) -> WeightRecord:
    """What the trader allocates now and what RL proposes, as one weight-history record (not yet written)."""
    alloc = read_weights(allocations_path(cfg))
    allocations: AllocationsStatus
    if alloc.ok and alloc.data is not None:
        doc = alloc.data
        weights = normalize({s: float(doc["weights"][s]) for s in STRATEGIES})
        source = str(doc.get("source") or "unknown")
        allocations = {"status": "ok", "generated_at": doc.get("generated_at"),
                       "fallback_reasons": doc.get("fallback_reasons", {}),
                       "input_ages_s": doc.get("input_ages_s", {})}
    else:
        # The trader trades equal weights when it cannot use the allocations file; so does the record.
        weights, source = equal_weights(), "equal"
        allocations = {"status": alloc.status, "reason": alloc.reason}
    record: WeightRecord = {"at": utc_now_iso(), "weights": weights, "source": source, "allocations": allocations,
                            "rl": _rl_status(cfg)}
    market_at = trader_clock(cfg)
    if market_at is not None:
        record["market_at"] = market_at
    return record


def trader_clock(cfg: Config) -> str | None:
    """The close time of the candle the paper trader processed last (from its status), or None.

    It is the time the weights are in force *for*: the wall clock for a live trader, the simulated time of a
    replay, whose trades are dated in the market's past. The report places each record at this time.
    """
    status = read_trader_status(cfg)
    stamp = status.last_candle_ts if status is not None else None
    if stamp is None:
        return None
    closed_ms = stamp + timeframe_to_ms(cfg.market.timeframe)
    return datetime.fromtimestamp(closed_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rl_status(cfg: Config) -> RlStatus:
    result = read_weights(rl_weights_path(cfg), max_age_s=cfg.bridge.rl_max_age_s)
    status: RlStatus = {"status": result.status}
    if result.reason:
        status["reason"] = result.reason
    if result.data is not None:
        status["weights"] = normalize({s: float(result.data["weights"][s]) for s in STRATEGIES})
        status["generated_at"] = result.data.get("generated_at")
        if "model_version" in result.data:
            status["model_version"] = result.data["model_version"]
    elif result.status == "stale":
        status["age_s"] = None if result.age_s is None else round(result.age_s, 1)
    return status


def track_weights(cfg: Config) -> WeightRecord:
    """Append the weights in force now to the weight history (bounded); returns the record."""
    record = weights_in_force(cfg)
    append_weight_record(cfg, record, max_lines=cfg.performance.history_max_lines)
    log.debug("tracked weights from %s", record["source"])
    return record


@dataclass(frozen=True)
class WeightHistory:
    """The usable weight records, oldest first: times (UTC epoch seconds), weights (n x 8), sources."""

    times: np.ndarray
    weights: np.ndarray
    sources: list[str]
    skipped: int = 0

    @property
    def size(self) -> int:
        return int(self.times.size)


def load_weight_history(cfg: Config) -> WeightHistory:
    """Read the weight history tolerantly: a record without a valid time or weight vector is skipped, counted."""
    read = read_weight_history(cfg)
    rows = [_parse_record(rec) for rec in read.records]
    rows.sort(key=lambda row: row[0])  # stable: records of the same second keep their order
    if not rows:
        return WeightHistory(np.empty(0), np.empty((0, len(STRATEGIES))), [], read.skipped)
    return WeightHistory(np.array([r[0] for r in rows]), np.vstack([r[1] for r in rows]),
                         [r[2] for r in rows], read.skipped)


def _parse_record(timed: TimedRecord) -> tuple[float, np.ndarray, str]:
    # The contract's reader returns only records with a valid time and weight vector.
    rec = timed.record
    vector = np.array([float(rec["weights"][s]) for s in STRATEGIES])
    source = rec.get("source")
    return timed.at.timestamp(), vector / vector.sum(), source if isinstance(source, str) and source else "unknown"


def time_weighted_mean(times: np.ndarray, values: np.ndarray, initial: np.ndarray,
                       bounds: np.ndarray) -> np.ndarray:
    """Mean of a step function over each interval ``[bounds[i], bounds[i+1])``; one row per interval.

    The function is ``values[j]`` from ``times[j]`` (ascending) until the next time, and ``initial`` before
    ``times[0]``. Integrated exactly by cumulative sums over the union of times and bounds (vectorized: a year
    of 5-minute records takes milliseconds).
    """
    bounds = np.asarray(bounds, dtype=float)
    n = bounds.size - 1
    if times.size == 0:
        return np.tile(initial, (n, 1))
    points = np.union1d(bounds, times[(times > bounds[0]) & (times < bounds[-1])])
    idx = np.searchsorted(times, points, side="right") - 1
    vals = np.where((idx >= 0)[:, None], values[np.clip(idx, 0, None)], initial)
    integral = np.vstack([np.zeros((1, vals.shape[1])), np.cumsum(vals[:-1] * np.diff(points)[:, None], axis=0)])
    at_bounds = integral[np.searchsorted(points, bounds)]
    return np.diff(at_bounds, axis=0) / np.diff(bounds)[:, None]
