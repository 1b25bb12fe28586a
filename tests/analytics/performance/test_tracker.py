"""Performance tracker: report figures against plain numpy on a synthetic history, the causal baselines against
the sources' own compute_weights, weight tracking, tolerant inputs, "not enough data" entries, plots, a year of
hourly trades, and the real daemon in a subprocess."""

from __future__ import annotations

import io
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import matplotlib.image as mpimg
import numpy as np
import pytest

from analytics import portfolio_optimizer as po
from analytics import strategy_lab as lab
from analytics.performance import tracker as perf
from core.atomic import publish_json
from core.config import REPO_ROOT, STRATEGIES, Config, config_from_dict, replace_section
from core.contracts.pnl_history import append_trades
from core.contracts.weights import publish_weights
from core.daemon import DaemonContext
from core.errors import ConfigError

AS_OF = date(2024, 3, 31)
N_DAYS = 40
FIRST_DAY = AS_OF - timedelta(days=N_DAYS - 1)
PPY = 365.0
GAP = range(25, 30)
"""Day indexes without any trade (a gappy history)."""
W_A = dict(zip(STRATEGIES, np.arange(1.0, 9.0) / 36.0, strict=True))
W_B = dict(zip(STRATEGIES, np.array([4.0, 0, 0, 1, 1, 0, 2, 0]) / 8.0, strict=True))


# ------------------------------------------------------------------------------------------------ helpers


def trade(closed: datetime, strategy: str, pnl_pct: float) -> dict[str, object]:
    return {
        "closed_at": closed.isoformat(), "opened_at": (closed - timedelta(hours=2)).isoformat(),
        "symbol": "BTC/USDT", "strategy": strategy, "side": "long", "qty": 1.0, "entry_price": 100.0,
        "exit_price": 100.0 * (1 + pnl_pct), "pnl": 100.0 * pnl_pct, "pnl_pct": pnl_pct, "fees": 0.0,
        "equity_after": 10_000.0,
    }


