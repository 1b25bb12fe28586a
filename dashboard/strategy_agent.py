"""The strategy-weight agent panel: the model in force, the last trainings (from the training log), their
validation on held-out periods, and when the next training is due (cron and the new-trades trigger).

The new-trades trigger is the trainer daemon's own rule (``StrategyAgentConfig.retrain_reason``) applied to the
files here, so the dashboard does not load PyTorch: trades of the 8 strategies now against the trades of the last
completed training.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from core.config import STRATEGIES, Config
from core.contracts.allocation_model import read_model_config
from core.contracts.training_log import read_training_log, read_training_records
from core.contracts.weights import read_weights, rl_weights_path
from core.jobs import next_runs
from dashboard.common import Panel, empty, file_state

NO_MODEL = ("no model yet: run `python ai/rl_trainer.py --train` (the trainer daemon trains one on its own once "
            "{min_trades} trades have closed)")
RECORDS = 10
"""Latest trainings shown."""


def _training_row(record: dict[str, Any]) -> dict[str, Any]:
    holdout = record.get("holdout") or {}
    return {k: record.get(k) for k in ("started_at", "finished_at", "trigger", "model_version", "trades",
                                       "episodes", "total_steps", "mean_episode_reward", "completed", "promoted",
                                       "reason", "duration_s")} | {
        "losses": record.get("losses"),
        "holdout_periods": holdout.get("periods"),
        "holdout_model": holdout.get("model"),
        "holdout_equal_weights": holdout.get("equal_weights"),
    }


def retrain_schedule(cfg: Config, trades: pd.DataFrame) -> dict[str, Any]:
    """When the next training comes: the cron's next run and the new-trades trigger's progress."""
    acfg = cfg.strategy_agent
    cron = next((job for job in next_runs(cfg) if job["name"] == "trainer"), None)
    now = int(trades["strategy"].isin(STRATEGIES).sum()) if not trades.empty else 0
    last = next((r for r in reversed(read_training_records(cfg)) if r.get("completed")), None)
    raw = last.get("trades") if last else None
    seen = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    new = now if seen is None else (now - seen if now >= seen else now)  # a shorter history: all of it is new
    return {"cron": cron, "due_now": acfg.retrain_reason(now, seen), "trades_now": now, "trades_at_last_training": seen,
            "new_trades": new, "retrain_after_new_trades": cfg.strategy_agent.retrain_after_new_trades,
            "min_trades": cfg.strategy_agent.min_trades}


def strategy_agent_panel(cfg: Config, trades: pd.DataFrame) -> Panel:
    model = read_model_config(cfg)
    log_view = read_training_log(cfg, RECORDS)
    records = [_training_row(r) for r in log_view.get("records", []) if isinstance(r, dict)]
    schedule = retrain_schedule(cfg, trades)
    message = NO_MODEL.format(min_trades=cfg.strategy_agent.min_trades)
    if not model.ok and not records:
        return {**empty(message), "schedule": schedule}
    doc = model.data or {}
    training = doc.get("training") or {}
    rl = read_weights(rl_weights_path(cfg))
    rl_doc = rl.data or {}
    return {
        "empty": False,
        "model": {"version": doc.get("model_version"), "saved_at": doc.get("saved_at"),
                  "trained_at": training.get("trained_at"), "episodes": training.get("episodes"),
                  "total_steps": training.get("total_steps"), "n_features": doc.get("n_features"),
                  "training_data": doc.get("training_data"), **file_state(model)} if model.ok else None,
        "model_message": None if model.ok else message,
        "log": {"status": log_view.get("status"), "reason": log_view.get("reason"),
                "total_records": log_view.get("total_records", 0)},
        "trainings": records[::-1],
        "last": records[-1] if records else None,
        "published": {"model_version": rl_doc.get("model_version"), "decision_time": rl_doc.get("decision_time"),
                      **file_state(rl)},
        "schedule": schedule,
    }
