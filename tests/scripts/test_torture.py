"""`scripts/torture.py`: a tiny run prints its table as JSON and exits 0; a failed scenario makes it exit 1;
bad arguments exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import scripts.torture as torture


def test_a_tiny_trader_run_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert torture.main(["--kills", "1", "--candles", "500", "--scenarios", "trader", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (trader,) = report["scenarios"]
    assert trader["scenario"] == "paper trader" and trader["verdict"] == "ok"
    assert trader["runs"] >= 2 and trader["lost"] == trader["duplicated"] == trader["tracebacks"] == 0


def test_a_failed_scenario_exits_1_with_the_reason(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    def failing(work: Path, kills: int, candles: int, seed: int,
                scenarios: tuple[str, ...]) -> list[torture.Outcome]:
        return [torture.Outcome("paper trader", runs=3, kills=2, lost=1, problems=["history differs"])]

    monkeypatch.setattr(torture, "torture_all", failing)
    assert torture.main(["--kills", "2"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "paper trader: history differs" in out
    assert out.splitlines()[0].split() == ["scenario", "runs", "kills", "lost", "duplicated", "tracebacks",
                                           "verdict"]


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert torture.main(["--candles", "10"]) == 2
    assert "--candles >= 500" in capsys.readouterr().err
