"""Hyperparameter advice: golden recommendations for fixed tables, each tuning tip, applying values (kept with the
agents, old values in a history, picked up by learning) and refusing invalid ones."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ai.tabular import store as ql
from ai.tabular.agent import QAgent, RunningStats, StateRow
from ai.tabular.store import save_agent_file
from core.config import REPO_ROOT, Config
from core.contracts.qtables import agent_path
from scripts import tune_qlearning as tune


def save(cfg: Config, agent: QAgent) -> None:
    save_agent_file(agent, agent_path(cfg, agent.name))


def active_meta(cfg: Config) -> QAgent:
    """250 updates, epsilon 0.08, five states with Q-values 0..0.4, rewards of standard deviation 1."""
    a = ql.new_agent(cfg, "meta")
    a.table = {f"S{i}": StateRow(1, {0: [0.1 * i, 1], 1: [0.0, 1]}) for i in range(5)}
    a.updates, a.epsilon, a.rewards = 250, 0.08, RunningStats(100, 0.0, 99.0)
    return a


GOLDEN = """\
================================================================================
Q-LEARNING HYPERPARAMETER RECOMMENDATIONS
================================================================================

📊 META STRATEGY AGENT
--------------------------------------------------------------------------------
  Stage: active  (current: alpha 0.02, gamma 0.95, epsilon 0.08)
  Recommended Changes:
    Alpha (α):    0.0150
    Gamma (γ):    0.9800
    Epsilon (ε):  0.1000

  Rationale:
    • [Meta Strategy] Reduced alpha to 0.015 for more stable learning (active stage: 0.01-0.015)
    • [Meta Strategy] Increased gamma to 0.98 to weigh long-term rewards more (active stage: 0.98-0.99)
    • [Meta Strategy] Increased epsilon to 0.1 to explore more (active stage: 0.1-0.2)

📈 POSITION SIZING AGENT
--------------------------------------------------------------------------------
  Stage: early  (current: alpha 0.02, gamma 0.95, epsilon 0.1)
  Recommended Changes:
    Epsilon (ε):  0.2000

  Rationale:
    • [Position Sizing] Increased epsilon to 0.2 to explore more (early stage: 0.2-0.3)

🔧 TO APPLY RECOMMENDATIONS
--------------------------------------------------------------------------------
  Run the following command:

  python scripts/tune_qlearning.py --apply --meta-alpha 0.015 --meta-gamma 0.98 --meta-epsilon 0.1 --sizing-epsilon 0.2
