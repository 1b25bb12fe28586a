"""The one exceptions module: retryable (log, back off, try again) versus fatal (clear message, exit non-zero)."""

from __future__ import annotations

import enum


class RLSystemError(Exception):
    """Base of every error the suite raises on purpose."""


class FatalError(RLSystemError):
    """Retrying cannot help: bad config, bad symbol, bad input file. The message says how to fix it."""


class RetryableError(RLSystemError):
    """A transient failure (network, rate limit, exchange busy): log it and try again with backoff."""


class ConfigError(FatalError):
    """An unknown key, a wrong type or an unreadable configuration file."""


class DataError(FatalError):
    """Input data that cannot be used as it is (missing column, bad rows); names the file and the row."""


class ExitCode(enum.IntEnum):
    """The exit status of every command and daemon (the README's table).

    A command's ``main`` returns one of these; ``sys.exit`` takes it as the integer it is.
    """

    OK = 0
    """Done."""
    FAILURE = 1
    """A failure outside the input: the exchange, the network, the disk."""
    BAD_INPUT = 2
    """Bad configuration or input; the message names the file, row or key and the fix."""
    NOT_READY = 3
    """Not enough data yet (too few trades, no model yet) or an action refused for now (a rollout gate)."""
    NOT_PROMOTED = 4
    """A candidate model was trained but failed validation; the previous model stays in use."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C (SIGINT), as shells report it."""
