"""The decisions log: appended lines read back, the decision for a candle, and tolerant reads."""

from __future__ import annotations

import pytest

from core.config import Config
from core.contracts.shadow_decisions import (
    DECISIONS_NAME,
    TAIL_BYTES,
    append_decision,
    decision_for,
    decisions_path,
    latest_decision,
    recent_decisions,
)

HOUR = 3_600_000


def test_path(cfg: Config) -> None:
    assert decisions_path(cfg) == cfg.runtime_dir / "rl_v3_decisions.jsonl" and DECISIONS_NAME.endswith(".jsonl")


def test_without_a_file_there_is_no_decision(cfg: Config) -> None:
    assert recent_decisions(cfg) == [] and latest_decision(cfg) is None and decision_for(cfg, 0) is None


def test_appended_decisions_read_back_oldest_first(cfg: Config) -> None:
    for k in range(3):
        append_decision(cfg, {"timestamp": k * HOUR, "exposure": k / 10, "action_name": "LONG"})
    assert [d["timestamp"] for d in recent_decisions(cfg)] == [0, HOUR, 2 * HOUR]
    latest = latest_decision(cfg)
    assert latest is not None and latest["exposure"] == pytest.approx(0.2)


def test_the_decision_for_a_candle_is_never_a_later_one(cfg: Config) -> None:
    for ts in (0, 2 * HOUR, 5 * HOUR):
        append_decision(cfg, {"timestamp": ts, "exposure": 1.0})
    assert decision_for(cfg, 2 * HOUR)["timestamp"] == 2 * HOUR
    assert decision_for(cfg, 4 * HOUR)["timestamp"] == 2 * HOUR
    assert decision_for(cfg, -1) is None


def test_garbage_lines_are_skipped(cfg: Config) -> None:
    path = decisions_path(cfg)
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"timestamp": 1}\nnot json\n\xff\xfe\n[1]\n{"timestamp": "x"}\n{"timestamp": true}\n'
                     b'{"timestamp": 2}\n{"timestamp": 3, "exp')
    assert [d["timestamp"] for d in recent_decisions(cfg)] == [1, 2]


def test_nan_is_refused_at_write_time(cfg: Config) -> None:
    with pytest.raises(ValueError):
        append_decision(cfg, {"timestamp": 1, "exposure": float("nan")})


def test_only_the_tail_is_read(cfg: Config) -> None:
    pad = "x" * 200
    n = TAIL_BYTES // 200 + 50
    for k in range(n):
        append_decision(cfg, {"timestamp": k, "pad": pad})
    records = recent_decisions(cfg)
    assert records[-1]["timestamp"] == n - 1 and 0 < len(records) < n
