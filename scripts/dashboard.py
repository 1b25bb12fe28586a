"""The web dashboard of the running suite: ``python scripts/dashboard.py [--host H] [--port P]`` (see
:mod:`dashboard.cli`; ``--help`` for the options)."""

from __future__ import annotations

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sys

from dashboard.cli import main

if __name__ == "__main__":
    sys.exit(main())
