"""The learning curve of a PPO training as a CSV file, one row per update, written as training runs.

Both PPO agents pass a :class:`MetricsLog` to :meth:`ai.ppo.PPO.learn` as (part of) its callback; the file
sits beside the agent's model (``core.contracts.trading_model.metrics_path``,
``core.contracts.allocation_model.metrics_path``) and is rewritten from its header at the start of every
training, so it always holds the curve of the latest one. Each row is flushed when written: ``tail -f`` or a
spreadsheet shows the training while it runs.

Columns (:data:`METRICS_COLUMNS`): ``update`` (1-based), ``num_timesteps`` (transitions collected so far),
``mean_episode_return`` (mean return of the last 100 finished episodes), ``policy_loss``, ``value_loss``,
``entropy``, ``approx_kl``, ``clip_fraction`` (means over the update's minibatch steps),
``explained_variance`` (of the rollout's returns by the value estimates), ``learning_rate``,
``steps_per_s`` (transitions per second of wall time since the previous row, update included), ``episodes``
(finished episodes in the return window), ``elapsed_s`` (since the training started). A value that is not
defined yet (no finished episode, constant returns) is an empty cell, never ``nan``.

With a ``tensorboard`` folder the same row also goes to TensorBoard event files there (``torch.utils.tensorboard``,
the optional ``tensorboard`` extra): every column but ``update`` as the scalar ``ppo/<column>`` at step
``num_timesteps`` (an undefined value is left out), so ``tensorboard --logdir`` draws the curves and compares runs.
:func:`tensorboard_run_dir` names a fresh run folder beside a model.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from ai.ppo.algorithm import UpdateStats
from core.errors import ConfigError

METRICS_COLUMNS: tuple[str, ...] = (
    "update", "num_timesteps", "mean_episode_return", "policy_loss", "value_loss", "entropy", "approx_kl",
    "clip_fraction", "explained_variance", "learning_rate", "steps_per_s", "episodes", "elapsed_s",
)
"""The CSV's columns, in order (see the module docstring)."""
TENSORBOARD_INSTALL = "pip install -e .[tensorboard]"
"""How to install the optional TensorBoard writer."""


def tensorboard_run_dir(folder: str | Path) -> Path:
    """A new run folder ``<folder>/tensorboard/<UTC time>`` for one training's event files (runs stay apart)."""
    return Path(folder) / "tensorboard" / datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")


def summary_writer_class() -> Any:
    """``torch.utils.tensorboard.SummaryWriter``; a :class:`ConfigError` saying how to install it when missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ConfigError(f"TensorBoard logging needs the tensorboard package ({exc}); install it with "
                          f"`{TENSORBOARD_INSTALL}` or turn off --tensorboard / ppo.tensorboard") from None
    return SummaryWriter


def open_summary_writer(folder: str | Path) -> Any:
    """A ``SummaryWriter`` on ``folder`` (see :func:`summary_writer_class`)."""
    return summary_writer_class()(log_dir=str(folder))


class MetricsLog:
    """A per-update CSV writer usable as a ``learn`` callback (``log(stats)`` writes one row).

    Opening truncates the file and writes the header; :meth:`close` (or leaving the ``with`` block) closes it.
    ``start_steps`` is the agent's ``num_timesteps`` when training starts (non-zero when it continues);
    ``tensorboard``: a folder that also receives the rows as TensorBoard scalars.
    """

    def __init__(self, path: str | Path, start_steps: int = 0, tensorboard: str | Path | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tensorboard = Path(tensorboard) if tensorboard is not None else None
        self._board = open_summary_writer(self.tensorboard) if self.tensorboard is not None else None
        self._file: TextIO = open(self.path, "w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(METRICS_COLUMNS)
        self._file.flush()
        self._started = time.perf_counter()
        self._last_time = self._started
        self._last_steps = start_steps
        self.rows = 0

    def __call__(self, stats: UpdateStats) -> None:
        now = time.perf_counter()
        elapsed = now - self._last_time
        rate = (stats.num_timesteps - self._last_steps) / elapsed if elapsed > 0 else math.nan
        self._last_time, self._last_steps = now, stats.num_timesteps
        row = {
            "update": stats.update, "num_timesteps": stats.num_timesteps,
            "mean_episode_return": stats.mean_episode_return, "policy_loss": stats.policy_loss,
            "value_loss": stats.value_loss, "entropy": stats.entropy, "approx_kl": stats.approx_kl,
            "clip_fraction": stats.clip_fraction, "explained_variance": stats.explained_variance,
            "learning_rate": stats.learning_rate, "steps_per_s": rate, "episodes": stats.episodes,
            "elapsed_s": now - self._started,
        }
        self._writer.writerow([_cell(row[name]) for name in METRICS_COLUMNS])
        self._file.flush()
        if self._board is not None:
            for name in METRICS_COLUMNS[1:]:
                if math.isfinite(row[name]):
                    self._board.add_scalar(f"ppo/{name}", row[name], stats.num_timesteps)
            self._board.flush()
        self.rows += 1

    def then(self, other: Callable[[UpdateStats], object] | None) -> Callable[[UpdateStats], None]:
        """A callback that writes the row, then calls ``other`` (when given), for trainers with their own."""
        def both(stats: UpdateStats) -> None:
            self(stats)
            if other is not None:
                other(stats)

        return both

    def close(self) -> None:
        self._file.close()
        if self._board is not None:
            self._board.close()

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _cell(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    return "" if not math.isfinite(value) else f"{value:.6g}"
