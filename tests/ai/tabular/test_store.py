"""The agents' files: a round trip keeps everything, a corrupt file is a clear error and never a fresh start."""

from __future__ import annotations

import json
import re
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from ai.tabular import store
from ai.tabular.agent import QAgent
from ai.tabular.cli import main
from ai.tabular.learner import run_pass
from ai.tabular.store import HeldAgents, load_agent, load_agent_file, save_agent_file
from core.config import Config
from core.contracts.pnl_history import append_trades, history_path
from core.contracts.qtables import agent_path, write_qtable
from core.errors import DataError

# Signatures of the helper fixtures of conftest.py.
TradeRows = Callable[..., list[dict[str, object]]]


def test_agent_file_round_trip_keeps_everything(cfg: Config, trade_rows: TradeRows) -> None:
    append_trades(history_path(cfg), trade_rows(cfg, [400, 420, 440], 3, lambda k, s: 0.005))
    result = run_pass(cfg)
    for name, learned in result.agents.items():
        doc = json.loads(agent_path(cfg, name).read_text())
        assert doc["schema_version"] == 1 and doc["producer"] == "ai.tabular.learner" and "generated_at" in doc
        assert doc["hyperparameters"] == {"alpha": 0.02, "gamma": 0.95, "epsilon_decay": 0.9998, "epsilon_min": 0.01}
        assert doc["progress"]["last_trade"]["closed_at"]
        loaded = load_agent(cfg, name)
        assert loaded.to_document()["table"] == learned.to_document()["table"]
        assert (loaded.epsilon, loaded.updates, loaded.q_updates) == (learned.epsilon, learned.updates,
                                                                     learned.q_updates)
        assert loaded.epsilon == pytest.approx(0.1 * 0.9998**24)


def test_held_agents_are_read_again_only_when_their_file_changes(cfg: Config, trade_rows: TradeRows,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[Path] = []
    real_read = store.read_qtable
    monkeypatch.setattr(store, "read_qtable", lambda path: parsed.append(path) or real_read(path))
    held = HeldAgents()
    append_trades(history_path(cfg), trade_rows(cfg, [400, 420, 440], 3, lambda k, s: 0.005))
    run_pass(cfg, held=held)
    parsed.clear()
    append_trades(history_path(cfg), trade_rows(cfg, [460, 480], 3, lambda k, s: -0.004))
    result = run_pass(cfg, held=held)
    assert parsed == []  # both tables came from memory
    for name, agent in result.agents.items():  # and memory is what the files hold
        assert load_agent(cfg, name).to_document()["table"] == agent.to_document()["table"]
        assert result.agents[name].updates == 5 * 8
    # Another writer replaces the meta table (a restore, the tuning command): the next pass reads it.
    edited = load_agent(cfg, "meta")
    edited.epsilon = 0.5
    save_agent_file(edited, agent_path(cfg, "meta"))
    parsed.clear()
    append_trades(history_path(cfg), trade_rows(cfg, [500], 3, lambda k, s: 0.001))
    after = run_pass(cfg, held=held)
    assert parsed == [agent_path(cfg, "meta")]
    assert after.agents["meta"].epsilon == pytest.approx(0.5 * 0.9998**8)  # the file's, not memory's 0.1 x ...
    assert after.agents["meta"].updates == after.agents["sizing"].updates == 6 * 8


def disk_full(*_args: object) -> int:
    raise OSError(28, "No space left on device")


def test_a_failed_pass_makes_the_next_one_read_the_files(cfg: Config, trade_rows: TradeRows,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    held = HeldAgents()
    append_trades(history_path(cfg), trade_rows(cfg, [400, 420], 3, lambda k, s: 0.005))
    run_pass(cfg, held=held)
    before = {name: agent_path(cfg, name).read_bytes() for name in ("meta", "sizing")}
    append_trades(history_path(cfg), trade_rows(cfg, [460], 3, lambda k, s: 0.005))
    with monkeypatch.context() as patch:
        patch.setattr("ai.tabular.learner.save_agent_file", disk_full)
        with pytest.raises(OSError):
            run_pass(cfg, held=held)
    assert {name: agent_path(cfg, name).read_bytes() for name in ("meta", "sizing")} == before
    result = run_pass(cfg, held=held)  # learns the new trades once, from the files, not from the changed memory
    assert result.agents["meta"].updates == 3 * 8


def test_a_corrupt_agent_file_is_a_clear_error_not_a_fresh_start(cfg: Config,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = agent_path(cfg, "meta")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(DataError, match="meta_agent.json: not valid JSON"):
        run_pass(cfg)
    assert path.read_text() == "{not json"
    assert main(["--once"]) == 2  # bad input, as documented
    assert "move it aside" in capsys.readouterr().err


def test_a_save_writes_the_contracts_bytes_without_holding_the_table_twice(tmp_path: Path) -> None:
    agent = QAgent("sizing", 40, 0, alpha=0.1, gamma=0.9, epsilon=0.5, epsilon_decay=0.99, epsilon_min=0.01)
    for i in range(1000):
        agent.learn(f"S{i}", {a: 0.01 * a - 0.1 for a in range(40)}, f"S{i + 1}")
    ours, theirs = tmp_path / "ours.json", tmp_path / "theirs.json"
    tracemalloc.start()
    try:
        size = save_agent_file(agent, ours)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    write_qtable(theirs, agent.to_document())
    stamp = re.compile(rb'"generated_at":"[^"]*"')
    assert stamp.sub(b"", ours.read_bytes()) == stamp.sub(b"", theirs.read_bytes())
    # the nested document alone would take about ten times the file; the text about twice
    assert peak < 3 * size
    loaded = load_agent_file(QAgent("sizing", 40, 0, alpha=0.1, gamma=0.9, epsilon=0.5, epsilon_decay=0.99,
                                    epsilon_min=0.01), ours)
    assert loaded.to_document()["table"] == agent.to_document()["table"]
    agent.table["S0"].set(0, float("nan"), 1)
    with pytest.raises(ValueError):
        save_agent_file(agent, ours)
    assert stamp.sub(b"", ours.read_bytes()) == stamp.sub(b"", theirs.read_bytes())  # the file stays whole
