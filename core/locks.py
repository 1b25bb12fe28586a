"""Advisory file locks on a ``<path>.lock`` sibling, shared by every appender of a file (history, JSON Lines)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def locked(path: str | os.PathLike[str], exclusive: bool = True) -> Iterator[None]:
    """Hold a lock on ``<path>.lock`` (a separate file, so the data file can be replaced or read freely)."""
    lock_path = Path(f"{os.fspath(path)}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
