"""``absence.single_lessons``: absence from single lessons on a day the pupil was otherwise at school.

The seed: "Fravær i enkeltstående timer: Kontaktlærer skal kontakte hjemmet og drøfte fraværet. Innen en uke." A
day is judged once its registers are in (``evaluate_at``, local time): absent from some of the lessons the group
had, and present in others. Documented single lessons (a dentist) need no talk unless the school says so.
"""
from __future__ import annotations

from datetime import date, datetime, time
from typing import Any, Mapping

from marshmallow import fields

from connector.contract.actions import Action
from connector.rules.context import Context
from connector.rules.effects import Schedule
from connector.rules.followup import follow_up
from connector.rules.history import WHOLE_DAY, DayRecord, absence_lessons, covering_notice
from connector.rules.settings import ClockTime, RuleSettings, defaults, school_days
from connector.rules.triggers import DayFacts, Triggers
from connector.rules.texts import lessons_phrase, long_date

RULE_ID = "absence.single_lessons"


class Settings(RuleSettings):
    task_school_days = school_days()
    count_documented = fields.Boolean()
    evaluate_at = ClockTime()


PLAN = {RULE_ID: (defaults(RULE_ID), Settings)}
TRIGGERS = {RULE_ID: Triggers(deadline="pupil_day", task_updated="follow_up_closed")}
READS_LESSONS_HELD = True  # a day is "single lessons" only against the lessons the group had


def deadline_id(student_id: str, day: str) -> str:
    return f"{RULE_ID}|{student_id}|{day}"


def on_day_changed(ctx: Context, day: str, record: DayRecord) -> list:
    """A lesson-level absence: judge the day once its registers are in. A day that is no school day (a register
    from a weekend trip, a date typed wrong) is kept, but no lesson follow-up is made of it."""
    student_id, settings, calendar = ctx.student_id, ctx.settings(RULE_ID), ctx.calendar
    if not settings["enabled"] or not any(key != WHOLE_DAY for key in absence_lessons(record)):
        return []
    if not calendar.is_school_day(date.fromisoformat(day)):
        return []
    hour, minute = map(int, settings["evaluate_at"].split(":"))
    local = datetime.combine(date.fromisoformat(day), time(hour, minute), tzinfo=calendar.start_of_day(
        date.fromisoformat(day)).tzinfo)
    return [Schedule(deadline_id(student_id, day), local, {"rule_id": RULE_ID, "student_id": student_id, "date": day})]


def on_deadline(
    ctx: Context, day: str, facts: DayFacts, state: Mapping[str, Any] | None, step: str = "",
) -> tuple[list[Action], dict[str, Any]]:
    """The task (or, while one is open, a note) when the pupil missed single lessons of a day otherwise attended.

    Due a week (``task_school_days``) after the absence, or after ``today`` when that has passed already: a day
    registered late never gets a task due in the past."""
    tenant, student_id, settings = ctx.tenant_id, ctx.student_id, ctx.settings(RULE_ID)
    calendar, language, today = ctx.calendar, ctx.language, ctx.today
    record, notices, lessons_held = facts.record, facts.notices, facts.lessons_held
    state = dict(state or {})
    if not settings["enabled"] or WHOLE_DAY in record or covering_notice(notices, day):
        return [], state
    if not calendar.is_school_day(date.fromisoformat(day)):
        return [], state
    missed = absence_lessons(record, documented=None if settings["count_documented"] else False)
    attended = set(lessons_held) - set(absence_lessons(record))
    if not missed or not attended:
        return [], state
    absence_day = date.fromisoformat(day)
    due = calendar.due_after(absence_day, settings["task_school_days"], today)
    values = {
        "date": long_date(absence_day, language), "lessons": lessons_phrase(missed, language),
        "held": len(set(lessons_held) | set(missed)), "due_date": long_date(due, language),
    }
    return follow_up(
        state, tenant=tenant, student_id=student_id, rule_id=RULE_ID, occurrence=day, text_key="single_lessons",
        values=values, settings=settings, language=language, assignee=ctx.responsible(RULE_ID), due=due,
        evidence={"absence_date": day, "lessons_missed": len(missed), "lessons_held": len(set(lessons_held) | set(missed))},
    )
