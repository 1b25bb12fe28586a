"""The four strategy-weight files: their names, payloads, validation, normalization, caps, writing and reading.

A weight document is a published JSON object (see :mod:`core.atomic`) whose ``"weights"`` maps each of the
8 strategies of :data:`core.config.STRATEGIES` to a finite, non-negative number, summing to 1 within 1e-9.
Every producer (RL inference, portfolio optimizer, strategy lab) and the weights bridge go through
:func:`publish_weights`, and every reader through :func:`read_weights`, so the contract is enforced in one place.

The files, all in ``runtime/`` (writer -> readers):

- ``rl_strategy_weights.json`` (:func:`rl_weights_path`): the strategy-weight agent's inference -> the weights
  bridge, the performance tracker;
- ``portfolio_optimizer_weights.json`` (:func:`optimizer_weights_path`): the portfolio optimizer -> the bridge;
- ``strategy_lab_weights.json`` (:func:`lab_weights_path`): the strategy lab -> the bridge;
- ``allocations_override.json`` (:func:`allocations_path`): the weights bridge, merging the three by priority
  -> the paper trader, the performance tracker, ``scripts/rl_system.py status``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

from core.atomic import ReadResult, publish_json, read_json
from core.config import STRATEGIES, Config
from core.errors import ConfigError

RL_WEIGHTS_NAME = "rl_strategy_weights.json"
OPTIMIZER_WEIGHTS_NAME = "portfolio_optimizer_weights.json"
LAB_WEIGHTS_NAME = "strategy_lab_weights.json"
ALLOCATIONS_NAME = "allocations_override.json"
SOURCE_NAMES: tuple[str, ...] = (RL_WEIGHTS_NAME, OPTIMIZER_WEIGHTS_NAME, LAB_WEIGHTS_NAME)
"""The weights bridge's sources, highest priority first."""


def rl_weights_path(cfg: Config) -> Path:
    """``runtime/rl_strategy_weights.json``: the strategy-weight agent's weights."""
    return cfg.runtime_dir / RL_WEIGHTS_NAME


def optimizer_weights_path(cfg: Config) -> Path:
    """``runtime/portfolio_optimizer_weights.json``: the portfolio optimizer's fallback weights."""
    return cfg.runtime_dir / OPTIMIZER_WEIGHTS_NAME


def lab_weights_path(cfg: Config) -> Path:
    """``runtime/strategy_lab_weights.json``: the strategy lab's fallback weights."""
    return cfg.runtime_dir / LAB_WEIGHTS_NAME


def allocations_path(cfg: Config) -> Path:
    """``runtime/allocations_override.json``: the merged allocation the trader sizes its books by."""
    return cfg.runtime_dir / ALLOCATIONS_NAME


class WeightsPayload(TypedDict):
    """What every weight file holds besides the envelope: one weight per strategy, summing to 1."""

    weights: dict[str, float]


class RLWeightsPayload(WeightsPayload, total=False):
    """``rl_strategy_weights.json``: the weights and what the agent computed them from."""

    model_version: str
    decision_time: str
    state: dict[str, float]
    data_range: dict[str, Any]
    model_trained_on: dict[str, Any]
    deterministic: bool


class OptimizerWeightsPayload(WeightsPayload, total=False):
    """``portfolio_optimizer_weights.json``: inverse-volatility or equal-risk-contribution weights."""

    method: str
    lookback_days: int
    aggregation: str
    data_range: dict[str, Any]
    volatility_daily: dict[str, float]
    volatility_annualized: dict[str, float | None]
    periods_per_year: float
    trades: dict[str, int]
    eligible: list[str]
    insufficient_history: list[str]
    risk_contributions: dict[str, float]
    solver: dict[str, Any] | None
    history_rows_skipped: int


