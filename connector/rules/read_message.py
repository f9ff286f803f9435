"""``escalation.read_message``: a guardian's message that *may* be a case, read by a person before anything opens.

A weak classification (``rules/classify.py``: a typo or dialect form of a keyword, or a rule that only hints at
its category) must not start a case with deadlines, reminders and alerts on a guess. Instead one person, by
default the pupil's contact teacher, gets one task: read this message and do what it asks. The task carries the
message id, its date and the suspected category in words, never the message's text (the platform shows the
message to those allowed to see it). One task per message: its key comes from the message id, so a redelivered
message or a retried job makes no second task.

It is the connector's own addition, not in the seed, so it is a setting like any other (``escalation.read_message``
in the plan, printed by ``connector plan show`` among the connector's defaults): ``enabled`` (off: a weak match
does nothing at all, and the message is only where the guardian sent it), ``responsible`` (who reads) and
``task_school_days`` (by when, in school days from the day the message was sent; by default the next school day,
since a hint of a §12 duty must not wait long), and the wording of its texts.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Mapping

from connector.contract.actions import Action, Party, external_ref
from connector.rules.calendar import SchoolCalendar
from marshmallow import fields, validate

from connector.rules.settings import ROLES, RuleSettings, defaults, school_days
from connector.rules.texts import long_date, render

RULE_ID = "escalation.read_message"
# The categories that carry a legal duty: their hint is a high-priority task (``classify.DUTY_CATEGORIES``).
URGENT = ("school_environment", "staff_involved", "school_refusal")


# A guardian's message about a pupil is read by staff only: never by the parents' volunteers (class parent rep, FAU).
STAFF_ROLES = tuple(role for role in ROLES if role not in ("class_parent_rep", "parents_council"))


class Settings(RuleSettings):
    responsible = fields.String(validate=validate.OneOf(STAFF_ROLES))
    task_school_days = school_days(maximum=10)  # two weeks of school at most: it is a hint of a duty


PLAN = {RULE_ID: (defaults(RULE_ID), Settings)}
DEFAULTS: Mapping[str, Any] = PLAN[RULE_ID][0]


def task(*, tenant_id: str, message_id: str, sent_on: date, category: str, pupils: list[str],
         teacher: str | None, calendar: SchoolCalendar, language: str,
         settings: Mapping[str, Any] = DEFAULTS) -> Action:
    """The task for one message classified ``category`` with weak confidence, to ``settings["responsible"]``
    (``teacher`` is the person who holds that role, when known). The caller checks ``settings["enabled"]``."""
    due = calendar.add_school_days(sent_on, settings["task_school_days"])
    responsible = settings["responsible"]
    texts = settings.get("texts")
    values = {
        "message_id": message_id,
        "sent_on": long_date(sent_on, language),
        "category_name": render(language, f"escalation.read_message.category.{category}", texts),
        "pupils": ", ".join(pupils) or "-",
        "due_date": long_date(due, language),
        "responsible": render(language, f"role.{responsible}"),
    }
    return Action(
        kind="task",
        external_ref=external_ref(tenant_id, RULE_ID, message_id, "read", "task"),
        rule_id=RULE_ID,
        student_id=pupils[0] if pupils else None,
        assignee=Party(responsible, teacher),
        title=render(language, "escalation.read_message.title", texts, **values),
        body=render(language, "escalation.read_message.body", texts, **values),
        due_date=due.isoformat(),
        priority="high" if category in URGENT else "normal",
        extra={"message_id": message_id, "suspected": category},
    )
