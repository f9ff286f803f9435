"""Tiny builders for the pure rule tests: a pupil's day records as the rules read them, and the school's calendar.

A day record is ``{lesson key: code}`` (``connector.rules.history``); a pupil's history is ``{ISO date: record}``.
Nothing here touches Redis: the school year is the one the end-to-end tests use, with its breaks (Fri 6 Nov 2026,
Christmas 21 Dec–4 Jan, winter and Easter breaks).
"""
from __future__ import annotations

from datetime import date
from typing import Iterable

from connector.contract.actions import external_ref
from connector.rules.calendar import SchoolCalendar
from connector.rules.context import Context
from connector.rules.history import WHOLE_DAY, lesson_key, mark_code
from connector.rules.plan import merge_plan
from tests.support import SCHOOL_YEAR

CALENDAR = SchoolCalendar([SCHOOL_YEAR])
TENANT = "skole"
PUPIL = "s-1"


def settings(rule_id: str, **overrides) -> dict:
    """The rule's default settings, with a school's overrides validated as the configuration loader does."""
    return merge_plan({rule_id: overrides} if overrides else None)[rule_id]


def day(iso: str) -> date:
    return date.fromisoformat(iso)


def whole_day(documented: bool = False) -> dict[str, str]:
    """Away the whole day (a whole-day mark)."""
    return {WHOLE_DAY: mark_code("absent", documented)}


def lesson(number: int) -> dict:
    """The platform's lesson ``lesson-<number>`` of a day."""
    return {"id": f"lesson-{number}"}


def held(count: int) -> set[str]:
    """The keys of the lessons 1..count a group had that day, as the day record keys them."""
    return {lesson_key(lesson(n)) for n in range(1, count + 1)}


def lessons(*subjects: str | None, documented: bool = False, status: str = "absent", first: int = 1) -> dict[str, str]:
    """Away from one lesson per subject given (``None``: the register gave no subject), numbered from ``first``."""
    record = {}
    for number, subject in enumerate(subjects, start=first):
        the_lesson = {**lesson(number), **({"subject": subject} if subject else {})}
        record[lesson_key(the_lesson)] = mark_code(status, documented, the_lesson)
    return record


def history(days: Iterable[str], record: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    """The same record (by default a whole undocumented day) on each of ``days``."""
    return {iso: dict(record or whole_day()) for iso in days}


def ref(rule_id: str, occurrence: str, kind: str, subject: str = PUPIL, tenant: str = TENANT) -> str:
    return external_ref(tenant, rule_id, subject, occurrence, kind)


class Holders:
    """Who holds which role, as the engine's directory would answer (``rules.context.People``)."""

    def __init__(self, **holders: str):
        self.holders = holders

    def get(self, role: str) -> str | None:
        return self.holders.get(role)


def context(today: date | str, sections: dict | None = None, *, student: str | None = PUPIL, tenant: str = TENANT,
            language: str = "en", **holders: str) -> Context:
    """The rules' :class:`Context` for the test school: the default plan with ``sections`` (rule id -> that rule's
    whole settings, as :func:`settings` gives them) in place, ``today`` the school's date when the rule judges."""
    plan = dict(merge_plan(None))
    plan.update(sections or {})
    today = date.fromisoformat(today) if isinstance(today, str) else today
    return Context(tenant, student, plan, CALENDAR, language, today, Holders(**holders))
