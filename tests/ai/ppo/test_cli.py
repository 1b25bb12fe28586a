"""Tests of :mod:`ai.ppo.cli` (``python -m ai.ppo``): one JSON line, one-line errors, --save checked first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ai.ppo import PPO
from ai.ppo.cli import main


def test_validation_entry_point_prints_one_json_line(capsys) -> None:
    code = main(["--env", "CartPole-v1", "--total-steps", "256", "--num-envs", "2", "--seed", "1",
                 "--set", "n_steps=64", "--eval-episodes", "3", "--json"])
    out = capsys.readouterr()
    assert code == 0
    lines = out.out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["total_steps"] == 256 and result["eval_episodes"] == 3 and result["num_envs"] == 2
    assert result["eval_return"] >= 8 and result["steps_per_s"] > 0 and result["wall_s"] > 0
    assert out.err == ""  # --json: no progress bar


@pytest.mark.parametrize("argv, message", [
    (["--set", "n_epoch=4"], "unknown key `ppo.n_epoch`"),
    (["--set", "n_epochs"], "expected KEY=VALUE"),
    (["--env", "NoSuchEnv-v0"], "NoSuchEnv"),
])
def test_validation_entry_point_bad_input_is_one_line_error(capsys, argv: list[str], message: str) -> None:
    assert main([*argv, "--total-steps", "64", "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_validation_entry_point_refuses_an_unusable_save_path_before_training(tmp_path: Path, capsys,
                                                                              monkeypatch) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setattr(PPO, "learn", lambda *_a, **_k: pytest.fail("trained before checking --save"))
    assert main(["--save", str(blocker / "ppo.pt"), "--total-steps", "64", "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"--save {blocker / 'ppo.pt'}" in err and len(err.splitlines()) == 1


def test_the_learning_curve_goes_to_the_run_folder_and_with_tensorboard_to_event_files(tmp_path: Path, capsys) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    assert main(["--env", "CartPole-v1", "--total-steps", "256", "--num-envs", "2", "--set", "n_steps=64",
                 "--eval-episodes", "1", "--json", "--log-dir", str(run), "--tensorboard"]) == 0
    assert len((run / "training_metrics.csv").read_text().splitlines()) == 1 + 2  # header + one row per update
    events = EventAccumulator(str(run))
    events.Reload()
    assert [s.step for s in events.Scalars("ppo/mean_episode_return")] == [128, 256]
    assert "ppo/steps_per_s" in events.Tags()["scalars"]
    capsys.readouterr()
    assert main(["--total-steps", "64", "--json", "--tensorboard"]) == 2
    assert "--log-dir" in capsys.readouterr().err
