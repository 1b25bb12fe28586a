"""The PPO trading agent: train, benchmark, shadow daemon, staged rollout.

The command users run (``python ai/shadow_ppo.py --help``); the code lives in :mod:`ai.trading.cli`.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ai.trading.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
