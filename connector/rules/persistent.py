"""``absence.persistent``: absence that goes on after the pattern conversation (bekymringsfullt fravær).

The seed: "Vedvarende fravær: Kontaktlærer og ressursperson innkaller foreldre til nytt møte, innen tre uker etter
forrige møte … avklares om det er behov for ekstern assistanse … referat … som hovedregel bør eleven selv delta."
A watch starts when a conversation is completed, dated by the meeting (``completed_at``), not by when the update
arrived; it fires at most once per meeting, and the next meeting starts the next watch, for as long as it lasts.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Mapping

from marshmallow import fields, validate

from connector.contract.actions import Action, Party, case_id, external_ref
from connector.rules.calendar import SchoolCalendar
from connector.rules.context import Context
from connector.rules.history import DayRecord, absence_lessons, day_weight, occasions
from connector.rules.settings import RuleSettings, defaults, school_days, share
from connector.rules.triggers import Triggers
from connector.rules.texts import long_date, percent, render

RULE_ID = "absence.persistent"


class Settings(RuleSettings):
    watch_school_days = school_days()
    min_rate = share()
    undocumented_occasions = fields.Integer(validate=validate.Range(min=1, max=50))
    meeting_within_school_days = school_days()
    min_notice_school_days = school_days()
    lessons_per_day = fields.Integer(validate=validate.Range(min=1, max=20))


PLAN = {RULE_ID: (defaults(RULE_ID), Settings)}
TRIGGERS = {RULE_ID: Triggers(task_updated="meeting_held")}


def watch_days(meeting: date, settings: Mapping[str, Any], calendar: SchoolCalendar) -> list[date]:
    """The school days after the meeting that the watch covers."""
    last = calendar.add_school_days(meeting, settings["watch_school_days"])
    return calendar.school_days(calendar.add_school_days(meeting, 1), last)


def watching(state: Mapping[str, Any] | None, day: date, settings: Mapping[str, Any], calendar: SchoolCalendar) -> bool:
    """Whether ``day`` falls in a watch (so the pattern rule leaves it to this one)."""
    if not state or not state.get("meeting"):
        return False
    meeting = date.fromisoformat(state["meeting"])
    return meeting < day <= calendar.add_school_days(meeting, settings["watch_school_days"])


def evaluate(
    ctx: Context, day: date, records: Mapping[str, DayRecord], state: Mapping[str, Any] | None,
) -> tuple[list[Action], dict[str, Any]]:
    """A meeting task when the absence since the last meeting reaches the limits, once per meeting.

    Due within three weeks of the meeting, but never sooner than ``min_notice_school_days`` from when it is found
    (``today``: registers may be backfilled after the three weeks have passed).
    """
    tenant, student_id, settings = ctx.tenant_id, ctx.student_id, ctx.settings(RULE_ID)
    calendar, language, today = ctx.calendar, ctx.language, ctx.today
    state = dict(state or {})
    if not settings["enabled"] or not watching(state, day, settings, calendar):
        return [], state
    meeting = date.fromisoformat(state["meeting"])
    if state.get("fired_for") == meeting.isoformat():
        return [], state
    # The whole watch as known now, not only up to the day that changed: a day that arrives late is judged with the
    # days after it that came first.
    days = [d for d in watch_days(meeting, settings, calendar) if d <= max(day, today or day)]
    per_day = settings["lessons_per_day"]
    absent_weight = sum(day_weight(records.get(d.isoformat(), {}), per_day) for d in days)
    rate = absent_weight / max(settings["watch_school_days"], 1)
    undocumented = {d for d in days if absence_lessons(records.get(d.isoformat(), {}), documented=False)}
    runs = occasions(days, undocumented)
    if rate < settings["min_rate"] and len(runs) < settings["undocumented_occasions"]:
        return [], state
    occurrence = meeting.isoformat()
    due = max(
        calendar.add_school_days(meeting, settings["meeting_within_school_days"]),
        calendar.add_school_days(max(day, today or day), settings["min_notice_school_days"]),
    )
    values = {
        "meeting_date": long_date(meeting, language),
        "days": len(days),
        "rate": percent(rate),
        "occasions": len(runs),
        "due_date": long_date(due, language),
    }
    texts = settings.get("texts")
    case = case_id(tenant, RULE_ID, student_id, occurrence)
    task = Action(
        kind="task", external_ref=external_ref(tenant, RULE_ID, student_id, occurrence, "task"), rule_id=RULE_ID,
        student_id=student_id, assignee=Party(settings["responsible"], ctx.responsible(RULE_ID)), case_id=case, priority="high",
        title=render(language, "persistent.task.title", texts, **values),
        body=render(language, "persistent.task.body", texts, **values), due_date=due.isoformat(),
        evidence={"meeting_date": occurrence, "school_days": len(days), "rate": round(rate, 4),
                  "undocumented_occasions": len(runs)},
    )
    state.update(fired_for=occurrence, open={"ref": task.external_ref, "case": case, "since": occurrence})
    return [task], state


def meeting_held(state: Mapping[str, Any] | None, meeting: date, outcome: str | None) -> dict[str, Any]:
    """A completed conversation or meeting starts the next watch; ``resolved`` ends the follow-up."""
    state = dict(state or {})
    state["meeting"] = None if outcome == "resolved" else meeting.isoformat()
    return state
