"""``absence.school_refusal``: the guardians say the pupil must be pressed to go to school and asks to stay home.

The seed: "Kontaktlærer får beskjed hvis eleven må presses for å gå på skolen, og ber om å få slippe. Dette gjelder
også problematferd hjemme. Så raskt som mulig." The contact teacher is alerted at once (urgent), and the pattern
follow-up starts: a conversation with the pupil and guardians, which, once held, starts the persistence watch.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Mapping

from connector.contract.actions import Action, Party, external_ref
from connector.rules.context import Context
from connector.rules.followup import follow_up
from connector.rules.settings import RuleSettings, defaults, school_days
from connector.rules.triggers import Triggers
from connector.rules.texts import long_date, render

RULE_ID = "absence.school_refusal"


class Settings(RuleSettings):
    task_school_days = school_days()


PLAN = {RULE_ID: (defaults(RULE_ID), Settings)}
TRIGGERS = {RULE_ID: Triggers(task_updated="conversation_held")}


def evaluate(
    ctx: Context, source: str, reported_on: date, via: str, state: Mapping[str, Any] | None,
) -> tuple[list[Action], dict[str, Any]]:
    """``source`` identifies the report (a message id, a notice's dates), ``via`` is ``message`` or ``notice``."""
    tenant, student_id, settings = ctx.tenant_id, ctx.student_id, ctx.settings(RULE_ID)
    calendar, language, teacher = ctx.calendar, ctx.language, ctx.responsible(RULE_ID)
    if not settings["enabled"]:
        return [], dict(state or {})
    texts = settings.get("texts")
    first_day = calendar.next_school_day(reported_on)
    due = calendar.add_school_days(first_day, settings["task_school_days"])
    values = {
        "reported_on": long_date(reported_on, language),
        "via": render(language, f"school_refusal.via.{via}", texts),
        "due_date": long_date(due, language),
    }
    alert = Action(
        kind="alert", external_ref=external_ref(tenant, RULE_ID, student_id, source, "alert"), rule_id=RULE_ID,
        student_id=student_id, assignee=Party(settings["responsible"], teacher), severity="urgent",
        title=render(language, "school_refusal.alert.title", texts, **values),
        body=render(language, "school_refusal.alert.body", texts, **values),
    )
    actions, state = follow_up(
        state, tenant=tenant, rule_id=RULE_ID, student_id=student_id, occurrence=reported_on.isoformat(),
        text_key="school_refusal", values=values, settings=settings, language=language, assignee=teacher, due=due,
        priority="high",
    )
    return [alert, *actions], state
