"""``absence.pattern``: a repeated pattern or increasing absence calls for a conversation with pupil and parents.

The seed: "Gjentagende fraværsmønster eller økende fravær: Samtale med elev og foreldre. Skolen kartlegger
relasjonene … Kontaktlærer informerer ledelsen. Innen en uke." A pattern is found only in absences after the last
completed conversation, so the same absences never open a second task.

Judged by the dates in the events, whatever order they come in: a changed day is judged as the end of every window
it falls in (:func:`judged_days`), not only the window ending on it, so an older day that arrives last still
completes a finding. What is written does not depend on which day completed it: one task and one alert per
*episode* (the absences after the last completed conversation, :func:`episode`), due a week after the pattern is
found, and one note on the task's case for each kind of pattern found in the episode (a weekday, a subject,
occasions, an increase), each at most once. For the counting kinds (weekday, subject) the same marks in any order
give the same task, alert and notes. Occasions and the trend may also shrink when a late day joins two absences
into one or lands in the older window; a finding written is then one that was true on what was known."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any, Mapping

from marshmallow import fields, validate

from connector.contract.actions import Action, Party, external_ref
from connector.rules.calendar import SchoolCalendar
from connector.rules.context import Context
from connector.rules.followup import opened
from connector.rules.history import DayRecord, absence_lessons, day_weight, occasions, parse_code
from connector.rules.settings import RuleSettings, defaults, school_days, share
from connector.rules.triggers import Triggers
from connector.rules.texts import date_list, long_date, percent, render, weekday_plural

RULE_ID = "absence.pattern"


class Settings(RuleSettings):
    task_school_days = school_days()
    same_weekday_count = fields.Integer(validate=validate.Range(min=2, max=50))
    same_subject_count = fields.Integer(validate=validate.Range(min=2, max=50))
    repeat_window_school_days = school_days()
    occasion_count = fields.Integer(validate=validate.Range(min=2, max=50))
    occasion_window_school_days = school_days()
    increase_window_school_days = school_days()
    increase_factor = fields.Float(validate=validate.Range(min=1, max=20))
    increase_min_rate = share()
    increase_min_occasions = fields.Integer(validate=validate.Range(min=1, max=50))
    lessons_per_day = fields.Integer(validate=validate.Range(min=1, max=20))
    count_documented = fields.Boolean()


PLAN = {RULE_ID: (defaults(RULE_ID), Settings)}
TRIGGERS = {RULE_ID: Triggers(task_updated="conversation_held")}


@dataclass(frozen=True)
class Finding:
    kind: str  # weekday / subject / occasions / increasing
    detail: str
    dates: tuple[str, ...] = ()
    rates: tuple[float, float] | None = None

    @property
    def key(self) -> str:
        """What makes a finding new for the open task: the weekday or subject; for counts and rates the kind."""
        return f"{self.kind}:{self.detail}" if self.kind in ("weekday", "subject") else self.kind


def evidence_of(finding: Finding) -> dict[str, Any]:
    """What the admin page shows of a finding: its kind, the dates counted and how many (rates as fractions)."""
    shown: dict[str, Any] = {"kind": finding.kind, "count": len(finding.dates), "dates": list(finding.dates)}
    if finding.rates is not None:
        shown["rates"] = [round(rate, 4) for rate in finding.rates]
    return shown


def lookback(day: date, settings: Mapping[str, Any], calendar: SchoolCalendar) -> list[date]:
    """The school days up to ``day`` that the rule reads: a bounded window, whatever the history's length."""
    length = span(settings)
    first = calendar.add_school_days(day, -(length - 1)) if length > 1 else day
    return calendar.school_days(first, day)


def span(settings: Mapping[str, Any]) -> int:
    """How many school days, up to and including its last, the longest window the rule reads has."""
    return max(
        settings["repeat_window_school_days"],
        settings["occasion_window_school_days"],
        2 * settings["increase_window_school_days"],
    )


