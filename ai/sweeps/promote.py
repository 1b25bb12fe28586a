"""``promote <sweep id> <trial>``: make a trial's model the one the daemon loads, past the agent's own gate.

- Trading agent: the gate is the rollout gate of the benchmark (:func:`ai.trading.benchmark.benchmark_gate`,
  recorded in the trial's out-of-sample ``benchmark.json``). Past it, the checkpoint becomes
  ``state/rl_v3/ppo_model.pt`` (the previous one kept as the backup, as every training does) and the trial's
  benchmark becomes the latest one, so ``rollout`` sees a passed, out-of-sample benchmark of that very model.
- Strategy-weight agent: the gate is the trainer's (:func:`ai.allocation.validation.check_candidate`), run
  again now on the trial's data against equal weights and the model in force. Past it, the checkpoint is
  promoted with a training record, under the next model version, as ``rl_trainer --train`` does.

Either way the trial's settings (and seed) are written as a TOML overlay (``<trial>/promoted.toml``, or
``--overlay PATH``) to merge into ``rl_system.toml``, so the next training uses them. A refused promotion
changes nothing and says which criteria failed.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch

from ai.allocation.agent import candidate_path, latest_path
from ai.allocation.training import next_model_version, promote_with_record
from ai.allocation.validation import check_candidate
from ai.ppo import read_checkpoint
from ai.sweeps.allocation_trial import allocation_data
from ai.sweeps.spec import AGENT_SECTIONS, nested
from ai.sweeps.trial import merge
from ai.trading.common import file_sha256, trading_symbol
from core.atomic import atomic_open, atomic_write_bytes, atomic_write_text, read_json, utc_now_iso
from core.config import Config, config_from_dict
from core.contracts.experiments import (
    BENCHMARK_NAME,
    TrialRecord,
    overlay_path,
    read_trial_record,
    sweep_dir,
    trial_dir,
)
from core.contracts.trading_model import install_checkpoint
from core.contracts.trading_reports import BenchmarkDoc, publish_benchmark
from core.contracts.training_log import TrainingRecord
from core.errors import DataError
from core.locks import locked


class PromotionRefused(Exception):
    """The trial did not pass the gate; the message says which criteria failed."""


@dataclass(frozen=True)
class Promotion:
    """What ``promote`` did."""

    model: Path
    overlay: Path
    notes: list[str]


def load_trial(cfg: Config, sweep_id: str, trial: str) -> tuple[Path, TrialRecord]:
    """The trial's folder and record; :class:`DataError` naming the file when it is missing or unfinished."""
    folder = trial_dir(sweep_dir(cfg, sweep_id), trial)
    result = read_trial_record(folder)
    if not result.ok or result.data is None:
        raise DataError(f"{folder}: no trial record ({result.reason}); list the sweep's trials in "
                        f"{sweep_dir(cfg, sweep_id)}/leaderboard.csv")
    record = cast(TrialRecord, result.data)
    if record.get("status") != "ok" or not record.get("checkpoint"):
        raise DataError(f"{folder}: trial {trial} did not finish ({record.get('error')}); rerun the sweep first")
    return folder, record


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def toml_text(tables: dict[str, Any], header: str) -> str:
    """Nested tables of scalars and lists as TOML (tables after the keys of their parent)."""
    lines = [f"# {header}"]

    def emit(prefix: str, table: dict[str, Any]) -> None:
        scalars = [f"{k} = {toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
        if scalars or not table:
            lines.extend([f"\n[{prefix}]", *scalars])
        for k, v in table.items():
            if isinstance(v, dict):
                emit(f"{prefix}.{k}", v)

    for name, table in tables.items():
        emit(name, table)
    return "\n".join(lines) + "\n"


def trial_settings(record: TrialRecord) -> dict[str, Any]:
    """The trial's settings with its seed, as dotted keys of the agent's section."""
    settings = {**record["settings"], "ppo.seed": record["seed"]}
    if record["agent"] == "trading" and not str(record["metrics"].get("data_source", "")).startswith("csv:"):
        settings["symbol"] = record["symbol"]  # candles of a file are no market the daemon could follow
    return settings


def write_overlay(record: TrialRecord, sweep_id: str, target: Path) -> Path:
    tables = nested(AGENT_SECTIONS[record["agent"]], trial_settings(record))
    header = (f"settings of trial {record['trial']} of sweep {sweep_id} (out-of-sample Sharpe "
              f"{record['metrics'].get('sharpe')}); merge into rl_system.toml")
    atomic_write_text(target, toml_text(tables, header))
    return target


def promote_trading(cfg: Config, folder: Path, record: TrialRecord) -> tuple[Path, list[str]]:
    """Apply the benchmark's gate; install the checkpoint and publish its benchmark when it passes."""
    found = read_json(folder / BENCHMARK_NAME)
    if not found.ok or found.data is None:
        raise DataError(f"{folder / BENCHMARK_NAME}: no usable benchmark of the trial ({found.reason}); rerun the trial")
    doc = found.data
    gate = doc.get("gate") or {}
    if gate.get("passed") is not True or doc.get("in_sample") is not False:
        failed = [f"{k} ({v.get('value')} vs {v.get('rule')})" for k, v in gate.items()
                  if isinstance(v, dict) and not v.get("passed")]
        raise PromotionRefused("the trial's out-of-sample benchmark did not pass the rollout gate"
                               + (f": failed {', '.join(failed)}" if failed else ""))
    source = Path(str(record["checkpoint"]))
    path = install_checkpoint(cfg, lambda target: atomic_write_bytes(target, source.read_bytes()))
    doc["model"] = {**doc.get("model", {}), "source": "experiment", "path": str(path), "sha256": file_sha256(path)}
    publish_benchmark(cfg, cast(BenchmarkDoc, doc))  # the rollout gate reads the latest benchmark of the model in force
    notes = []
    if "symbol" in trial_settings(record) and record["symbol"] != trading_symbol(cfg):
        notes.append(f"the trial trained on {record['symbol']}; the daemon trades {trading_symbol(cfg)} until the "
                     "overlay's trading_agent.symbol (or your configuration) says otherwise")
    return path, notes


def promote_allocation(cfg: Config, sweep_id: str, record: TrialRecord, base: dict[str, Any]) -> tuple[Path, list[str]]:
    """Run the trainer's gate on the trial's data against the model in force; promote with a training record."""
    started = time.monotonic()
    overlay = nested(AGENT_SECTIONS["allocation"], trial_settings(record))
    trial_cfg = config_from_dict(merge(merge(base, {"paths": {"home": str(cfg.home)}}), overlay),
                                 source=f"trial {record['trial']}")
    data = allocation_data(trial_cfg, record["symbol"])
    acfg = trial_cfg.strategy_agent
    with locked(candidate_path(cfg)):
        payload = read_checkpoint(str(record["checkpoint"]))
        version = next_model_version(cfg)
        payload["meta"]["extra"]["model_version"] = version
        with atomic_open(candidate_path(cfg), "wb") as fh:
            torch.save(payload, fh)
        check = check_candidate(candidate_path(cfg), data, acfg, latest_path(cfg))
        if not check.ok:
            raise PromotionRefused(f"the trainer's gate refused it: {check.reason}")
        extra = payload["meta"]["extra"]
        promote_with_record(cfg, cast(TrainingRecord, {
            "started_at": utc_now_iso(), "finished_at": utc_now_iso(), "trigger": f"experiment {sweep_id}",
            "model_version": version, "data_range": data.data_range(), "trades": data.trades,
            "episodes": int(extra.get("episodes", acfg.episodes)), "total_steps": int(extra.get("total_steps", 0)),
            "updates": int(payload["meta"].get("num_updates", 0)), "mean_episode_reward": None,
            "mean_step_reward": None, "losses": None, "train_duration_s": float(record["wall_s"]),
            "completed": True, "promoted": True, "reason": f"{check.reason} (trial {record['trial']})",
            "holdout": check.holdout, "duration_s": round(time.monotonic() - started, 3)}))
    return latest_path(cfg), []


def promote(cfg: Config, sweep_id: str, trial: str, base: dict[str, Any], overlay: Path | None = None) -> Promotion:
    """Promote one trial (see the module docstring); :class:`PromotionRefused` when its gate says no."""
    folder, record = load_trial(cfg, sweep_id, trial)
    if record["agent"] == "trading":
        model, notes = promote_trading(cfg, folder, record)
    else:
        model, notes = promote_allocation(cfg, sweep_id, record, base)
    written = write_overlay(record, sweep_id, overlay or overlay_path(folder))
    return Promotion(model, written, notes)


def print_promotion(result: Promotion) -> None:
    print(f"promoted: model installed at {result.model}; settings written to {result.overlay} "
          "(merge them into rl_system.toml)")
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
