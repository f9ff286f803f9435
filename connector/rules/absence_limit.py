"""The 10 % absence limit of upper secondary school (fraværsgrensen), per subject.

Only undocumented absence counts, as a share of the subject's planned hours for the school year. The pupil and the
guardians are warned when the share crosses each warning threshold (default 5 % and 8 %), and the contact teacher
gets a task when it reaches the limit (10 %); between 10 and 15 % the principal may still award a grade. Each
threshold is acted on at most once per term: its occurrence is (term, subject, threshold).
"""
from __future__ import annotations

from datetime import date

from marshmallow import fields, validate

from connector.contract.actions import Action, Party, external_ref
from connector.rules.calendar import SchoolCalendar
from connector.rules.context import Context
from connector.rules.history import DayRecord, parse_code
from connector.rules.settings import RuleSettings, defaults, school_days, share
from connector.rules.texts import long_date, percent, render

WARNING = "absence_limit.warning"
REACHED = "absence_limit.reached"


class WarningSettings(RuleSettings):
    warning_thresholds = fields.List(share(), validate=validate.Length(max=5))
    lesson_minutes = fields.Integer(validate=validate.Range(min=10, max=240))
    planned_hours = fields.Dict(keys=fields.String(), values=fields.Float(validate=validate.Range(min=1, max=2000)))


class ReachedSettings(RuleSettings):
    limit = share()
    task_school_days = school_days()


PLAN = {WARNING: (defaults(WARNING), WarningSettings), REACHED: (defaults(REACHED), ReachedSettings)}


def undocumented_minutes(record: DayRecord, lesson_minutes: int) -> dict[str, int]:
    """Per subject, the undocumented minutes a day record holds (lessons without a subject do not count)."""
    minutes: dict[str, int] = {}
    for code in record.values():
        mark = parse_code(code)
        if mark.documented or not mark.subject:
            continue
        minutes[mark.subject] = minutes.get(mark.subject, 0) + (mark.minutes or lesson_minutes)
    return minutes


def minutes_delta(before: DayRecord, after: DayRecord, lesson_minutes: int) -> dict[str, int]:
    """How a day's change moves each subject's count: absences added, documented later, or corrected."""
    old, new = undocumented_minutes(before, lesson_minutes), undocumented_minutes(after, lesson_minutes)
    return {s: new.get(s, 0) - old.get(s, 0) for s in set(old) | set(new) if new.get(s, 0) != old.get(s, 0)}


def term_of(day: date, calendar: SchoolCalendar) -> tuple[str, str]:
    """(school year, term) of a day: autumn until New Year, spring after."""
    for year in calendar.years:
        if year.first_day <= day <= year.last_day:
            name = year.name or f"{year.first_day.year}-{str(year.last_day.year)[-2:]}"
            return name, "autumn" if day.year == year.first_day.year else "spring"
    start = day.year if day.month >= 8 else day.year - 1
    return f"{start}-{str(start + 1)[-2:]}", "autumn" if day.month >= 8 else "spring"


def crossings(
    ctx: Context, day: date, subject: str, total_minutes: int, acted_on: float,
) -> tuple[list[Action], float]:
    """Actions for every threshold the subject's share has reached and that was not yet acted on this term.

    Returns the actions and the highest threshold now acted on (``acted_on`` unchanged when there is nothing new).
    Every threshold crossed gets its own action, also when one delivery (a day's registers sent at once, or a
    backfill) jumps past several: the warnings are the pupil's and the guardians' notice before the limit, so the
    same marks give the same warnings whether they came one by one or together. The task is due counted from when
    the limit is found (``today``), whichever mark completed it.
    """
    tenant, student_id, warning, reached = ctx.tenant_id, ctx.student_id, ctx.settings(WARNING), ctx.settings(REACHED)
    calendar, language, today = ctx.calendar, ctx.language, ctx.today
    planned = warning["planned_hours"].get(subject)
    if not planned:
        return [], acted_on
    share_now = total_minutes / (planned * 60)
    year, term = term_of(day, calendar)
    values = {"subject": subject, "share": percent(share_now), "limit": percent(reached["limit"]),
              "hours": f"{total_minutes / 60:.1f}".replace(".", "," if language != "en" else "."),
              "planned": f"{planned:g}"}
    actions: list[Action] = []
    highest = acted_on
    if warning["enabled"]:
        for threshold in sorted(warning["warning_thresholds"]):
            if not acted_on < threshold <= share_now:
                continue
            highest = max(highest, threshold)
            occurrence = f"{year}/{term}/{subject}/{threshold}"
            for recipient in ("student", "guardian"):
                actions.append(Action(
                    kind="alert", rule_id=WARNING, student_id=student_id, severity="warning",
                    external_ref=external_ref(tenant, WARNING, student_id, f"{occurrence}/{recipient}", "alert"),
                    assignee=Party(recipient),
                    title=render(language, "absence_limit.warning.title", warning.get("texts"),
                                 threshold=percent(threshold), **values),
                    body=render(language, f"absence_limit.warning.body_{recipient}", warning.get("texts"),
                                threshold=percent(threshold), **values),
                ))
    if reached["enabled"] and acted_on < reached["limit"] <= share_now:
        due = calendar.add_school_days(max(day, today or day), reached["task_school_days"])
        occurrence = f"{year}/{term}/{subject}/{reached['limit']}"
        actions.append(Action(
            kind="task", rule_id=REACHED, student_id=student_id, priority="high", due_date=due.isoformat(),
            external_ref=external_ref(tenant, REACHED, student_id, occurrence, "task"),
            assignee=Party(reached["responsible"], ctx.responsible(REACHED)),
            title=render(language, "absence_limit.reached.title", reached.get("texts"), **values),
            body=render(language, "absence_limit.reached.body", reached.get("texts"),
                        due_date=long_date(due, language), **values),
        ))
        highest = max(highest, reached["limit"])
    return actions, highest
