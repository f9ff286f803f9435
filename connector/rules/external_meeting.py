"""``absence.external_meeting``: when external bodies become involved, the school leadership holds a meeting.

The seed: "Når eksterne instanser blir involvert, skal det avholdes møte der foresatte/elev/kontaktlærer og
skoleledelsen deltar. Referat skrives. Etter avtale. Rektor." Triggered by a ``task.updated`` whose outcome is
``external_involved``, dated by that meeting's ``completed_at``.
"""
from __future__ import annotations

from datetime import date

from connector.contract.actions import Action, Party, case_id, external_ref
from connector.rules.context import Context
from connector.rules.settings import RuleSettings, defaults, school_days
from connector.rules.triggers import Triggers
from connector.rules.texts import long_date, render

RULE_ID = "absence.external_meeting"


class Settings(RuleSettings):
    task_school_days = school_days()


PLAN = {RULE_ID: (defaults(RULE_ID), Settings)}
TRIGGERS = {RULE_ID: Triggers(task_updated="follow_up_closed")}


def evaluate(ctx: Context, source_ref: str, decided_on: date) -> list[Action]:
    """The leadership's meeting with the guardians, the pupil and the contact teacher, once external bodies are
    involved (decided at a conversation or meeting on ``decided_on``; ``source_ref`` is that task's ref)."""
    tenant, student_id, settings = ctx.tenant_id, ctx.student_id, ctx.settings(RULE_ID)
    calendar, language = ctx.calendar, ctx.language
    if not settings["enabled"]:
        return []
    due = calendar.add_school_days(decided_on, settings["task_school_days"])
    values = {"decided_on": long_date(decided_on, language), "due_date": long_date(due, language)}
    texts = settings.get("texts")
    return [Action(
        kind="task", external_ref=external_ref(tenant, RULE_ID, student_id, source_ref, "task"), rule_id=RULE_ID,
        student_id=student_id, assignee=Party(settings["responsible"], ctx.responsible(RULE_ID)), priority="high",
        case_id=case_id(tenant, RULE_ID, student_id, source_ref), due_date=due.isoformat(),
        title=render(language, "external_meeting.task.title", texts, **values),
        body=render(language, "external_meeting.task.body", texts, **values),
    )]
