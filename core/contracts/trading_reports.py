"""What the trading PPO's trainings publish: progress, the out-of-sample benchmark and the retraining outcome.

- ``runtime/rl_v3_training_progress.json`` (:class:`TrainingProgress`): the training in progress or the last
  one; ``progress`` is the share (%) of training steps done (``steps_done`` of ``steps_total``);
- ``runtime/rl_v3_benchmark.json`` (:class:`BenchmarkDoc`) with its equity-curve plot
  ``runtime/rl_v3_benchmark.png``: the latest benchmark, which the rollout gate reads;
- ``runtime/rl_v3_retrain.json`` (:class:`RetrainRecord`): the outcome of the latest scheduled retraining.

Documents carry the envelope of :mod:`core.atomic` (producer ``shadow_ppo``) and are written atomically;
readers are tolerant and return a :class:`core.atomic.ReadResult` (its ``age_s`` says how old a benchmark is).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

from core.atomic import ReadResult, atomic_write_bytes, publish_json, read_json
from core.config import Config
from core.contracts.shadow_status import PRODUCER
from core.contracts.trading_model import TrainRange

PROGRESS_NAME = "rl_v3_training_progress.json"
BENCHMARK_NAME = "rl_v3_benchmark.json"
RETRAIN_NAME = "rl_v3_retrain.json"
PROGRESS_DISPLAY = f"runtime/{PROGRESS_NAME}"
"""How help texts name the progress file (relative to the home folder)."""


class ProgressMetrics(TypedDict):
    current_reward: float | None
    avg_reward: float | None
    policy_loss: float | None
    value_loss: float | None


class TrainingProgress(TypedDict):
    """The payload of ``runtime/rl_v3_training_progress.json``."""

    active: bool
    progress: float
    message: str
    started_at: str
    finished_at: str | None
    episodes_done: int
    episodes_total: int
    steps_done: int
    steps_total: int
    description: str
    pid: int
    metrics: ProgressMetrics


class StrategyMetrics(TypedDict):
    """Metrics of one strategy on the test window (None where undefined)."""

    total_return: float | None
    sharpe_ratio: float | None
    max_drawdown: float | None
    win_rate: float | None
    avg_return: float | None
    n_trades: float | None


class BenchmarkDoc(TypedDict, total=False):
    """The payload of ``runtime/rl_v3_benchmark.json`` (``gate`` holds one entry per criterion and ``passed``)."""

    rl_v3_metrics: StrategyMetrics
    buy_hold_metrics: StrategyMetrics
    moving_avg_metrics: StrategyMetrics
    random_metrics: StrategyMetrics
    winner: str | None
    gate: dict[str, Any]
    in_sample: bool
    train_window: TrainRange | dict[str, Any]
    test_window: TrainRange
    train_frac: float
    fee: float
    periods_per_year: float
    data_source: str
    symbol: str
    timeframe: str
    random_episodes: int
    moving_average: dict[str, int]
    model: dict[str, Any]
    plot: str


class RetrainRecord(TypedDict, total=False):
    """The payload of ``runtime/rl_v3_retrain.json``."""

    at: str
    accepted: bool
    reason: str
    candidate_sharpe: float | None
    current_sharpe: float | None
    gate_passed: bool
    train_window: TrainRange
    test_window: TrainRange
    segments: int
    experience_candles: int


# ------------------------------------------------------------------------------------------------- progress


def progress_path(cfg: Config) -> Path:
    """``runtime/rl_v3_training_progress.json``."""
    return cfg.runtime_dir / PROGRESS_NAME


def publish_progress(cfg: Config, progress: TrainingProgress) -> dict[str, Any]:
    return publish_json(progress_path(cfg), PRODUCER, dict(progress))


def read_progress_doc(cfg: Config) -> ReadResult:
    """The progress document as written (tolerant)."""
    return read_json(progress_path(cfg))


# ------------------------------------------------------------------------------------------------ benchmark


def benchmark_path(cfg: Config) -> Path:
    """``runtime/rl_v3_benchmark.json``."""
    return cfg.runtime_dir / BENCHMARK_NAME


def benchmark_plot_path(cfg: Config) -> Path:
    """``runtime/rl_v3_benchmark.png``: the equity curves of the latest benchmark."""
    return benchmark_path(cfg).with_suffix(".png")


def publish_benchmark(cfg: Config, doc: BenchmarkDoc) -> dict[str, Any]:
    """Write the benchmark document (naming its plot); returns it with its envelope."""
    return publish_json(benchmark_path(cfg), PRODUCER, {**doc, "plot": benchmark_plot_path(cfg).name})


def write_benchmark_plot(cfg: Config, png: bytes) -> None:
    atomic_write_bytes(benchmark_plot_path(cfg), png)


def read_benchmark(cfg: Config) -> ReadResult:
    """The latest benchmark (tolerant; ``age_s`` is its age)."""
    return read_json(benchmark_path(cfg))


# -------------------------------------------------------------------------------------------------- retrain


def retrain_path(cfg: Config) -> Path:
    """``runtime/rl_v3_retrain.json``."""
    return cfg.runtime_dir / RETRAIN_NAME


def publish_retrain(cfg: Config, record: RetrainRecord) -> dict[str, Any]:
    return publish_json(retrain_path(cfg), PRODUCER, dict(record))


def read_retrain(cfg: Config) -> ReadResult:
    """The latest retraining outcome (tolerant)."""
    return read_json(retrain_path(cfg))
