"""Logging for daemons and commands: module loggers, one rotating log file per daemon under runtime/logs/."""

from __future__ import annotations

import logging
import logging.handlers
import re
from pathlib import Path

from core.config import Config

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_SECRET = re.compile(
    r"""(?ix)
    (?P<key>[\w.-]*(?:api[_-]?key|secret|password|passwd|passphrase|token|private[_-]?key)[\w.-]*)
    (?P<sep>['"]?\s*[=:]\s*)
    (?P<value>"[^"]*"|'[^']*'|[^\s'",;&)}\]]+)
    """
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]+")


def redact(text: str) -> str:
    """``text`` with the values of secret-looking keys (``apiKey=…``, ``"secret": "…"``, ``Bearer …``) masked."""
    return _BEARER.sub(r"\1 ***", _SECRET.sub(r"\g<key>\g<sep>***", text))


class _RedactingFormatter(logging.Formatter):
    """Last line of defence: redacts the whole formatted record, arguments and traceback text included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(cfg: Config, daemon: str | None = None, console: bool = True) -> Path | None:
    """Configure the root logger; with ``daemon`` also log to ``runtime/logs/<daemon>.log`` (rotating).

    Returns the log file's path, if any. Safe to call more than once (handlers are replaced).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(getattr(logging, cfg.logging.level.upper(), logging.INFO))
    formatter = _RedactingFormatter(FORMAT)
    log_file = None
    if console:
        stream = logging.StreamHandler()
        stream.setFormatter(formatter)
        root.addHandler(stream)
    if daemon:
        log_file = cfg.runtime_dir / "logs" / f"{daemon}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        rotating = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=cfg.logging.max_bytes, backupCount=cfg.logging.backups, encoding="utf-8"
        )
        rotating.setFormatter(formatter)
        root.addHandler(rotating)
    return log_file
