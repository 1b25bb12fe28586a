"""The PPO package's error and the checkpoint's outer shape, importable without torch (daemons that only
predict read checkpoints without it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import DataError

CHECKPOINT_FORMAT = "ppo_checkpoint"


class CheckpointError(DataError):
    """A checkpoint file that is missing, not a PPO checkpoint, or made for another observation/action shape."""


def check_checkpoint_payload(file: Path, payload: Any) -> dict[str, Any]:
    """``payload`` when it is a PPO checkpoint (``state_dict`` and a ``meta`` of this format), else
    :class:`CheckpointError` naming ``file``."""
    if not isinstance(payload, dict) or "state_dict" not in payload or not isinstance(payload.get("meta"), dict):
        raise CheckpointError(f"{file}: not a PPO checkpoint (expected keys state_dict and meta)")
    if payload["meta"].get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{file}: meta.format is {payload['meta'].get('format')!r}, expected "
                              f"{CHECKPOINT_FORMAT!r}")
    return payload