def at(day: date, hour: float = 0.0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(hours=hour)


def synthetic_trades(seed: int, n_days: int = N_DAYS, gap: range = GAP, first: date = FIRST_DAY) -> list[dict]:
    """0-3 trades a strategy and day at random hours; none at all on the ``gap`` days."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_days):
        if i in gap:
            continue
        for k, name in enumerate(STRATEGIES):
            for _ in range(rng.choice((0, 1, 1, 2, 3))):
                pnl = round(rng.gauss(0.001 * (k - 3), 0.004 * (1 + k % 3)), 6)
                rows.append(trade(at(first + timedelta(days=i), rng.uniform(0.0, 23.99)), name, pnl))
    rng.shuffle(rows)  # the history file need not be sorted
    return rows


def expected_daily(rows: list[dict], first: date, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-day sums of pnl_pct and trade counts (n_days x 8), computed from the rows with plain Python."""
    sums: dict[tuple[int, int], float] = defaultdict(float)
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for row in rows:
        day = datetime.fromisoformat(str(row["closed_at"])).date()
        key = ((day - first).days, STRATEGIES.index(str(row["strategy"])))
        sums[key] += float(row["pnl_pct"])
        counts[key] += 1
    r, c = np.zeros((n_days, 8)), np.zeros((n_days, 8))
    for (d, s), v in sums.items():
        r[d, s] = v
        c[d, s] = counts[(d, s)]
    return r, c


def numpy_figures(r: np.ndarray, active: np.ndarray) -> dict[str, float | None]:
    """The report's figures by their textbook formulas; None where a ratio is undefined (zero denominator)."""
    equity = np.concatenate([[1.0], np.cumprod(1.0 + r)])
    downside = math.sqrt(np.mean(np.minimum(r, 0.0) ** 2))
    return {
        "total_return": float(np.prod(1.0 + r) - 1.0),
        "sharpe_ratio": float(r.mean() / r.std(ddof=1) * math.sqrt(PPY)) if np.ptp(r) > 0 else None,
        "sortino_ratio": float(r.mean() / downside * math.sqrt(PPY)) if downside > 0 else None,
        "max_drawdown": float((equity / np.maximum.accumulate(equity) - 1.0).min()),
        "annual_volatility": float(r.std(ddof=1) * math.sqrt(PPY)),
        "win_rate": float((r[active] > 0).sum() / active.sum()),
    }


def assert_figures(actual: dict[str, Any], expected: dict[str, float | None]) -> None:
    for key, value in expected.items():
        if value is None:
            assert actual[key] is None, key
        else:
            assert actual[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def strict_load(path: Path) -> dict:
    def refuse(name: str) -> float:
        raise AssertionError(f"{name} written to {path.name}")
    return json.loads(path.read_text(), parse_constant=refuse)


def write_history_records(cfg: Config, lines: list[str]) -> None:
    path = perf.weight_history_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


def record(when: datetime, weights: dict[str, float], source: str) -> str:
    return json.dumps({"at": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "weights": weights, "source": source})


NOW = at(AS_OF + timedelta(days=1))


# ------------------------------------------------------------------------------------------------ figures


@pytest.fixture
def history(cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    rows = synthetic_trades(seed=7)
    append_trades(cfg.state_dir / "pnl_history.csv", rows)
    # Weights in force: equal (untracked) for days 0-9, A from day 10, B from the middle of day 20.
    write_history_records(cfg, [
        "not json at all",
        record(at(FIRST_DAY + timedelta(days=10)), W_A, "rl"),
        json.dumps({"at": "2024-03-20T00:00:00Z", "weights": {"turtle_trading": 1.0}, "source": "rl"}),
        record(at(FIRST_DAY + timedelta(days=20), 12.0), W_B, "portfolio_optimizer"),
    ])
    return expected_daily(rows, FIRST_DAY, N_DAYS)


def expected_allocated_weights() -> np.ndarray:
    a, b = np.array(list(W_A.values())), np.array(list(W_B.values()))
    w = np.tile(np.full(8, 1 / 8), (N_DAYS, 1))
    w[10:20] = a
    w[20] = (a + b) / 2
    w[21:] = b
    return w


def test_report_figures_match_numpy_on_a_gappy_history(cfg: Config, history: tuple[np.ndarray, np.ndarray]) -> None:
    returns, counts = history
    doc = perf.write_report(cfg, AS_OF, now=NOW, with_plots=False).document
    assert doc["data_range"] == {"start": FIRST_DAY.isoformat(), "end": AS_OF.isoformat(), "days": N_DAYS,
                                 "trades": int(counts.sum())}
    alloc_w = expected_allocated_weights()
    for label, n in (("7d", 7), ("30d", 30), ("all", N_DAYS)):
        win = doc["windows"][label]
        assert win["status"] == "ok" and win["days"] == n
        rows = slice(N_DAYS - n, N_DAYS)
        r, c = returns[rows], counts[rows]
        equal = r.mean(axis=1)
        assert_figures(win["portfolios"]["equal_weight"], numpy_figures(equal, c.sum(axis=1) > 0))
        assert win["portfolios"]["equal_weight"]["turnover"] == 0.0
        allocated = (r * alloc_w[rows]).sum(axis=1)
        assert_figures(win["portfolios"]["allocated"],
                       numpy_figures(allocated, (c * (alloc_w[rows] > 0)).sum(axis=1) > 0))
        turnover = 0.5 * np.abs(np.diff(alloc_w, axis=0)).sum(axis=1)
        assert win["portfolios"]["allocated"]["turnover"] == pytest.approx(turnover[N_DAYS - n - 1:].sum()
                                                                           if n < N_DAYS else turnover.sum())
        for k, name in enumerate(STRATEGIES):
            assert_figures(win["single_strategies"][name], numpy_figures(r[:, k], c[:, k] > 0))
    assert doc["weight_history"]["records"] == 2 and doc["weight_history"]["skipped"] == 1


def test_source_shares_and_weight_evolution_of_the_records(cfg: Config, history: object) -> None:
    doc = perf.write_report(cfg, AS_OF, now=NOW, with_plots=False).document
    shares = doc["windows"]["all"]["source_shares"]
    assert shares == pytest.approx({"untracked": 10 / N_DAYS, "rl": 10.5 / N_DAYS,
                                    "portfolio_optimizer": 19.5 / N_DAYS})
    assert doc["windows"]["7d"]["source_shares"] == {"portfolio_optimizer": 1.0}
    evolution = doc["windows"]["all"]["weight_evolution"]
    a, b = np.array(list(W_A.values())), np.array(list(W_B.values()))
    assert evolution["records"] == 2
    for k, name in enumerate(STRATEGIES):
        assert evolution["per_strategy"][name] == pytest.approx(
            {"mean": (a[k] + b[k]) / 2, "min": min(a[k], b[k]), "max": max(a[k], b[k])})
    hhi = [float((a**2).sum()), float((b**2).sum())]
    assert evolution["hhi"] == pytest.approx({"mean": sum(hhi) / 2, "min": min(hhi), "max": max(hhi)})
    assert evolution["effective_strategies"]["max"] == pytest.approx(1 / min(hhi))
    assert evolution["latest"]["source"] == "portfolio_optimizer"
    assert evolution["longest_gap_s"] == pytest.approx(10.5 * 86_400)
    # The last 7 days hold no record: that is said, not filled with numbers.
    assert doc["windows"]["7d"]["weight_evolution"]["status"] == perf.NOT_ENOUGH_DATA


def test_time_weighted_mean_by_hand() -> None:
    times = np.array([5.0, 15.0])
    values = np.array([[1.0, 0.0], [0.0, 1.0]])
    means = perf.time_weighted_mean(times, values, np.array([0.5, 0.5]), np.array([0.0, 10.0, 20.0, 30.0]))
    # [0,10): 5 s of the initial (0.5, 0.5) then 5 s of (1, 0); [10,20): 5 s (1, 0), 5 s (0, 1); [20,30): (0, 1).
    assert means.tolist() == [[0.75, 0.25], [0.5, 0.5], [0.0, 1.0]]


# ------------------------------------------------------------------------------------------------ baselines


def baseline_cfg(cfg: Config, method: str = "inverse_vol") -> Config:
    cfg = replace_section(cfg, "portfolio_optimizer", lookback_days=20, min_days=5, min_trades=3, method=method)
    return replace_section(cfg, "strategy_lab", window_days=10, min_days=3, min_trades=2)


@pytest.mark.parametrize("method", ["inverse_vol", "erc"])
def test_replayed_baselines_equal_the_sources_own_weights_as_of_the_day_before(cfg: Config, method: str) -> None:
    append_trades(cfg.state_dir / "pnl_history.csv", synthetic_trades(seed=3, gap=range(0)))
    cfg = baseline_cfg(cfg, method)
    replay = perf.build_replay(cfg, AS_OF, perf.load_weight_history(cfg))
    checked = 0
    for i in range(0, N_DAYS, cfg.performance.rebalance_days):
        day = replay.days[i].date()
        for name, module in (("portfolio_optimizer", po), ("strategy_lab", lab)):
            try:
                expected = module.compute_weights(cfg, as_of=day - timedelta(days=1))["weights"]
            except po.InsufficientHistoryError:
                expected = {s: 1 / 8 for s in STRATEGIES}
            held = replay.weights[name][i:i + cfg.performance.rebalance_days]
            assert np.allclose(held, [expected[s] for s in STRATEGIES], rtol=1e-12, atol=1e-14), (name, day)
            checked += expected != {s: 1 / 8 for s in STRATEGIES}
    assert checked >= 8  # most rebalances had real weights, not the equal fallback
    assert replay.baselines["portfolio_optimizer"].without_weights == 1  # only the first day: no data before it


def test_baselines_do_not_look_ahead(cfg: Config) -> None:
    path = cfg.state_dir / "pnl_history.csv"
    append_trades(path, synthetic_trades(seed=5, gap=range(0)))
    cfg = baseline_cfg(cfg)
    cut = AS_OF - timedelta(days=12)
    before = perf.build_replay(cfg, cut, perf.load_weight_history(cfg))
    # A wild future that a look-ahead would notice.
    append_trades(path, [trade(at(cut + timedelta(days=d), 12), s, 0.5 if s == STRATEGIES[0] else -0.3)
                         for d in range(1, 12) for s in STRATEGIES])
    after = perf.build_replay(cfg, AS_OF, perf.load_weight_history(cfg))
    n = before.size
    for name in perf.PORTFOLIOS:
        assert np.array_equal(before.weights[name], after.weights[name][:n]), name
        assert np.array_equal(before.portfolio_returns(name), after.portfolio_returns(name)[:n]), name


# ------------------------------------------------------------------------------------------------ not enough data


def assert_no_figures_anywhere(doc: dict) -> None:
    for win in doc["windows"].values():
        assert win["status"] == perf.NOT_ENOUGH_DATA and win["reason"]
        assert "portfolios" not in win


def test_empty_history_gives_not_enough_data_entries_and_no_plots(cfg: Config, capsys: pytest.CaptureFixture) -> None:
    stale_plot = perf.plot_paths(cfg)["equity_curves"]
    stale_plot.parent.mkdir(parents=True)
    stale_plot.write_bytes(b"old")
    assert perf.main(["--report"]) == 0
    doc = strict_load(perf.report_path(cfg))
    assert doc["status"] == perf.NOT_ENOUGH_DATA and doc["producer"] == "performance_tracker"
    assert_no_figures_anywhere(doc)
    assert doc["plots"]["status"] == perf.NOT_ENOUGH_DATA
    assert not stale_plot.exists()  # a plot of an earlier report must not sit next to this one
    assert perf.NOT_ENOUGH_DATA in capsys.readouterr().out


def test_one_day_of_history_is_not_enough(cfg: Config) -> None:
    append_trades(cfg.state_dir / "pnl_history.csv", [trade(at(AS_OF, 10), s, 0.01) for s in STRATEGIES])
    doc = perf.write_report(cfg, AS_OF, now=NOW).document
    assert_no_figures_anywhere(doc)
    assert "performance.min_days" in doc["windows"]["7d"]["reason"]
    strict_load(perf.report_path(cfg))


def test_a_window_without_trades_and_undefined_figures_are_said_not_nan(cfg: Config) -> None:
    # Trades on days 0-9 only, every one the same return: the 7d window is empty, Sharpe/Sortino undefined.
    rows = [trade(at(FIRST_DAY + timedelta(days=d), 12), s, 0.01) for d in range(10) for s in STRATEGIES[:2]]
    append_trades(cfg.state_dir / "pnl_history.csv", rows)
    doc = perf.write_report(cfg, AS_OF, now=NOW, with_plots=False).document
    week = doc["windows"]["7d"]
    assert (week["status"], week["reason"], week["days"]) == (perf.NOT_ENOUGH_DATA, "no trades closed in the window", 7)
    full = doc["windows"]["all"]
    single = full["single_strategies"]
    assert single[STRATEGIES[0]]["sortino_ratio"] is None  # no losing day
    assert single[STRATEGIES[5]]["status"] == perf.NOT_ENOUGH_DATA
    assert full["portfolios"]["equal_weight"]["total_return"] == pytest.approx(1.0025**10 - 1)
    strict_load(perf.report_path(cfg))


# ------------------------------------------------------------------------------------------------ plots


def colored_share(path: Path) -> float:
    """Share of the image's pixels in a clear colour (not white, grey or black: axes and text are not)."""
    pixels = mpimg.imread(io.BytesIO(path.read_bytes()), format="png")[..., :3]
    spread = pixels.max(axis=2) - pixels.min(axis=2)
    return float((spread > 0.25).mean())


def test_plots_are_written_as_real_pngs(cfg: Config, history: object) -> None:
    result = perf.write_report(cfg, AS_OF, now=NOW)
    assert set(result.plots) == {"equity_curves", "weights", "drawdowns"}
    for kind, path in result.plots.items():
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.parent == perf.report_path(cfg).parent
        image = mpimg.imread(io.BytesIO(data), format="png")
        assert image.shape[:2] == (550, 1100), kind
        # Curves are drawn (coloured lines over a fair part of the canvas), the stacked area fills most of it.
        assert colored_share(path) > (0.3 if kind == "weights" else 0.005), kind
    assert result.document["plots"]["weights"] == "rl_performance_weights.png"


def test_plots_show_what_they_are_about(cfg: Config, history: object, monkeypatch: pytest.MonkeyPatch) -> None:
    _, replay, weights = perf.build_report(cfg, AS_OF, NOW)
    seen: dict[str, list[str]] = {}
    original = perf.plots._to_png

    def capture(fig: Any) -> bytes:
        ax = fig.axes[0]
        legend = ax.get_legend()
        seen[ax.get_title()] = [ax.get_xlabel(), ax.get_ylabel(), *(t.get_text() for t in legend.get_texts())]
        return original(fig)

    monkeypatch.setattr(perf.plots, "_to_png", capture)
    perf.render_plots(replay, weights, AS_OF)
    span = f"{FIRST_DAY} to {AS_OF}"
    equity, area, drawdowns = (seen[f"Equity: allocated vs baselines, {span}"],
                               seen[f"Weights in force (daily), {span}"], seen[f"Drawdowns, {span}"])
    for labels in (equity, drawdowns):
        assert labels[0] == "date (UTC)" and set(perf.PORTFOLIOS) <= set(labels)
    assert equity[1] == "equity (start = 1)" and "drawdown" in drawdowns[1]
    assert set(STRATEGIES) <= set(area) and "untracked (equal weights assumed)" in area


# ------------------------------------------------------------------------------------------------ tracking


def test_track_records_the_allocations_and_rl_weights_in_force(cfg: Config) -> None:
    publish_weights(cfg.runtime_dir / "allocations_override.json", "weights_bridge", W_A, source="rl",
                    fallback_reasons={}, input_ages_s={"rl": 3.0})
    publish_weights(cfg.runtime_dir / "rl_strategy_weights.json", "rl_inference", W_B, model_version="v7")
    rec = perf.track_weights(cfg)
    assert rec["source"] == "rl" and rec["weights"] == pytest.approx(W_A)
    assert rec["allocations"]["status"] == "ok" and rec["allocations"]["input_ages_s"] == {"rl": 3.0}
    assert rec["rl"]["status"] == "ok" and rec["rl"]["weights"] == pytest.approx(W_B)
    assert rec["rl"]["model_version"] == "v7"
    history = perf.load_weight_history(cfg)
    assert history.size == 1 and history.sources == ["rl"]
    assert history.weights[0] == pytest.approx(list(W_A.values()))


def test_track_without_allocations_records_what_the_trader_uses(cfg: Config) -> None:
    cfg.runtime_dir.mkdir(parents=True)
    (cfg.runtime_dir / "rl_strategy_weights.json").write_text('{"weights": {"turtle_trading": NaN}}')
    rec = perf.track_weights(cfg)
    assert rec["source"] == "equal" and rec["weights"] == {s: 1 / 8 for s in STRATEGIES}
    assert rec["allocations"]["status"] == "absent"
    assert rec["rl"]["status"] == "invalid" and "rl_strategy_weights.json" in rec["rl"]["reason"]


def test_weight_history_stays_bounded(cfg: Config) -> None:
    cfg = replace_section(cfg, "performance", history_max_lines=4)
    for _ in range(9):
        perf.track_weights(cfg)
    lines = perf.weight_history_path(cfg).read_text().splitlines()
    assert 1 <= len(lines) <= 4


def test_track_command_prints_the_source(cfg: Config, capsys: pytest.CaptureFixture) -> None:
    assert perf.main(["--track"]) == 0
    assert "recorded weights from equal" in capsys.readouterr().out
    assert perf.load_weight_history(cfg).size == 1


# ------------------------------------------------------------------------------------------------ training log


def test_training_log_latest_records_with_nan_losses_sanitized(cfg: Config, history: object) -> None:
    runs = [{"when": f"2024-03-{d:02d}T00:00:00Z", "episodes": 100, "mean_reward": 0.1 * d,
             "losses": {"policy": float("nan") if d == 9 else 0.5, "value": 1.0}} for d in range(1, 10)]
    perf.training_log_path(cfg).write_text(json.dumps({"records": runs}))  # json.dumps writes NaN as is
    doc = strict_load(perf.write_report(cfg, AS_OF, now=NOW, with_plots=False).path)
    training = doc["training"]
    assert training["status"] == "ok" and training["total_records"] == 9
    assert [r["when"][:10] for r in training["records"]] == [f"2024-03-0{d}" for d in range(5, 10)]
    assert training["records"][-1]["losses"] == {"policy": None, "value": 1.0}


@pytest.mark.parametrize(("text", "status"), [
    (None, "absent"),
    ("{not json", "invalid"),
    ('{"note": "no list here"}', "invalid"),
    ('[{"episodes": 5}, 3]', "ok"),
])
def test_training_log_is_read_tolerantly(cfg: Config, text: str | None, status: str) -> None:
    if text is not None:
        cfg.state_dir.mkdir(parents=True)
        perf.training_log_path(cfg).write_text(text)
    result = perf.read_training_log(cfg, limit=5)
    assert result["status"] == status
    if status == "ok":
        assert result["records"] == [{"episodes": 5}] and result["skipped"] == 1
    else:
        assert result["records"] == [] and "rl_training_log.json" in result["reason"]


# ------------------------------------------------------------------------------------------------ config


@pytest.mark.parametrize(("section", "key"), [
    ({"windows": ["7d", "month"]}, "performance.windows"),
    ({"windows": []}, "performance.windows"),
    ({"report_cron": "5 * * *"}, "performance.report_cron"),
    ({"strategy_lab_cron": "99 * * * *"}, "performance.strategy_lab_cron"),
    ({"track_interval_s": 0.0}, "performance.track_interval_s"),
    ({"min_days": 0}, "performance.min_days"),
])
def test_bad_performance_config_names_the_key(section: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        perf.check_performance_config(config_from_dict({"performance": section}))


def test_report_command_prints_a_summary(cfg: Config, history: object, capsys: pytest.CaptureFixture) -> None:
    assert perf.main(["--report", "--as-of", AS_OF.isoformat(), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert f"as of {AS_OF}" in out and "7d (2024-03-25 to 2024-03-31" in out
    assert "allocated" in out and "sources in force: portfolio_optimizer 100%" in out
    doc = strict_load(perf.report_path(cfg))
    doc["windows"]["all"]["source_shares"] = {"rl": 0.996, "equal": 0.004}
    assert "sources in force: rl 100%, equal <1%" in perf.summary_text(doc)  # named, but not as "0%"
    assert strict_load(perf.report_path(cfg))["plots"] == {"status": "disabled"}


def test_history_without_a_required_column_exits_2(cfg: Config, capsys: pytest.CaptureFixture) -> None:
    cfg.state_dir.mkdir(parents=True)
    (cfg.state_dir / "pnl_history.csv").write_text("closed_at,strategy,pnl\n2024-03-01T00:00:00Z,vix_strategy,1\n")
    assert perf.main(["--report"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "opened_at" in err and "pnl_history.csv" in err


def test_bad_config_file_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text('[performance]\nwindows = ["7 days"]\n')
    assert perf.main(["--report", "--config", str(toml)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "performance.windows" in err and "7 days" in err


def test_scheduler_jobs_have_explicit_ids_and_safe_defaults(cfg: Config) -> None:
    scheduler = perf.build_scheduler(cfg, DaemonContext("performance_tracker", cfg))
    scheduler.start(paused=True)
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == set(perf.JOB_IDS)
        for job in jobs.values():
            assert job.coalesce is True and job.max_instances == 1
            assert job.misfire_grace_time == cfg.performance.misfire_grace_s >= 60
    finally:
        scheduler.shutdown(wait=False)


def test_a_failing_job_is_logged_in_the_heartbeat_and_the_next_one_recovers(cfg: Config) -> None:
    ctx = DaemonContext("performance_tracker", cfg)

    def broken() -> None:
        raise OSError("disk full")

    assert perf.run_guarded(ctx, "report", broken) is False
    beat = json.loads(ctx.heartbeat_path.read_text())
    assert beat["state"] == "error" and "disk full" in beat["last_error"]
    assert perf.run_guarded(ctx, "track", lambda: perf.track_weights(cfg)) is True
    beat = json.loads(ctx.heartbeat_path.read_text())
    assert beat["state"] == "running" and "last_track_at" in beat


# ------------------------------------------------------------------------------------------------ scale


def test_a_year_of_hourly_trades_for_8_strategies_is_reported_correctly(cfg: Config) -> None:
    # Correctness on a long history only; its speed is measured by scripts/bench_report.py.
    rng = np.random.default_rng(11)
    hours = 365 * 24
    first = AS_OF - timedelta(days=364)
    pnl = np.round(rng.normal(0.0001, 0.003, size=(hours, 8)), 6)
    rows = [trade(at(first, h + 0.5), s, float(pnl[h, k])) for h in range(hours) for k, s in enumerate(STRATEGIES)]
    append_trades(cfg.state_dir / "pnl_history.csv", rows)
    weights = rng.dirichlet(np.ones(8), size=hours // 4)
    write_history_records(cfg, [record(at(first, 4 * i), dict(zip(STRATEGIES, w.tolist(), strict=True)), "rl")
                                for i, w in enumerate(weights)])
    result = perf.write_report(cfg, AS_OF, now=NOW)
    daily = pnl.reshape(365, 24, 8).sum(axis=1)
    full = result.document["windows"]["all"]
    assert full["days"] == 365 and full["trades"] == hours * 8
    assert full["portfolios"]["equal_weight"]["total_return"] == pytest.approx(np.prod(1 + daily.mean(axis=1)) - 1)
    # A record every 4 hours from midnight: each day's weights are the mean of its 6 records.
    allocated = (daily * weights.reshape(365, 6, 8).mean(axis=1)).sum(axis=1)
    assert_figures(full["portfolios"]["allocated"], numpy_figures(allocated, np.ones(365, dtype=bool)))
    month = result.document["windows"]["30d"]["portfolios"]["allocated"]
    assert_figures(month, numpy_figures(allocated[-30:], np.ones(30, dtype=bool)))
    assert full["source_shares"] == {"rl": pytest.approx(1.0)}
    assert len(result.plots) == 3


# ------------------------------------------------------------------------------------------------ daemon


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
    history = perf.weight_history_path(cfg)
    expected = [cfg.runtime_dir / "portfolio_optimizer_weights.json", cfg.runtime_dir / "strategy_lab_weights.json",
                perf.report_path(cfg)]
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


def test_report_defaults_to_the_day_of_the_newest_trade(cfg: Config) -> None:
    # A replay's trades are dated in the simulated past: a report ending today would see none of them.
    append_trades(cfg.state_dir / "pnl_history.csv", synthetic_trades(seed=5, gap=range(0)))
    payload, replay, _ = perf.build_report(cfg, now=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert payload["as_of"] == AS_OF.isoformat()
    assert replay.days[-1].date() == AS_OF
    assert payload["windows"]["7d"]["status"] != perf.NOT_ENOUGH_DATA


def test_unpublished_fallback_sources_are_retried_until_they_publish(cfg: Config) -> None:
    cfg = baseline_cfg(cfg)
    ctx = DaemonContext("performance_tracker", cfg)
    perf.unpublished_sources_job(cfg, ctx)  # empty history: nothing to publish yet
    assert not po.output_path(cfg).exists() and not lab.output_path(cfg).exists()
    append_trades(cfg.state_dir / "pnl_history.csv", synthetic_trades(seed=3, gap=range(0)))
    perf.unpublished_sources_job(cfg, ctx)
    first = po.output_path(cfg).stat().st_ino  # an atomic rewrite would replace the file (a new inode)
    assert lab.output_path(cfg).exists()
    perf.unpublished_sources_job(cfg, ctx)  # published once: left to their own schedules
    assert po.output_path(cfg).stat().st_ino == first


def test_records_are_placed_at_the_traders_clock_in_a_replay(cfg: Config) -> None:
    # A replay trades in the market's past: weights tracked now are in force for the candle just processed.
    publish_json(cfg.runtime_dir / "trader_status.json", "paper_trader",
                 {"last_candle": {"timestamp": 1_704_067_200_000, "close": 1.0}})  # 2024-01-01T00:00Z, 1h candles
    publish_weights(cfg.runtime_dir / "allocations_override.json", "weights_bridge",
                    {s: (0.3 if s == STRATEGIES[0] else 0.1) for s in STRATEGIES}, source="rl",
                    fallback_reasons={})
    record = perf.track_weights(cfg)
    assert record["market_at"] == "2024-01-01T01:00:00Z" and record["at"] > "2025"
    history = perf.load_weight_history(cfg)
    assert history.times.tolist() == [datetime(2024, 1, 1, 1, tzinfo=timezone.utc).timestamp()]
    (cfg.runtime_dir / "trader_status.json").unlink()
    assert "market_at" not in perf.track_weights(cfg)  # no trader: the wall clock only
