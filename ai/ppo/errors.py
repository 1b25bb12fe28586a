"""The PPO package's error, importable without torch (daemons that only predict catch it)."""

from __future__ import annotations

from core.errors import DataError


class CheckpointError(DataError):
    """A checkpoint file that is missing, not a PPO checkpoint, or made for another observation/action shape."""