"""


def test_golden_recommendations_for_fixed_tables(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    save(cfg, active_meta(cfg))  # the sizing agent has no file yet: a fresh one, early stage
    assert tune.main([]) == 0
    assert capsys.readouterr().out == GOLDEN


def test_values_inside_the_guidelines_are_left_alone(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("meta", "sizing"):
        a = active_meta(cfg) if name == "meta" else ql.new_agent(cfg, name)
        if name == "sizing":
            a.table, a.updates, a.rewards = active_meta(cfg).table, 400, RunningStats(10, 0.0, 9.0)
        a.apply_tuning({"alpha": 0.012, "gamma": 0.985, "epsilon": 0.15}, source="test")
        save(cfg, a)
    assert tune.main([]) == 0
    out = capsys.readouterr().out
    assert out.count("✅ Current hyperparameters are optimal") == 2 and "✅ Nothing to change." in out
    assert "--apply" not in out


def stats(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {"updates": 500, "alpha": 0.012, "gamma": 0.985, "q_min": -1.0, "q_max": 1.0,
                               "reward_std": 1.0, "td_error_ema": 0.5, "states": 30, "top_greedy_share": 0.3}
    return {**base, **overrides}


def test_each_tuning_tip() -> None:
    calm = tune.recommend("meta", stats(), epsilon=0.15)
    assert calm.changes == {}
    wide = tune.recommend("meta", stats(q_min=-15.0, q_max=10.0), epsilon=0.15)  # spread 25 > 20 x 1
    assert wide.changes == {"gamma": 0.95, "alpha": 0.005}
    assert all("high variance" in line for line in wide.rationale)
    flat = tune.recommend("meta", stats(q_min=0.0, q_max=0.01), epsilon=0.15)  # spread 0.01 < 0.05 x 1
    assert flat.changes == {"alpha": 0.02} and "not learning" in flat.rationale[0]
    stuck = tune.recommend("sizing", stats(top_greedy_share=0.95), epsilon=0.15)
    assert stuck.changes == {"epsilon": 0.2} and "local optimum" in stuck.rationale[0]
    mature = tune.recommend("meta", stats(updates=5000, alpha=0.003, gamma=0.995, td_error_ema=2.0), epsilon=0.03)
    assert mature.stage == "mature" and mature.changes == {"alpha": 0.005, "epsilon": 0.01}
    assert "mature but unstable" in mature.rationale[-1]


def test_guideline_ranges_per_stage() -> None:
    early = tune.recommend("meta", stats(updates=10, alpha=0.5, gamma=0.5, q_min=None, q_max=None), epsilon=0.9)
    assert early.recommended == {"alpha": 0.02, "gamma": 0.95, "epsilon": 0.3}
    mature = tune.recommend("meta", stats(updates=1001, alpha=0.0001, gamma=0.9999), epsilon=0.0)
    assert mature.recommended == {"alpha": 0.001, "gamma": 0.999, "epsilon": 0.01}
    assert tune.learning_stage(99) == "early" and tune.learning_stage(100) == "active"
    assert tune.learning_stage(1000) == "active" and tune.learning_stage(1001) == "mature"


def test_apply_writes_values_keeps_history_and_learning_uses_them(cfg: Config,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    save(cfg, active_meta(cfg))
    assert tune.main(["--apply", "--meta-alpha", "0.015", "--meta-epsilon", "0.05", "--sizing-gamma", "0.98"]) == 0
    out = capsys.readouterr().out
    assert "meta: alpha 0.02 -> 0.015" in out and "meta: epsilon 0.08 -> 0.05" in out
    assert "sizing: gamma 0.95 -> 0.98" in out
    meta = json.loads(agent_path(cfg, "meta").read_text())
    assert meta["overrides"] == {"alpha": 0.015} and meta["epsilon"] == 0.05
    assert meta["hyperparameters"]["alpha"] == 0.015
    assert meta["tuning_history"][-1]["old"] == {"alpha": 0.02, "epsilon": 0.08}
    assert meta["tuning_history"][-1]["new"] == {"alpha": 0.015, "epsilon": 0.05}
    sizing = json.loads(agent_path(cfg, "sizing").read_text())  # created: the values wait for the first trade
    assert sizing["overrides"] == {"gamma": 0.98} and sizing["updates"] == 0
    loaded = ql.load_agent(cfg, "meta")
    assert (loaded.alpha, loaded.gamma, loaded.epsilon) == (0.015, 0.95, 0.05)
    loaded.learn("S9", {0: 1.0}, None)
    assert loaded.q_value("S9", 0) == pytest.approx(0.015) and loaded.epsilon == pytest.approx(0.05 * 0.9998)


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--meta-alpha", "0", "alpha = 0 is out of range: it must be in (0, 1]"),
    ("--meta-alpha", "1.5", "alpha = 1.5 is out of range"),
    ("--sizing-gamma", "1", "gamma = 1 is out of range: it must be in [0, 1)"),
    ("--sizing-epsilon", "-0.1", "epsilon = -0.1 is out of range: it must be in [0, 1]"),
    ("--meta-gamma", "nan", "gamma must be a finite number"),
])
def test_invalid_values_are_refused_and_nothing_is_written(cfg: Config, capsys: pytest.CaptureFixture[str],
                                                           flag: str, value: str, message: str) -> None:
    save(cfg, active_meta(cfg))
    before = agent_path(cfg, "meta").read_bytes()
    assert tune.main(["--apply", "--meta-epsilon", "0.05", flag, value]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tune_qlearning: error: {flag} ") and message in err
    assert agent_path(cfg, "meta").read_bytes() == before
    assert not agent_path(cfg, "sizing").exists()


def test_argument_mix_ups_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        tune.main(["--meta-alpha", "0.01"])
    assert exc.value.code == 2 and "without --apply" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        tune.main(["--apply"])
    assert exc.value.code == 2 and "nothing to apply" in capsys.readouterr().err


def test_unreadable_agent_file_is_a_clear_error(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    path = agent_path(cfg, "meta")
    path.parent.mkdir(parents=True)
    path.write_text('{"agent": "meta"}')
    assert tune.main([]) == 2
    assert "meta_agent.json: not a valid meta Q-table" in capsys.readouterr().err


def test_help_runs_as_a_script() -> None:
    done = subprocess.run([sys.executable, "scripts/tune_qlearning.py", "--help"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--sizing-epsilon" in done.stdout and "--apply" in done.stdout
    assert "alpha     0.01-0.02     0.01-0.015    0.001-0.005" in done.stdout  # the guidelines table
    assert "epsilon   0.2-0.3       0.1-0.2       0.01-0.05" in done.stdout


def test_epsilon_below_the_configured_floor_is_refused_and_never_recommended(
        cfg: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save(cfg, active_meta(cfg))
    before = agent_path(cfg, "meta").read_bytes()
    assert tune.main(["--apply", "--meta-epsilon", "0.005"]) == 2  # the default floor is 0.01
    err = capsys.readouterr().err
    assert "--meta-epsilon 0.005: below the floor qlearning.epsilon_min = 0.01" in err
    assert agent_path(cfg, "meta").read_bytes() == before
    # A mature agent would be told 0.01-0.05; with a floor of 0.08 the floor is recommended instead.
    rec = tune.recommend("meta", stats(updates=5000, alpha=0.003, gamma=0.995), epsilon=0.1, epsilon_min=0.08)
    assert rec.recommended["epsilon"] == 0.08 and "qlearning.epsilon_min" in rec.rationale[-1]
    toml = tmp_path / "floor.toml"
    toml.write_text("[qlearning]\nepsilon_min = 0.001\n")
    assert tune.main(["--apply", "--meta-epsilon", "0.005", "--config", str(toml)]) == 0
    assert json.loads(agent_path(cfg, "meta").read_text())["epsilon"] == 0.005


def test_history_lists_every_applied_change_with_the_old_value(cfg: Config,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    save(cfg, active_meta(cfg))
    assert tune.main(["--history"]) == 0
    assert capsys.readouterr().out.count("No tuning applied yet.") == 2
    assert tune.main(["--apply", "--meta-alpha", "0.015"]) == 0
    assert tune.main(["--apply", "--meta-alpha", "0.012", "--sizing-epsilon", "0.2"]) == 0
    capsys.readouterr()
    assert tune.main(["--history"]) == 0
    out = capsys.readouterr().out
    meta_part, sizing_part = out.split("POSITION SIZING AGENT")
    assert meta_part.index("alpha 0.02 -> 0.015") < meta_part.index("alpha 0.015 -> 0.012")
    assert "epsilon 0.1 -> 0.2  (tune_qlearning)" in sizing_part
    with pytest.raises(SystemExit) as exc:
        tune.main(["--history", "--apply", "--meta-alpha", "0.01"])
    assert exc.value.code == 2


def test_backup_list_and_restore_round_trip(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    assert tune.main(["--backup"]) == 0
    assert "nothing to back up" in capsys.readouterr().out
    agent = ql.new_agent(cfg, "meta")
    agent.update("s0", 0, 1.0, 0.0)
    save(cfg, agent)
    original = agent_path(cfg, "meta").read_bytes()
    assert tune.main(["--backup"]) == 0
    made = capsys.readouterr().out
    assert made.startswith("backed up meta to ") and "manual_" in made
    name = made.strip().rsplit("/", 1)[-1]
    agent.update("s0", 0, 9.0, 0.0)
    save(cfg, agent)
    assert tune.main(["--restore", name]) == 0
    out = capsys.readouterr().out
    assert "restored meta from " in out and "the tables replaced are in " in out and "sizing" in out
    assert agent_path(cfg, "meta").read_bytes() == original
    assert tune.main(["--backups"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in listing] == ["manual", "pre_restore"] and listing[0].startswith(name)


def test_restore_of_an_unknown_backup_exits_2_naming_the_choices(cfg: Config,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert tune.main(["--restore", "weekly_2020-01-05"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no Q-table backup `weekly_2020-01-05`" in err and "none yet" in err
    with pytest.raises(SystemExit):
        tune.main(["--restore", "x", "--apply", "--meta-alpha", "0.01"])
