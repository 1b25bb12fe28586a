"""Tests of :mod:`ai.ppo.metrics_log` and of the in-update pulse of :meth:`ai.ppo.PPO.learn`: one CSV row per
update with the documented columns and finite values, written while training runs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from ai.ppo import METRICS_COLUMNS, PPO, MetricsLog, Pulse, UpdateStats, make_vec_env
from core.config import PPOConfig

SMALL = PPOConfig(n_steps=64, batch_size=32, n_epochs=3, hidden_sizes=[16, 16], seed=1, device="cpu")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_one_row_per_update_with_the_documented_columns_and_finite_values(tmp_path: Path) -> None:
    path = tmp_path / "curve.csv"
    agent = PPO(make_vec_env("CartPole-v1", 2), SMALL)
    rows_seen_during_training: list[int] = []
    with MetricsLog(path) as log:
        # The file is readable row by row while training runs, not only at the end.
        agent.learn(128 * 4, callback=log.then(lambda _s: rows_seen_during_training.append(len(_rows(path)))))
    rows = _rows(path)
    assert list(rows[0].keys()) == list(METRICS_COLUMNS)
    assert [int(r["update"]) for r in rows] == [1, 2, 3, 4] == [n for n in rows_seen_during_training]
    assert [int(r["num_timesteps"]) for r in rows] == [128, 256, 384, 512]
    for row in rows:
        values = {k: float(v) for k, v in row.items()}  # an empty cell would raise here
        assert all(math.isfinite(v) for v in values.values()), row
        assert values["steps_per_s"] > 0 and values["entropy"] > 0 and values["approx_kl"] >= 0
        assert 0 <= values["clip_fraction"] <= 1 and values["learning_rate"] > 0
    # The return column is the mean of the finished episodes' returns (6 significant digits in the file).
    mean_return = sum(agent.episode_returns) / len(agent.episode_returns)
    assert float(rows[-1]["mean_episode_return"]) == pytest.approx(mean_return, rel=1e-5)


def test_an_undefined_value_is_an_empty_cell_never_nan(tmp_path: Path) -> None:
    path = tmp_path / "curve.csv"
    stats = UpdateStats(update=1, num_timesteps=10, learning_rate=1e-3, policy_loss=0.1, value_loss=0.2,
                        entropy=0.6, approx_kl=0.0, clip_fraction=0.0, explained_variance=math.nan, epochs=1,
                        minibatches=1, episodes=0, mean_episode_return=math.nan, mean_episode_length=math.nan)
    with MetricsLog(path) as log:
        log(stats)
    row = _rows(path)[0]
    assert row["mean_episode_return"] == "" and row["explained_variance"] == "" and row["policy_loss"] == "0.1"
    assert "nan" not in path.read_text()


def test_a_new_log_starts_the_file_again(tmp_path: Path) -> None:
    path = tmp_path / "curve.csv"
    path.write_text("old,content\n1,2\n")
    with MetricsLog(path):
        pass
    assert path.read_text().strip() == ",".join(METRICS_COLUMNS)


def test_the_pulse_reports_every_minibatch_step_of_every_update() -> None:
    pulses: list[Pulse] = []
    PPO(make_vec_env("CartPole-v1", 2), SMALL).learn(128 * 2, pulse=pulses.append)
    # 128 transitions per update in minibatches of 32 -> 4 per epoch, 3 epochs -> 12 steps per update.
    assert [(p.update, p.step) for p in pulses] == [(u, s) for u in (1, 2) for s in range(1, 13)]
    assert {(p.updates, p.steps) for p in pulses} == {(2, 12)}
    assert [p.num_timesteps for p in pulses if p.step == 1] == [128, 256]


def test_with_a_tensorboard_folder_the_rows_are_scalars_tensorboards_reader_reads_back(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    agent = PPO(make_vec_env("CartPole-v1", 2), SMALL)
    with MetricsLog(tmp_path / "curve.csv", tensorboard=tmp_path / "board") as log:
        agent.learn(128 * 3, callback=log)
    rows = _rows(tmp_path / "curve.csv")
    events = EventAccumulator(str(tmp_path / "board"))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {f"ppo/{c}" for c in METRICS_COLUMNS[1:]}
    for column in METRICS_COLUMNS[1:]:
        scalars = events.Scalars(f"ppo/{column}")
        assert [s.step for s in scalars] == [128, 256, 384]
        # The CSV keeps 6 significant digits, the event file float32.
        assert [s.value for s in scalars] == pytest.approx([float(r[column]) for r in rows], rel=1e-5, abs=1e-7)


def test_without_the_tensorboard_package_asking_for_it_is_a_one_line_error(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from core.errors import ConfigError

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # the import fails as when not installed
    with pytest.raises(ConfigError, match=r"pip install -e \.\[tensorboard\]") as caught:
        MetricsLog(tmp_path / "curve.csv", tensorboard=tmp_path / "board")
    assert len(str(caught.value).splitlines()) == 1
    assert not (tmp_path / "curve.csv").exists()
