"""The command and the daemon: --track, --report and their exit codes, the scheduler's jobs, a failing job
recorded in the heartbeat, the fallback sources retried until they publish, and the real daemon in a
subprocess."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from analytics import portfolio_optimizer as po
from analytics import strategy_lab as lab
from analytics.performance import daemon as daemon_module
from analytics.performance.daemon import JOB_IDS, build_scheduler, main, run_guarded, unpublished_sources_job
from analytics.performance.figures import NOT_ENOUGH_DATA
from analytics.performance.report import summary_text
from analytics.performance.tracking import load_weight_history, track_weights
from core.config import REPO_ROOT, STRATEGIES, Config
from core.contracts.performance import plot_paths, report_path, weight_history_path
from core.contracts.pnl_history import append_trades
from core.daemon import DaemonContext
from tests.analytics.performance.support import (
    AS_OF,
    assert_no_figures_anywhere,
    at,
    baseline_cfg,
    strict_load,
    synthetic_trades,
    trade,
)


def test_empty_history_gives_not_enough_data_entries_and_no_plots(cfg: Config, capsys: pytest.CaptureFixture) -> None:
    stale_plot = plot_paths(cfg)["equity_curves"]
    stale_plot.parent.mkdir(parents=True)
    stale_plot.write_bytes(b"old")
    assert main(["--report"]) == 0
    doc = strict_load(report_path(cfg))
    assert doc["status"] == NOT_ENOUGH_DATA and doc["producer"] == "performance_tracker"
    assert_no_figures_anywhere(doc)
    assert doc["plots"]["status"] == NOT_ENOUGH_DATA
    assert not stale_plot.exists()  # a plot of an earlier report must not sit next to this one
    assert NOT_ENOUGH_DATA in capsys.readouterr().out


def test_track_command_prints_the_source(cfg: Config, capsys: pytest.CaptureFixture) -> None:
    assert main(["--track"]) == 0
    assert "recorded weights from equal" in capsys.readouterr().out
    assert load_weight_history(cfg).size == 1


def test_report_command_prints_a_summary(cfg: Config, history: object, capsys: pytest.CaptureFixture) -> None:
    assert main(["--report", "--as-of", AS_OF.isoformat(), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert f"as of {AS_OF}" in out and "7d (2024-03-25 to 2024-03-31" in out
    assert "allocated" in out and "sources in force: portfolio_optimizer 100%" in out
    doc = strict_load(report_path(cfg))
    doc["windows"]["all"]["source_shares"] = {"rl": 0.996, "equal": 0.004}
    assert "sources in force: rl 100%, equal <1%" in summary_text(doc)  # named, but not as "0%"
    assert strict_load(report_path(cfg))["plots"] == {"status": "disabled"}


def test_no_plots_leaves_the_existing_plots_alone(cfg: Config, history: object) -> None:
    assert main(["--report", "--as-of", AS_OF.isoformat()]) == 0
    before = {kind: path.read_bytes() for kind, path in plot_paths(cfg).items()}
    assert all(data[:4] == b"\x89PNG" for data in before.values()) and len(before) == 3
    assert main(["--report", "--as-of", AS_OF.isoformat(), "--no-plots"]) == 0
    assert {kind: path.read_bytes() for kind, path in plot_paths(cfg).items()} == before
    assert strict_load(report_path(cfg))["plots"] == {"status": "disabled"}


def test_history_without_a_required_column_exits_2(cfg: Config, capsys: pytest.CaptureFixture) -> None:
    cfg.state_dir.mkdir(parents=True)
    (cfg.state_dir / "pnl_history.csv").write_text("closed_at,strategy,pnl\n2024-03-01T00:00:00Z,vix_strategy,1\n")
    assert main(["--report"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "opened_at" in err and "pnl_history.csv" in err


def test_bad_config_file_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text('[performance]\nwindows = ["7 days"]\n')
    assert main(["--report", "--config", str(toml)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "performance.windows" in err and "7 days" in err


def test_scheduler_jobs_have_explicit_ids_and_safe_defaults(cfg: Config) -> None:
    scheduler = build_scheduler(cfg, DaemonContext("performance_tracker", cfg))
    scheduler.start(paused=True)
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == set(JOB_IDS)
        for job in jobs.values():
            assert job.coalesce is True and job.max_instances == 1
            assert job.misfire_grace_time == cfg.performance.misfire_grace_s >= 60
    finally:
        scheduler.shutdown(wait=False)


def test_a_failing_job_is_logged_in_the_heartbeat_and_the_next_one_recovers(cfg: Config) -> None:
    ctx = DaemonContext("performance_tracker", cfg)

    def broken() -> None:
        raise OSError("disk full")

    assert run_guarded(ctx, "report", broken) is False
    beat = json.loads(ctx.heartbeat_path.read_text())
    assert beat["state"] == "degraded" and "disk full" in beat["last_error"]
    assert beat["degraded_reason"] == "cannot write report: disk full"
    assert run_guarded(ctx, "track", lambda: track_weights(cfg)) is True
    beat = json.loads(ctx.heartbeat_path.read_text())
    # The report still has not been written since: the daemon stays degraded until it is.
    assert (beat["state"], beat["activity"]) == ("degraded", "running") and "last_track_at" in beat
    assert run_guarded(ctx, "report", lambda: None) is True
    beat = json.loads(ctx.heartbeat_path.read_text())
    assert beat["state"] == "running" and "degraded_reason" not in beat

    def bug() -> None:
        raise KeyError("weights")

    assert run_guarded(ctx, "report", bug) is False  # not a write error: the daemon's own state says error
    assert json.loads(ctx.heartbeat_path.read_text())["state"] == "error"


def test_loop_daemon_tracks_publishes_fallbacks_and_exits_0_on_sigterm(cfg: Config, tmp_path: Path) -> None:
    # 20 days of 2 trades a strategy and day ending today: enough for the optimizer's and the lab's defaults.
    today = datetime.now(timezone.utc).date()
    rng = random.Random(2)
    append_trades(cfg.state_dir / "pnl_history.csv", [
        trade(at(today - timedelta(days=d), h), s, round(rng.gauss(0.001, 0.01), 6))
        for d in range(1, 21) for h in (6, 18) for s in STRATEGIES])
    toml = tmp_path / "loop.toml"
    toml.write_text('[performance]\ntrack_interval_s = 0.5\nplots = false\n')
    out = tmp_path / "daemon.out"
    with open(out, "wb") as log_file:
        proc = subprocess.Popen([sys.executable, "analytics/rl_performance.py", "--loop", "--config", str(toml)],
                                cwd=REPO_ROOT, env=os.environ.copy(), stdout=log_file, stderr=subprocess.STDOUT)
    history = weight_history_path(cfg)
    expected = [cfg.runtime_dir / "portfolio_optimizer_weights.json", cfg.runtime_dir / "strategy_lab_weights.json",
                report_path(cfg)]
    try:
        deadline = time.monotonic() + 20
        lines = 0
        while time.monotonic() < deadline and proc.poll() is None:
            lines = len(history.read_text().splitlines()) if history.exists() else 0
            if lines >= 3 and all(p.exists() for p in expected):
                break
            time.sleep(0.2)
        assert proc.poll() is None, out.read_text()
        assert lines >= 3, out.read_text()
        assert all(p.exists() for p in expected), out.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, out.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    beat = json.loads((cfg.runtime_dir / "heartbeats" / "performance_tracker.json").read_text())
    assert beat["state"] == "stopped" and "last_track_at" in beat
    assert not (cfg.runtime_dir / "pids" / "performance_tracker.pid").exists()
    assert json.loads(expected[0].read_text())["producer"] == "portfolio_optimizer"


def test_unpublished_fallback_sources_are_retried_until_they_publish(cfg: Config) -> None:
    cfg = baseline_cfg(cfg)
    ctx = DaemonContext("performance_tracker", cfg)
    unpublished_sources_job(cfg, ctx)  # empty history: nothing to publish yet
    assert not po.output_path(cfg).exists() and not lab.output_path(cfg).exists()
    append_trades(cfg.state_dir / "pnl_history.csv", synthetic_trades(seed=3, gap=range(0)))
    unpublished_sources_job(cfg, ctx)
    first = po.output_path(cfg).stat().st_ino  # an atomic rewrite would replace the file (a new inode)
    assert lab.output_path(cfg).exists()
    unpublished_sources_job(cfg, ctx)  # published once: left to their own schedules
    assert po.output_path(cfg).stat().st_ino == first


def test_fallback_sources_are_checked_within_seconds_not_a_track_interval(cfg: Config) -> None:
    assert cfg.performance.track_interval_s >= 300  # the default: today's retry would wait five minutes
    scheduler = build_scheduler(cfg, DaemonContext("performance_tracker", cfg))
    scheduler.start(paused=True)
    try:
        trigger = scheduler.get_job("unpublished_sources").trigger
        assert trigger.interval.total_seconds() <= 10
    finally:
        scheduler.shutdown(wait=False)


def test_fallback_sources_publish_as_soon_as_enough_trades_exist(cfg: Config,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = baseline_cfg(cfg)
    monkeypatch.setattr(daemon_module, "UNPUBLISHED_CHECK_S", 0.1)
    tries: list[int] = []
    real_job = daemon_module.unpublished_sources_job
    monkeypatch.setattr(daemon_module, "unpublished_sources_job",
                        lambda c, x: (tries.append(1), real_job(c, x))[-1])
    append_trades(cfg.state_dir / "pnl_history.csv", synthetic_trades(seed=3, n_days=3, gap=range(0)))
    scheduler = build_scheduler(cfg, DaemonContext("performance_tracker", cfg))
    for job_id in ("track", "report", "portfolio_optimizer", "strategy_lab"):
        scheduler.remove_job(job_id)
    scheduler.start()
    try:
        time.sleep(0.6)  # a short history: tried once, not on every check
        assert len(tries) == 1 and not po.output_path(cfg).exists()
        append_trades(cfg.state_dir / "pnl_history.csv", synthetic_trades(seed=3, gap=range(0)))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (po.output_path(cfg).exists() and lab.output_path(cfg).exists()):
            time.sleep(0.05)
        assert po.output_path(cfg).exists() and lab.output_path(cfg).exists()
        time.sleep(0.4)
        assert len(tries) == 2  # published: no further tries
    finally:
        scheduler.shutdown(wait=True)