def judged_days(changed: date, settings: Mapping[str, Any], calendar: SchoolCalendar, today: date) -> list[date]:
    """The days to judge when ``changed`` changed: itself and every school day up to ``today`` whose window it
    falls in (an older day that arrives late can complete a window ending after it)."""
    if changed >= today or span(settings) <= 1:
        return [changed]
    last = min(calendar.add_school_days(changed, span(settings) - 1), today)
    later = [d for d in calendar.school_days(changed, last) if d > changed]
    return [changed, *later]


def read_window(changed: date, settings: Mapping[str, Any], calendar: SchoolCalendar, today: date) -> list[date]:
    """The days whose records judging ``changed`` needs: every window of :func:`judged_days`."""
    ends = judged_days(changed, settings, calendar, today)
    return sorted({*lookback(changed, settings, calendar), *ends,
                   *(calendar.school_days(ends[0], ends[-1]) if len(ends) > 1 else ())})


def episode(state: Mapping[str, Any] | None) -> str:
    """What one task is about: the absences after the last completed conversation (or since records began)."""
    closed = (state or {}).get("closed_on")
    return f"after-{closed}" if closed else "first"


def _last(days: list[date], n: int) -> list[date]:
    return days[-n:] if n else []


def findings(
    day: date, records: Mapping[str, DayRecord], settings: Mapping[str, Any], calendar: SchoolCalendar,
    since: date | None = None,
) -> list[Finding]:
    """Every default pattern of DOMAIN §1 that the absence on ``day`` is part of."""
    include_documented = settings["count_documented"]
    days = lookback(day, settings, calendar)
    if not days or days[-1] != day:
        days = [d for d in days if d < day] + [day]

    absent_days = {d for d in days if (since is None or d > since)
                   and day_weight(records.get(d.isoformat(), {}), 1, include_documented) > 0}

    def counts(d: date) -> bool:
        return d in absent_days

    if not counts(day):
        return []
    found: list[Finding] = []

    repeat = [d for d in _last(days, settings["repeat_window_school_days"]) if counts(d)]
    same_day = [d for d in repeat if d.weekday() == day.weekday()]
    if len(same_day) >= settings["same_weekday_count"]:
        found.append(Finding("weekday", str(day.weekday()), tuple(d.isoformat() for d in same_day)))

    by_subject: dict[str, list[str]] = defaultdict(list)
    for d in repeat:
        record = records.get(d.isoformat(), {})
        for key in absence_lessons(record, documented=None if include_documented else False):
            subject = parse_code(record[key]).subject
            if subject:
                by_subject[subject].append(d.isoformat())
    today = records.get(day.isoformat(), {})
    todays_subjects = {parse_code(today[k]).subject for k in absence_lessons(today)} - {None}
    for subject in sorted(todays_subjects):
        if len(by_subject[subject]) >= settings["same_subject_count"]:
            found.append(Finding("subject", subject, tuple(by_subject[subject])))

    window = _last(days, settings["occasion_window_school_days"])
    runs = occasions(window, {d for d in window if counts(d)})
    if len(runs) >= settings["occasion_count"] and day in runs[-1]:
        found.append(Finding("occasions", str(len(runs)), tuple(run[0].isoformat() for run in runs)))

    n = settings["increase_window_school_days"]
    if n and len(days) >= 2 * n:
        per_day = settings["lessons_per_day"]
        recent = sum(day_weight(records.get(d.isoformat(), {}), per_day, include_documented)
                     for d in days[-n:] if since is None or d > since) / n
        before = sum(day_weight(records.get(d.isoformat(), {}), per_day, include_documented)
                     for d in days[-2 * n:-n]) / n
        recent_days = days[-n:]
        spread = len(occasions(recent_days, {d for d in recent_days if counts(d)}))
        if (recent >= settings["increase_min_rate"] and recent >= settings["increase_factor"] * before
                and spread >= settings["increase_min_occasions"]):
            found.append(Finding("increasing", f"{recent:.3f}", rates=(recent, before)))
    return found


