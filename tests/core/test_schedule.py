"""core.schedule: cron expressions fire on the days crontab(5) would, in UTC."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.errors import ConfigError
from core.schedule import cron_trigger, weekday_names

MONDAY = datetime(2024, 1, 1, tzinfo=timezone.utc)  # 2024-01-01 was a Monday
NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order


def fire_days(expression: str, count: int = 7) -> list[str]:
    """Day names of the next ``count`` firings after Monday 2024-01-01 00:00 UTC."""
    trigger = cron_trigger(expression, "test.cron")
    days, now = [], MONDAY
    for _ in range(count):
        fire = trigger.get_next_fire_time(None, now)
        days.append(NAMES[fire.weekday()])
        now = fire + timedelta(minutes=1)
    return days


# crontab(5) numbers weekdays from Sunday = 0 (7 is Sunday too); the expected days are written out by hand.
@pytest.mark.parametrize(("weekday", "expected"), [
    ("0", ["sun"] * 3),
    ("7", ["sun"] * 3),
    ("1-5", ["mon", "tue", "wed", "thu", "fri", "mon", "tue"]),
    ("0-6", ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
    ("0-2", ["mon", "tue", "sun", "mon", "tue", "sun", "mon"]),
    ("5-7", ["fri", "sat", "sun", "fri", "sat", "sun", "fri"]),
    ("*/2", ["tue", "thu", "sat", "sun", "tue", "thu", "sat"]),  # 0, 2, 4, 6
    ("1-5/2", ["mon", "wed", "fri", "mon", "wed", "fri", "mon"]),
    ("mon,fri", ["mon", "fri", "mon", "fri", "mon", "fri", "mon"]),
    ("SAT,0", ["sat", "sun", "sat", "sun", "sat", "sun", "sat"]),
])
def test_weekdays_follow_crontab_numbering(weekday: str, expected: list[str]) -> None:
    assert fire_days(f"0 3 * * {weekday}", len(expected)) == expected


def test_fire_times_are_utc_and_other_fields_pass_through() -> None:
    trigger = cron_trigger("15 */6 * * *", "test.cron")
    fire = trigger.get_next_fire_time(None, MONDAY)
    assert fire == datetime(2024, 1, 1, 0, 15, tzinfo=timezone.utc)
    assert trigger.get_next_fire_time(None, fire + timedelta(minutes=1)) == fire + timedelta(hours=6)
    monthly = cron_trigger("0 3 1 * *", "test.cron").get_next_fire_time(None, MONDAY + timedelta(hours=4))
    assert monthly == datetime(2024, 2, 1, 3, 0, tzinfo=timezone.utc)


def test_weekday_names_expands_to_explicit_days() -> None:
    assert weekday_names("*") == "*"
    assert weekday_names("0-6") == "sun,mon,tue,wed,thu,fri,sat"
    assert weekday_names("*/3") == "sun,wed,sat"
    assert weekday_names("7,1") == "sun,mon"


@pytest.mark.parametrize(("expression", "fragment"), [
    ("0 3 * *", "expected five fields"),
    ("0 3 * * 8", "outside 0-7"),
    ("0 3 * * 6-1", "runs backwards"),
    ("0 3 * * */0", "step"),
    ("0 3 * * funday", "not a weekday"),
    ("61 3 * * *", "not a cron expression"),
    ("0 3 1 * 1", "either-or"),
])
def test_bad_expressions_name_the_key(expression: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        cron_trigger(expression, "performance.report_cron")
    assert "`performance.report_cron`" in str(caught.value) and fragment in str(caught.value)
