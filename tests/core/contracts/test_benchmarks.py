"""The benchmark run document: what the benchmark publishes reads back; NaN, a repeated key, a missing text field
or a wrong schema is refused at write time or read as invalid with the reason."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from core.config import Config
from core.contracts.benchmarks import (
    BENCHMARKS_NAME,
    BenchmarkRow,
    BenchmarksDoc,
    benchmarks_path,
    publish_benchmarks,
    read_benchmarks,
    validate_benchmarks,
)


def row(key: str = "single_env", **changes: Any) -> dict[str, Any]:
    base = BenchmarkRow(key, "one env", "gym-anytrading", 150_000.0, "150k steps/s", 300_000.0,
                        "300k steps/s", "steps/s", 2.0, ">= 1x", True)
    return {**base.as_dict(), **changes}


def doc(*rows: dict[str, Any]) -> BenchmarksDoc:
    return {"quick": True, "repeats": 1, "seconds": 12.5,
            "machine": {"cpu": "cpu", "cores": 2, "ram_gb": 8.0, "os": "Linux", "python": "3.11", "numpy": "2",
                        "torch": "2.13", "torch_threads": 1, "peers": {"backtesting": "missing"}},
            "rows": list(rows) or [row()]}


def test_the_path_is_runtime_benchmarks_json(cfg: Config) -> None:
    assert benchmarks_path(cfg) == cfg.runtime_dir / BENCHMARKS_NAME == cfg.runtime_dir / "benchmarks.json"


def test_a_published_run_reads_back(cfg: Config) -> None:
    written = publish_benchmarks(cfg, doc(row(), row("prediction", peer_figure=None, ratio=None, met=None,
                                                     peer_text="missing: pip install -e .[bench]")))
    result = read_benchmarks(cfg)
    assert result.ok, result.reason
    assert result.data == written
    assert result.data["producer"] == "benchmark"
    assert [r["key"] for r in result.data["rows"]] == ["single_env", "prediction"]


@pytest.mark.parametrize(("bad", "reason"), [
    (row(ours=math.nan), "rows[0].ours"),
    (row(ratio=math.inf), "rows[0].ratio"),
    (row(met="yes"), "rows[0].met"),
    (row(goal=None), "rows[0].goal"),
])
def test_a_bad_row_is_refused_before_writing(cfg: Config, bad: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        publish_benchmarks(cfg, doc(bad))
    assert not benchmarks_path(cfg).exists()


def test_repeated_keys_and_empty_rows_are_invalid() -> None:
    assert validate_benchmarks(dict(doc(row("a"), row("a")))) == "`rows` repeat a key"
    assert validate_benchmarks({**doc(), "rows": []}) == "`rows` must be a non-empty list"
    assert validate_benchmarks({**doc(), "schema_version": 99}).startswith("`schema_version` is 99")


@pytest.mark.parametrize("text", ["not json", json.dumps([1, 2]), json.dumps({"machine": {}, "rows": [{"key": 1}]})])
def test_a_broken_file_reads_as_invalid_with_the_reason(cfg: Config, text: str) -> None:
    path = benchmarks_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    result = read_benchmarks(cfg)
    assert result.status == "invalid"
    assert BENCHMARKS_NAME in result.reason


def test_no_file_is_absent(cfg: Config) -> None:
    assert read_benchmarks(cfg).status == "absent"
