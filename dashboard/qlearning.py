"""The Q-learning panel: the monitor's figures and health checks, epsilon, table sizes, the recent rewards and
the tuning advice (:mod:`ai.tabular.health`, :mod:`ai.tabular.tuning`), read only."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pandas as pd

from ai.tabular.actions import risk_adjusted
from ai.tabular.health import collect_snapshot, health_checks
from ai.tabular.tuning import recommendations_for
from core.config import STRATEGIES, Config
from core.contracts.qlearning_policy import policy_document, read_policy
from core.errors import FatalError
from dashboard.common import Panel, clean, empty

NO_TABLES = ("no Q-tables yet: the Q-learning daemon learns from each closed trade; start it with "
             "`python ai/qlearning.py --loop` or learn once with `python ai/qlearning.py --once`")
AGENT_KEYS = ("found", "error", "states", "pairs", "updates", "epsilon", "stage", "size_bytes", "q_min", "q_max",
              "q_mean", "avg_actions_per_state", "alpha", "gamma", "reward_mean", "reward_std", "rewards_seen",
              "recent_rewards", "td_error_ema")


def _agent(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: figures.get(k) for k in AGENT_KEYS if k in figures}


RECENT_TRADES = 50


def recent_rewards(cfg: Config, trades: pd.DataFrame) -> dict[str, Any]:
    """The reward the meta agent learned from each of the latest trades: its strategy's action at normal
    aggressiveness, ``reward_scale * (x - risk_aversion / 2 * x**2)`` of the trade's return (the agents' rule)."""
    qcfg = cfg.qlearning
    recent = trades[trades["strategy"].isin(STRATEGIES)].tail(RECENT_TRADES) if not trades.empty else trades
    return {"time": [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in recent["closed_at"]] if len(recent) else [],
            "strategy": [str(s) for s in recent["strategy"]] if len(recent) else [],
            "reward": [risk_adjusted(float(x), qcfg.reward_scale, qcfg.risk_aversion) for x in recent["pnl_pct"]]
            if len(recent) else []}


def advice(cfg: Config) -> dict[str, Any]:
    try:
        recs = recommendations_for(cfg)
    except FatalError as exc:
        return {"error": str(exc), "agents": []}
    return {"error": None, "agents": [asdict(r) | {"changes": r.changes} for r in recs]}


def qlearning_panel(cfg: Config, trades: pd.DataFrame) -> Panel:
    snapshot = collect_snapshot(cfg)
    agents = snapshot["agents"]
    if not any(a.get("found") for a in agents.values()):
        return {**empty(NO_TABLES), "daemon": snapshot["daemon"]}
    policy = policy_document(read_policy(cfg))
    return clean({
        "empty": False,
        "timestamp": snapshot["timestamp"],
        "agents": {name: _agent(a) for name, a in agents.items()},
        "overall": snapshot["overall"],
        "daemon": snapshot["daemon"],
        "health": health_checks(cfg, snapshot, None),
        "advice": advice(cfg),
        "recent_rewards": recent_rewards(cfg, trades),
        "policy": {"sizing_multiplier": policy.get("sizing_multiplier"), "apply_sizing": policy.get("apply_sizing"),
                   "state_key": policy.get("state_key"), "generated_at": policy.get("generated_at")}
        if policy is not None else None,
    })
