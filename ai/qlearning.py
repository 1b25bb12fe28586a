"""Tabular Q-learning agents (strategy choice and position sizing).

The command users run (``python ai/qlearning.py --help``); the code lives in :mod:`ai.tabular.cli`.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ai.tabular.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
