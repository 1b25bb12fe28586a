"""Running a sweep: its trials, the ones already finished, the backend, the records and the leaderboard.

A trial whose ``trial.json`` says ``ok`` is finished and skipped when the same sweep id runs again (a failed
one is run again); each record is written the moment its trial ends, and the leaderboard is rewritten after
every trial, so a sweep killed part-way keeps everything it finished. A bar over the trials shows the best
out-of-sample Sharpe ratio so far.
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai.sweeps.backends import run_ray, run_sequential
from ai.sweeps.leaderboard import leaderboard_csv, leaderboard_markdown, leaderboard_png, score
from ai.sweeps.spec import SweepSpec, TrialSpec, build_trials
from core.config import Config
from core.contracts.experiments import (
    TrialRecord,
    read_trial_record,
    sweep_dir,
    write_leaderboard,
    write_leaderboard_plot,
    write_sweep_spec,
    write_trial_record,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepRun:
    """How to run a sweep (besides what it is: the :class:`SweepSpec`)."""

    sweep_id: str
    backend: str = "sequential"
    num_cpus: int | None = None
    address: str | None = None
    tensorboard: bool = True
    quiet: bool = False
    base: dict[str, Any] = field(default_factory=dict)


@dataclass
class SweepOutcome:
    """What a run did: the sweep's folder, the records of every trial, and how many ran now."""

    folder: Path
    records: dict[str, TrialRecord]
    ran: int
    skipped: int

    @property
    def failed(self) -> list[TrialRecord]:
        return [r for r in self.records.values() if r["status"] != "ok"]


def finished(trials: list[TrialSpec]) -> dict[str, TrialRecord]:
    """Records of the trials already finished (``ok``) in an earlier run of the sweep."""
    done: dict[str, TrialRecord] = {}
    for spec in trials:
        result = read_trial_record(Path(spec.folder))
        if result.ok and result.data is not None and result.data.get("status") == "ok":
            done[spec.name] = _payload(result.data)
    return done


def _payload(doc: dict[str, Any]) -> TrialRecord:
    record: Any = {k: v for k, v in doc.items() if k not in ("schema_version", "generated_at", "producer")}
    return record  # type: ignore[no-any-return]


def run_sweep(cfg: Config, spec: SweepSpec, run: SweepRun) -> SweepOutcome:
    """Run every unfinished trial of the sweep on the chosen backend; returns the outcome."""
    folder = sweep_dir(cfg, run.sweep_id)
    trials = build_trials(spec, run.sweep_id, folder, run.base, cfg.home, run.tensorboard)
    write_sweep_spec(folder, {**spec.identity(), "id": run.sweep_id, "trials": [t.name for t in trials]})
    records = finished(trials)
    pending = [t for t in trials if t.name not in records]
    outcome = SweepOutcome(folder, records, 0, len(records))
    bar = _progress_bar(len(pending), run.quiet, records)

    def on_result(record: TrialRecord) -> None:
        write_trial_record(folder / record["trial"], record)
        records[record["trial"]] = record
        outcome.ran += 1
        _write_board(folder, run.sweep_id, trials, records)
        bar.update(1)
        best = max((score(r) for r in records.values()), default=-math.inf)
        bar.set_postfix(best_sharpe="n/a" if best == -math.inf else f"{best:.2f}",
                        failed=sum(r["status"] != "ok" for r in records.values()))

    try:
        if run.backend == "ray":
            run_ray(pending, on_result, num_cpus=run.num_cpus, address=run.address)
        else:
            run_sequential(pending, on_result)
    finally:
        bar.close()
    _write_board(folder, run.sweep_id, trials, records)
    _write_plot(folder, run.sweep_id, [records[t.name] for t in trials if t.name in records])
    return outcome


def _write_plot(folder: Path, sweep_id: str, known: list[TrialRecord]) -> None:
    try:
        write_leaderboard_plot(folder, leaderboard_png(sweep_id, known))
    except (OSError, ValueError, RuntimeError) as exc:  # a plotting failure must not lose the results
        log.warning("could not draw %s/leaderboard.png: %s", folder, exc)


def _write_board(folder: Path, sweep_id: str, trials: list[TrialSpec], records: dict[str, TrialRecord]) -> None:
    known = [records[t.name] for t in trials if t.name in records]
    write_leaderboard(folder, leaderboard_csv(known), leaderboard_markdown(sweep_id, known))


def _progress_bar(total: int, quiet: bool, records: dict[str, TrialRecord]) -> Any:
    from tqdm import tqdm

    bar = tqdm(total=total, unit="trial", desc="sweep", file=sys.stderr, disable=quiet, dynamic_ncols=True)
    best = max((score(r) for r in records.values()), default=-math.inf)
    if records and best > -math.inf:
        bar.set_postfix(best_sharpe=f"{best:.2f}")
    return bar
