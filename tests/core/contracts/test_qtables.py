"""The Q-table contract: the files' paths, a written table read back, and the load that is tolerant of a
missing file and strict (a clear DataError naming the file) about a present one that is not JSON."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from core.config import Config
from core.contracts.qtables import (
    AGENT_NAMES,
    QTablePayload,
    agent_dir,
    agent_path,
    qtable_document,
    read_qtable,
    write_qtable,
)
from core.errors import DataError


def payload() -> QTablePayload:
    return {
        "agent": "meta", "n_actions": 60, "default_action": 52,
        "hyperparameters": {"alpha": 0.02, "gamma": 0.95, "epsilon_decay": 0.9998, "epsilon_min": 0.01},
        "overrides": {}, "epsilon": 0.1, "updates": 1, "q_updates": 2,
        "reward_stats": {"n": 2, "mean": 0.5, "m2": 0.02}, "td_error_ema": 0.25,
        "progress": {"trades_learned": 1}, "tuning_history": [],
        "table": {"TREND|up": {"visits": 1, "q": {"3": [0.5, 1], "7": [0.25, 1]}}},
    }


def test_the_tables_live_in_state_qlearning(cfg: Config) -> None:
    assert agent_dir(cfg) == cfg.state_dir / "qlearning"
    assert [agent_path(cfg, n).name for n in AGENT_NAMES] == ["meta_agent.json", "sizing_agent.json"]
    with pytest.raises(ValueError, match="unknown agent 'other'; agents: meta, sizing"):
        agent_path(cfg, "other")


def test_a_written_table_reads_back_with_its_envelope(cfg: Config) -> None:
    doc = qtable_document("ai.tabular.learner", payload())
    assert list(doc)[:3] == ["schema_version", "generated_at", "producer"]
    path = agent_path(cfg, "meta")
    size = write_qtable(path, doc)
    assert size == path.stat().st_size
    assert "\n" not in path.read_text().rstrip("\n")  # compact: one line
    assert read_qtable(path) == doc


def test_nan_is_refused_and_the_old_file_kept(cfg: Config) -> None:
    path = agent_path(cfg, "sizing")
    write_qtable(path, qtable_document("x", payload()))
    before = path.read_bytes()
    bad = payload()
    bad["epsilon"] = math.nan
    with pytest.raises(ValueError):
        write_qtable(path, qtable_document("x", bad))
    assert path.read_bytes() == before


def test_a_missing_table_is_none(tmp_path: Path) -> None:
    assert read_qtable(tmp_path / "meta_agent.json") is None


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    (b"\xff\xfe", "not UTF-8 text"),
])
def test_a_garbage_table_is_a_clear_error_naming_the_file(tmp_path: Path, text: str | bytes, message: str) -> None:
    path = tmp_path / "meta_agent.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        read_qtable(path)
    assert str(info.value).startswith(f"{path}: ")
    assert "move it aside" in str(info.value)  # the fix comes with the error


def _raw_table(tmp_path: Path, change: dict[str, str]) -> Path:
    """A table written as raw text (the writer would refuse most of the bad values), with ``change`` applied."""
    fields = {"agent": '"meta"', "epsilon": "0.5", "updates": "3", "q_updates": "3", "td_error_ema": "0.1",
              "hyperparameters": '{"alpha": 0.1, "gamma": 0.9, "epsilon_decay": 0.99, "epsilon_min": 0.05}',
              "reward_stats": '{"n": 3, "mean": 0.1, "m2": 0.2}', "table": "{}", **change}
    path = tmp_path / "meta_agent.json"
    path.write_text("{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}")
    return path


def test_the_unchanged_raw_table_loads(tmp_path: Path) -> None:
    assert read_qtable(_raw_table(tmp_path, {}))["epsilon"] == 0.5


@pytest.mark.parametrize(("change", "message"), [
    ({"updates": "1e999"}, "overflows"),
    ({"updates": "1.5"}, "`updates` must be an integer"),
    ({"epsilon": "NaN"}, "not valid JSON"),
    ({"epsilon": "-1"}, "`epsilon` must be a number in \\[0, 1\\]"),
    ({"hyperparameters": '{"alpha": Infinity}'}, "not valid JSON"),
    ({"hyperparameters": '{"alpha": 5}'}, "`hyperparameters.alpha`"),
    ({"reward_stats": '{"n": 3, "mean": "x", "m2": 0}'}, "`reward_stats.mean`"),
    ({"reward_stats": '{"n": 3, "mean": 0, "m2": 1e999}'}, "overflows"),
    ({"td_error_ema": "-Infinity"}, "not valid JSON"),
    ({"td_error_ema": "1e400"}, "overflows"),
    ({"table": "[]"}, "`table` must be an object"),
    ({"updates": "9" * 400}, "too large"),
])
def test_bad_numbers_in_a_table_are_a_clear_error_naming_the_file(
        tmp_path: Path, change: dict[str, str], message: str) -> None:
    path = _raw_table(tmp_path, change)
    with pytest.raises(DataError, match=message) as info:
        read_qtable(path)
    assert str(info.value).startswith(f"{path}: ")
