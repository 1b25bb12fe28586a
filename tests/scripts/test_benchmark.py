"""Tests of scripts/benchmark.py: the median and percentile helpers and the table against hand-computed values,
a missing peer shown as missing, a failing part still showing its rows, and (slow) the quick run writing every
row into runtime/benchmarks.json."""

from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import scripts.benchmark as benchmark  # puts scripts/ on sys.path for its parts
from core.config import REPO_ROOT, load_config
from core.contracts.benchmarks import read_benchmarks

stats: Any = importlib.import_module("benchmarks.stats")
rows: Any = importlib.import_module("benchmarks.rows")


def test_median_of_odd_and_even_counts() -> None:
    assert stats.median([3.0, 1.0, 2.0]) == 2.0
    assert stats.median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert stats.median([7.0]) == 7.0
    with pytest.raises(ValueError):
        stats.median([])


def test_percentile_interpolates_between_ranks() -> None:
    assert stats.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    # rank (5 - 1) * 0.99 = 3.96: 40 + 0.96 * (50 - 40)
    assert stats.percentile([50.0, 10.0, 40.0, 20.0, 30.0], 99) == pytest.approx(49.6)
    assert stats.percentile([0.0, 100.0], 25) == 25.0
    assert stats.percentile([5.0], 99) == 5.0
    assert stats.percentile([3.0, 1.0, 2.0], 0) == 1.0 and stats.percentile([3.0, 1.0, 2.0], 100) == 3.0
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)


def test_ratio_is_how_many_times_better() -> None:
    assert stats.ratio(300.0, 150.0, higher_is_better=True) == 2.0
    assert stats.ratio(0.1, 300.0, higher_is_better=False) == pytest.approx(3000.0)
    assert stats.ratio(None, 1.0, True) is None and stats.ratio(1.0, 0.0, True) is None


def test_rate_per_s_is_the_median_of_the_runs() -> None:
    calls = []

    def work() -> int:
        calls.append(1)
        return 1000

    median_rate, rates = stats.rate_per_s(work, 3)
    assert len(calls) == 3 and len(rates) == 3
    assert median_rate == sorted(rates)[1]


def test_figures_as_text() -> None:
    assert rows.rate_text(156_000.0, "steps/s") == "156k steps/s"
    assert rows.rate_text(1_234_567.0, "bars/s") == "1.23M bars/s"
    assert rows.rate_text(2_500.0, "steps/s") == "2.5k steps/s"
    assert rows.rate_text(12.34, "steps/s") == "12.3 steps/s"
    assert rows.rate_text(None, "steps/s") == "-"
    assert rows.seconds_text(0.00004) == "0.040 ms"
    assert rows.seconds_text(0.0123) == "12.3 ms"
    assert rows.seconds_text(1.856) == "1.86 s"
    assert rows.ratio_text(2.345) == "2.35x" and rows.ratio_text(123.4) == "123x" and rows.ratio_text(None) == "-"


def _row(**changes: Any) -> Any:
    base = {"key": "k", "what": "one env", "peer": "gym-anytrading", "peer_figure": 150_000.0,
            "peer_text": "150k steps/s", "ours": 300_000.0, "ours_text": "300k steps/s", "unit": "steps/s",
            "ratio": 2.0, "goal": ">= 1x", "met": True, "note": ""}
    return rows.Row(**{**base, **changes})


def test_markdown_table() -> None:
    table = rows.markdown_table([
        _row(),
        _row(key="b", what="a | b", peer_figure=None, peer_text=rows.INSTALL_PEERS, ratio=None, met=None,
             note="peer missing"),
        _row(key="c", ratio=0.5, met=False, note="0.50x of the 1x asked"),
    ])
    assert table.splitlines() == [
        "| what | peer | peer figure | ours | ratio | goal | met/gap |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        "| one env | gym-anytrading | 150k steps/s | 300k steps/s | 2.00x | >= 1x | met |",
        "| a \\| b | gym-anytrading | missing: pip install -e .[bench] | 300k steps/s | - | >= 1x | - (peer missing) |",
        "| one env | gym-anytrading | 150k steps/s | 300k steps/s | 0.50x | >= 1x | gap: 0.50x of the 1x asked |",
    ]


