"""Tests of the trading reports: training progress, the benchmark with its plot, and the retraining outcome."""

from __future__ import annotations

from core.config import Config
from core.contracts.trading_reports import (
    PROGRESS_DISPLAY,
    benchmark_path,
    benchmark_plot_path,
    progress_path,
    publish_benchmark,
    publish_progress,
    publish_retrain,
    read_benchmark,
    read_progress_doc,
    read_retrain,
    retrain_path,
    write_benchmark_plot,
)


def test_file_names(cfg: Config) -> None:
    assert progress_path(cfg) == cfg.runtime_dir / "rl_v3_training_progress.json"
    assert benchmark_path(cfg) == cfg.runtime_dir / "rl_v3_benchmark.json"
    assert benchmark_plot_path(cfg) == cfg.runtime_dir / "rl_v3_benchmark.png"
    assert retrain_path(cfg) == cfg.runtime_dir / "rl_v3_retrain.json"
    assert PROGRESS_DISPLAY == "runtime/rl_v3_training_progress.json"


def test_documents_round_trip_in_the_envelope(cfg: Config) -> None:
    assert read_progress_doc(cfg).status == "absent" and read_benchmark(cfg).status == "absent"
    publish_progress(cfg, {"active": True, "progress": 40.0, "message": "Episode 2/5", "started_at": "t",
                           "finished_at": None, "episodes_done": 2, "episodes_total": 5, "steps_done": 40,
                           "steps_total": 100, "description": "d", "pid": 1,
                           "metrics": {"current_reward": 1.0, "avg_reward": None, "policy_loss": None,
                                       "value_loss": None}})
    progress = read_progress_doc(cfg)
    assert progress.ok and progress.data is not None and progress.data["producer"] == "shadow_ppo"
    assert progress.data["steps_done"] == 40
    written = publish_benchmark(cfg, {"in_sample": False, "gate": {"passed": True}})
    assert written["plot"] == "rl_v3_benchmark.png"
    benchmark = read_benchmark(cfg)
    assert benchmark.ok and benchmark.age_s is not None and benchmark.age_s < 60
    write_benchmark_plot(cfg, b"\x89PNG")
    assert benchmark_plot_path(cfg).read_bytes() == b"\x89PNG"
    publish_retrain(cfg, {"accepted": False, "reason": "stopped before the end"})
    retrain = read_retrain(cfg)
    assert retrain.ok and retrain.data is not None and retrain.data["accepted"] is False


def test_an_unreadable_benchmark_is_no_input(cfg: Config) -> None:
    benchmark_path(cfg).parent.mkdir(parents=True, exist_ok=True)
    benchmark_path(cfg).write_text("[1, 2]")
    result = read_benchmark(cfg)
    assert result.status == "invalid" and "expected a JSON object" in result.reason
