"""The report document: not enough data said per window, a year of hourly trades reported correctly, the
report day defaulting to the day of the newest trade, and the training log's latest records copied in."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from analytics.performance.figures import NOT_ENOUGH_DATA
from analytics.performance.report import build_report, write_report
from core.config import STRATEGIES, Config
from core.contracts.performance import report_path
from core.contracts.pnl_history import append_trades
from core.contracts.training_log import read_training_log, training_log_path
from tests.analytics.performance.support import (
    AS_OF,
    NOW,
    assert_figures,
    assert_no_figures_anywhere,
    at,
    numpy_figures,
    record,
    strict_load,
    synthetic_trades,
    trade,
    write_history_records,
)


def test_one_day_of_history_is_not_enough(cfg: Config) -> None:
    append_trades(cfg.state_dir / "pnl_history.csv", [trade(at(AS_OF, 10), s, 0.01) for s in STRATEGIES])
    doc = write_report(cfg, AS_OF, now=NOW).document
    assert_no_figures_anywhere(doc)
    assert "performance.min_days" in doc["windows"]["7d"]["reason"]
    strict_load(report_path(cfg))


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
    result = write_report(cfg, AS_OF, now=NOW)
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


def test_report_defaults_to_the_day_of_the_newest_trade(cfg: Config) -> None:
    # A replay's trades are dated in the simulated past: a report ending today would see none of them.
    append_trades(cfg.state_dir / "pnl_history.csv", synthetic_trades(seed=5, gap=range(0)))
    payload, replay, _ = build_report(cfg, now=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert payload["as_of"] == AS_OF.isoformat()
    assert replay.days[-1].date() == AS_OF
    assert payload["windows"]["7d"]["status"] != NOT_ENOUGH_DATA


def test_training_log_latest_records_with_nan_losses_sanitized(cfg: Config, history: object) -> None:
    runs = [{"when": f"2024-03-{d:02d}T00:00:00Z", "episodes": 100, "mean_reward": 0.1 * d,
             "losses": {"policy": float("nan") if d == 9 else 0.5, "value": 1.0}} for d in range(1, 10)]
    training_log_path(cfg).write_text(json.dumps({"records": runs}))  # json.dumps writes NaN as is
    doc = strict_load(write_report(cfg, AS_OF, now=NOW, with_plots=False).path)
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
        training_log_path(cfg).write_text(text)
    result = read_training_log(cfg, limit=5)
    assert result["status"] == status
    if status == "ok":
        assert result["records"] == [{"episodes": 5}] and result["skipped"] == 1
    else:
        assert result["records"] == [] and "rl_training_log.json" in result["reason"]
