"""Logging for daemons and commands: module loggers, one rotating log file per daemon under runtime/logs/."""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.config import Config, as_dict, loaded_from

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
    """Configure the root logger; with ``daemon`` also log to ``runtime/logs/<daemon>.log`` (rotating) and log
    the effective configuration there first.

    The start script runs daemons with ``RL_SYSTEM_LOG_CONSOLE=0``: their console is the ``.out`` file beside
    the log, which then only catches what bypasses logging (a crash's traceback) instead of every line twice.
    Returns the log file's path, if any. Safe to call more than once (handlers are replaced).
    """
    console = console and not (daemon and os.environ.get("RL_SYSTEM_LOG_CONSOLE") == "0")
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
        log_effective_config(logging.getLogger(daemon), cfg)
    return log_file


def log_effective_config(logger: logging.Logger, cfg: Config, sections: Iterable[str] | None = None,
                         source: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Log the effective configuration at start as one INFO line of JSON; returns what was logged.

    The line names the home folder (``$RL_SYSTEM_HOME`` is not part of the configuration itself) and the TOML
    file, so a log alone tells which settings a daemon ran with. ``sections`` limits it to some sections.
    """
    source = source if source is not None else loaded_from()
    full = as_dict(cfg)
    data = full if sections is None else {name: full[name] for name in sections}
    logger.info("effective config (home %s, file %s): %s", cfg.home, source or "defaults only",
                json.dumps(data, sort_keys=True))
    return data
