"""``state/rl_model/``: the paths of the model folder, the published ``config.json`` and its tolerant reader."""

from __future__ import annotations

import json

from core.config import Config
from core.contracts.allocation_model import (
    ModelConfig,
    candidate_path,
    config_path,
    latest_path,
    model_config_version,
    model_dir,
    previous_path,
    read_model_config,
    write_model_config,
)


def payload(version: int = 3) -> ModelConfig:
    return {
        "model_version": version, "checkpoint": "checkpoint_latest.pt", "saved_at": None, "features": ["a", "b"],
        "n_features": 2, "strategies": ["s"], "action": "Dirichlet", "feature_params": {}, "agent_config": {},
        "hyperparameters": {"gamma": 0.99}, "training_data": {}, "training": {"episodes": 2},
        "num_timesteps": 10, "torch_version": None,
    }


def test_the_folder_and_its_files(cfg: Config) -> None:
    folder = cfg.state_dir / "rl_model"
    assert model_dir(cfg) == folder
    assert [latest_path(cfg), previous_path(cfg), candidate_path(cfg), config_path(cfg)] == [
        folder / "checkpoint_latest.pt", folder / "checkpoint_previous.pt", folder / "checkpoint_candidate.pt",
        folder / "config.json"]


def test_config_json_round_trip_in_the_envelope(cfg: Config) -> None:
    assert model_config_version(cfg) is None and read_model_config(cfg).status == "absent"
    path = write_model_config(cfg, payload(3))
    doc = json.loads(path.read_text())
    assert doc["producer"] == "rl_trainer" and doc["schema_version"] == 1 and "generated_at" in doc
    assert doc["model_version"] == 3 and doc["hyperparameters"] == {"gamma": 0.99}
    assert read_model_config(cfg).ok and model_config_version(cfg) == 3


def test_an_unusable_config_json_gives_no_version(cfg: Config) -> None:
    path = config_path(cfg)
    path.parent.mkdir(parents=True)
    for text, status in [("{", "invalid"), ('{"model_version": true}', "invalid"), ('{"model_version": -1}', "invalid"),
                         ('{"features": [1]}', "invalid"), ('{"note": "no version"}', "ok")]:
        path.write_text(text)
        result = read_model_config(cfg)
        assert result.status == status, text
        assert model_config_version(cfg) is None
