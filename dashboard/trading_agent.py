"""The trading agent panel: training progress, shadow decisions on the price (actions as markers, with their
confidence), the rollout stage, capital share and risk guard, and the benchmark against Buy & Hold, MA
crossover and Random with the gate's verdict."""

from __future__ import annotations

from typing import Any

from core.config import Config
from core.contracts.pnl_history import history_path, read_history
from core.contracts.rollout import BOOK, RiskGuard, book_risk, read_rollout, read_rollout_document
from core.contracts.shadow_decisions import recent_decisions
from core.contracts.shadow_status import read_status
from core.contracts.trader_status import read_trader_status
from core.contracts.trading_reports import read_benchmark, read_progress_doc, read_retrain
from core.errors import DataError
from dashboard.common import Panel, empty, file_state, number

NO_AGENT = ("no trading model yet: run `python ai/shadow_ppo.py train` (the shadow daemon, "
            "`python ai/shadow_ppo.py run`, trains a bootstrap model on its own)")
NO_DECISIONS = "no shadow decisions yet: the shadow daemon (`python ai/shadow_ppo.py run`) decides once per candle"
NO_BENCHMARK = "no benchmark yet: run `python ai/shadow_ppo.py benchmark`"
NO_ROLLOUT = ("Stage 0: Shadow Mode (no rollout configured): give it capital with "
              "`python ai/shadow_ppo.py rollout --capital-percentage 1` once the benchmark passes its gate")
BENCHMARK_ROWS = (("rl_v3_metrics", "Trading agent"), ("buy_hold_metrics", "Buy & Hold"),
                  ("moving_avg_metrics", "MA crossover"), ("random_metrics", "Random"))


def decisions_chart(cfg: Config) -> dict[str, Any]:
    """The recent decisions (the log's tail): candle time, close, action, confidence and exposure."""
    rows = [d for d in recent_decisions(cfg) if number(d.get("close")) is not None]
    if not rows:
        return empty(NO_DECISIONS)
    return {"empty": False, "time": [d.get("candle_time") for d in rows], "close": [d["close"] for d in rows],
            "action": [d.get("action_name") for d in rows], "confidence": [number(d.get("confidence")) for d in rows],
            "exposure": [number(d.get("exposure")) for d in rows], "shadow_mode": rows[-1].get("shadow_mode")}


def risk_state(cfg: Config) -> dict[str, Any]:
    """The rollout in force, and the risk guard's measurement of the live book (read only: never trips it)."""
    doc, reason = read_rollout_document(cfg)
    rollout = read_rollout(cfg) if doc is not None else None
    if rollout is None:
        return {"configured": False, "stage": NO_ROLLOUT, "capital_percentage": 0.0,
                "reason": reason or None}
    guard: dict[str, Any] = {"enabled": rollout.enable_risk_guard, "tripped": rollout.tripped}
    status = read_trader_status(cfg)
    equity = status.equity if status is not None else None
    if rollout.live and rollout.enable_risk_guard and equity:
        capital = equity * rollout.capital_percentage / 100.0
        try:
            trades = read_history(history_path(cfg)).trades
        except DataError as exc:
            guard["error"] = str(exc)
        else:
            daily, drawdown = book_risk(trades, capital, skip=rollout.book_trades_before)
            verdict = RiskGuard.from_config(cfg).check(daily, capital, drawdown)
            guard.update(verdict.as_dict(), capital=capital, limits={
                "max_daily_loss_pct": cfg.trading_agent.max_daily_loss_pct,
                "max_drawdown_pct": cfg.trading_agent.max_drawdown_pct})
    return {"configured": True, "stage": rollout.stage, "stage_index": rollout.stage_index,
            "capital_percentage": rollout.capital_percentage, "max_position_size": rollout.max_position_size,
            "configured_at": rollout.configured_at, "live": rollout.live, "book": BOOK, "risk_guard": guard}


def benchmark(cfg: Config) -> dict[str, Any]:
    result = read_benchmark(cfg)
    if not result.ok or result.data is None:
        reason = "" if result.status == "absent" else f" ({result.reason})"
        return empty(NO_BENCHMARK + reason)
    doc = result.data
    raw_gate = doc.get("gate")
    gate: dict[str, Any] = raw_gate if isinstance(raw_gate, dict) else {}
    return {"empty": False, "generated_at": doc.get("generated_at"), "winner": doc.get("winner"),
            "in_sample": doc.get("in_sample"), "test_window": doc.get("test_window"),
            "rows": [{"name": label, **(doc.get(key) or {})} for key, label in BENCHMARK_ROWS],
            "gate": [{"criterion": k, **v} for k, v in gate.items() if isinstance(v, dict)],
            "gate_passed": gate.get("passed") is True}


def trading_agent_panel(cfg: Config) -> Panel:
    status = read_status(cfg)
    progress = read_progress_doc(cfg)
    doc = status.data or {}
    decisions = decisions_chart(cfg)
    if not status.ok and not progress.ok and decisions.get("empty"):
        return {**empty(NO_AGENT), "rollout": risk_state(cfg), "benchmark": benchmark(cfg)}
    retrain = read_retrain(cfg)
    return {
        "empty": False,
        "status": {k: doc.get(k) for k in ("active", "shadow_mode", "model_loaded", "model_error", "trained_at",
                                           "trained_range", "symbol", "timeframe", "experiences_collected",
                                           "last_decision_at", "last_decision", "daemon")} | file_state(status),
        "progress": (progress.data or {}) | {"file": file_state(progress)} if progress.ok else None,
        "decisions": decisions,
        "rollout": risk_state(cfg),
        "benchmark": benchmark(cfg),
        "retrain": retrain.data if retrain.ok else None,
    }
