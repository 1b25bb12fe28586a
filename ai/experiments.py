"""Experiments at scale: sweep an agent over symbols, seeds and settings (on Ray), promote the best trial.

The command users run (``python ai/experiments.py --help``); the code lives in :mod:`ai.sweeps.cli`.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ai.sweeps.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
