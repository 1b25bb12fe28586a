"""ai.tabular.tuning: the advice from the agents' files, read only."""

from __future__ import annotations

from pathlib import Path

from ai.tabular import store as ql
from ai.tabular.agent import StateRow
from ai.tabular.tuning import GUIDELINES, recommend, recommendations_for
from core.config import Config
from core.contracts.qtables import agent_path


def test_recommendations_from_the_files_move_values_into_their_stage(cfg: Config, rl_home: Path) -> None:
    for name in ("meta", "sizing"):
        agent = ql.new_agent(cfg, name)
        agent.table = {"S1": StateRow(1, {0: [0.1, 1]})}
        agent.updates, agent.epsilon = 10, 0.5  # early stage: epsilon 0.2-0.3
        ql.save_agent_file(agent, agent_path(cfg, name))
    before = {p: p.read_bytes() for p in rl_home.rglob("*") if p.is_file()}
    recs = recommendations_for(cfg)
    assert {p: p.read_bytes() for p in rl_home.rglob("*") if p.is_file()} == before
    assert [r.agent for r in recs] == ["meta", "sizing"]
    for rec in recs:
        assert rec.stage == "early" and rec.changes["epsilon"] == GUIDELINES["early"]["epsilon"][1] == 0.3
        assert any("Reduced epsilon to 0.3" in line for line in rec.rationale)


def test_values_in_range_are_left_alone() -> None:
    stats = {"updates": 500, "alpha": 0.012, "gamma": 0.985, "states": 3, "q_min": 0.0, "q_max": 0.1,
             "reward_std": 0.5}
    assert recommend("meta", stats, epsilon=0.15).changes == {}
