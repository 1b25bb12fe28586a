"""The ``[performance]`` section checked before anything runs: report windows, positive counts, schedules.

A window is ``<N>d`` (the last N days up to the report day) or ``all`` (the whole history).
"""

from __future__ import annotations

import math
import re

from core.config import Config
from core.errors import ConfigError
from core.schedule import cron_trigger

_WINDOW = re.compile(r"^([1-9]\d*)d$")


def parse_window(text: str) -> int | None:
    """``"7d"`` -> 7, ``"all"`` -> None; ValueError for anything else."""
    if text == "all":
        return None
    match = _WINDOW.match(text)
    if match is None:
        raise ValueError(f"window {text!r} is not `<N>d` (e.g. 7d, 30d) or `all`")
    return int(match.group(1))


def check_performance_config(cfg: Config) -> None:
    """Reject settings that cannot work, naming the key."""
    pc = cfg.performance
    if not pc.windows:
        raise ConfigError("`performance.windows` is empty; list at least one window, e.g. [\"7d\", \"30d\", \"all\"]")
    for text in pc.windows:
        try:
            parse_window(text)
        except ValueError as exc:
            raise ConfigError(f"`performance.windows`: {exc}") from exc
    if len(set(pc.windows)) != len(pc.windows):
        raise ConfigError("`performance.windows` lists a window twice; list each once")
    positive = {"min_days": pc.min_days, "rebalance_days": pc.rebalance_days, "history_max_lines": pc.history_max_lines,
                "training_records": pc.training_records, "misfire_grace_s": pc.misfire_grace_s}
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"`performance.{key}` = {value}: must be at least 1")
    if not (math.isfinite(pc.track_interval_s) and pc.track_interval_s > 0):
        raise ConfigError(f"`performance.track_interval_s` = {pc.track_interval_s}: must be a positive number of seconds")
    for key in ("report_cron", "portfolio_optimizer_cron", "strategy_lab_cron"):
        cron_trigger(getattr(pc, key), f"performance.{key}")
