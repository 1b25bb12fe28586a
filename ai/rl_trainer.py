"""Train the strategy-weight PPO agent (once, or as a daemon).

The command users run (``python ai/rl_trainer.py --help``); the code lives in :mod:`ai.allocation.trainer`.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ai.allocation.trainer import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
