"""The numpy forward pass gives the torch policy's deterministic actions from the same checkpoint file."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ai.ppo import PPO, ActionSpec, CheckpointError
from ai.ppo.numpy_policy import NumpyPolicy, read_checkpoint_arrays
from core.config import PPOConfig

OBS_DIM = 42


def saved_agent(tmp_path: Path, kind: str, n: int, **ppo: object) -> tuple[PPO, Path]:
    """A PPO with spread-out random weights (the initial policy head is nearly uniform), saved to a file."""
    cfg = PPOConfig(hidden_sizes=[64, 64], seed=1, device="cpu", **ppo)  # type: ignore[arg-type]
    agent = PPO(None, cfg, action_spec=ActionSpec(kind, n), obs_dim=OBS_DIM)  # type: ignore[arg-type]
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for param in agent.policy.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.4)
    return agent, agent.save(tmp_path / f"{kind}.pt", extra_meta={"note": "test"})


def observations(count: int = 2000) -> np.ndarray:
    return (np.random.default_rng(0).normal(size=(count, OBS_DIM)) * 2).astype(np.float32)


@pytest.mark.parametrize("ppo", [{}, {"shared_trunk": True}, {"activation": "relu"}])
def test_discrete_actions_are_identical(tmp_path: Path, ppo: dict[str, object]) -> None:
    agent, path = saved_agent(tmp_path, "discrete", 6, **ppo)
    policy, meta = NumpyPolicy.from_checkpoint(path)
    obs = observations()
    with torch.inference_mode():
        logits, _ = agent.policy(torch.as_tensor(obs))
    np.testing.assert_allclose(policy.raw(obs), logits.numpy(), rtol=1e-5, atol=1e-5)  # float32 sums
    np.testing.assert_array_equal(policy.predict(obs), agent.policy.predict(obs))
    singles = [int(policy.predict(o)) for o in obs[:200]]
    assert singles == [int(agent.policy.predict(o)) for o in obs[:200]]
    assert meta["extra"] == {"note": "test"}


@pytest.mark.parametrize("ppo", [{}, {"shared_trunk": True, "simplex_min_concentration": 0.5}])
def test_simplex_weights_match_within_1e_6(tmp_path: Path, ppo: dict[str, object]) -> None:
    agent, path = saved_agent(tmp_path, "simplex", 8, **ppo)
    policy, _ = NumpyPolicy.from_checkpoint(path)
    obs = observations()
    ours, theirs = policy.predict(obs), agent.policy.predict(obs)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ours.argmax(-1), theirs.argmax(-1))
    np.testing.assert_allclose(ours.sum(-1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(policy.predict(obs[3]), theirs[3], rtol=0, atol=1e-6)


def test_every_tensor_of_the_file_is_read(tmp_path: Path) -> None:
    agent, path = saved_agent(tmp_path, "discrete", 3)
    payload = read_checkpoint_arrays(path)
    reference = torch.load(path, weights_only=True)
    for name, tensor in reference["state_dict"].items():
        np.testing.assert_array_equal(payload["state_dict"][name], tensor.numpy())
    assert payload["meta"] == reference["meta"]
    assert len(payload["optimizer"]["state"]) == len(reference["optimizer"]["state"])


def test_wrong_observation_shape_is_refused(tmp_path: Path) -> None:
    _, path = saved_agent(tmp_path, "discrete", 3)
    policy, _ = NumpyPolicy.from_checkpoint(path)
    with pytest.raises(ValueError, match="does not fit obs_dim=42"):
        policy.predict(np.zeros(5))


class Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("code ran",))


def test_pickled_code_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"state_dict": Payload(), "meta": {}}, protocol=2))
    with pytest.raises(CheckpointError, match=r"print is not allowed"):
        read_checkpoint_arrays(path)
    assert "code ran" not in capsys.readouterr().out


@pytest.mark.parametrize("content", [b"not a zip", b""])
def test_unreadable_files_are_checkpoint_errors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="bad.pt"):
        NumpyPolicy.from_checkpoint(path)
    with pytest.raises(CheckpointError, match="not found"):
        NumpyPolicy.from_checkpoint(tmp_path / "missing.pt")


def test_a_torch_file_that_is_not_a_ppo_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    buffer = io.BytesIO()
    torch.save({"weights": torch.zeros(2)}, buffer)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match="not a PPO checkpoint"):
        NumpyPolicy.from_checkpoint(path)


@pytest.mark.parametrize("ppo", [{}, {"shared_trunk": True}])
def test_values_match_the_critic(tmp_path: Path, ppo: dict[str, object]) -> None:
    agent, path = saved_agent(tmp_path, "discrete", 6, **ppo)
    policy, _ = NumpyPolicy.from_checkpoint(path)
    obs = observations(500)
    with torch.inference_mode():
        _, values = agent.policy(torch.as_tensor(obs))
    np.testing.assert_allclose(policy.forward(obs)[1], values.numpy(), rtol=1e-5, atol=1e-5)
