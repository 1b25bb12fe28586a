"""The one exceptions module: retryable (log, back off, try again) versus fatal (clear message, exit non-zero)."""

from __future__ import annotations


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
