"""``escalation.read_message``: a guardian's message that *may* be a case, read by a person before anything opens.

A weak classification (``rules/classify.py``: a typo or dialect form of a keyword, or a rule that only hints at
its category) must not start a case with deadlines, reminders and alerts, nor record an absence notice, on a guess.
Instead the pupil's contact teacher gets one task: read this message and do what it asks. The task carries the
message id, its date and the suspected category in words, never the message's text (the platform shows the
message to those allowed to see it). One task per message: its key comes from the message id, so a redelivered
message or a retried job makes no second task.
"""
from __future__ import annotations

from datetime import date

from connector.contract.actions import Action, Party, external_ref
from connector.rules.calendar import SchoolCalendar
from connector.rules.texts import long_date, render

RULE_ID = "escalation.read_message"
RESPONSIBLE = "contact_teacher"
DUE_SCHOOL_DAYS = 1  # read by the end of the next school day: a hint of a §12 duty must not wait long


def task(*, tenant_id: str, message_id: str, sent_on: date, category: str, pupils: list[str],
         teacher: str | None, calendar: SchoolCalendar, language: str) -> Action:
    """The contact teacher's task for one message classified ``category`` with weak confidence."""
    due = calendar.add_school_days(sent_on, DUE_SCHOOL_DAYS)
    values = {
        "message_id": message_id,
        "sent_on": long_date(sent_on, language),
        "category_name": render(language, f"escalation.read_message.category.{category}"),
        "pupils": ", ".join(pupils) or "-",
        "due_date": long_date(due, language),
    }
    return Action(
        kind="task",
        external_ref=external_ref(tenant_id, RULE_ID, message_id, "read", "task"),
        rule_id=RULE_ID,
        student_id=pupils[0] if pupils else None,
        assignee=Party(RESPONSIBLE, teacher),
        title=render(language, "escalation.read_message.title", **values),
        body=render(language, "escalation.read_message.body", **values),
        due_date=due.isoformat(),
        priority="high" if category in ("school_environment", "staff_involved", "school_refusal") else "normal",
        extra={"message_id": message_id, "suspected": category},
    )
