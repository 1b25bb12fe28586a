"""The JSON routes over a home made by a short real run of the suite, checked against the files read here
independently (csv and json of the standard library), and the explained empty states of a fresh home."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agents.weights_bridge import main as bridge_main
from core.atomic import atomic_write_json, utc_now_iso
from core.config import STRATEGIES, Config
from core.contracts.weights import optimizer_weights_path, publish_weights
from dashboard.app import PANELS, create_app
from tests.dashboard.support import SuiteHome


def history_rows(home: Path) -> list[dict[str, str]]:
    with open(home / "state" / "pnl_history.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def answer(client: TestClient, route: str) -> Any:
    response = client.get(route)
    assert response.status_code == 200, response.text
    assert "NaN" not in response.text and "Infinity" not in response.text
    return response.json()


@pytest.fixture
def client(suite_cfg: Config) -> TestClient:
    return TestClient(create_app(suite_cfg))


@pytest.fixture
def fresh_client(fresh_cfg: Config) -> TestClient:
    return TestClient(create_app(fresh_cfg))


@pytest.mark.slow
def test_loop_shows_the_allocations_file(client: TestClient, suite_cfg: Config) -> None:
    doc = json.loads((suite_cfg.runtime_dir / "allocations_override.json").read_text())
    loop = answer(client, "/api/loop")
    assert loop["source"] == doc["source"] == "rl"
    assert [w["strategy"] for w in loop["weights"]] == list(STRATEGIES)
    assert [w["weight"] for w in loop["weights"]] == [doc["weights"][s] for s in STRATEGIES]
    assert loop["weights_sum"] == pytest.approx(1.0, abs=1e-9)
    assert loop["passed_over"] == []  # RL won: nothing above it was passed over
    assert {s["source"]: s["status"] for s in loop["sources"]} == {
        "rl": "ok", "portfolio_optimizer": "ok", "strategy_lab": "ok"}


@pytest.mark.slow
def test_trader_curve_drawdown_and_strategy_pnl_match_the_history(client: TestClient, suite_home: SuiteHome) -> None:
    rows = history_rows(suite_home.home)
    trader = answer(client, "/api/trader")
    assert trader["trades"] == len(rows) > 50
    equity = [float(r["equity_after"]) for r in rows]
    curve = trader["curve"]
    assert curve["equity"][-1] == pytest.approx(equity[-1]) and curve["equity"][0] == pytest.approx(equity[0])
    peak, worst = -math.inf, 0.0
    for value in equity:
        peak = max(peak, value)
        worst = min(worst, value / peak - 1.0)
    assert min(curve["drawdown"]) == pytest.approx(worst)
    pnl: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for r in rows:
        pnl[r["strategy"]] += float(r["pnl"])
        count[r["strategy"]] += 1
    got = {s["strategy"]: s for s in trader["strategies"]}
    assert set(got) == set(pnl)
    for name, total in pnl.items():
        assert got[name]["pnl"] == pytest.approx(total) and got[name]["trades"] == count[name]
    status = json.loads((suite_home.home / "runtime" / "trader_status.json").read_text())
    assert trader["status"]["equity"] == pytest.approx(status["equity"])
    assert len(trader["positions"]) == sum(1 for p in status["positions"].values() if p)


@pytest.mark.slow
def test_closed_trades_page_newest_first(client: TestClient, suite_home: SuiteHome) -> None:
    rows = history_rows(suite_home.home)
    first = answer(client, "/api/trades?page=1&size=10")
    assert first["total"] == len(rows) and first["pages"] == -(-len(rows) // 10)
    assert [r["equity_after"] for r in first["rows"]] == pytest.approx(
        [float(r["equity_after"]) for r in rows[::-1][:10]])
    second = answer(client, "/api/trades?page=2&size=25")
    assert [r["closed_at"] for r in second["rows"]] == [r["closed_at"] for r in rows[::-1][25:50]]
    last = answer(client, f"/api/trades?page={10**6}&size=100")  # past the end: the last page
    assert last["page"] == last["pages"] and len(last["rows"]) == len(rows) - 100 * (last["pages"] - 1)
    assert client.get("/api/trades?size=7").status_code == 422
    assert client.get("/api/trades?page=0").status_code == 422


@pytest.mark.slow
def test_performance_weights_over_time_and_report(client: TestClient, suite_home: SuiteHome) -> None:
    lines = [json.loads(line) for line in
             (suite_home.home / "state" / "rl_weight_history.jsonl").read_text().splitlines() if line.strip()]
    perf = answer(client, "/api/performance")
    weights = perf["weights_over_time"]
    assert weights["records"] == len(lines) == 2
    assert weights["source"] == [rec["source"] for rec in lines] == ["portfolio_optimizer", "rl"]
    for i, rec in enumerate(lines):
        assert sum(weights["weights"][s][i] for s in STRATEGIES) == pytest.approx(1.0)
        assert weights["weights"]["turtle_trading"][i] == pytest.approx(rec["weights"]["turtle_trading"])
    report = json.loads((suite_home.home / "state" / "rl_performance_report.json").read_text())
    got = perf["report"]
    assert got["as_of"] == report["as_of"]
    table = {(m["window"], m["portfolio"]): m for m in got["metrics"]}
    for label, window in report["windows"].items():
        if window["status"] != "ok":
            assert table[(label, None)]["reason"] == window["reason"]
            continue
        for name, figures in window["portfolios"].items():
            assert table[(label, name)]["sharpe_ratio"] == figures["sharpe_ratio"]
            assert table[(label, name)]["total_return"] == figures["total_return"]
    curves = got["curves"]
    assert set(curves["equity"]) == {"allocated", "equal_weight", "portfolio_optimizer", "strategy_lab"}
    assert all(len(series) == len(curves["time"]) > 1 for series in curves["equity"].values())
    assert curves["time"][-1] == report["as_of"]


@pytest.mark.slow
def test_strategy_agent_model_training_and_schedule(client: TestClient, suite_home: SuiteHome) -> None:
    log = json.loads((suite_home.home / "state" / "rl_training_log.json").read_text())["records"]
    panel = answer(client, "/api/strategy-agent")
    assert panel["model"]["version"] == log[-1]["model_version"] == 1
    assert panel["last"]["promoted"] is True and panel["last"]["holdout_periods"] == log[-1]["holdout"]["periods"]
    schedule = panel["schedule"]
    trades_now = sum(1 for r in history_rows(suite_home.home) if r["strategy"] in STRATEGIES)
    assert schedule["trades_now"] == trades_now
    assert schedule["new_trades"] == trades_now - log[-1]["trades"]
    assert schedule["cron"]["cron"] == "0 3 * * 0"
    new = trades_now - log[-1]["trades"]
    assert new >= 50  # the second part of the replay closed more than the trigger's 50 trades
    assert schedule["due_now"] == f"{new} new trades since the last training"


@pytest.mark.slow
def test_trading_agent_decisions_rollout_and_benchmark(client: TestClient, suite_home: SuiteHome) -> None:
    decisions = [json.loads(line) for line in
                 (suite_home.home / "runtime" / "rl_v3_decisions.jsonl").read_text().splitlines() if line.strip()]
    panel = answer(client, "/api/trading-agent")
    assert panel["decisions"]["close"] == [d["close"] for d in decisions]
    assert panel["decisions"]["action"] == [d["action_name"] for d in decisions]
    assert panel["rollout"]["configured"] is False and panel["rollout"]["capital_percentage"] == 0.0
    assert panel["progress"]["progress"] == 100.0
    bench = json.loads((suite_home.home / "runtime" / "rl_v3_benchmark.json").read_text())
    rows = {r["name"]: r for r in panel["benchmark"]["rows"]}
    assert rows["Buy & Hold"]["sharpe_ratio"] == bench["buy_hold_metrics"]["sharpe_ratio"]
    assert panel["benchmark"]["gate_passed"] is (bench["gate"]["passed"] is True)


@pytest.mark.slow
def test_qlearning_figures_match_the_tables(client: TestClient, suite_home: SuiteHome) -> None:
    panel = answer(client, "/api/qlearning")
    for name in ("meta", "sizing"):
        table = json.loads((suite_home.home / "state" / "qlearning" / f"{name}_agent.json").read_text())
        assert panel["agents"][name]["updates"] == table["updates"] > 0
        assert panel["agents"][name]["epsilon"] == pytest.approx(table["epsilon"])
        assert panel["agents"][name]["states"] == len(table["table"])
    assert [h["check"] for h in panel["health"]] == ["growth", "exploration", "stage"]
    assert {a["agent"] for a in panel["advice"]["agents"]} == {"meta", "sizing"}
    rewards = panel["recent_rewards"]
    rows = [r for r in history_rows(suite_home.home) if r["strategy"] in STRATEGIES][-50:]
    assert rewards["strategy"] == [r["strategy"] for r in rows]
    x = float(rows[-1]["pnl_pct"])  # the agents' reward: reward_scale * (x - risk_aversion / 2 * x**2)
    assert rewards["reward"][-1] == pytest.approx(100.0 * (x - 2.5 * x * x))


@pytest.mark.slow
def test_health_lists_each_daemon_that_ran(client: TestClient) -> None:
    health = answer(client, "/api/health")
    # The trader's replay and the shadow daemon ran as daemons (heartbeats); the others ran as one-shot commands.
    assert [d["name"] for d in health["daemons"]] == ["paper_trader", "shadow_ppo"]
    assert health["running"] == 0 and health["supervisor_pid"] is None
    for row in health["daemons"]:
        assert row["running"] is False and row["state"] == "stopped" and not row["stale"]


@pytest.mark.slow
def test_reading_leaves_every_file_as_it_was(client: TestClient, suite_home: SuiteHome) -> None:
    before = {p: p.read_bytes() for p in suite_home.home.rglob("*") if p.is_file() and p.suffix != ".lock"}
    for panel in PANELS:
        answer(client, f"/api/{panel}")
    answer(client, "/api/trades?page=3&size=50")
    after = {p: p.read_bytes() for p in suite_home.home.rglob("*") if p.is_file() and p.suffix != ".lock"}
    assert after == before


@pytest.mark.parametrize(("panel", "words"), [
    ("health", "bash scripts/start_rl_system.sh"),
    ("loop", "python agents/weights_bridge.py --once"),
    ("trader", "python agents/paper_trader.py --replay"),
    ("strategy-agent", "no model yet: run `python ai/rl_trainer.py --train`"),
    ("trading-agent", "python ai/shadow_ppo.py train"),
    ("qlearning", "python ai/qlearning.py --loop"),
])
def test_a_fresh_home_says_what_to_run(fresh_client: TestClient, panel: str, words: str) -> None:
    doc = answer(fresh_client, f"/api/{panel}")
    assert doc["empty"] is True and words in doc["message"]


def test_a_fresh_home_trades_and_performance(fresh_client: TestClient) -> None:
    trades = answer(fresh_client, "/api/trades")
    assert trades["message"].startswith("no trades yet: the trader has not closed a trade")
    perf = answer(fresh_client, "/api/performance")
    assert "python analytics/rl_performance.py --report" in perf["report"]["message"]
    assert "python analytics/rl_performance.py --loop" in perf["weights_over_time"]["message"]
    bench = answer(fresh_client, "/api/trading-agent")["benchmark"]
    assert bench["message"] == "no benchmark yet: run `python ai/shadow_ppo.py benchmark`"


def test_read_only_and_no_file_path_from_a_request(fresh_client: TestClient) -> None:
    for method in ("post", "put", "delete", "patch"):
        response = getattr(fresh_client, method)("/api/health")
        assert response.status_code == 405
    assert fresh_client.get("/static/..%2F..%2Fcore%2Fconfig%2Fschema.py").status_code == 404
    assert fresh_client.get("/static/index.html").status_code == 404  # only the named files
    assert fresh_client.get("/docs").status_code == 404 and fresh_client.get("/openapi.json").status_code == 404
    script = fresh_client.get("/static/plotly.min.js")
    assert script.status_code == 200 and len(script.content) > 1_000_000


def test_the_page_has_no_inline_script_and_a_strict_policy(fresh_client: TestClient) -> None:
    page = fresh_client.get("/")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "unsafe-eval" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    html = page.text
    assert "<script>" not in html and "onload=" not in html and "style=" not in html
    assert html.count("<script src=") == 2


def test_the_loop_says_why_a_higher_source_was_passed_over(fresh_cfg: Config, fresh_client: TestClient) -> None:
    weights = {s: (0.3 if i == 0 else 0.1) for i, s in enumerate(STRATEGIES)}
    publish_weights(optimizer_weights_path(fresh_cfg), "portfolio_optimizer", weights)
    assert bridge_main(["--once"]) == 0
    loop = answer(fresh_client, "/api/loop")
    assert loop["source"] == "portfolio_optimizer"
    assert loop["passed_over"] == [{"source": "rl", "reason": "rl_strategy_weights.json: file not found"}]
    assert {s["source"]: s["status"] for s in loop["sources"]} == {
        "rl": "absent", "portfolio_optimizer": "ok", "strategy_lab": "absent"}
    assert [w["weight"] for w in loop["weights"]] == pytest.approx([weights[s] for s in STRATEGIES])


def test_health_flags_a_dead_daemon_and_a_stale_heartbeat(fresh_cfg: Config, fresh_client: TestClient) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    runtime = fresh_cfg.runtime_dir
    for name, pid, at in (("paper_trader", dead.pid, utc_now_iso()), ("qlearning", os.getpid(), "2000-01-01T00:00:00Z"),
                          ("weights_bridge", os.getpid(), utc_now_iso())):
        atomic_write_json(runtime / "heartbeats" / f"{name}.json", {
            "schema_version": 1, "generated_at": at, "producer": name, "pid": pid, "state": "running",
            "uptime_s": 5.0})
        (runtime / "pids").mkdir(parents=True, exist_ok=True)
        (runtime / "pids" / f"{name}.pid").write_text(f"{pid}\n")
    rows = {d["name"]: d for d in answer(fresh_client, "/api/health")["daemons"]}
    assert rows["paper_trader"]["state"] == "not running" and rows["paper_trader"]["flagged"]  # killed: no pid
    assert rows["qlearning"]["running"] and rows["qlearning"]["stale"] and rows["qlearning"]["flagged"]
    assert rows["weights_bridge"]["running"] and not rows["weights_bridge"]["flagged"]
    assert rows["weights_bridge"]["uptime_s"] >= 5.0
