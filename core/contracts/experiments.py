"""What an experiment sweep writes under ``state/experiments/<sweep id>/``.

- ``sweep.json``: what the sweep was asked for (agent, symbols, seeds, grid) when it last ran;
- ``<trial>/trial.json`` (:class:`TrialRecord`): one trial's settings, seed, symbol, out-of-sample metrics,
  checkpoint path, wall time and, for a failed trial, its error; a trial whose record says ``ok`` is finished
  and is not run again when the sweep is resumed;
- ``<trial>/benchmark.json``: a trading trial's out-of-sample benchmark (the document of
  ``runtime/rl_v3_benchmark.json``), whose gate ``promote`` applies;
- ``<trial>/model.pt`` (the trained checkpoint), ``<trial>/training_metrics.csv`` (the learning curve) and,
  with TensorBoard on, the trial's event files in the trial folder itself, so ``tensorboard --logdir
  state/experiments/<sweep id>`` shows one run per trial;
- ``<trial>/promoted.toml``: the trial's settings as a configuration overlay, written by ``promote``;
- ``leaderboard.csv`` and ``leaderboard.md``: the trials ranked by out-of-sample Sharpe ratio, and
  ``leaderboard.png``: each symbol and setting's Sharpe ratios across seeds beside the best baseline's.

``python ai/experiments.py sweep`` (:mod:`ai.sweeps`) writes them, each trial into its own folder; ``promote``
reads a trial's record and benchmark; people read the leaderboard and point TensorBoard at the sweep's folder.
Trial folder names hold only ``[A-Za-z0-9._-]`` (:func:`safe_name`): a symbol's ``/`` never makes a subfolder.
Records carry the envelope of :mod:`core.atomic` (producer ``experiments``); readers are tolerant.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, TypedDict

from core.atomic import ReadResult, atomic_write_bytes, atomic_write_text, publish_json, read_json
from core.config import Config

PRODUCER = "experiments"
EXPERIMENTS_DIR = "experiments"
SWEEP_NAME = "sweep.json"
TRIAL_NAME = "trial.json"
CHECKPOINT_NAME = "model.pt"
BENCHMARK_NAME = "benchmark.json"
OVERLAY_NAME = "promoted.toml"
LEADERBOARD_CSV = "leaderboard.csv"
LEADERBOARD_MD = "leaderboard.md"
LEADERBOARD_PNG = "leaderboard.png"


class TrialRecord(TypedDict):
    """The payload of ``<trial>/trial.json``."""

    sweep: str
    trial: str
    agent: str
    symbol: str
    seed: int
    settings: dict[str, Any]
    status: Literal["ok", "failed"]
    metrics: dict[str, Any]
    checkpoint: str | None
    log_dir: str
    wall_s: float
    error: str | None
    finished_at: str


def safe_name(text: str) -> str:
    """``text`` as a folder name: every character outside ``[A-Za-z0-9._-]`` becomes ``-`` (``BTC/USDT`` ->
    ``BTC-USDT``), never empty, never starting with a dot."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")  # no hidden folder, no '..'
    return name or "unnamed"


def experiments_dir(cfg: Config) -> Path:
    """``state/experiments/``."""
    return cfg.state_dir / EXPERIMENTS_DIR


def sweep_dir(cfg: Config, sweep_id: str) -> Path:
    """``state/experiments/<sweep id>/``."""
    return experiments_dir(cfg) / safe_name(sweep_id)


def trial_dir(sweep_folder: Path, trial: str) -> Path:
    """A trial's folder inside its sweep's folder."""
    return sweep_folder / safe_name(trial)


def trial_record_path(trial_folder: Path) -> Path:
    return trial_folder / TRIAL_NAME


def write_trial_record(trial_folder: Path, record: TrialRecord) -> None:
    """Write the trial's record atomically (no NaN: undefined values are None)."""
    trial_folder.mkdir(parents=True, exist_ok=True)
    publish_json(trial_record_path(trial_folder), PRODUCER, dict(record))


def read_trial_record(trial_folder: Path) -> ReadResult:
    """The trial's record (tolerant: a missing or broken file is a result that is not ``ok``)."""
    return read_json(trial_record_path(trial_folder))


def write_sweep_spec(sweep_folder: Path, spec: dict[str, Any]) -> None:
    sweep_folder.mkdir(parents=True, exist_ok=True)
    publish_json(sweep_folder / SWEEP_NAME, PRODUCER, spec)


def write_leaderboard(sweep_folder: Path, csv_text: str, markdown: str) -> tuple[Path, Path]:
    """Write ``leaderboard.csv`` and ``leaderboard.md`` atomically; returns their paths."""
    csv_path, md_path = sweep_folder / LEADERBOARD_CSV, sweep_folder / LEADERBOARD_MD
    atomic_write_text(csv_path, csv_text)
    atomic_write_text(md_path, markdown)
    return csv_path, md_path


def write_leaderboard_plot(sweep_folder: Path, png: bytes) -> Path:
    path = sweep_folder / LEADERBOARD_PNG
    atomic_write_bytes(path, png)
    return path


def overlay_path(trial_folder: Path) -> Path:
    return trial_folder / OVERLAY_NAME
