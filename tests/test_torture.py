"""SIGKILL loops at CI sizes: the paper trader, Q-learning and the trainer's promotion are killed at seeded
random moments and restarted; what they leave must equal an uninterrupted run (``scripts/torture.py`` runs the
same at larger sizes)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from scripts.torture import (
    HISTORY,
    MODEL_DIR,
    TRAINING_LOG,
    Home,
    Outcome,
    count_rows,
    exchange_faults,
    learned_content,
    promotion_problems,
    torture_qlearning,
    torture_trader,
    torture_trainer,
)

CANDLES = 1000  # ~190 trades: more than the trainer's minimum of 50
KILLS = 3


@pytest.fixture(scope="module")
def trader_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Outcome, Path]:
    """One trader torture shared by the tests: its outcome and the folder of its homes."""
    work = tmp_path_factory.mktemp("torture")
    return torture_trader(work, KILLS, CANDLES, random.Random(12)), work


def test_a_killed_trader_ends_with_the_uninterrupted_history_byte_for_byte(
        trader_run: tuple[Outcome, Path]) -> None:
    outcome, work = trader_run
    assert outcome.ok, outcome.problems
    assert outcome.kills == KILLS  # each kill landed while it ran, not after it had exited
    expected = (work / "trader-reference" / HISTORY).read_bytes()
    assert expected.count(b"\n") > 50
    assert (work / "trader-killed" / HISTORY).read_bytes() == expected


def test_killed_qlearning_passes_learn_what_one_pass_learns(trader_run: tuple[Outcome, Path],
                                                             tmp_path: Path) -> None:
    _, work = trader_run
    outcome = torture_qlearning(tmp_path, KILLS, work / "trader-reference" / HISTORY, CANDLES, random.Random(3))
    assert outcome.ok, outcome.problems
    assert outcome.kills == KILLS
    homes = [Home(tmp_path / name, tmp_path / name / "torture.toml")
             for name in ("qlearning-reference", "qlearning-killed")]
    expected, got = (learned_content(home) for home in homes)
    assert expected["meta_agent.json"]["progress"]["trades_learned"] > 50
    assert got == expected  # timestamps (`generated_at`) excluded


def test_a_killed_trainer_never_leaves_a_model_without_its_record(trader_run: tuple[Outcome, Path],
                                                                 tmp_path: Path) -> None:
    _, work = trader_run
    # One kill: each run of the trainer costs seconds of start-up (torch); scripts/torture.py kills it more.
    outcome = torture_trainer(tmp_path, 1, work / "trader-reference" / HISTORY, CANDLES, random.Random(5))
    assert outcome.ok, outcome.problems
    assert outcome.kills == 1
    home = Home(tmp_path / "trainer", tmp_path / "trainer" / "torture.toml")
    records = json.loads((home.root / TRAINING_LOG).read_text())["records"]
    assert sum(bool(r.get("promoted")) for r in records) >= 2  # the first and the last training
    assert (home.root / MODEL_DIR / "checkpoint_previous.pt").exists()

    # The check itself: without the log, the models in place are reported as having no record.
    (home.root / TRAINING_LOG).unlink()
    broken = Outcome("trainer promotion")
    promotion_problems(home, broken)
    assert broken.lost == 2 and not broken.ok


def test_lost_and_duplicated_rows_are_counted() -> None:
    assert count_rows(["a", "b", "c"], ["a", "b", "c"]) == (0, 0)
    assert count_rows(["a", "b", "c"], ["a", "c", "c", "c"]) == (1, 2)
    assert not Outcome("x", duplicated=1).ok and not Outcome("x", problems=["differs"]).ok


def test_the_exchange_faults_all_run_and_pass() -> None:
    outcome = exchange_faults()  # stalls, cut answers, a server gone mid-download, not-JSON bodies, persistent 5xx
    assert outcome.ok, outcome.problems
    assert outcome.runs == 10  # every fault test is selected: none was renamed out of the scenario
