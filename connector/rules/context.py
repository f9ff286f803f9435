"""What every rule is judged with, besides the facts it judges: one object instead of a dozen positional arguments.

The engine builds a :class:`Context` per pupil (and per school for the calendar routines): the school's plan, its
calendar and language, the school's date today, and who holds each role for the pupil, asked only when a rule
writes to that person. The facts (a day's record, the notices, a rule's follow-up state) are passed beside it, as
plain data, so a rule's signature says what it reads.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Mapping, Protocol

from connector.rules.calendar import SchoolCalendar


class People(Protocol):
    """Who holds a role for the pupil (``None`` when nobody is known: the action goes to the role)."""

    def get(self, role: str) -> str | None: ...


class Nobody:
    """No directory at all: every action goes to the role (tests, and a routine about no one in particular)."""

    def get(self, role: str) -> str | None:
        return None


@dataclass(frozen=True)
class Context:
    tenant_id: str
    student_id: str | None
    plan: Mapping[str, Mapping[str, Any]]
    calendar: SchoolCalendar
    language: str
    today: date
    people: People = field(default_factory=Nobody)

    def settings(self, rule_id: str) -> Mapping[str, Any]:
        """The school's settings for one rule (the defaults with the school's overrides)."""
        return self.plan[rule_id]

    def responsible(self, rule_id: str) -> str | None:
        """Who holds the role the rule gives its task to, for this pupil."""
        return self.people.get(self.plan[rule_id]["responsible"])
