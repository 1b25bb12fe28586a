"""`scripts/soak.py`: RSS parsing from /proc, pid files, the per-daemon summary and its verdict (no suite run)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from core.config import REPO_ROOT

_spec = importlib.util.spec_from_file_location("soak", REPO_ROOT / "scripts" / "soak.py")
soak = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["soak"] = soak  # its dataclasses look their module up while the module runs
_spec.loader.exec_module(soak)  # type: ignore[union-attr]


def test_rss_is_read_from_proc_status_and_a_gone_process_is_none(tmp_path: Path) -> None:
    (tmp_path / "41").mkdir()
    (tmp_path / "41" / "status").write_text("Name:\tpython\nVmPeak:\t 999999 kB\nVmRSS:\t   102400 kB\n")
    assert soak.rss_mb(41, tmp_path) == 100.0
    assert soak.rss_mb(42, tmp_path) is None
    assert soak.rss_mb(1) is not None  # the real /proc of this machine


def test_pids_skip_the_supervisor_and_unreadable_files(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    (pids / "qlearning.pid").write_text("123\n")
    (pids / "supervisor.pid").write_text("7\n")
    (pids / "paper_trader.pid").write_text("half-writ")
    assert soak.daemon_pids(tmp_path) == {"qlearning": 123}


def test_summary_flags_only_the_daemon_that_grows_after_the_warm_up() -> None:
    samples = [(float(t), {"flat": 50.0 + (30.0 if t < 60 else 0.0) + (t % 10) * 0.01, "grows": 80.0 + t * 0.1})
               for t in range(0, 181, 5)]
    rows = {r.name: r for r in soak.summarize(samples, warmup_s=60.0, max_growth_mb=5.0)}
    assert rows["flat"].ok and rows["flat"].growth_mb == pytest.approx(0.0, abs=0.1)  # warm-up growth ignored
    grows = rows["grows"]
    assert not grows.ok and grows.slope_mb_per_min == pytest.approx(6.0) and grows.growth_mb == pytest.approx(12.0)
    assert grows.warmup_mb == pytest.approx(86.0) and grows.end_mb == pytest.approx(98.0)
    table = soak.format_table(list(rows.values()))
    assert "GROWS" in table and table.count("\n") == 2


def test_a_daemon_seen_only_in_the_warm_up_is_reported_as_not_running() -> None:
    rows = soak.summarize([(0.0, {"early": 10.0}), (90.0, {})], warmup_s=60.0, max_growth_mb=5.0)
    assert rows[0].warmup_mb is None and not rows[0].ok and "not running" in soak.format_table(rows)


def test_arguments_that_leave_nothing_to_measure_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert soak.main(["--minutes", "1", "--warmup-s", "60"]) == 2
    assert "lower it or run longer" in capsys.readouterr().err
    assert soak.main(["--minutes", "0"]) == 2
