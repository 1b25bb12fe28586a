"""The trial function: a plain function from a :class:`~ai.sweeps.spec.TrialSpec` to its record.

It runs the same in the sweep's own process (sequential backend) and as a Ray task: it builds the trial's
configuration from plain data (the configuration file's tables, then the trial's settings, then its seed),
pins torch to one thread on the CPU and seeds every generator, so a seed gives the same metrics on either
backend. It never raises: a failure becomes a record with ``status = "failed"`` and the error, so one bad trial
does not stop the sweep.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import torch

from ai.ppo import seed_everything
from ai.sweeps.allocation_trial import run_allocation_trial
from ai.sweeps.spec import AGENT_SECTIONS, TrialSpec, nested
from ai.sweeps.trading_trial import run_trading_trial
from ai.trading.common import finite_or_none
from core.atomic import utc_now_iso
from core.config import Config, config_from_dict
from core.contracts.experiments import TrialRecord

Runner = Callable[[Config, TrialSpec, Path], tuple[dict[str, Any], str]]
RUNNERS: dict[str, Runner] = {
    "trading": lambda cfg, spec, folder: run_trading_trial(cfg, spec.symbol, spec.candles_file, folder,
                                                           spec.sweep_symbols),
    "allocation": lambda cfg, spec, folder: run_allocation_trial(cfg, spec.symbol, folder),
}
"""``--agent`` -> how one of its trials trains and evaluates."""


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``overlay``'s tables merged into ``base``'s, key by key (neither is changed)."""
    out = dict(base)
    for key, value in overlay.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def trial_config(spec: TrialSpec) -> Config:
    """The configuration file's tables, then the trial's settings, seed, one CPU thread and its logging."""
    fixed = {"ppo.seed": spec.seed, "ppo.threads": 1, "ppo.device": "cpu", "ppo.tensorboard": spec.tensorboard}
    overlay = nested(AGENT_SECTIONS[spec.agent], {**spec.settings, **fixed})
    raw = merge(merge(spec.base, {"paths": {"home": spec.home}}), overlay)
    return config_from_dict(raw, source=f"trial {spec.name}")


def run_trial(spec: TrialSpec) -> TrialRecord:
    """Train and evaluate one trial (see the module docstring); returns its record."""
    started = time.perf_counter()
    os.environ["RL_SYSTEM_HOME"] = spec.home  # a worker process resolves the same home as the sweep
    torch.set_num_threads(1)
    seed_everything(spec.seed)
    folder = Path(spec.folder)
    metrics: dict[str, Any] = {}
    checkpoint: str | None = None
    error: str | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        metrics, checkpoint = RUNNERS[spec.agent](trial_config(spec), spec, folder)
    except Exception as exc:  # a trial's failure is its result, recorded; the sweep goes on
        error = f"{type(exc).__name__}: {exc}"
    return failed_or_done(spec, metrics, checkpoint, error, time.perf_counter() - started)


def failed_or_done(spec: TrialSpec, metrics: dict[str, Any], checkpoint: str | None, error: str | None,
                   wall_s: float) -> TrialRecord:
    """The trial's record (undefined numbers as None)."""
    record = {
        "sweep": spec.sweep, "trial": spec.name, "agent": spec.agent, "symbol": spec.label, "seed": spec.seed,
        "settings": dict(spec.settings), "status": "failed" if error else "ok", "metrics": metrics,
        "checkpoint": checkpoint, "log_dir": spec.folder, "wall_s": round(wall_s, 3), "error": error,
        "finished_at": utc_now_iso(),
    }
    return cast(TrialRecord, finite_or_none(record))
