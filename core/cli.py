"""What every command shares before its own work: the ``--config PATH`` option and the configuration it runs
with, the command line's values applied and checked, or a one-line error and exit code 2.

    parser.add_argument(...)                      # the command's own options
    add_config_argument(parser)
    ...
    cfg = load_command_config("qlearning", args.config,
                              lambda c: with_changes(c, "qlearning", polling=args.polling or None))
    if cfg is None:
        return ExitCode.BAD_INPUT                 # the error line is already printed
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TypeVar, overload

from core.config import Config, load_config, replace_section
from core.errors import FatalError

CONFIG_HELP = "TOML configuration file"

T = TypeVar("T")


def add_config_argument(parser: argparse.ArgumentParser, help: str = CONFIG_HELP,
                        metavar: str = "PATH") -> None:
    """``--config PATH``: the TOML file in force (without it ``$RL_SYSTEM_CONFIG``, else
    ``rl_system.toml``)."""
    parser.add_argument("--config", metavar=metavar, help=help)


def with_changes(cfg: Config, section: str, **values: Any) -> Config:
    """``cfg`` with the keys of ``section`` the command line gave; a None value was not given and keeps the
    file's (so an unset flag passes ``args.flag or None``)."""
    given = {key: value for key, value in values.items() if value is not None}
    return replace_section(cfg, section, **given) if given else cfg


@overload
def load_command_config(prog: str | None, path: str | None) -> Config | None: ...


@overload
def load_command_config(prog: str | None, path: str | None, prepare: Callable[[Config], T]) -> T | None: ...


def load_command_config(prog: str | None, path: str | None,
                        prepare: Callable[[Config], Any] | None = None) -> Any:
    """The configuration file in force (``path`` from ``--config``) passed through ``prepare`` (the command
    line's changes and checks; it returns the configuration, or what the command needs of it).

    Returns None when either fails with a :class:`core.errors.FatalError` (an unreadable file, an unknown key,
    a value out of range), after printing ``<prog>: error: <why>`` (``error: <why>`` without a ``prog``) to
    stderr: the command then exits with ``ExitCode.BAD_INPUT``."""
    try:
        cfg = load_config(path)
        return prepare(cfg) if prepare is not None else cfg
    except FatalError as exc:
        print(f"{prog}: error: {exc}" if prog else f"error: {exc}", file=sys.stderr)
        return None
