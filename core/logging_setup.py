"""Logging for daemons and commands: module loggers, one rotating log file per daemon under runtime/logs/."""

from __future__ import annotations

import logging
import logging.handlers
import re
from pathlib import Path

from core.config import Config

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_SECRET = re.compile(r"(?i)(api[_-]?key|secret|password|token)=\S+")


class _RedactSecrets(logging.Filter):
    """Last line of defence: never let something that looks like ``apiKey=...`` reach a log file."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if _SECRET.search(msg):
            record.msg, record.args = _SECRET.sub(r"\1=***", msg), None
        return True


def setup_logging(cfg: Config, daemon: str | None = None, console: bool = True) -> Path | None:
    """Configure the root logger; with ``daemon`` also log to ``runtime/logs/<daemon>.log`` (rotating).

    Returns the log file's path, if any. Safe to call more than once (handlers are replaced).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(getattr(logging, cfg.logging.level.upper(), logging.INFO))
    formatter = logging.Formatter(FORMAT)
    redact = _RedactSecrets()
    log_file = None
    if console:
        stream = logging.StreamHandler()
        stream.setFormatter(formatter)
        stream.addFilter(redact)
        root.addHandler(stream)
    if daemon:
        log_file = cfg.runtime_dir / "logs" / f"{daemon}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        rotating = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=cfg.logging.max_bytes, backupCount=cfg.logging.backups, encoding="utf-8"
        )
        rotating.setFormatter(formatter)
        rotating.addFilter(redact)
        root.addHandler(rotating)
    return log_file
