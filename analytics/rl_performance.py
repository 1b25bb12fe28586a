"""Performance tracking and reports of the allocation sources.

The command users run (``python analytics/rl_performance.py --help``); the code lives in :mod:`analytics.performance.daemon`.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics.performance.daemon import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
