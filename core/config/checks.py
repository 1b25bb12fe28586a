"""The one validation style of the configuration sections.

Every section checks all of its values in ``__post_init__`` (at load, on ``dataclasses.replace`` and on
direct construction) with :func:`require` and :func:`require_order`, so a bad value stops the command at once
with a message naming the key, its value and what it must be, never deep inside a daemon or a training run.
The loader prefixes the file, and the full dotted key of a nested section (``strategy_agent.ppo.gamma``).
"""

from __future__ import annotations

from collections.abc import Iterable

from core.atomic import parse_iso
from core.errors import ConfigError
from core.schedule import cron_problem

Rule = tuple[str, bool, str]
"""``(field, ok, what the value must be)``: one check of a section's field."""


class InvalidSetting(ConfigError):
    """One setting out of its range: ``<section>.<field> = <value>: <problem and fix>``.

    Keeps its parts so the loader can name the full dotted key of a nested section and the file.
    """

    def __init__(self, section: str, name: str, value: object, problem: str, file: str = "") -> None:
        self.section, self.name, self.value, self.problem, self.file = section, name, value, problem, file
        where = f"{file}: " if file else ""
        super().__init__(f"{where}{section}.{name} = {value!r}: {problem}")

    def located(self, section: str, file: str) -> InvalidSetting:
        """The same error under the dotted section name the loader knows (``strategy_agent.ppo``), naming the file."""
        return InvalidSetting(section, self.name, self.value, self.problem, file)


def require(section: str, values: object, rules: Iterable[Rule]) -> None:
    """Raise :class:`InvalidSetting` for the first failed rule of the section ``values``.

    Each rule is ``(field, ok, what the value must be)``: the message reads ``must be <rule>``.
    """
    for name, ok, rule in rules:
        if not ok:
            raise InvalidSetting(section, name, getattr(values, name), f"must be {rule}")


def require_order(section: str, values: object, pairs: Iterable[tuple[str, str, str]]) -> None:
    """Raise for the first ``(low, high, relation)`` whose values are out of order.

    ``relation`` is ``"be below"`` (strict) or ``"not exceed"``; the message names both keys and values.
    """
    for low, high, relation in pairs:
        lo, hi = getattr(values, low), getattr(values, high)
        ok = lo < hi if relation == "be below" else lo <= hi
        if not ok:
            raise ConfigError(f"{section}.{low} ({lo}) must {relation} {section}.{high} ({hi})")


def one_of(choices: Iterable[str]) -> str:
    """The rule text of a closed set of values."""
    return f"one of {', '.join(choices)}"


def cron_check(name: str, expression: str) -> Rule:
    """The rule of the cron setting ``name``: five fields read as crontab(5) reads them, in UTC; a refused
    expression's rule text carries the exact problem and its fix."""
    problem = cron_problem(expression)
    return (name, problem is None, f"a five-field crontab line in UTC ({problem})")


def is_iso_time(text: str) -> bool:
    """True when ``text`` is an ISO-8601 timestamp (``2024-01-01T00:00:00Z``)."""
    try:
        parse_iso(text)
    except ValueError:
        return False
    return True


def is_plain_file_name(name: str) -> bool:
    """A file name without folders, not hidden, not empty."""
    return bool(name) and "/" not in name and "\\" not in name and not name.startswith(".")
