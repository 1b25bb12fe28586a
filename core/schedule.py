"""Cron schedules for the daemons' APScheduler 3 jobs, read as crontab(5) reads them, in UTC."""

from __future__ import annotations

from datetime import timezone

from apscheduler.triggers.cron import CronTrigger

from core.errors import ConfigError

_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
"""crontab's weekday numbering: Sunday is 0 (and 7)."""
_EXAMPLE = "use five fields: minute hour day month weekday, e.g. \"0 3 * * 0\""


def cron_trigger(expression: str, key: str) -> CronTrigger:
    """A UTC trigger from a standard five-field cron expression; ``key`` names the setting in errors.

    APScheduler 3 numbers weekdays from Monday = 0 and steps ``*/2`` from Monday, cron from Sunday = 0 (7
    too): the weekday field is expanded here into explicit day names, so ``0 3 * * 0`` means Sunday and
    ``* * * * */2`` Sunday, Tuesday, Thursday, Saturday, as in crontab(5). crontab runs a job when *either*
    a restricted day of month or a restricted weekday matches, APScheduler only when both do; an expression
    restricting both is refused rather than run on other days than the user expects.
    """
    parsed = _parse(expression)
    if isinstance(parsed, str):
        raise ConfigError(f"`{key}` = {expression!r}: {parsed}")
    return parsed


def cron_problem(expression: str) -> str | None:
    """What is wrong with a cron expression (the configuration checks it at load), or None when it is valid."""
    parsed = _parse(expression)
    return parsed if isinstance(parsed, str) else None


def _parse(expression: str) -> CronTrigger | str:
    """The trigger of ``expression``, or the reason it is refused and how to fix it."""
    fields = expression.split()
    if len(fields) != 5:
        return "expected five fields (minute hour day month weekday), e.g. \"0 3 * * 0\""
    if fields[2] != "*" and fields[4] != "*":
        return ("restricts both the day of month and the weekday, which crontab reads as either-or; use `*` in "
                "one of the two fields")
    try:
        fields[4] = weekday_names(fields[4])
        return CronTrigger.from_crontab(" ".join(fields), timezone=timezone.utc)
    except ValueError as exc:
        return f"not a cron expression ({exc}); {_EXAMPLE}"


def weekday_names(field: str) -> str:
    """A crontab weekday field (``0-6``, ``1-5``, ``*/2``, ``mon,fri``, 7 = Sunday) as comma-separated day
    names, which APScheduler reads without its own Monday-first numbering; ``*`` stays ``*``."""
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = _whole_number(step_text, part) if step_text else 1
        if step < 1:
            raise ValueError(f"weekday step in {part!r} must be at least 1")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            first, last = (_day_number(text) for text in span.split("-", 1))
        else:
            first = _day_number(span)
            last = 7 if step_text else first  # "1/2" is every second day from Monday on
        if first > last:
            raise ValueError(f"weekday range {span!r} runs backwards; write it from the lower day (0 = Sunday)")
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_CRON_DAYS[day] for day in sorted(days))


def _day_number(text: str) -> int:
    name = text.strip().lower()
    if name in _CRON_DAYS:
        return _CRON_DAYS.index(name)
    day = _whole_number(name, text)
    if not 0 <= day <= 7:
        raise ValueError(f"weekday {text!r} is outside 0-7")
    return day


def _whole_number(text: str, part: str) -> int:
    if not text.strip().isdigit():
        raise ValueError(f"{part!r} is not a weekday, a range or a step")
    return int(text)
