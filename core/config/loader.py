"""Reading the configuration: which TOML file, its keys checked by name and type, each section built from it.

The file is ``--config PATH``, else ``$RL_SYSTEM_CONFIG``, else ``rl_system.toml`` at the repository root when
it exists. An unknown key, a value of the wrong type or out of its range is a :class:`ConfigError` naming the
key and the file.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from core.config.checks import InvalidSetting
from core.config.ppo import PPOConfig
from core.config.schema import REPO_ROOT, Config
from core.errors import ConfigError

DEFAULT_CONFIG_FILE = REPO_ROOT / "rl_system.toml"
"""The configuration file used when neither ``--config`` nor ``$RL_SYSTEM_CONFIG`` names one."""


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The TOML file in force: ``explicit``, else ``$RL_SYSTEM_CONFIG``, else ``rl_system.toml`` if present."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("RL_SYSTEM_CONFIG")
    if env:
        return Path(env)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.exists() else None


_loaded_from: list[Path | None] = [None]


def loaded_from() -> Path | None:
    """The TOML file the last :func:`load_config` of this process read (None: defaults only)."""
    return _loaded_from[0]


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Defaults overridden by the TOML file in force (see :func:`config_path`)."""
    file = config_path(path)
    _loaded_from[0] = file.resolve() if file is not None else None
    if file is None:
        return Config()
    if not file.exists():
        raise ConfigError(f"{file}: config file not found; pass an existing --config PATH or unset RL_SYSTEM_CONFIG")
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not valid TOML ({exc}); fix the syntax") from exc
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the config file ({exc.strerror or exc}); pass a readable file") from exc
    config: Config = _build(Config, raw, prefix="", file=file)
    return config


def config_from_dict(raw: dict[str, Any], source: str = "<dict>") -> Config:
    """Defaults overridden by a nested mapping shaped like the TOML file (tests, programmatic use)."""
    config: Config = _build(Config, raw, prefix="", file=Path(source))
    return config


def ppo_config_from_dict(raw: dict[str, Any], source: str = "<dict>") -> PPOConfig:
    """PPO hyperparameters from a mapping (a checkpoint's saved settings, command-line overrides), checked as the
    TOML file's ``[strategy_agent.ppo]`` is: unknown keys, types and ranges, errors naming ``ppo.<key>``."""
    built: PPOConfig = _build(PPOConfig, raw, prefix="ppo.", file=Path(source))
    return built


def replace_section(cfg: Config, section: str, **changes: Any) -> Config:
    """A copy of ``cfg`` with some fields of one section changed."""
    return dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **changes)})


def as_dict(cfg: Config) -> dict[str, Any]:
    """The effective configuration as plain data (daemons log it at start)."""
    return dataclasses.asdict(cfg)


def _build(cls: type, raw: Any, prefix: str, file: Path, base: Any = None) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: `{prefix.rstrip('.')}` must be a table, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in known:
            raise ConfigError(
                f"{file}: unknown key `{dotted}`; known keys here: {', '.join(sorted(known))}"
            )
        hint = hints[key]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            values[key] = _build(hint, value, prefix=f"{dotted}.", file=file, base=_field_default(cls, key))
        else:
            values[key] = _coerce(hint, value, dotted, file)
    try:
        # A partial table keeps the section's own defaults (a nested section may default to tuned values).
        return dataclasses.replace(base, **values) if base is not None else cls(**values)
    except InvalidSetting as exc:
        # A section's own checks (__post_init__) know the field but neither the file nor, for a nested section
        # such as strategy_agent.ppo, the full dotted key.
        if exc.file:
            raise
        raise exc.located(prefix.rstrip(".") or exc.section, str(file)) from exc
    except ConfigError as exc:
        if str(file) in str(exc):
            raise
        raise ConfigError(f"{file}: {exc}") from exc


def _field_default(cls: type, name: str) -> Any:
    """The default value of field ``name`` of dataclass ``cls``, or None when it has none."""
    spec = next(f for f in dataclasses.fields(cls) if f.name == name)
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return None if spec.default is dataclasses.MISSING else spec.default


def _coerce(hint: Any, value: Any, key: str, file: Path) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if arg is type(None) and value is None:
                return None
            try:
                return _coerce(arg, value, key, file)
            except ConfigError:
                continue
        raise _type_error(key, hint, value, file)
    if origin is list:
        if not isinstance(value, list):
            raise _type_error(key, hint, value, file)
        return [_coerce(args[0], v, f"{key}[{i}]", file) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(key, hint, value, file)
        return {str(k): _coerce(args[1], v, f"{key}.{k}", file) for k, v in value.items()}
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            # TOML allows nan and inf; no setting means either, and a NaN fee would poison every file downstream.
            raise ConfigError(f"{file}: key `{key}` must be a finite number, got {value}")
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    raise _type_error(key, hint, value, file)


def _type_error(key: str, hint: Any, value: Any, file: Path) -> ConfigError:
    expected = getattr(hint, "__name__", str(hint))
    return ConfigError(f"{file}: key `{key}` must be {expected}, got {type(value).__name__} {value!r}")
