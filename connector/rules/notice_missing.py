"""``absence.notice_missing``: an absence with no written notice from the guardians.

The seed: absence "skal alltid meldes skolen skriftlig … Det skal stå årsak … senest innen tre skoledager". So an
undocumented absence starts a deadline at the end of the N-th school day after it; a notice covering the day (or
the platform marking the absence documented, or a correction to present) before then cancels it. When the deadline
falls due and the absence is still undocumented, the guardians get one reminder and the contact teacher one task.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Mapping

from marshmallow import Schema, fields, validate

from connector.actions import Action, Party, external_ref
from connector.rules.calendar import SchoolCalendar
from connector.rules.effects import Cancel, Schedule
from connector.rules.history import DayRecord, Notices, covering_notice, parse_day, undocumented_lessons
from connector.rules.texts import lessons_phrase, long_date, render, school_days_phrase, short_date

RULE_ID = "absence.notice_missing"
ABSENCE_STATUSES = ("absent", "left_early")
MAX_NOTICE_SPAN_DAYS = 92


class Settings(Schema):
    """Unknown keys are errors (marshmallow's default): a misspelt setting must not silently stay at its default."""

    enabled = fields.Boolean()
    # Guardians must give a written notice with a reason "senest innen tre skoledager".
    notice_school_days = fields.Integer(validate=validate.Range(min=0, max=30))
    # The contact teacher's follow-up task is due this many school days after the notice deadline.
    task_school_days = fields.Integer(validate=validate.Range(min=0, max=30))


PLAN = {RULE_ID: ({"enabled": True, "notice_school_days": 3, "task_school_days": 2}, Settings)}


def deadline_id(student_id: str, day: str) -> str:
    return f"{RULE_ID}|{student_id}|{day}"


def notice_deadline_day(day: str, settings: Mapping[str, Any], calendar: SchoolCalendar):
    """The last school day on which a notice is in time."""
    return calendar.add_school_days(parse_day(day), settings["notice_school_days"])


def on_day_changed(
    student_id: str, day: str, record: DayRecord, notices: Notices, settings: Mapping[str, Any],
    calendar: SchoolCalendar,
) -> list:
    """After a day's marks changed: watch the day if it holds undocumented absence no notice covers, else stop."""
    if (
        settings["enabled"]
        and undocumented_lessons(record, ABSENCE_STATUSES)
        and covering_notice(notices, day) is None
    ):
        last_day = notice_deadline_day(day, settings, calendar)
        due = calendar.start_of_day(last_day + timedelta(days=1))
        return [Schedule(deadline_id(student_id, day), due, {"rule_id": RULE_ID, "student_id": student_id, "date": day})]
    return [Cancel(deadline_id(student_id, day))]


def on_notice(student_id: str, from_date: str, to_date: str) -> list:
    """A notice cancels the watch on every day it covers (a very long notice is also checked when a deadline fires)."""
    start = parse_day(from_date)
    span = min((parse_day(to_date) - start).days, MAX_NOTICE_SPAN_DAYS)
    return [Cancel(deadline_id(student_id, (start + timedelta(days=i)).isoformat())) for i in range(span + 1)]


def on_deadline(
    tenant_id: str, student_id: str, day: str, record: DayRecord, notices: Notices, contact_teacher: str | None,
    settings: Mapping[str, Any], calendar: SchoolCalendar, language: str,
) -> list[Action]:
    """The deadline fell due: if the absence is still undocumented and uncovered, remind the guardians and task
    the contact teacher; otherwise nothing (the state, not the schedule, decides)."""
    lessons = undocumented_lessons(record, ABSENCE_STATUSES)
    if not settings["enabled"] or not lessons or covering_notice(notices, day) is not None:
        return []
    absence_day = parse_day(day)
    last_day = notice_deadline_day(day, settings, calendar)
    due = calendar.add_school_days(last_day, settings["task_school_days"])
    values = {
        "absence_date": long_date(absence_day, language),
        "short_date": short_date(absence_day, language),
        "lessons": lessons_phrase(lessons, language),
        "notice_days": school_days_phrase(settings["notice_school_days"], language),
        "notice_deadline": long_date(last_day, language),
        "due_date": long_date(due, language),
    }
    return [
        Action(
            kind="alert",
            external_ref=external_ref(tenant_id, RULE_ID, student_id, day, "alert"),
            rule_id=RULE_ID,
            student_id=student_id,
            assignee=Party("guardian"),
            title=render(language, "notice_missing.alert.title", **values),
            body=render(language, "notice_missing.alert.body", **values),
            severity="warning",
        ),
        Action(
            kind="task",
            external_ref=external_ref(tenant_id, RULE_ID, student_id, day, "task"),
            rule_id=RULE_ID,
            student_id=student_id,
            assignee=Party("contact_teacher", contact_teacher),
            title=render(language, "notice_missing.task.title", **values),
            body=render(language, "notice_missing.task.body", **values),
            due_date=due.isoformat(),
        ),
    ]
