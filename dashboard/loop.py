"""The loop panel: the allocation in force (8 weights), the source that won, why the others were passed over,
and each source file as the bridge would read it now."""

from __future__ import annotations

from core.config import STRATEGIES, Config
from core.contracts.weights import (
    allocations_path,
    lab_weights_path,
    optimizer_weights_path,
    read_weights,
    rl_weights_path,
)
from dashboard.common import Panel, empty, file_state

PRIORITY = ("rl", "portfolio_optimizer", "strategy_lab", "equal")
"""The bridge's order: the first usable source wins."""
NO_ALLOCATION = ("no allocation yet: the weights bridge has not published one; start it with "
                 "`bash scripts/start_rl_system.sh` or `python agents/weights_bridge.py --once`")


def sources_now(cfg: Config) -> list[dict[str, object]]:
    """Each weight source file read as the bridge reads it (with its maximum age): status, reason, age."""
    bridge = cfg.bridge
    files = (("rl", rl_weights_path(cfg), bridge.rl_max_age_s),
             ("portfolio_optimizer", optimizer_weights_path(cfg), bridge.portfolio_optimizer_max_age_s),
             ("strategy_lab", lab_weights_path(cfg), bridge.strategy_lab_max_age_s))
    rows = []
    for name, path, max_age in files:
        result = read_weights(path, max_age_s=max_age)
        doc = result.data or {}
        rows.append({"source": name, "file": f"runtime/{path.name}", "max_age_s": max_age,
                     "producer": doc.get("producer"), **file_state(result)})
    return rows


def loop_panel(cfg: Config) -> Panel:
    result = read_weights(allocations_path(cfg))
    if not result.ok or result.data is None:
        reason = "" if result.status == "absent" else f" ({result.reason})"
        return {**empty(NO_ALLOCATION + reason), "sources": sources_now(cfg)}
    doc = result.data
    weights = doc["weights"]
    reasons = doc.get("fallback_reasons") or {}
    source = str(doc.get("source") or "unknown")
    higher = PRIORITY[:PRIORITY.index(source)] if source in PRIORITY else ()
    passed = [{"source": name, "reason": reasons.get(name, "no reason recorded")} for name in higher]
    return {
        "empty": False,
        "source": source,
        "generated_at": doc.get("generated_at"),
        "allocation": file_state(result),
        "weights": [{"strategy": s, "weight": float(weights[s])} for s in STRATEGIES],
        "weights_sum": float(sum(float(weights[s]) for s in STRATEGIES)),
        "passed_over": passed,
        "input_ages_s": doc.get("input_ages_s") or {},
        "sources": sources_now(cfg),
    }
