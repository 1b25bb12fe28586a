"""Advisory file locks on a ``<path>.lock`` sibling, shared by every appender of a file (history, JSON Lines),
and the single-instance lock of a daemon, which survives a read-only folder.

``flock`` needs no write access: a lock file that exists in a folder now read-only (or on a read-only mount) is
opened read-only and locked all the same, so every process still meets on the same file. Only a lock file that
does not exist yet and cannot be created needs a fallback (:func:`single_instance`).
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


class AlreadyLocked(Exception):
    """Another process holds the single-instance lock (its path is the message)."""


def open_lock_file(lock_path: Path) -> IO[str]:
    """``lock_path`` opened for ``flock``: created (with its folders) when missing; an existing file that cannot
    be opened for writing (read-only folder or mount) is opened read-only. OSError when it can be neither."""
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        return open(lock_path, "a+")
    except OSError:
        if not lock_path.is_file():
            raise
        return open(lock_path)


@contextmanager
def locked(path: str | os.PathLike[str], exclusive: bool = True) -> Iterator[None]:
    """Hold a lock on ``<path>.lock`` (a separate file, so the data file can be replaced or read freely).

    A reader (``exclusive=False``) whose lock file does not exist and cannot be created (a read-only folder)
    reads unlocked: no writer can hold that lock either, since it could not create the file. A writer gets the
    OSError, which is what its error handling reports."""
    lock_path = Path(f"{os.fspath(path)}.lock")
    try:
        fh = open_lock_file(lock_path)
    except OSError:
        if exclusive or lock_path.exists():
            raise
        log.debug("cannot create %s (read-only folder): reading %s without a lock", lock_path, path)
        yield
        return
    with fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _try_hold(stack: ExitStack, lock_path: Path, create: bool) -> bool:
    """Take ``lock_path`` without waiting and keep it until ``stack`` closes; False when it is absent and not
    to be created. AlreadyLocked when another process holds it; OSError when it cannot be opened."""
    if not create and not lock_path.is_file():
        return False
    fh = stack.enter_context(open_lock_file(lock_path))
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise AlreadyLocked(str(lock_path)) from None
    return True


@contextmanager
def single_instance(primary: Path, fallback: Path) -> Iterator[Path | None]:
    """Hold the lock of the one process that may run: ``primary``, or ``fallback`` when ``primary`` cannot be
    created (its folder is read-only); yields the lock file held, or None when neither can be (both folders
    read-only: the process runs unguarded, and says so). AlreadyLocked when another process holds either.

    The fallback is also taken, when it exists, by a process that holds the primary, so a process started while
    the primary's folder was read-only and one started after it became writable still exclude each other.
    """
    with ExitStack() as stack:
        yield _hold_primary_or_fallback(stack, primary, fallback)


def _hold_primary_or_fallback(stack: ExitStack, primary: Path, fallback: Path) -> Path | None:
    try:
        _try_hold(stack, primary, create=True)
    except OSError as exc:
        try:
            _try_hold(stack, fallback, create=True)
        except OSError as fallback_exc:
            log.error("cannot create the single-instance lock %s (%s) nor %s (%s): running without it; make one "
                      "of the folders writable", primary, exc, fallback, fallback_exc)
            return None
        log.warning("cannot create the single-instance lock %s (%s): holding %s instead", primary, exc, fallback)
        return fallback
    if fallback != primary:
        try:
            _try_hold(stack, fallback, create=False)
        except OSError:
            pass  # an unreadable fallback cannot be held by anyone either
    return primary