class LabWeightsPayload(WeightsPayload, total=False):
    """``strategy_lab_weights.json``: softmax-with-floor weights of recent Sharpe ratios."""

    method: str
    window_days: int
    temperature: float
    floor: float
    scores: dict[str, float | None]
    ranks: dict[str, int | None]
    unscored: list[str]
    mean_daily_return: dict[str, float]
    trades: dict[str, int]
    aggregation: str
    data_range: dict[str, Any]
    periods_per_year: float
    history_rows_skipped: int


class AllocationsPayload(WeightsPayload):
    """``allocations_override.json``: the winning source's capped weights, and why higher sources lost."""

    source: str
    fallback_reasons: dict[str, str]
    input_ages_s: dict[str, float | None]
    caps: dict[str, dict[str, float]]

SUM_TOLERANCE = 1e-9
"""How far from 1 the weights of a published document may sum."""

ENVELOPE_KEYS = ("schema_version", "generated_at", "producer")
_NEGLIGIBLE = 1e-15
_EXPECTED = ", ".join(STRATEGIES)


def validate_weights(doc_or_mapping: Mapping[str, Any]) -> str | None:
    """Why ``doc_or_mapping`` is not a usable weight vector, or None when it is.

    Accepts a whole document (recognised by a ``weights`` key or any envelope key) or a bare
    ``{strategy: weight}`` mapping. The sum is not checked: any positive total can be normalized.
    """
    if not isinstance(doc_or_mapping, Mapping):
        return f"expected a JSON object, got {type(doc_or_mapping).__name__}"
    if "weights" in doc_or_mapping or any(k in doc_or_mapping for k in ENVELOPE_KEYS):
        if "weights" not in doc_or_mapping:
            return "missing `weights` key; expected \"weights\": {strategy: number} over " + _EXPECTED
        weights = doc_or_mapping["weights"]
        if not isinstance(weights, Mapping):
            return f"`weights` must be an object {{strategy: number}}, got {type(weights).__name__}"
        return _mapping_problem(weights) or _above_one(weights)
    return _mapping_problem(doc_or_mapping)


def _above_one(weights: Mapping[str, float]) -> str | None:
    # A published document is normalized, so a weight above 1 means a damaged or hand-edited file.
    for name, value in weights.items():
        if value > 1.0 + SUM_TOLERANCE:
            return f"`weights.{name}` is {value!r}, above 1; a published weight lies in [0, 1]"
    return None


def _mapping_problem(weights: Mapping[str, Any]) -> str | None:
    unknown = [k for k in weights if k not in STRATEGIES]
    if unknown:
        return f"unknown strategy {unknown[0]!r} in `weights`; expected exactly: {_EXPECTED}"
    missing = [s for s in STRATEGIES if s not in weights]
    if missing:
        return f"strategy {missing[0]!r} missing from `weights`; expected all of: {_EXPECTED}"
    for name, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"`weights.{name}` is not a number: {value!r}"
        if isinstance(value, float) and math.isnan(value):
            return f"`weights.{name}` is NaN"
        if isinstance(value, float) and math.isinf(value):
            return f"`weights.{name}` is infinite"
        if value < 0:
            return f"`weights.{name}` is negative ({value!r}); weights must be >= 0"
    if not any(value > 0 for value in weights.values()):
        return "all weights are zero; at least one strategy needs a positive weight"
    try:
        total = math.fsum(float(value) for value in weights.values())
    except OverflowError:  # a huge integer, or finite floats whose sum is not
        total = math.inf
    if not math.isfinite(total):
        return "the weights are too large to add up (overflow); write them as fractions summing to 1"
    return None


def normalize(weights: Mapping[str, float]) -> dict[str, float]:
    """``weights`` divided by their sum (same keys, same order).

    Raises ValueError on a non-finite or negative weight or a zero total, which cannot be normalized.
    """
    for name, value in weights.items():
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"weight of {name!r} is {value!r}; weights must be finite and >= 0")
    total = math.fsum(weights.values())
    if total <= 0:
        raise ValueError("weights sum to zero; at least one must be positive")
    return {name: float(value) / total for name, value in weights.items()}


