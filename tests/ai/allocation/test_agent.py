"""The strategy-weight agent's checkpoints: round trip, backup, config.json, weights-only loading, refusals,
deterministic weights (the Dirichlet mean) and crash safety of promotion."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import ai.allocation.agent as agent_module
from ai.allocation.agent import (
    checkpoint_extra,
    load_agent,
    load_checkpoint,
    promote_candidate,
    save_candidate,
)
from ai.allocation.env import StrategyWeightEnv, history_from_frames
from ai.allocation.features import FEATURE_NAMES
from ai.ppo import PPO, CheckpointError
from core.config import STRATEGIES, Config, PPOConfig
from core.contracts.allocation_model import candidate_path, latest_path, previous_path

REPO = Path(__file__).resolve().parents[3]
TINY = PPOConfig(n_steps=16, batch_size=16, n_epochs=1, hidden_sizes=[8, 8], device="cpu", threads=1)


def trades_frame(n: int = 300, days: int = 30, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-02", tz="UTC")
    return pd.DataFrame({
        "closed_at": start + pd.to_timedelta(np.sort(rng.uniform(0, days * 24, n)), unit="h"),
        "strategy": [STRATEGIES[i] for i in rng.integers(0, 8, n)],
        "pnl_pct": rng.normal(0.001, 0.01, n),
    })


def tiny_ppo(cfg: Config, seed: int = 0, learn: bool = True) -> PPO:
    env = StrategyWeightEnv(history_from_frames(cfg, trades_frame(), None), cfg.strategy_agent)
    ppo = PPO(env, dataclasses.replace(TINY, seed=seed))
    if learn:
        ppo.learn(32)
    return ppo


def save_model(cfg: Config, version: int, seed: int = 0) -> PPO:
    ppo = tiny_ppo(cfg, seed)
    save_candidate(ppo, cfg, checkpoint_extra(cfg.strategy_agent, version, {"start": "2024-01-02", "trades": 300}))
    promote_candidate(cfg)
    return ppo


def observations(n: int = 5) -> np.ndarray:
    return np.random.default_rng(1).uniform(-2, 2, (n, 42)).astype(np.float32)


# ---------------------------------------------------------------------------------------------- round trip


def test_checkpoint_round_trip_gives_the_same_weights_and_writes_config_json(cfg: Config) -> None:
    ppo = save_model(cfg, version=1)
    agent = load_agent(cfg)
    assert agent is not None and agent.path == latest_path(cfg) and agent.model_version == 1
    np.testing.assert_allclose(agent.weights_array(observations()), ppo.predict(observations()), rtol=0, atol=1e-12)
    weights = agent.weights(observations()[0])
    assert list(weights) == list(STRATEGIES) and sum(weights.values()) == pytest.approx(1.0, abs=1e-12)
    assert not candidate_path(cfg).exists()  # promoted by renaming

    doc = json.loads((cfg.state_dir / "rl_model" / "config.json").read_text())
    assert doc["model_version"] == 1 and doc["producer"] and doc["generated_at"]
    assert doc["features"] == list(FEATURE_NAMES) and doc["n_features"] == 42
    assert doc["hyperparameters"]["hidden_sizes"] == [8, 8]
    assert doc["training_data"] == {"start": "2024-01-02", "trades": 300}
    assert doc["feature_params"]["window_periods"] == cfg.strategy_agent.window_periods


def test_promotion_keeps_the_replaced_model_as_backup(cfg: Config) -> None:
    save_model(cfg, version=1, seed=1)
    first = latest_path(cfg).read_bytes()
    assert not previous_path(cfg).exists()
    save_model(cfg, version=2, seed=2)
    assert previous_path(cfg).read_bytes() == first
    assert load_checkpoint(previous_path(cfg)).model_version == 1
    assert load_checkpoint(latest_path(cfg)).model_version == 2


def test_deterministic_weights_are_the_dirichlet_mean(cfg: Config) -> None:
    save_model(cfg, version=1)
    agent = load_agent(cfg)
    assert agent is not None
    obs = torch.as_tensor(observations())
    with torch.no_grad():
        raw = agent.policy.policy_head(agent.policy.actor_body(obs))
        alpha = 1.0 + F.softplus(raw)  # simplex_min_concentration = 1
    mean = (alpha / alpha.sum(-1, keepdim=True)).double().numpy()
    np.testing.assert_allclose(agent.weights_array(observations()), mean, rtol=0, atol=1e-6)
    # Deterministic: the same state always gives the same weights.
    assert np.array_equal(agent.weights_array(observations()), agent.weights_array(observations()))


def test_no_model_means_none(cfg: Config) -> None:
    assert load_agent(cfg) is None


# ---------------------------------------------------------------------------------------------- refusals


class Exploit:
    """Unpickling this would create a folder: the proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.mkdir, (str(self.marker),))


