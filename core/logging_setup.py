"""Logging for daemons and commands: module loggers, one rotating log file per daemon under runtime/logs/."""

from __future__ import annotations

import dataclasses
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
    the effective configuration there first (to the file only: it is long and the terminal is for the user).

    Libraries' loggers (``logging.library_loggers``) are held at ``logging.library_level``. A one-shot command
    (no ``daemon``) shows only ``logging.command_console_level`` and above on the terminal, beside the result
    it prints. The start script runs daemons with ``RL_SYSTEM_LOG_CONSOLE=0``: their console is the ``.out``
    file beside the log, which then only catches what bypasses logging (a crash's traceback) instead of every
    line twice. Returns the log file's path, if any. Safe to call more than once (handlers are replaced).
    """
    console = console and not (daemon and os.environ.get("RL_SYSTEM_LOG_CONSOLE") == "0")
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(_level(cfg.logging.level))
    quiet_libraries(cfg)
    formatter = _RedactingFormatter(FORMAT)
    log_file = None
    if console:
        stream = logging.StreamHandler()
        stream.setFormatter(formatter)
        if not daemon:
            stream.setLevel(_level(cfg.logging.command_console_level))
        root.addHandler(stream)
    if daemon:
        log_file = cfg.runtime_dir / "logs" / f"{daemon}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        rotating = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=cfg.logging.max_bytes, backupCount=cfg.logging.backups, encoding="utf-8"
        )
        rotating.setFormatter(formatter)
        root.addHandler(rotating)
        log_effective_config(logging.getLogger(daemon), cfg, handler=rotating)
    return log_file


def quiet_libraries(cfg: Config) -> None:
    """Hold every logger of ``logging.library_loggers`` (and so its children) at ``logging.library_level``."""
    for name in cfg.logging.library_loggers:
        logging.getLogger(name).setLevel(_level(cfg.logging.library_level))


def _level(name: str) -> int:
    return int(getattr(logging, name.upper(), logging.INFO))


def effective_config_lines(cfg: Config, sections: Iterable[str] | None = None,
                           source: str | os.PathLike[str] | None = None) -> list[str]:
    """The effective configuration as readable lines: a header naming the home and the TOML file, then one
    ``[section] {json}`` line per section (nested sections stay inside their parent's JSON)."""
    source = source if source is not None else loaded_from()
    full = as_dict(cfg)
    names = list(full) if sections is None else list(sections)
    header = f"effective config (home {cfg.home}, file {source or 'defaults only'}): {len(names)} section(s)"
    lines = [header]
    for name in names:
        lines += _section_lines(name, full[name], getattr(cfg, name))
    return lines


def _section_lines(name: str, values: dict[str, Any], section: object) -> list[str]:
    """``[name] {json}`` for the plain values, then one such line per nested section (``[name.sub]``)."""
    nested = [f.name for f in dataclasses.fields(section)  # type: ignore[arg-type]
              if dataclasses.is_dataclass(getattr(section, f.name))]
    plain = {key: value for key, value in values.items() if key not in nested}
    lines = [f"  [{name}] {json.dumps(plain, sort_keys=True)}"]
    for sub in nested:
        lines += _section_lines(f"{name}.{sub}", values[sub], getattr(section, sub))
    return lines


def log_effective_config(logger: logging.Logger, cfg: Config, sections: Iterable[str] | None = None,
                         source: str | os.PathLike[str] | None = None,
                         handler: logging.Handler | None = None) -> dict[str, Any]:
    """Log the effective configuration once, one INFO line per section; returns what was logged.

    The header names the home folder (``$RL_SYSTEM_HOME`` is not part of the configuration itself) and the TOML
    file, so a log alone tells which settings a daemon ran with. ``sections`` limits it to some sections.
    With ``handler`` the lines go to that handler only (a daemon's log file), whatever the logger's level.
    """
    full = as_dict(cfg)
    names = list(full) if sections is None else list(sections)
    for line in effective_config_lines(cfg, names, source):
        if handler is None:
            logger.info("%s", line)
        else:
            handler.handle(logger.makeRecord(logger.name, logging.INFO, __file__, 0, "%s", (line,), None))
    return {name: full[name] for name in names}
