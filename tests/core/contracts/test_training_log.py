"""``state/rl_training_log.json``: bounded, an unreadable log moved aside (never overwritten), and the
tolerant reader of the report."""

from __future__ import annotations

import json

import pytest

from core.config import Config, replace_section
from core.contracts.training_log import (
    append_training_record,
    read_training_log,
    read_training_records,
    training_log_path,
)


def test_the_training_log_is_bounded(cfg: Config) -> None:
    cfg = replace_section(cfg, "strategy_agent", training_log_max_records=2)
    for i in range(3):
        append_training_record(cfg, {"model_version": i})
    assert [r["model_version"] for r in read_training_records(cfg)] == [1, 2]


@pytest.mark.parametrize("garbage", ['{"records": [{"model_version": 1}', '{"records": "oops"}'])
def test_an_unreadable_training_log_is_moved_aside_not_overwritten(cfg: Config, garbage: str) -> None:
    path = cfg.state_dir / "rl_training_log.json"
    path.parent.mkdir(parents=True)
    path.write_text(garbage)
    append_training_record(cfg, {"model_version": 7})
    assert [r["model_version"] for r in read_training_records(cfg)] == [7]
    (aside,) = path.parent.glob("rl_training_log.json.unreadable-*")
    assert aside.read_text() == garbage
    append_training_record(cfg, {"model_version": 8})  # a readable log is simply extended
    assert [r["model_version"] for r in read_training_records(cfg)] == [7, 8]
    assert len(list(path.parent.glob("rl_training_log.json.unreadable-*"))) == 1


def test_records_carry_the_envelope(cfg: Config) -> None:
    append_training_record(cfg, {"model_version": 1, "promoted": True})
    doc = json.loads(training_log_path(cfg).read_text())
    assert doc["producer"] == "rl_trainer" and doc["schema_version"] == 1
    assert doc["records"] == [{"model_version": 1, "promoted": True}]


def test_the_report_view_is_tolerant(cfg: Config) -> None:
    view = read_training_log(cfg, limit=5)
    assert view["status"] == "absent" and view["records"] == [] and "rl_training_log.json" in view["reason"]
    path = training_log_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"runs": [{"loss": NaN}, 3, {"model_version": 2}]}')  # another writer's shape, NaN included
    view = read_training_log(cfg, limit=1)
    assert view["status"] == "ok" and view["total_records"] == 2 and view["skipped"] == 1
    assert view["records"] == [{"model_version": 2}]
    assert read_training_log(cfg, limit=5)["records"][0] == {"loss": None}
    path.write_text('{"records": "oops"}')
    view = read_training_log(cfg, limit=5)
    assert view["status"] == "invalid" and "expected a list of records" in view["reason"]
    path.write_text("{")
    assert read_training_log(cfg, limit=5)["status"] == "invalid"