def test_loading_never_unpickles_code(cfg: Config, tmp_path: Path) -> None:
    ppo = tiny_ppo(cfg, learn=False)
    marker = tmp_path / "code_ran"
    meta = ppo.checkpoint_meta(checkpoint_extra(cfg.strategy_agent, 1, {}))
    latest_path(cfg).parent.mkdir(parents=True)
    torch.save({"state_dict": ppo.policy.state_dict(), "meta": {**meta, "payload": Exploit(marker)}},
               latest_path(cfg))
    with pytest.raises(CheckpointError, match="weights-only"):
        load_agent(cfg)
    assert not marker.exists()


def test_nan_parameters_are_refused_and_the_backup_is_used(cfg: Config) -> None:
    save_model(cfg, version=1, seed=1)
    save_model(cfg, version=2, seed=2)
    payload = torch.load(latest_path(cfg), weights_only=True)
    first = next(iter(payload["state_dict"]))
    payload["state_dict"][first][0] = float("nan")
    torch.save(payload, latest_path(cfg))
    with pytest.raises(CheckpointError, match=f"`{first}` holds NaN"):
        load_checkpoint(latest_path(cfg))
    agent = load_agent(cfg)
    assert agent is not None and agent.path == previous_path(cfg) and agent.model_version == 1


def test_a_model_of_other_features_or_kind_is_refused(cfg: Config) -> None:
    ppo = tiny_ppo(cfg, learn=False)
    extra = checkpoint_extra(cfg.strategy_agent, 1, {})
    ppo.save(latest_path(cfg), extra_meta={**extra, "features": [f"x{i}" for i in range(42)]})
    with pytest.raises(CheckpointError, match="other features"):
        load_checkpoint(latest_path(cfg))
    ppo.save(latest_path(cfg), extra_meta={**extra, "kind": "trading"})
    with pytest.raises(CheckpointError, match="not a strategy-weight model"):
        load_checkpoint(latest_path(cfg))
    latest_path(cfg).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_agent(cfg)


# ---------------------------------------------------------------------------------------------- crash safety


@pytest.mark.parametrize("crash_in", ["backup", "rename"])
def test_a_crash_during_promotion_leaves_the_old_model_loadable(cfg: Config, monkeypatch: pytest.MonkeyPatch,
                                                               crash_in: str) -> None:
    save_model(cfg, version=1)
    before = latest_path(cfg).read_bytes()
    ppo = tiny_ppo(cfg, seed=5)
    save_candidate(ppo, cfg, checkpoint_extra(cfg.strategy_agent, 2, {}))

    def crash(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt("killed")

    if crash_in == "backup":
        monkeypatch.setattr(agent_module, "atomic_write_bytes", crash)
    else:  # the backup is written, then the process dies before the candidate is renamed over the latest
        monkeypatch.setattr(agent_module, "os", _Crashing(crash))
    with pytest.raises(KeyboardInterrupt):
        promote_candidate(cfg)
    assert latest_path(cfg).read_bytes() == before
    agent = load_agent(cfg)
    assert agent is not None and agent.path == latest_path(cfg) and agent.model_version == 1


class _Crashing:
    """Stands in for the ``os`` module: ``replace`` crashes, everything else is the real thing."""

    def __init__(self, crash: object) -> None:
        self.replace = crash

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)


def test_sigkill_at_any_moment_leaves_a_loadable_latest_checkpoint(cfg: Config, tmp_path: Path) -> None:
    script = tmp_path / "promote_forever.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from core.config import load_config
        from ai.allocation.agent import checkpoint_extra, promote_candidate, save_candidate
        from tests_helper import make_ppo
        cfg = load_config(None)
        ppo = make_ppo(cfg)
        version = 1
        while True:
            save_candidate(ppo, cfg, checkpoint_extra(cfg.strategy_agent, version, {{}}))
            promote_candidate(cfg)
            version += 1
    """))
    (tmp_path / "tests_helper.py").write_text(textwrap.dedent(f"""
        import numpy as np, pandas as pd
        from ai.ppo import PPO
        from ai.allocation.env import StrategyWeightEnv, history_from_frames
        from core.config import STRATEGIES, PPOConfig
        def make_ppo(cfg):
            rng = np.random.default_rng(0)
            start = pd.Timestamp("2024-01-02", tz="UTC")
            trades = pd.DataFrame({{"closed_at": start + pd.to_timedelta(np.sort(rng.uniform(0, 720, 300)), unit="h"),
                                   "strategy": [STRATEGIES[i] for i in rng.integers(0, 8, 300)],
                                   "pnl_pct": rng.normal(0, 0.01, 300)}})
            env = StrategyWeightEnv(history_from_frames(cfg, trades, None), cfg.strategy_agent)
            return PPO(env, PPOConfig(**{TINY.__dict__!r}))
    """))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=os.environ.copy(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not previous_path(cfg).exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(float(np.random.default_rng().uniform(0.05, 0.3)))  # any moment of the save/promote cycle
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    agent = load_checkpoint(latest_path(cfg))
    assert agent.model_version >= 2
    assert load_checkpoint(previous_path(cfg)).model_version <= agent.model_version  # the backup is whole too
