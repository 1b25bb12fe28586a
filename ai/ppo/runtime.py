"""Where and how a PPO run executes: the device choice and the seeding of every generator.

Shared by the algorithm (at construction) and checkpoint loading (the device to map tensors to). The settings
themselves are checked where they are built: :class:`core.config.PPOConfig` refuses a value PPO cannot run
with, naming the key.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from core.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when present, else CPU; asking for CUDA without one is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available; use --device cpu or auto")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
