"""Tests of the trading model contract: its paths, the backup kept at install, and the metadata check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.config import Config
from core.contracts.trading_model import (
    MODEL_DISPLAY,
    MODEL_KIND,
    backup_model_path,
    install_checkpoint,
    lock_path,
    model_path,
    validate_model_meta,
)


def test_paths_live_in_the_agents_state_folder(cfg: Config) -> None:
    assert model_path(cfg) == cfg.state_dir / "rl_v3" / "ppo_model.pt"
    assert backup_model_path(cfg) == cfg.state_dir / "rl_v3" / "ppo_model.prev.pt"
    assert lock_path(cfg) == cfg.state_dir / "rl_v3" / "train.lock"
    assert MODEL_DISPLAY == "state/rl_v3/ppo_model.pt"


def test_install_keeps_the_replaced_model_as_the_backup(cfg: Config) -> None:
    def writer(content: bytes) -> Callable[[Path], None]:
        def write(path: Path) -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        return write

    assert install_checkpoint(cfg, writer(b"first")) == model_path(cfg)
    assert not backup_model_path(cfg).exists()
    install_checkpoint(cfg, writer(b"second"))
    assert model_path(cfg).read_bytes() == b"second" and backup_model_path(cfg).read_bytes() == b"first"


def test_metadata_of_another_model_or_other_features_is_refused() -> None:
    features = ["a", "b"]
    good = {"obs_dim": 2, "action_spec": {"n": 6}, "extra": {"kind": MODEL_KIND, "features": features}}
    assert validate_model_meta(good, features, 6) is None
    assert "not a trading PPO model" in str(validate_model_meta({**good, "extra": {"kind": "other"}}, features, 6))
    assert "other features" in str(validate_model_meta(good, ["a", "c"], 6))
    assert "other features or actions" in str(validate_model_meta(good, features, 5))
    assert "not a trading PPO model" in str(validate_model_meta({"obs_dim": 2}, features, 6))
