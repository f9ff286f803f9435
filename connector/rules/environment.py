"""The school-environment routes (opplæringslova chapter 12): the only cases that do not start at the bottom.

The law, not the seed, sets these: all staff must notify the principal, the school must investigate as soon as
possible and write an activity plan stating the problem, the measures, when they happen, who does them and when
they are evaluated. If a staff member is suspected of offending a pupil, the principal is told at once; if the
suspect is in the school leadership, the school owner is.

So a ``school_environment`` case goes straight to track A's second level (social teacher / school-environment
team) with the principal alerted, and a ``staff_involved`` case straight to the principal (or the school owner).
From there the case follows the ladder (``rules/escalation.py``): the investigation task is the level's task, with
its acknowledge and feedback deadlines, and only an explicit escalation moves it further.
"""
from __future__ import annotations

from datetime import date

from marshmallow import Schema, fields, validate

from connector.contract.actions import Action
from connector.rules import escalation
from connector.rules.escalation import Context, alert, log, note, party, task, text
from connector.rules.triggers import Triggers
from connector.rules.texts import long_date

RULE_NOTIFY = "environment.notify_principal"
RULE_INVESTIGATE = "environment.investigate"
RULE_PLAN = "environment.activity_plan"
RULE_STAFF = "environment.staff_involved"


class SchoolDays(Schema):
    school_days = fields.Integer(validate=validate.Range(min=0, max=30))


PLAN = {
    # "Investigate as soon as possible": the level's acknowledge deadline on these routes, too.
    RULE_INVESTIGATE: ({"school_days": 1}, SchoolDays),
    # The written activity plan; the law says only "snarast", so this is the school's own default.
    RULE_PLAN: ({"school_days": 5}, SchoolDays),
}
TRIGGERS = {RULE_INVESTIGATE: Triggers(task_updated="level_task"), RULE_PLAN: Triggers(task_updated="activity_plan")}


def open_case(case: dict, ctx: Context, day: date) -> list:
    """The immediate route for a new ``environment`` or ``staff`` case reported on ``day``."""
    line = "school"
    staff = case["route"] == "staff"
    index = 0 if staff else escalation.LADDERS["A"][line].index(escalation.SCHOOL_ENVIRONMENT)
    level = escalation.levels(case, line)[index]
    holder = party(level, ctx)
    investigate_last = ctx.calendar.add_school_days(day, ctx.plan[RULE_INVESTIGATE]["school_days"])
    plan_last = ctx.calendar.add_school_days(day, ctx.plan[RULE_PLAN]["school_days"])
    feedback_last = ctx.calendar.add_school_days(day, ctx.settings["feedback_school_days"])
    told = holder if staff else party(escalation.PRINCIPAL, ctx)
    values = {
        **escalation.case_values(case, ctx),
        "holder_name": escalation.level_name(ctx, level),
        "told_name": escalation.level_name(ctx, escalation.SCHOOL_OWNER if told.role == "school_owner"
                                           else escalation.PRINCIPAL),
        "investigate_due": long_date(investigate_last, ctx.language),
        "plan_due": long_date(plan_last, ctx.language),
        "feedback_due": long_date(feedback_last, ctx.language),
        "rule": case["rule"],
        "messages": ", ".join(case["messages"]),
        "guardian": case["guardian"] or "-",
    }
    route = "staff" if staff else "environment"
    if staff:
        values["why_told"] = text(ctx, f"environment.told.{told.role}")
    investigate = task(
        case, ctx, RULE_INVESTIGATE, line, index, holder,
        text(ctx, f"environment.investigate.{route}.title", **values),
        text(ctx, f"environment.investigate.{route}.body", **values),
        investigate_last, priority="high",
    )
    effects: list = escalation.start_level(
        case, line, index, day, ctx, why="", level_task=investigate,
        ack_school_days=ctx.plan[RULE_INVESTIGATE]["school_days"],
    )
    log(case, day, "created", line, route=route, told=told.role)
    effects.append(_told(case, ctx, staff, told, values))
    effects.append(task(
        case, ctx, RULE_PLAN, line, index, holder,
        text(ctx, "environment.activity_plan.title", **values),
        text(ctx, "environment.activity_plan.body", **values),
        plan_last,
    ))
    log(case, day, "activity_plan_requested", line)
    effects.append(note(case, ctx, RULE_STAFF if staff else RULE_NOTIFY, "created",
                        text(ctx, f"environment.created.{route}", **values)))
    return effects


def _told(case: dict, ctx: Context, staff: bool, told, values: dict) -> Action:
    if staff:
        return alert(case, ctx, RULE_STAFF, "case", told, text(ctx, "environment.staff_involved.title", **values),
                     text(ctx, "environment.staff_involved.body", **values), severity="urgent")
    return alert(case, ctx, RULE_NOTIFY, "case", told, text(ctx, "environment.notify_principal.title", **values),
                 text(ctx, "environment.notify_principal.body", **values), severity="warning")
