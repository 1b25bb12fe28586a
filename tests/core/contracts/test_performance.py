"""The performance tracker's files: paths, the weight-history record's validation and tolerant reading, the
report's publishing and reading, and plots that never outlive their report."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from core.config import STRATEGIES, Config
from core.contracts.performance import (
    PLOT_NAMES,
    PRODUCER,
    REPORT_SCHEMA_VERSION,
    ReportPayload,
    WeightRecord,
    append_weight_record,
    plot_paths,
    publish_report,
    read_report,
    read_weight_history,
    record_time,
    report_path,
    validate_weight_record,
    weight_history_path,
    write_plots,
)

EQUAL = {s: 1 / len(STRATEGIES) for s in STRATEGIES}


def weight_record(at: str) -> WeightRecord:
    return {"at": at, "weights": dict(EQUAL), "source": "equal",
            "allocations": {"status": "absent", "reason": "file not found"}, "rl": {"status": "absent"}}


def report_payload() -> ReportPayload:
    return {
        "as_of": "2024-03-31", "status": "ok", "periods_per_year": 365.0,
        "data_range": {"start": "2024-03-01", "end": "2024-03-31", "days": 31, "trades": 12},
        "history_rows_skipped": 0,
        "weight_history": {"file": "state/rl_weight_history.jsonl", "records": 1, "skipped": 0,
                           "first_at": None, "last_at": None},
        "baselines": {}, "windows": {"all": {"status": "ok"}}, "training": {"status": "absent"},
        "methodology": {}, "plots": {"status": "disabled"},
    }


def test_paths_are_in_the_state_folder(cfg: Config) -> None:
    assert weight_history_path(cfg) == cfg.state_dir / "rl_weight_history.jsonl"
    assert report_path(cfg) == cfg.state_dir / "rl_performance_report.json"
    assert plot_paths(cfg) == {"equity_curves": cfg.state_dir / "rl_performance_equity.png",
                               "weights": cfg.state_dir / "rl_performance_weights.png",
                               "drawdowns": cfg.state_dir / "rl_performance_drawdowns.png"}


def test_record_time_prefers_the_market_clock() -> None:
    assert record_time({"at": "2025-01-01T00:00:00Z"}) == datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert record_time({"at": "2025-01-01T00:00:00Z", "market_at": "2024-01-01T01:00:00Z"}) == \
        datetime(2024, 1, 1, 1, tzinfo=timezone.utc)
    assert record_time({"at": "yesterday"}) is None and record_time({"at": 5}) is None


@pytest.mark.parametrize(("record", "problem"), [
    ({"at": "2024-03-01T00:00:00Z", "weights": EQUAL}, None),
    ({"at": "2024-03-01T00:00:00Z"}, "weights"),
    ({"at": "2024-03-01T00:00:00Z", "weights": {"turtle_trading": 1.0}}, "missing"),
    ({"at": "2024-03-01T00:00:00Z", "weights": {**EQUAL, "turtle_trading": -1.0}}, "negative"),
    ({"at": "not a time", "weights": EQUAL}, "at"),
    ({"weights": EQUAL}, "at"),
])
def test_validate_weight_record_says_what_is_wrong(record: dict, problem: str | None) -> None:
    result = validate_weight_record(record)
    if problem is None:
        assert result is None
    else:
        assert result is not None and problem in result


def test_weight_history_is_read_tolerantly_and_bounded(cfg: Config) -> None:
    for day in range(1, 10):
        append_weight_record(cfg, weight_record(f"2024-03-{day:02d}T00:00:00Z"), max_lines=4)
    path = weight_history_path(cfg)
    assert 1 <= len(path.read_text().splitlines()) <= 4
    with open(path, "a") as fh:
        fh.write("not json\n")
        fh.write(json.dumps({"at": "2024-03-20T00:00:00Z", "weights": {"turtle_trading": 1.0}}) + "\n")
    read = read_weight_history(cfg)
    assert read.skipped == 1  # the bad weights; a line that is not JSON is dropped by the JSON Lines reader
    assert [r.at.day for r in read.records] == sorted(r.at.day for r in read.records)
    assert all(r.record["source"] == "equal" for r in read.records)


def test_missing_weight_history_is_empty(cfg: Config) -> None:
    read = read_weight_history(cfg)
    assert read.records == [] and read.skipped == 0


def test_report_is_published_in_the_envelope_and_read_back(cfg: Config) -> None:
    assert read_report(cfg).status == "absent"
    document = publish_report(cfg, report_payload())
    assert document["producer"] == PRODUCER and document["schema_version"] == REPORT_SCHEMA_VERSION
    result = read_report(cfg)
    assert result.ok and result.data is not None and result.data["as_of"] == "2024-03-31"


def test_report_without_its_keys_is_invalid_naming_the_key(cfg: Config) -> None:
    cfg.state_dir.mkdir(parents=True)
    report_path(cfg).write_text('{"as_of": "2024-03-31"}')
    result = read_report(cfg)
    assert result.status == "invalid" and "`status`" in result.reason and "rl_performance_report.json" in result.reason


def test_report_with_nan_is_refused(cfg: Config) -> None:
    payload = report_payload()
    payload["periods_per_year"] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        publish_report(cfg, payload)
    assert not report_path(cfg).exists()


def test_write_plots_writes_those_drawn_and_removes_the_others(cfg: Config) -> None:
    written = write_plots(cfg, {kind: b"png " + kind.encode() for kind in PLOT_NAMES})
    assert set(written) == set(PLOT_NAMES) and all(p.exists() for p in written.values())
    written = write_plots(cfg, {"weights": b"new"})
    assert list(written) == ["weights"] and written["weights"].read_bytes() == b"new"
    paths = plot_paths(cfg)
    assert not paths["equity_curves"].exists() and not paths["drawdowns"].exists()
    with pytest.raises(ValueError, match="unknown plot"):
        write_plots(cfg, {"pie_chart": b""})