def test_machine_description_reads_cpu_and_memory(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU @ 3.00GHz\n")
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:        8388608 kB\nMemFree: 1 kB\n")
    assert rows.cpu_model(cpuinfo) == "Test CPU @ 3.00GHz"
    assert rows.ram_gb(meminfo) == 8.0
    machine = rows.machine_description(1)
    assert set(machine["peers"]) == {"gym-anytrading", "backtesting", "stable-baselines3"}
    assert machine["torch_threads"] == 1 and machine["cores"] >= 1
    assert "1 thread" in rows.machine_text(machine)


def test_a_missing_peer_is_reported_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("backtesting", "backtesting.backtesting", "backtesting.lib"):
        monkeypatch.setitem(sys.modules, name, None)  # makes the import fail
    sizes = benchmark.envs.EnvSizes(single_steps=10, vector_steps=2, peer_steps=10, backtest_bars=2_000,
                                    peer_bars=2_000)
    (row,) = benchmark.envs.backtest_rows(sizes, 1)
    assert row.peer_text == "missing: pip install -e .[bench]"
    assert row.peer_figure is None and row.ratio is None and row.met is None
    assert row.ours is not None and row.ours > 0


def test_a_failing_part_keeps_its_rows_and_the_others_run(cfg: Any) -> None:
    def broken(*_: Any) -> list[Any]:
        raise RuntimeError("daemon would not start\nsecond line")

    parts = [benchmark.Part("broken", ("a", "b"), broken),
             benchmark.Part("fine", ("c",), lambda *_: [_row(key="c")])]
    got, ok = benchmark.run_parts(parts, benchmark.QUICK, 1, cfg)
    assert not ok
    assert [r.key for r in got] == ["a", "b", "c"]
    assert got[0].met is False and got[0].note == "failed: RuntimeError: daemon would not start"


def test_every_part_names_its_rows() -> None:
    keys = [key for part in benchmark.PARTS for key in part.keys]
    assert len(keys) == len(set(keys))
    assert {"single_env", "vector_env", "baselines", "ppo_cartpole_equal", "ppo_cartpole_zoo", "ppo_trading",
            "prediction", "file_loop_small", "file_loop_large", "reaction_update", "reaction_report",
            "rss_total", "rss_weights_bridge", "rss_paper_trader"} <= set(keys)


def test_the_rl_zoo_cartpole_peer_keeps_the_published_settings_whatever_our_preset() -> None:
    ppo_part: Any = importlib.import_module("benchmarks.ppo")
    kwargs = ppo_part.rl_zoo_cartpole(seed=1)
    published = {"n_steps": 32, "batch_size": 256, "n_epochs": 20, "gamma": 0.98, "gae_lambda": 0.8, "ent_coef": 0.0,
                 "vf_coef": 0.5, "max_grad_norm": 0.5}
    assert {key: kwargs[key] for key in published} == published
    assert kwargs["learning_rate"](0.5) == pytest.approx(5e-4) and kwargs["clip_range"](0.5) == pytest.approx(0.1)
    assert kwargs["policy_kwargs"]["net_arch"] == {"pi": [64, 64], "vf": [64, 64]}
    assert ppo_part.RL_ZOO_CARTPOLE_ENVS == 8


@pytest.mark.slow
def test_the_quick_run_writes_every_row(tmp_path: Path, rl_home: Path) -> None:
    markdown = tmp_path / "bench.md"
    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "benchmark.py"), "--quick", "--json",
                           "--markdown", str(markdown)], cwd=tmp_path, env=dict(os.environ), capture_output=True,
                          text=True, timeout=280, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[1/7] envs" in done.stderr  # progress per part on stderr
    result = read_benchmarks(load_config(None))
    assert result.ok, result.reason  # the reader refuses NaN and malformed rows
    assert result.data is not None and json.loads(done.stdout) == result.data
    by_key = {row["key"]: row for row in result.data["rows"]}
    assert {key for part in benchmark.PARTS for key in part.keys} == set(by_key)
    for row in by_key.values():
        assert row["peer"] == "-" or row["peer_figure"] is not None or row["peer_text"].startswith("missing: ")
        assert row["ours"] is not None and math.isfinite(row["ours"]), row
    assert markdown.read_text().count("\n| ") == len(by_key) + 2  # the header, its rule and a line per row
