"""What a sweep runs: the grid of settings, the trials (symbol x seed x setting), their names and the sweep id.

A grid entry is ``KEY=V1,V2,...`` with ``KEY`` a key of the agent's configuration section (``[trading_agent]``
or ``[strategy_agent]``), dotted into sub-tables (``ppo.learning_rate=1e-4,3e-4``, ``reward_drawdown=0,0.5``,
``train_episodes=50,100``) and each value read as TOML (``ppo.hidden_sizes=[64, 64],[128, 128]``: commas inside
brackets stay with their value). Every value is checked against the configuration when the sweep is parsed,
so a typo stops it before any trial runs, naming the key. The settings are the grid's product; ``--samples N``
keeps N of them drawn at random (seeded by the sweep id, so a rerun draws the same ones).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from core.config import config_from_dict
from core.contracts.experiments import safe_name
from core.errors import ConfigError

AGENT_SECTIONS: dict[str, str] = {"trading": "trading_agent", "allocation": "strategy_agent"}
"""``--agent`` -> the configuration section its settings live in."""


@dataclass(frozen=True)
class TrialSpec:
    """One trial, as plain data (it travels to Ray workers): what to train, with what, and where to write."""

    sweep: str
    name: str
    agent: str
    symbol: str
    seed: int
    settings: dict[str, Any]
    base: dict[str, Any]
    """The configuration file's tables (before the trial's settings), so a remote worker needs no file."""
    folder: str
    home: str
    tensorboard: bool = False
    sweep_symbols: tuple[str, ...] = ()
    """Every market symbol of the sweep, in order: each keeps its own place in a synthetic market."""

    @property
    def candles_file(self) -> str | None:
        """A symbol given as a CSV file path trains on that file's candles."""
        return self.symbol if self.symbol.lower().endswith(".csv") else None

    @property
    def label(self) -> str:
        """The symbol as shown: a CSV file's name without its folder and extension."""
        return Path(self.symbol).stem if self.candles_file else self.symbol


@dataclass(frozen=True)
class SweepSpec:
    """A whole sweep as asked on the command line."""

    agent: str
    symbols: list[str]
    seeds: list[int]
    grid: dict[str, list[Any]] = field(default_factory=dict)
    samples: int | None = None
    fixed: dict[str, Any] = field(default_factory=dict)
    """Settings every trial shares (``--set KEY=VALUE``)."""

    def identity(self) -> dict[str, Any]:
        return {"agent": self.agent, "symbols": self.symbols, "seeds": self.seeds, "grid": self.grid,
                "samples": self.samples, "fixed": self.fixed}

    def default_id(self, base: dict[str, Any] | None = None) -> str:
        """``<agent>-<8 hex>`` from the spec and the configuration's tables (``base``), so the same command with the
        same configuration resumes the same sweep, and a changed configuration starts a new one."""
        text = json.dumps({**self.identity(), "config": base or {}}, sort_keys=True, default=str)
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        return f"{self.agent}-{digest}"


def split_values(text: str) -> list[str]:
    """Split ``V1,V2`` on the commas outside brackets and quotes."""
    parts, depth, quote, current = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parse_value(text: str) -> Any:
    """A TOML value; a bare word is a string (``activation=relu``)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def nested(section: str, settings: dict[str, Any]) -> dict[str, Any]:
    """``{"ppo.learning_rate": 1e-3}`` -> ``{section: {"ppo": {"learning_rate": 1e-3}}}``."""
    table: dict[str, Any] = {}
    for key, value in settings.items():
        node = table
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return {section: table}


def parse_grid(entries: Sequence[str], agent: str) -> dict[str, list[Any]]:
    """``KEY=V1,V2`` entries as ``{key: [values]}``, every value checked against the agent's section."""
    grid: dict[str, list[Any]] = {}
    for entry in entries:
        key, sep, text = entry.partition("=")
        key = key.strip()
        if not sep or not key or not split_values(text):
            raise ConfigError(f"--grid {entry!r}: expected KEY=V1,V2,... e.g. --grid ppo.learning_rate=1e-4,3e-4")
        grid[key] = [check_setting(agent, key, parse_value(v), f"--grid {entry!r}") for v in split_values(text)]
    return grid


def check_setting(agent: str, key: str, value: Any, where: str) -> Any:
    """``value`` when the agent's section accepts it at ``key``; a :class:`ConfigError` naming the key otherwise."""
    if key in ("ppo.seed", "ppo.threads", "ppo.device"):
        raise ConfigError(f"{where}: {key} is set by the sweep (--seeds; one CPU thread per trial)")
    config_from_dict(nested(AGENT_SECTIONS[agent], {key: value}), source=where)
    return value


def parse_fixed(entries: Sequence[str], agent: str) -> dict[str, Any]:
    """``KEY=VALUE`` entries (one value each, shared by every trial) as ``{key: value}``, checked like the grid."""
    fixed: dict[str, Any] = {}
    for entry in entries:
        key, sep, text = entry.partition("=")
        key = key.strip()
        if not sep or not key or not text.strip():
            raise ConfigError(f"--set {entry!r}: expected KEY=VALUE, e.g. --set train_episodes=30")
        fixed[key] = check_setting(agent, key, parse_value(text.strip()), f"--set {entry!r}")
    return fixed


def settings_list(spec: SweepSpec, sweep_id: str) -> list[dict[str, Any]]:
    """The grid's product (one empty setting without a grid), or ``samples`` of it drawn with the id's seed;
    each with the fixed settings first."""
    keys = list(spec.grid)
    combos = [dict(zip(keys, values, strict=True)) for values in itertools.product(*(spec.grid[k] for k in keys))]
    if spec.samples is not None and spec.samples < len(combos):
        rng = random.Random(int(hashlib.sha256(sweep_id.encode()).hexdigest()[:8], 16))
        picked = sorted(rng.sample(range(len(combos)), spec.samples))
        combos = [combos[i] for i in picked]
    return [{**spec.fixed, **combo} for combo in combos]


def trial_name(symbol: str, seed: int, setting_index: int | None) -> str:
    """``BTC-USDT-seed0`` (``-g<k>`` for the k-th setting of a grid); a CSV path counts by its file name."""
    label = Path(symbol).stem if symbol.lower().endswith(".csv") else symbol
    return safe_name(f"{label}-seed{seed}" + (f"-g{setting_index}" if setting_index is not None else ""))


def build_trials(spec: SweepSpec, sweep_id: str, sweep_folder: Path, base: dict[str, Any], home: Path,
                 tensorboard: bool) -> list[TrialSpec]:
    """Every trial of the sweep, settings outermost, then symbols, then seeds."""
    combos = settings_list(spec, sweep_id)
    markets = tuple(s for s in spec.symbols if not s.lower().endswith(".csv"))
    trials = []
    for k, settings in enumerate(combos):
        for symbol in spec.symbols:
            for seed in spec.seeds:
                name = trial_name(symbol, seed, k if spec.grid else None)
                trials.append(TrialSpec(sweep_id, name, spec.agent, symbol, seed, settings, base,
                                        str(sweep_folder / name), str(home), tensorboard, markets))
    names = [t.name for t in trials]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise ConfigError(f"two symbols give the same trial folder ({', '.join(clashes)}); list each symbol once")
    return trials
