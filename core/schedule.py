"""Cron schedules for the daemons' APScheduler 3 jobs, read as crontab(5) reads them, in UTC."""

from __future__ import annotations

import re
from datetime import timezone

from apscheduler.triggers.cron import CronTrigger

from core.errors import ConfigError

_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def cron_trigger(expression: str, key: str) -> CronTrigger:
    """A UTC trigger from a standard five-field cron expression; ``key`` names the setting in errors.

    APScheduler 3 numbers weekdays from Monday = 0, cron from Sunday = 0 (7 too); numeric weekdays are
    turned into names first so ``0 3 * * 0`` means Sunday as in crontab(5).
    """
    fields = expression.split()
    if len(fields) != 5:
        raise ConfigError(f"`{key}` = {expression!r}: expected five fields (minute hour day month weekday), "
                          "e.g. \"0 3 * * 0\"")
    fields[4] = re.sub(r"(?<![/\d])\d+", lambda m: _CRON_DAYS[int(m.group()) % 7], fields[4])
    try:
        return CronTrigger.from_crontab(" ".join(fields), timezone=timezone.utc)
    except ValueError as exc:
        raise ConfigError(f"`{key}` = {expression!r} is not a cron expression ({exc}); "
                          "use five fields: minute hour day month weekday, e.g. \"0 3 * * 0\"") from exc