def equal_weights() -> dict[str, float]:
    """1/8 for each strategy (exactly representable, so the sum is exactly 1)."""
    return {s: 1.0 / len(STRATEGIES) for s in STRATEGIES}


def same_weights(a: Mapping[str, float], b: Mapping[str, float], tol: float = 1e-12) -> bool:
    """True when ``a`` and ``b`` have the same keys and every weight differs by at most ``tol``."""
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) <= tol for k in a)


def apply_caps(
    weights: Mapping[str, float],
    min_w: float | Mapping[str, float] = 0.0,
    max_w: float | Mapping[str, float] = 1.0,
) -> dict[str, float]:
    """Normalize ``weights`` and bound each one to ``[min_w, max_w]`` (one number, or a number per strategy).

    The excess cut from a capped strategy goes to the uncapped ones in proportion to their weights (and the
    shortfall raised to a minimum is taken from them the same way), repeated until no cap is violated. That
    fixed point is ``clip(scale * w, min, max)`` for the one ``scale`` that makes the total 1, which is solved
    exactly here rather than by looping. When every strategy with a positive weight sits at its maximum and
    mass is left over, it is spread equally over the zero-weight strategies (there is no proportion to keep).
    Infeasible caps (minimums above 1 in total, maximums below 1, a minimum above its maximum) raise
    :class:`ConfigError`.
    """
    w = normalize(weights)
    lo = _bounds(min_w, w, default=0.0, what="minimum")
    hi = _bounds(max_w, w, default=1.0, what="maximum")
    _check_feasible(lo, hi)
    # Weights this small count as zero: a scale large enough to lift them would overflow to infinity.
    positive = {n: v for n, v in w.items() if v > _NEGLIGIBLE}
    zero = [n for n in w if n not in positive]
    floor_of_zero = math.fsum(lo[n] for n in zero)
    if math.fsum(hi[n] for n in positive) + floor_of_zero >= 1.0:
        scale = _solve_scale(positive, lo, hi, target=1.0 - floor_of_zero)
        capped = {n: _clip(scale * v, lo[n], hi[n]) for n, v in positive.items()}
        capped.update({n: lo[n] for n in zero})
    else:
        capped = {n: hi[n] for n in positive}
        left = 1.0 - math.fsum(capped.values())
        level = _solve_scale({n: 1.0 for n in zero}, lo, hi, target=left)
        capped.update({n: _clip(level, lo[n], hi[n]) for n in zero})
    return {n: capped[n] for n in w}


def caps_from_config(
    min_weight: float, max_weight: float, min_weights: Mapping[str, float], max_weights: Mapping[str, float],
    section: str = "bridge",
) -> tuple[dict[str, float], dict[str, float]]:
    """Per-strategy (minimum, maximum) from a default and per-strategy overrides; unknown names are errors."""
    for key, overrides in (("min_weights", min_weights), ("max_weights", max_weights)):
        for name in overrides:
            if name not in STRATEGIES:
                raise ConfigError(f"`{section}.{key}.{name}`: unknown strategy; expected one of: {_EXPECTED}")
    lo = {s: float(min_weights.get(s, min_weight)) for s in STRATEGIES}
    hi = {s: float(max_weights.get(s, max_weight)) for s in STRATEGIES}
    _check_feasible(lo, hi, section=section)
    return lo, hi


def _bounds(spec: float | Mapping[str, float], names: Mapping[str, float], default: float,
            what: str) -> dict[str, float]:
    if isinstance(spec, Mapping):
        unknown = [k for k in spec if k not in names]
        if unknown:
            raise ConfigError(f"{what} weight given for {unknown[0]!r}, which has no weight")
        return {n: float(spec.get(n, default)) for n in names}
    return {n: float(spec) for n in names}


