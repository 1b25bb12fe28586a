"""``runtime/benchmarks.json``: the last run of the speed benchmark against its peers.

Written by ``python scripts/benchmark.py`` (one run on one machine: every row of the speed table, each against
its named peer, with the machine's description); read by people (``jq``) and by tools that compare runs.
Nothing in the suite acts on it.

A row holds what was measured, the peer and its figure, ours, the ratio (``None`` when there is no peer
figure, e.g. a peer that is not installed: ``peer_text`` then says how to install it), the goal and whether it
was met (``None`` when the goal cannot be judged in that run). Numbers are finite or ``None``: NaN is refused
at write time like in every published document.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypedDict, get_type_hints

from core.atomic import SCHEMA_VERSION, ReadResult, publish_json, read_json
from core.config import Config

BENCHMARKS_NAME = "benchmarks.json"
PRODUCER = "benchmark"
BENCHMARKS_SCHEMA_VERSION = SCHEMA_VERSION


@dataclass(frozen=True)
class BenchmarkRow:
    """One row of the speed table: the benchmark builds these, the file holds each as an object with these
    keys (:meth:`as_dict`)."""

    key: str
    """Stable identifier of the row (``single_env``, ``file_loop_100k``...)."""
    what: str
    peer: str
    peer_figure: float | None
    peer_text: str
    """The peer's figure as shown (with its unit), ``-`` without a peer, or ``missing: ...`` when not installed."""
    ours: float | None
    ours_text: str
    unit: str
    ratio: float | None
    """How many times better ours is (peer/ours for times, ours/peer for rates); None without a peer figure."""
    goal: str
    met: bool | None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The row as written in the file."""
        return asdict(self)


class Machine(TypedDict):
    """Where the run was measured."""

    cpu: str
    cores: int
    ram_gb: float
    os: str
    python: str
    numpy: str
    torch: str
    torch_threads: int
    peers: dict[str, str]
    """Peer package -> version, or ``missing``."""


class BenchmarksDoc(TypedDict):
    """The payload of ``runtime/benchmarks.json``."""

    quick: bool
    repeats: int
    seconds: float
    machine: Machine
    rows: list[dict[str, Any]]
    """Each a :meth:`BenchmarkRow.as_dict`."""


_ROW_TYPES = get_type_hints(BenchmarkRow)
_TEXT_KEYS = tuple(key for key, kind in _ROW_TYPES.items() if kind is str)
_OPTIONAL_NUMBERS = tuple(key for key, kind in _ROW_TYPES.items() if kind == float | None)
_OPTIONAL_FLAGS = tuple(key for key, kind in _ROW_TYPES.items() if kind == bool | None)


def benchmarks_path(cfg: Config) -> Path:
    """``runtime/benchmarks.json`` of the configured home."""
    return cfg.runtime_dir / BENCHMARKS_NAME


def publish_benchmarks(cfg: Config, doc: BenchmarksDoc) -> dict[str, Any]:
    """Write the run atomically inside the envelope; returns the document written (NaN is refused)."""
    problem = validate_benchmarks(dict(doc))
    if problem:
        raise ValueError(f"{BENCHMARKS_NAME}: {problem}")
    return publish_json(benchmarks_path(cfg), PRODUCER, dict(doc))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_row(row: object, where: str) -> str | None:
    """Why ``row`` is not a usable benchmark row, or None."""
    if not isinstance(row, Mapping):
        return f"{where} must be an object, got {type(row).__name__}"
    for key in _TEXT_KEYS:
        if not isinstance(row.get(key), str):
            return f"{where}.{key} must be text, got {row.get(key)!r}"
    for key in _OPTIONAL_NUMBERS:
        if row.get(key) is not None and not _is_number(row.get(key)):
            return f"{where}.{key} must be a finite number or null, got {row.get(key)!r}"
    for key in _OPTIONAL_FLAGS:
        if row.get(key) is not None and not isinstance(row.get(key), bool):
            return f"{where}.{key} must be true, false or null, got {row.get(key)!r}"
    return None


def validate_benchmarks(doc: Mapping[str, Any]) -> str | None:
    """Why ``doc`` is not a usable benchmark run, or None."""
    version = doc.get("schema_version", BENCHMARKS_SCHEMA_VERSION)
    if version != BENCHMARKS_SCHEMA_VERSION:
        return f"`schema_version` is {version!r}; this version reads {BENCHMARKS_SCHEMA_VERSION} (run it again)"
    if not isinstance(doc.get("machine"), Mapping):
        return "`machine` must be an object"
    rows = doc.get("rows")
    if not isinstance(rows, list) or not rows:
        return "`rows` must be a non-empty list"
    keys = [row.get("key") for row in rows if isinstance(row, Mapping)]
    if len(set(keys)) != len(keys):
        return "`rows` repeat a key"
    for i, row in enumerate(rows):
        problem = validate_row(row, f"rows[{i}]")
        if problem:
            return problem
    return None


def read_benchmarks(cfg: Config) -> ReadResult:
    """The last run (tolerant: ``absent`` or ``invalid`` with the reason, never an exception)."""
    return read_json(benchmarks_path(cfg), validate=validate_benchmarks)
