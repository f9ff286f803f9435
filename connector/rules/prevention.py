"""The preventive routines: tasks on the school calendar, and the information a pupil who joins mid-year needs.

The seed's "Skolens forebyggende innsats": a class-by-class review of expectations and absence procedures at the
autumn parent meeting (``prevention.expectations_review``, contact teachers and the principal), absence as a
standing topic of each term's development talk (``prevention.development_talk``), and for pupils who join during
the year, the contact teacher informs the guardians (``prevention.new_student_info``).
"""
from __future__ import annotations

from datetime import date
from typing import Any, Mapping

from connector.contract.actions import Action, Party, external_ref
from connector.rules.calendar import SchoolCalendar, SchoolYear
from connector.rules.context import Context
from connector.rules.effects import Schedule
from connector.rules.settings import MonthDay, RuleSettings, defaults, school_days
from connector.rules.triggers import Triggers
from connector.rules.texts import long_date, render

REVIEW = "prevention.expectations_review"
TALK = "prevention.development_talk"
NEW_STUDENT = "prevention.new_student_info"


class ReviewSettings(RuleSettings):
    due_month_day = MonthDay()
    lead_school_days = school_days()


class TalkSettings(RuleSettings):
    autumn_due = MonthDay()
    spring_due = MonthDay()
    lead_school_days = school_days()


class NewStudentSettings(RuleSettings):
    task_school_days = school_days()


PLAN = {
    REVIEW: (defaults(REVIEW), ReviewSettings),
    TALK: (defaults(TALK), TalkSettings),
    NEW_STUDENT: (defaults(NEW_STUDENT), NewStudentSettings),
}
TRIGGERS = {REVIEW: Triggers(deadline="routine"), TALK: Triggers(deadline="routine")}


def year_name(year: SchoolYear) -> str:
    return year.name or f"{year.first_day.year}-{str(year.last_day.year)[-2:]}"


def _in_year(year: SchoolYear, month_day: str, spring: bool) -> date:
    month, day = map(int, month_day.split("-"))
    return date(year.last_day.year if spring else year.first_day.year, month, day)


def routine_dates(
    plan: Mapping[str, Mapping[str, Any]], calendar: SchoolCalendar
) -> list[tuple[str, str, date, SchoolYear]]:
    """(rule id, occurrence, due date, school year) of every calendar routine in the configured school years."""
    found = []
    for year in calendar.years:
        name = year_name(year)
        if plan[REVIEW]["enabled"]:
            found.append((REVIEW, name, _in_year(year, plan[REVIEW]["due_month_day"], spring=False), year))
        if plan[TALK]["enabled"]:
            found.append((TALK, f"{name}/autumn", _in_year(year, plan[TALK]["autumn_due"], spring=False), year))
            found.append((TALK, f"{name}/spring", _in_year(year, plan[TALK]["spring_due"], spring=True), year))
    return found


def schedules(plan: Mapping[str, Mapping[str, Any]], calendar: SchoolCalendar, today: date) -> list[Schedule]:
    """When each routine's tasks appear: ``lead_school_days`` before they are due, never before the first day.

    Routines whose due date has passed are left alone: a school that starts using the connector in November
    does not get September's tasks.
    """
    result = []
    for rule_id, occurrence, due, year in routine_dates(plan, calendar):
        if due < today:
            continue
        appear = max(calendar.add_school_days(due, -plan[rule_id]["lead_school_days"]), year.first_day)
        result.append(Schedule(
            f"{rule_id}|{occurrence}", calendar.start_of_day(appear),
            {"rule_id": rule_id, "occurrence": occurrence, "due": due.isoformat()},
        ))
    return result


def group_tasks(
    ctx: Context, rule_id: str, occurrence: str, due: date, groups: Mapping[str, str | None],
) -> list[Action]:
    """One task per group for its contact teacher (``groups``: group -> who that is); for the autumn review also one
    for the principal."""
    tenant, settings, language = ctx.tenant_id, ctx.settings(rule_id), ctx.language
    texts = settings.get("texts")
    key = rule_id.split(".", 1)[1]
    actions = []
    for group_id, teacher in sorted(groups.items()):
        values = {"group": group_id, "due_date": long_date(due, language)}
        actions.append(Action(
            kind="task", external_ref=external_ref(tenant, rule_id, f"group:{group_id}", occurrence, "task"),
            rule_id=rule_id, student_id=None, group_id=group_id, due_date=due.isoformat(),
            assignee=Party(settings["responsible"], teacher),
            title=render(language, f"{key}.task.title", texts, **values),
            body=render(language, f"{key}.task.body", texts, **values),
        ))
    if rule_id == REVIEW:
        values = {"groups": len(groups), "due_date": long_date(due, language)}
        actions.append(Action(
            kind="task", external_ref=external_ref(tenant, rule_id, "principal", occurrence, "task"),
            rule_id=rule_id, student_id=None, due_date=due.isoformat(), assignee=Party("principal", ctx.people.get("principal")),
            title=render(language, "expectations_review.principal.title", texts, **values),
            body=render(language, "expectations_review.principal.body", texts, **values),
        ))
    return actions


def new_student(ctx: Context, group_id: str, enrolled: date) -> list[Action]:
    """A pupil who joins after the school year started (those present from the first day had the autumn review)."""
    tenant, student_id, settings = ctx.tenant_id, ctx.student_id, ctx.settings(NEW_STUDENT)
    calendar, language = ctx.calendar, ctx.language
    if not settings["enabled"]:
        return []
    year = next((y for y in calendar.years if y.first_day <= enrolled <= y.last_day), None)
    if calendar.years and (year is None or enrolled <= year.first_day):
        return []
    due = calendar.add_school_days(enrolled, settings["task_school_days"])
    values = {"group": group_id, "enrolled": long_date(enrolled, language), "due_date": long_date(due, language)}
    texts = settings.get("texts")
    return [Action(
        kind="task", external_ref=external_ref(tenant, NEW_STUDENT, student_id, enrolled.isoformat(), "task"),
        rule_id=NEW_STUDENT, student_id=student_id, group_id=group_id, due_date=due.isoformat(),
        assignee=Party(settings["responsible"], ctx.responsible(NEW_STUDENT)),
        title=render(language, "new_student_info.task.title", texts, **values),
        body=render(language, "new_student_info.task.body", texts, **values),
    )]
