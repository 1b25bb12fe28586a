"""Hyperparameter advice for the Q-learning agents, read only (``scripts/tune_qlearning.py`` and the dashboard).

Recommendations start from each agent's learning stage (by its updates, i.e. trades learned) and the guidelines
(:data:`GUIDELINES`): a value outside its stage's range is moved to the nearest end of it. Then the tuning tips,
from the agent's own statistics (a later tip wins on the same parameter): high variance, not learning, stuck in
a local optimum, mature but unstable (see ``python scripts/tune_qlearning.py --help``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ai.tabular.agent import EARLY_UPDATES, QAgent, learning_stage
from ai.tabular.store import load_agent
from core.config import Config
from core.contracts.qtables import AGENT_NAMES

GUIDELINES: dict[str, dict[str, tuple[float, float]]] = {
    "early": {"alpha": (0.01, 0.02), "gamma": (0.95, 0.99), "epsilon": (0.2, 0.3)},
    "active": {"alpha": (0.01, 0.015), "gamma": (0.98, 0.99), "epsilon": (0.1, 0.2)},
    "mature": {"alpha": (0.001, 0.005), "gamma": (0.99, 0.999), "epsilon": (0.01, 0.05)},
}
HIGH_VARIANCE_RATIO = 20.0
NOT_LEARNING_RATIO = 0.05
STUCK_MIN_STATES, STUCK_SHARE = 20, 0.9
LABELS = {"meta": "Meta Strategy", "sizing": "Position Sizing"}
WHY_LOWER = {"alpha": "for more stable learning", "gamma": "for a shorter reward horizon",
             "epsilon": "as agent converges"}
WHY_HIGHER = {"alpha": "to learn faster", "gamma": "to weigh long-term rewards more",
              "epsilon": "to explore more"}


@dataclass
class Recommendation:
    """One agent's current values, the recommended ones and why."""

    agent: str
    stage: str
    current: dict[str, float]
    recommended: dict[str, float]
    rationale: list[str] = field(default_factory=list)

    @property
    def changes(self) -> dict[str, float]:
        return {k: v for k, v in self.recommended.items() if not math.isclose(v, self.current[k], abs_tol=1e-12)}


def agent_statistics(agent: QAgent) -> dict[str, Any]:
    """What the tips look at: the agent's stats plus the share of states led by its most common greedy action."""
    stats = agent.stats()
    greedy = Counter(agent.greedy_action(s) for s in agent.table)
    stats["top_greedy_share"] = greedy.most_common(1)[0][1] / len(agent.table) if agent.table else 0.0
    return stats


def recommend(name: str, stats: Mapping[str, Any], epsilon: float, epsilon_min: float = 0.0) -> Recommendation:
    """The recommendation for one agent from its statistics (see the module docstring).

    An epsilon below ``epsilon_min`` (the config's floor) would be raised to the floor by the agent's next decay,
    so it is never recommended: the floor is, with a note."""
    stage = learning_stage(int(stats["updates"]))
    current = {"alpha": float(stats["alpha"]), "gamma": float(stats["gamma"]), "epsilon": float(epsilon)}
    rec = Recommendation(name, stage, current, dict(current))
    label = LABELS[name]
    for param, (lo, hi) in GUIDELINES[stage].items():
        value = current[param]
        target = lo if value < lo else hi if value > hi else value
        if target != value:
            rec.recommended[param] = target
            verb, why = ("Reduced", WHY_LOWER[param]) if target < value else ("Increased", WHY_HIGHER[param])
            rec.rationale.append(f"[{label}] {verb} {param} to {target:g} {why} ({stage} stage: {lo:g}-{hi:g})")
    for param, value, reason in _tips(stats, stage):
        if not math.isclose(rec.recommended[param], value, abs_tol=1e-12):
            rec.recommended[param] = value
            rec.rationale.append(f"[{label}] Set {param} to {value:g}: {reason}")
    if rec.recommended["epsilon"] < epsilon_min:
        rec.recommended["epsilon"] = epsilon_min
        rec.rationale.append(f"[{label}] Kept epsilon at {epsilon_min:g}, the floor `qlearning.epsilon_min`: "
                             "lower the floor in the config to go below it")
    return rec


def _tips(stats: Mapping[str, Any], stage: str) -> list[tuple[str, float, str]]:
    """The tuning tips that apply, in order, as (parameter, value, reason)."""
    tips: list[tuple[str, float, str]] = []
    reward_std = stats.get("reward_std") or 0.0
    q_spread = (stats["q_max"] - stats["q_min"]) if stats.get("q_min") is not None else 0.0
    updates = int(stats["updates"])
    if reward_std > 0 and q_spread > HIGH_VARIANCE_RATIO * reward_std:
        why = f"Q-values span {q_spread:.3g}, over {HIGH_VARIANCE_RATIO:g}x the reward deviation ({reward_std:.3g})"
        tips += [("gamma", 0.95, f"high variance - {why}"),
                 ("alpha", min(float(stats["alpha"]), 0.005), f"high variance - {why}")]
    if updates >= EARLY_UPDATES and reward_std > 0 and q_spread < NOT_LEARNING_RATIO * reward_std:
        tips.append(("alpha", 0.02, f"agent not learning - Q-values span only {q_spread:.3g} after {updates} updates"))
    if stats.get("states", 0) >= STUCK_MIN_STATES and stats.get("top_greedy_share", 0.0) >= STUCK_SHARE:
        tips.append(("epsilon", 0.2, f"stuck in a local optimum - one greedy action in "
                                     f"{stats['top_greedy_share']:.0%} of the states"))
    td = stats.get("td_error_ema")
    if stage == "mature" and td is not None and reward_std > 0 and td > reward_std:
        why = f"mature but unstable - mean |TD error| {td:.3g} above the reward deviation {reward_std:.3g}"
        tips += [("alpha", 0.005, why), ("epsilon", 0.01, why)]
    return tips



def recommendations_for(cfg: Config) -> list[Recommendation]:
    recs = []
    for name in AGENT_NAMES:
        agent = load_agent(cfg, name)
        recs.append(recommend(name, agent_statistics(agent), agent.epsilon, cfg.qlearning.epsilon_min))
    return recs