def describe(finding: Finding, settings: Mapping[str, Any], language: str) -> str:
    """One line of the task's "why", in the tenant's language."""
    values = {"count": len(finding.dates), "dates": date_list(finding.dates, language)}
    if finding.kind == "weekday":
        values.update(weekday=weekday_plural(int(finding.detail), language), window=settings["repeat_window_school_days"])
    elif finding.kind == "subject":
        values.update(subject=finding.detail, window=settings["repeat_window_school_days"])
    elif finding.kind == "occasions":
        values.update(window=settings["occasion_window_school_days"])
    else:
        recent, before = finding.rates
        values.update(recent=percent(recent), before=percent(before), window=settings["increase_window_school_days"])
    return render(language, f"pattern.finding.{finding.kind}", settings.get("texts"), **values)


def evaluate(
    ctx: Context, day: date, records: Mapping[str, DayRecord], state: Mapping[str, Any] | None,
    watched: bool = False,
) -> tuple[list[Action], dict[str, Any]]:
    """The patterns the window ending on ``day`` shows: the episode's task and alert when none is open yet, and a
    note for each kind of pattern the episode has not shown before.

    ``watched``: a persistence watch runs after a completed conversation, and the persistence rule has the word.
    The week for the conversation counts from when the pattern is found (``today``), so the task is the same
    whichever late day completed it.
    """
    tenant, student_id, settings = ctx.tenant_id, ctx.student_id, ctx.settings(RULE_ID)
    calendar, language, today = ctx.calendar, ctx.language, ctx.today
    state = dict(state or {})
    if not settings["enabled"]:
        return [], state
    since = date.fromisoformat(state["closed_on"]) if state.get("closed_on") else None
    found = findings(day, records, settings, calendar, since)
    if not found:
        return [], state
    texts = settings.get("texts")
    actions: list[Action] = []
    if not state.get("open"):
        if watched:
            return [], state
        occurrence = episode(state)
        opening = opened(tenant, RULE_ID, student_id, occurrence)
        due = calendar.add_school_days(max(day, today or day), settings["task_school_days"])
        why = "\n".join(f"– {describe(f, settings, language)}" for f in found)
        evidence = {"findings": [evidence_of(f) for f in found]}
        values = {"why": why, "due_date": long_date(due, language), "date": long_date(day, language)}
        actions += [
            Action(
                kind="task", external_ref=opening["ref"], rule_id=RULE_ID,
                student_id=student_id, assignee=Party(settings["responsible"], ctx.responsible(RULE_ID)),
                case_id=opening["case"],
                title=render(language, "pattern.task.title", texts, **values),
                body=render(language, "pattern.task.body", texts, **values), due_date=due.isoformat(),
                evidence=evidence,
            ),
            Action(
                kind="alert", external_ref=external_ref(tenant, RULE_ID, student_id, occurrence, "alert"),
                rule_id=RULE_ID, student_id=student_id, assignee=Party("nearest_leader", ctx.people.get("nearest_leader")), severity="info",
                title=render(language, "pattern.alert.title", texts, **values),
                body=render(language, "pattern.alert.body", texts, **values), evidence=evidence,
            ),
        ]
        state.update(open=opening, noted=[])
    current = state["open"]
    noted = set(state.get("noted", []))
    for finding in found:
        if finding.key in noted:
            continue
        noted.add(finding.key)
        actions.append(Action(
            kind="note",
            external_ref=external_ref(tenant, RULE_ID, student_id, f"{current['since']}/{finding.key}", "note"),
            rule_id=RULE_ID, student_id=student_id, case_id=current["case"], title="",
            body=render(language, "pattern.note.body", texts, finding=describe(finding, settings, language)),
            evidence={"findings": [evidence_of(finding)]},
        ))
    state["noted"] = sorted(noted)
    return actions, state
