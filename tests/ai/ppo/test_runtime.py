"""Tests of :mod:`ai.ppo.runtime`: the device choice and seeding."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from ai.ppo.runtime import resolve_device, seed_everything
from core.errors import ConfigError


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="--device cpu or auto"):
            resolve_device("cuda")


def test_seed_everything_repeats_every_generator() -> None:
    def draw() -> tuple[float, float, float]:
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    seed_everything(7)
    first = draw()
    seed_everything(7)
    assert draw() == first