def _check_feasible(lo: Mapping[str, float], hi: Mapping[str, float], section: str = "bridge") -> None:
    for name in lo:
        if not (math.isfinite(lo[name]) and math.isfinite(hi[name])):
            raise ConfigError(f"`{section}` caps of {name!r} must be finite numbers")
        if lo[name] < 0 or hi[name] > 1:
            raise ConfigError(f"`{section}` caps of {name!r} must lie in [0, 1], got [{lo[name]}, {hi[name]}]")
        if lo[name] > hi[name]:
            raise ConfigError(
                f"`{section}` minimum weight of {name!r} ({lo[name]}) is above its maximum ({hi[name]}); "
                "lower the minimum or raise the maximum")
    if math.fsum(lo.values()) > 1.0 + SUM_TOLERANCE:
        raise ConfigError(
            f"`{section}` minimum weights sum to {math.fsum(lo.values()):.6g} > 1, which no allocation can meet; "
            "lower `min_weight`/`min_weights`")
    if math.fsum(hi.values()) < 1.0 - SUM_TOLERANCE:
        raise ConfigError(
            f"`{section}` maximum weights sum to {math.fsum(hi.values()):.6g} < 1, which no allocation can meet; "
            f"raise `max_weight`/`max_weights` (at least 1/{len(hi)} each)")


def _clip(value: float, lo: float, hi: float) -> float:
    return min(max(value, lo), hi)


def _solve_scale(w: Mapping[str, float], lo: Mapping[str, float], hi: Mapping[str, float],
                 target: float) -> float:
    """The ``s >= 0`` with ``sum(clip(s * w_i, lo_i, hi_i)) == target`` (w_i > 0).

    The sum is continuous, non-decreasing and linear between the points where some term starts or stops
    being clipped, so the answer is found by locating its segment and interpolating.
    """
    def total(scale: float) -> float:
        return math.fsum(_clip(scale * v, lo[n], hi[n]) for n, v in w.items())

    points = sorted({0.0} | {lo[n] / v for n, v in w.items()} | {hi[n] / v for n, v in w.items()})
    prev_s, prev_t = points[0], total(points[0])
    if prev_t >= target:
        return prev_s
    for s in points[1:]:
        t = total(s)
        if t >= target:
            return prev_s + (target - prev_t) * (s - prev_s) / (t - prev_t)
        prev_s, prev_t = s, t
    return points[-1]  # unreachable when the caps are feasible: everything already at its maximum


def publish_payload(path: str | os.PathLike[str], producer: str, payload: Mapping[str, Any]) -> Path:
    """:func:`publish_weights` of a computed payload: its ``weights`` plus every other key as extra fields."""
    publish_weights(path, producer, payload["weights"], **{k: v for k, v in payload.items() if k != "weights"})
    return Path(path)


def publish_weights(path: str | os.PathLike[str], producer: str, weights: Mapping[str, float],
                    **extra: Any) -> dict[str, Any]:
    """Validate, normalize and atomically publish ``weights`` with ``extra`` fields; returns the document.

    Raises ValueError (naming the file) on missing or unknown strategies, NaN, infinity, negative or all-zero
    weights, and on NaN anywhere in ``extra``; nothing is written then.
    """
    problem = validate_weights(weights)
    if problem:
        raise ValueError(f"{Path(path).name}: refusing to publish: {problem}")
    normalized = normalize({s: float(weights[s]) for s in STRATEGIES})
    return publish_json(path, producer, {"weights": normalized, **extra})


def read_weights(path: str | os.PathLike[str], max_age_s: float | None = None) -> ReadResult:
    """Read a weight document without raising: ``absent``, ``invalid`` (with the reason), ``stale`` or ``ok``.

    Unlike a plain :func:`core.atomic.read_json`, the stale reason does not quote the current age, so the
    reason stays the same while the file stays the same (the age is in ``ReadResult.age_s``).
    """
    result = read_json(path, validate=validate_weights)
    if not result.ok or max_age_s is None or max_age_s <= 0 or result.age_s is None or result.age_s <= max_age_s:
        return result
    doc = result.data or {}
    stamp = doc.get("generated_at", "unknown time")
    return ReadResult("stale", reason=f"{Path(path).name}: generated at {stamp}, older than the "
                                      f"{max_age_s:g}s allowed", age_s=result.age_s)
