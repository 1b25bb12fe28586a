"""The performance tracker's files: ``state/rl_weight_history.jsonl``, ``state/rl_performance_report.json`` and
the three PNG plots next to the report.

Writer: the ``performance_tracker`` daemon (:mod:`analytics.performance`). Readers: the report itself (the
weight history), and anyone who shows the report (:func:`read_report`).

Weight history. One JSON Lines record each time the weights in force are tracked (:class:`WeightRecord`):
``at`` (UTC, the wall clock), ``market_at`` (the close time of the candle the trader processed last, when the
trader publishes it: the time the weights are in force *for*), the ``weights`` and ``source`` the trader uses,
``allocations`` (the status of the allocations file) and ``rl`` (the status of the RL weights). JSON Lines
rather than one document, because an append is cheap and a torn line costs one record, not the file; the file
is bounded by :func:`append_weight_record`. A record is usable when its time (``market_at``, else ``at``) is
an ISO-8601 time and its weights a valid weight vector (:func:`validate_weight_record`); the tolerant reader
skips and counts the others.

Report. A published JSON document (``schema_version``, ``generated_at``, ``producer``) whose top level is
:class:`ReportDocument`; its windows and figures are described by the report module that computes them.

Plots. ``rl_performance_equity.png``, ``rl_performance_weights.png`` and ``rl_performance_drawdowns.png`` in the
report's folder; :func:`write_plots` writes the ones drawn and removes the others, so the plots on disk always
belong to the report next to them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict, cast

from core.atomic import (
    SCHEMA_VERSION,
    Envelope,
    ReadResult,
    atomic_write_bytes,
    parse_iso,
    publish_json,
    read_json,
)
from core.config import Config
from core.contracts.training_log import TrainingLogView
from core.contracts.weights import validate_weights
from core.jsonl import append_jsonl, read_jsonl

log = logging.getLogger(__name__)

PRODUCER = "performance_tracker"
"""The ``producer`` of the report (the daemon's name)."""
REPORT_SCHEMA_VERSION = SCHEMA_VERSION
WEIGHT_HISTORY_NAME = "rl_weight_history.jsonl"
"""File name of the weight history inside ``state/``."""
REPORT_NAME = "rl_performance_report.json"
"""File name of the report inside ``state/``."""
PLOT_NAMES: dict[str, str] = {
    "equity_curves": "rl_performance_equity.png",
    "weights": "rl_performance_weights.png",
    "drawdowns": "rl_performance_drawdowns.png",
}
"""File name of each plot (by kind) inside ``state/``, next to the report."""
REPORT_KEYS: tuple[str, ...] = ("as_of", "status", "data_range", "weight_history", "windows", "training")
"""Top-level keys a reader may rely on in a report."""


# ------------------------------------------------------------------------------------------------ payloads


class AllocationsStatus(TypedDict, total=False):
    """What the allocations file held when the record was taken (``status`` always; the rest when known)."""

    status: str
    reason: str
    generated_at: str | None
    fallback_reasons: dict[str, Any]
    input_ages_s: dict[str, Any]


class RlStatus(TypedDict, total=False):
    """What the RL weight file held: ``status`` always; its weights, time and model version when readable."""

    status: str
    reason: str
    weights: dict[str, float]
    generated_at: str | None
    model_version: Any
    age_s: float | None


class _WeightRecordRequired(TypedDict):
    at: str
    weights: dict[str, float]
    source: str
    allocations: AllocationsStatus
    rl: RlStatus


class WeightRecord(_WeightRecordRequired, total=False):
    """One line of the weight history."""

    market_at: str


class DataRange(TypedDict):
    start: str | None
    end: str
    days: int
    trades: int


class WeightHistorySummary(TypedDict):
    file: str
    records: int
    skipped: int
    first_at: str | None
    last_at: str | None


class BaselineSummary(TypedDict):
    rebalance_days: int
    rebalances: int
    rebalances_without_weights: int
    first_day_with_weights: str | None


class _ReportRequired(TypedDict):
    as_of: str
    status: str
    periods_per_year: float
    data_range: DataRange
    history_rows_skipped: int
    weight_history: WeightHistorySummary
    baselines: dict[str, BaselineSummary]
    windows: dict[str, dict[str, Any]]
    """Per window label, ``{"status": "ok", ...figures}`` or ``{"status": "not enough data", "reason": ...}``."""
    training: TrainingLogView
    methodology: dict[str, str]


class ReportPayload(_ReportRequired, total=False):
    """The report without its envelope."""

    plots: dict[str, str]
    """Kind -> file name of each plot written, or ``{"status": ..., "reason": ...}`` when none was."""


class ReportDocument(ReportPayload, Envelope, total=False):
    """The report as published: the payload inside the envelope."""


# ------------------------------------------------------------------------------------------------ paths


def weight_history_path(cfg: Config) -> Path:
    """``state/rl_weight_history.jsonl`` of the configured home."""
    return cfg.state_dir / WEIGHT_HISTORY_NAME


def report_path(cfg: Config) -> Path:
    """``state/rl_performance_report.json`` of the configured home."""
    return cfg.state_dir / REPORT_NAME


def plot_paths(cfg: Config) -> dict[str, Path]:
    """Where each plot goes: next to the report."""
    return {kind: cfg.state_dir / name for kind, name in PLOT_NAMES.items()}


# ------------------------------------------------------------------------------------------------ weight history


def record_time(rec: Mapping[str, Any]) -> datetime | None:
    """The time a record's weights are in force for (``market_at``, else ``at``), or None when unusable."""
    at = rec.get("market_at") or rec.get("at")
    if not isinstance(at, str):
        return None
    try:
        return parse_iso(at)
    except ValueError:
        return None


def validate_weight_record(rec: Mapping[str, Any]) -> str | None:
    """Why ``rec`` is not a usable weight-history record, or None when it is."""
    weights = rec.get("weights")
    if not isinstance(weights, Mapping):
        return "missing `weights` object"
    problem = validate_weights(weights)
    if problem is not None:
        return problem
    if record_time(rec) is None:
        return "missing or invalid `at`/`market_at` (ISO-8601 time expected)"
    return None


def append_weight_record(cfg: Config, record: WeightRecord, max_lines: int) -> Path:
    """Append ``record`` to the weight history, keeping it to about ``max_lines`` records; returns the path."""
    path = weight_history_path(cfg)
    append_jsonl(path, dict(record), max_lines=max_lines)
    return path


@dataclass(frozen=True)
class TimedRecord:
    """A usable record and the time its weights are in force for (see :func:`record_time`)."""

    at: datetime
    record: dict[str, Any]


@dataclass(frozen=True)
class WeightHistoryRead:
    """The usable records in file order and how many records were skipped (no valid time or weights)."""

    records: list[TimedRecord] = field(default_factory=list)
    skipped: int = 0


def read_weight_history(cfg: Config) -> WeightHistoryRead:
    """Read the weight history tolerantly: an unusable record is skipped and counted, never fatal.

    Lines that are not JSON objects at all are dropped by the JSON Lines reader and not counted.
    """
    usable: list[TimedRecord] = []
    skipped = 0
    for rec in read_jsonl(weight_history_path(cfg)):
        at = record_time(rec)
        if at is not None and validate_weight_record(rec) is None:
            usable.append(TimedRecord(at, rec))
        else:
            skipped += 1
    if skipped:
        log.warning("%s: skipped %d record(s) without a valid `at` or `weights`", WEIGHT_HISTORY_NAME, skipped)
    return WeightHistoryRead(usable, skipped)


# ------------------------------------------------------------------------------------------------ report


def validate_report(doc: Mapping[str, Any]) -> str | None:
    """Why ``doc`` is not a report a reader can use, or None when it is."""
    missing = [key for key in REPORT_KEYS if key not in doc]
    if missing:
        return f"missing key `{missing[0]}`; expected a performance report with: {', '.join(REPORT_KEYS)}"
    if not isinstance(doc["windows"], Mapping):
        return "`windows` must be an object {window: figures}"
    return None


def publish_report(cfg: Config, payload: ReportPayload) -> ReportDocument:
    """Publish ``payload`` atomically as ``state/rl_performance_report.json``; returns the document written.

    Raises ValueError on NaN anywhere in the payload (nothing is written then).
    """
    # The document is the payload's keys plus the envelope's, which is what ReportDocument declares.
    return cast(ReportDocument, publish_json(report_path(cfg), PRODUCER, dict(payload)))


def read_report(cfg: Config, max_age_s: float | None = None) -> ReadResult:
    """Read the report without raising: ``absent``, ``invalid`` (with the reason), ``stale`` or ``ok``."""
    return read_json(report_path(cfg), max_age_s=max_age_s, validate=validate_report)


def write_plots(cfg: Config, images: Mapping[str, bytes]) -> dict[str, Path]:
    """Write each plot in ``images`` (kind -> PNG bytes) atomically and remove the plots not in it.

    A plot of an earlier report must not sit next to a report that drew none. Returns kind -> path written.
    """
    unknown = [kind for kind in images if kind not in PLOT_NAMES]
    if unknown:
        raise ValueError(f"unknown plot {unknown[0]!r}; expected one of: {', '.join(PLOT_NAMES)}")
    written: dict[str, Path] = {}
    for kind, path in plot_paths(cfg).items():
        if kind in images:
            atomic_write_bytes(path, images[kind])
            written[kind] = path
        else:
            path.unlink(missing_ok=True)
    return written
