"""``absence.notice_missing``: an absence with no written notice from the guardians.

The seed: absence "skal alltid meldes skolen skriftlig … Det skal stå årsak … senest innen tre skoledager". So an
undocumented absence starts a deadline at the end of the N-th school day after it; a notice covering the day (or
the platform marking the absence documented, or a correction to present) before then cancels it. When the deadline
falls due and the absence is still undocumented, the guardians get one reminder and the contact teacher one task.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Iterable, Mapping

from marshmallow import fields

from connector.contract.actions import Action, Party, external_ref
from connector.rules.calendar import SchoolCalendar
from connector.rules.context import Context
from connector.rules.effects import Cancel, Schedule
from connector.rules.followup import follow_up, is_open
from connector.rules.history import ABSENCE, WHOLE_DAY, DayRecord, Notices, covering_notice, parse_day, undocumented_lessons
from connector.rules.settings import ClockTime, RuleSettings, defaults, school_days
from connector.rules.triggers import DayFacts, Triggers
from connector.rules.texts import date_list, lessons_phrase, long_date, render, school_days_phrase, short_date

RULE_ID = "absence.notice_missing"
ABSENCE_STATUSES = ABSENCE
MAX_NOTICE_SPAN_DAYS = 92


class Settings(RuleSettings):
    notice_school_days = school_days(maximum=30)
    task_school_days = school_days(maximum=30)
    same_day_reminder = fields.Boolean()
    same_day_reminder_time = ClockTime()
    # A day missed only in single lessons: no automatic text to the guardians unless the school wants one. The seed
    # asks for a conversation (absence.single_lessons: the contact teacher contacts the home), and an automatic text
    # could tell the guardians of a confidential visit to the school nurse during a lesson.
    remind_guardians_for_lessons = fields.Boolean()


PLAN = {RULE_ID: (defaults(RULE_ID), Settings)}
TRIGGERS = {RULE_ID: Triggers(deadline="pupil_day", task_updated="follow_up_closed")}
SAME_DAY = "same_day"
# In the follow-up state: the days the open task is about that no notice covers yet, as days after the task's own
# day (``open.since``); absent: the task's own day alone. Small numbers keep the state in Redis's compact encoding.
WAITING = "days"


def deadline_id(student_id: str, day: str, step: str = "") -> str:
    return f"{RULE_ID}|{student_id}|{day}" + (f"|{step}" if step else "")


def notice_deadline_day(day: str, settings: Mapping[str, Any], calendar: SchoolCalendar):
    """The last school day on which a notice is in time."""
    return calendar.add_school_days(parse_day(day), settings["notice_school_days"])


def on_day_changed(ctx: Context, day: str, record: DayRecord, notices: Notices) -> list:
    """After a day's marks changed: watch the day if it holds undocumented absence no notice covers, else stop.

    With ``same_day_reminder``, the guardians are also reminded on the day itself ("foreldre bør alltid melde fra
    samme dag"), unless the absence is only learnt of after that day (``today``).
    """
    student_id, settings, calendar, today = ctx.student_id, ctx.settings(RULE_ID), ctx.calendar, ctx.today
    ids = [deadline_id(student_id, day), deadline_id(student_id, day, SAME_DAY)]
    if not (settings["enabled"] and undocumented_lessons(record) and covering_notice(notices, day) is None):
        return [Cancel(i) for i in ids]
    payload = {"rule_id": RULE_ID, "student_id": student_id, "date": day}
    last_day = notice_deadline_day(day, settings, calendar)
    effects: list = [Schedule(ids[0], calendar.start_of_day(last_day + timedelta(days=1)), payload)]
    absence_day = parse_day(day)
    if settings["same_day_reminder"] and (today is None or today <= absence_day):
        hour, minute = map(int, settings["same_day_reminder_time"].split(":"))
        due = calendar.start_of_day(absence_day) + timedelta(hours=hour, minutes=minute)
        effects.append(Schedule(ids[1], due, dict(payload, step=SAME_DAY)))
    return effects


def on_notice(student_id: str, from_date: str, to_date: str) -> list:
    """A notice cancels the watch on every day it covers (a very long notice is also checked when a deadline fires)."""
    start = parse_day(from_date)
    span = min((parse_day(to_date) - start).days, MAX_NOTICE_SPAN_DAYS)
    days = [(start + timedelta(days=i)).isoformat() for i in range(span + 1)]
    return [Cancel(deadline_id(student_id, d, step)) for d in days for step in ("", SAME_DAY)]


def on_deadline(
    ctx: Context, day: str, facts: DayFacts, state: Mapping[str, Any] | None, step: str = "",
) -> tuple[list[Action], dict[str, Any]]:
    """The deadline fell due: if the absence is still undocumented and uncovered, remind the guardians and task
    the contact teacher (on the same day: only remind); otherwise nothing (the state, not the schedule, decides).

    While the contact teacher's task for an earlier day is open, a further day becomes a note on its case.
    """
    tenant_id, student_id, settings = ctx.tenant_id, ctx.student_id, ctx.settings(RULE_ID)
    calendar, language, today = ctx.calendar, ctx.language, ctx.today
    record, notices = facts.record, facts.notices
    lessons = undocumented_lessons(record, ABSENCE_STATUSES)
    if not settings["enabled"] or not lessons or covering_notice(notices, day) is not None:
        return [], dict(state or {})
    absence_day = parse_day(day)
    texts = settings.get("texts")
    remind = WHOLE_DAY in lessons or settings["remind_guardians_for_lessons"]
    if step == SAME_DAY:
        if not remind:
            return [], dict(state or {})
        values = {"absence_date": long_date(absence_day, language), "short_date": short_date(absence_day, language),
                  "lessons": lessons_phrase(lessons, language)}
        return [Action(
            kind="alert", external_ref=external_ref(tenant_id, RULE_ID, student_id, f"{day}/{SAME_DAY}", "alert"),
            rule_id=RULE_ID, student_id=student_id, assignee=Party("guardian"), severity="info",
            title=render(language, "notice_missing.same_day.title", texts, **values),
            body=render(language, "notice_missing.same_day.body", texts, **values),
        )], dict(state or {})
    last_day = notice_deadline_day(day, settings, calendar)
    due = calendar.due_after(last_day, settings["task_school_days"], today)
    values = {
        "absence_date": long_date(absence_day, language),
        "short_date": short_date(absence_day, language),
        "lessons": lessons_phrase(lessons, language),
        "notice_days": school_days_phrase(settings["notice_school_days"], language),
        "notice_deadline": long_date(last_day, language),
        "due_date": long_date(due, language),
    }
    evidence = {"absence_date": day, "lessons_missed": len(lessons), "notice_deadline": last_day.isoformat()}
    reminder = Action(
        kind="alert", external_ref=external_ref(tenant_id, RULE_ID, student_id, day, "alert"), rule_id=RULE_ID,
        student_id=student_id, assignee=Party("guardian"), severity="warning",
        title=render(language, "notice_missing.alert.title", texts, **values),
        body=render(language, "notice_missing.alert.body", texts, **values), evidence=evidence,
    )
    was_open = is_open(state)
    actions, state = follow_up(
        state, tenant=tenant_id, rule_id=RULE_ID, student_id=student_id, occurrence=day, text_key="notice_missing",
        values=values, settings=settings, language=language, assignee=ctx.responsible(RULE_ID), due=due,
        evidence=evidence,
    )
    if not was_open:  # a new task, about its own day
        state.pop(WAITING, None)
    else:  # a note on the open task: one more day it is about
        since = parse_day(state["open"]["since"])
        state[WAITING] = sorted(set(state.get(WAITING, [0])) | {(absence_day - since).days})
    return [reminder, *actions] if remind else actions, state


def on_late_notice(
    ctx: Context, covered_days: Iterable[date | str], state: Mapping[str, Any] | None, reason_codes: Iterable[str] = (),
) -> tuple[list[Action], dict[str, Any]]:
    """A notice came after the reminder and the task went out: the guardians reported (some of) the days the open
    task is about. The contact teacher gets a note on the task's case saying which days, and the reason code if one
    was given (never the notice's words); once every day of the task is reported, the follow-up is closed (as when
    the platform closes the task), so a further missing notice opens a new task.

    ``covered_days``: the school days the notice covers. Nothing happens without an open task, or when the notice
    covers none of its days (those are cancelled before their deadline by :func:`on_notice`).
    """
    state = dict(state or {})
    if not is_open(state):
        return [], state
    current = state["open"]
    since = parse_day(current["since"])
    waiting = {since + timedelta(days=n) for n in state.get(WAITING, [0])}
    covered = {d if isinstance(d, date) else parse_day(d) for d in covered_days}
    reported, left = sorted(waiting & covered), sorted(waiting - covered)
    if not reported:
        return [], state
    language, texts = ctx.language, ctx.settings(RULE_ID).get("texts")
    labels = [render(language, f"notice_missing.reason.{code}", texts) for code in sorted(set(reason_codes)) if code]
    values = {
        "reported_dates": date_list(reported, language),
        "reason": render(language, "notice_missing.reported.reason", texts, reason=", ".join(labels)) if labels else "",
        "left_dates": date_list(left, language),
    }
    occurrence = f"{current['since']}/reported/" + "+".join(d.isoformat() for d in reported)
    note = Action(
        kind="note", external_ref=external_ref(ctx.tenant_id, RULE_ID, ctx.student_id, occurrence, "note"),
        rule_id=RULE_ID, student_id=ctx.student_id, case_id=current["case"], title="",
        body=render(language, "notice_missing.reported.partly.body" if left else "notice_missing.reported.note.body",
                    texts, **values),
    )
    if left:
        state[WAITING] = [(d - since).days for d in left]
    else:
        state["open"] = None
        state.pop(WAITING, None)
    return [note], state
