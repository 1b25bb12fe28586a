"""The daemon benchmark's helpers: nearest-rank percentiles, valid trade rows, memory read through pid files,
and the Markdown rows."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.config import Config
from core.contracts.pnl_history import append_trades, history_path, read_history
from core.daemon import pid_path

REPO = Path(__file__).resolve().parents[2]


def load_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_daemons", REPO / "scripts" / "bench_daemons.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_daemons"] = module
    spec.loader.exec_module(module)
    return module


bench = load_bench()


def test_percentiles_are_nearest_rank_observed_values() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert bench.percentiles(values) == {"p50": 50.0, "p99": 99.0, "max": 100.0}
    assert bench.percentiles([0.3, 0.1, 0.2]) == {"p50": 0.2, "p99": 0.3, "max": 0.3}


def test_trade_rows_are_valid_history_rows_ending_before_now(cfg: Config) -> None:
    rows = bench.trade_rows(500, days=30, end=1_700_000_000.0)
    append_trades(history_path(cfg), rows)
    read = read_history(history_path(cfg))
    assert len(read.trades) == 500 and read.skipped == 0
    assert read.trades["closed_at"].max().timestamp() <= 1_700_000_000.0 - 60


def test_daemon_rss_reads_the_pid_files(cfg: Config) -> None:
    sleeper = subprocess.Popen(["sleep", "5"])
    gone = subprocess.Popen(["true"])
    gone.wait()
    try:
        for name, pid in (("weights_bridge", sleeper.pid), ("paper_trader", gone.pid), ("supervisor", os.getpid())):
            pid_path(cfg, name).parent.mkdir(parents=True, exist_ok=True)
            pid_path(cfg, name).write_text(f"{pid}\n")
        rss = bench.daemon_rss(cfg)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert set(rss) == {"weights_bridge", "paper_trader"}  # the supervisor is not a daemon of the suite
    assert rss["weights_bridge"] > 0 and rss["paper_trader"] is None


def test_render_gives_one_table_row_per_measurement() -> None:
    ms = {"p50": 0.01, "p99": 0.02, "max": 0.05}
    text = bench.render({
        "prediction": {"samples": 10, "trading": {"numpy_ms": ms, "torch_ms": ms}},
        "reaction": [{"trades": 1000, "samples": 5, "timeouts": 0, "p50_s": 0.2, "p99_s": 0.4, "max_s": 0.4}],
        "memory": {"rss_mb": {"weights_bridge": 80.5, "shadow_ppo": None}, "total_mb": 80.5},
    })
    lines = text.splitlines()
    assert len(lines) == 3 and all(line.startswith("| ") for line in lines)
    assert "p99 0.400 s" in lines[1] and "shadow_ppo - MB" in lines[2]


@pytest.mark.parametrize("argv", [["--help"]])
def test_help_describes_the_command(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        bench.main(argv)
    assert stop.value.code == 0 and "resident memory" in capsys.readouterr().out
