"""Tests of :mod:`ai.ppo.checkpoints`: round trip, plain metadata only, atomic writes, refusals."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import ai.ppo.checkpoints as checkpoints_module
from ai.ppo import PPO, ActionSpec, CheckpointError, load_policy
from tests.ai.ppo.support import SMALL, ContextBandit, vector


def test_save_load_round_trip(tmp_path: Path) -> None:
    agent = PPO(vector(ContextBandit, 2, simplex=True), SMALL)
    agent.learn(64)
    path = tmp_path / "models" / "ppo_model.pt"
    agent.save(path, extra_meta={"strategies": ["a", "b", "c"], "note": "weekly"})

    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"state_dict", "optimizer", "meta"}
    assert json.loads(json.dumps(raw["meta"])) == raw["meta"]  # plain data only
    assert raw["meta"]["extra"] == {"strategies": ["a", "b", "c"], "note": "weekly"}

    fresh = PPO(vector(ContextBandit, 2, simplex=True), dataclasses.replace(SMALL, seed=99))
    meta = fresh.load(path)
    assert meta["num_timesteps"] == 64 and fresh.num_timesteps == 64
    for (name, a), b in zip(agent.policy.state_dict().items(), fresh.policy.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    state_a, state_b = agent.optimizer.state_dict()["state"], fresh.optimizer.state_dict()["state"]
    assert all(torch.equal(state_a[k]["exp_avg"], state_b[k]["exp_avg"]) for k in state_a)
    obs = np.eye(3, dtype=np.float32)
    np.testing.assert_array_equal(agent.predict(obs), fresh.predict(obs))

    policy, meta2 = load_policy(path)
    np.testing.assert_array_equal(policy.predict(obs), agent.predict(obs))
    assert meta2["action_spec"] == {"kind": "simplex", "n": 3}

    no_env = PPO(None, SMALL, obs_dim=3, action_spec=ActionSpec("simplex", 3))
    no_env.load(path)
    np.testing.assert_array_equal(no_env.predict(obs), agent.predict(obs))
    wider = PPO(None, dataclasses.replace(SMALL, hidden_sizes=[32]), obs_dim=3, action_spec=ActionSpec("simplex", 3))
    with pytest.raises(CheckpointError, match="hidden_sizes=\\[16, 16\\]"):
        wider.load(path)


def test_save_refuses_non_plain_metadata_and_keeps_old_file(tmp_path: Path, monkeypatch) -> None:
    agent = PPO(vector(ContextBandit, 1), SMALL)
    folder = tmp_path / "models"
    path = folder / "ppo.pt"
    agent.save(path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="plain JSON.*meta.extra.when"):
        agent.save(path, extra_meta={"when": object()})
    with pytest.raises(ValueError, match="meta.extra.score is a float64"):
        agent.save(path, extra_meta={"score": np.float64(1.0)})

    def torn_save(obj, fh, *args, **kwargs):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints_module.torch, "save", torn_save)
    with pytest.raises(OSError, match="disk full"):
        agent.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["ppo.pt"]  # no temporary file left behind


def test_load_refuses_wrong_shapes_pickled_code_and_missing_files(tmp_path: Path) -> None:
    discrete = PPO(vector(ContextBandit, 1), SMALL)
    path = tmp_path / "ppo.pt"
    discrete.save(path)
    simplex = PPO(vector(ContextBandit, 1, simplex=True), SMALL)
    with pytest.raises(CheckpointError, match="obs_dim=2 and discrete\\(2\\)"):
        simplex.load(path)

    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "meta": {"format": "ppo_checkpoint"}, "code": ContextBandit}, evil)
    with pytest.raises(CheckpointError, match="weights-only"):
        discrete.load(evil)
    with pytest.raises(CheckpointError, match="not found"):
        discrete.load(tmp_path / "missing.pt")
