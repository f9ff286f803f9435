"""The school-environment routes of opplæringslova chapter 12 (``environment.*``), without Redis, HTTP or Flask.

DOMAIN §3: all staff notify the principal (``environment.notify_principal``); the school investigates as soon as
possible (``environment.investigate``, default 1 school day) and writes an activity plan stating the problem, the
measures, when, who and when they are evaluated (``environment.activity_plan``). A staff member suspected of
offending a pupil: the principal is told at once (``environment.staff_involved``, urgent), or the school owner when
the suspect is in the school leadership (the stricter duty of § 12-5). These routes skip the ladder's lower levels.

The cases are reported on Thursday 5 November 2026; Friday 6 November is a day off.
"""
from __future__ import annotations

from datetime import date

import pytest
from marshmallow import ValidationError

from connector.contract.actions import Action, Party
from connector.rules import environment as rule
from connector.rules import escalation
from connector.rules.effects import Schedule
from connector.rules.plan import merge_plan
from tests.rule_support import CALENDAR, PUPIL, TENANT, ref

REPORTED = date(2026, 11, 5)
PEOPLE = {"contact_teacher": "u-kl", "social_teacher": "u-sos", "nearest_leader": "u-leder",
          "principal": "u-rektor", "school_owner": "u-eier"}


def context(plan=None, people=PEOPLE, language="en") -> escalation.Context:
    return escalation.Context(TENANT, merge_plan(plan), CALENDAR, language, people, REPORTED)


def new_case(category="school_environment", accused=None, case_id="c-1") -> dict:
    return escalation.new_case(case_id, category, "mobbing.nb", accused, [PUPIL], "g-1", "m-1", REPORTED)


def opened(category="school_environment", accused=None, **kw):
    case = new_case(category, accused, kw.pop("case_id", "c-1"))
    return case, rule.open_case(case, context(**kw), REPORTED)


def actions_of(effects) -> list[tuple[str, str, Party | None]]:
    return [(e.kind, e.rule_id, e.assignee) for e in effects if isinstance(e, Action)]


@pytest.mark.parametrize("category,route", [
    ("own_child_case", "ladder"), ("several_children_case", "ladder"),
    ("school_environment", "environment"), ("staff_involved", "staff"),
])
def test_only_school_environment_and_staff_cases_take_the_law_routes(category, route):
    assert escalation.route_of(category) == route


def test_a_school_environment_case_alerts_the_principal_and_goes_straight_to_the_social_teacher():
    case, effects = opened()
    assert actions_of(effects) == [
        ("task", "environment.investigate", Party("social_teacher", "u-sos")),
        ("alert", "environment.notify_principal", Party("principal", "u-rektor")),
        ("task", "environment.activity_plan", Party("social_teacher", "u-sos")),
        ("note", "environment.notify_principal", None),
    ]
    investigate, alert, plan, note = [e for e in effects if isinstance(e, Action)]
    assert (investigate.priority, investigate.case_id, investigate.extra) == ("high", "c-1", {"line": "school", "level": 1})
    assert investigate.title == "School-environment case c-1: look into it as soon as possible"
    assert "section 12-4" in investigate.body
    assert alert.severity == "warning"
    assert alert.title == "School-environment case c-1: notice to the principal"
    assert (case["route"], case["track"], case["lines"]["school"]["level"]) == ("environment", "A", 1)
    assert [(h["step"], h["level"]) for h in case["history"]] == [
        ("created", "school_environment"), ("activity_plan_requested", "school_environment")]
    assert case["history"][0]["told"] == "principal"


def test_the_investigation_is_due_the_next_school_day_and_the_activity_plan_and_feedback_in_five():
    case, effects = opened()
    investigate, _, plan, _ = [e for e in effects if isinstance(e, Action)]
    assert investigate.due_date == "2026-11-09"  # Thursday 5 + 1 school day: Friday 6 is off
    assert plan.due_date == "2026-11-13"
    assert case["lines"]["school"]["due"] == {"ack": "2026-11-09", "feedback": "2026-11-13"}
    assert [e for e in effects if isinstance(e, Schedule)] == [
        Schedule("escalation|c-1|school|1|ack", CALENDAR.start_of_day(date(2026, 11, 10)),
                 {"rule_id": "escalation.reminder", "case_id": "c-1", "line": "school", "level": 1,
                  "obligation": "ack", "miss": 0, "due": "2026-11-09"}),
        Schedule("escalation|c-1|school|1|feedback", CALENDAR.start_of_day(date(2026, 11, 14)),
                 {"rule_id": "escalation.reminder", "case_id": "c-1", "line": "school", "level": 1,
                  "obligation": "feedback", "miss": 0, "due": "2026-11-13"}),
    ]


def test_the_activity_plan_asks_for_problem_measures_when_who_and_evaluation():
    _, effects = opened()
    plan = next(e for e in effects if isinstance(e, Action) and e.rule_id == rule.RULE_PLAN)
    for item in ("- the problem the measures are to solve,", "- the measures the school has planned,",
                 "- when the measures will be carried out,", "- who is responsible for carrying them out, and",
                 "- when the measures will be evaluated."):
        assert item in plan.body
    assert "Due: Friday 13 November 2026." in plan.body


def test_a_suspected_staff_member_is_an_urgent_alert_and_both_tasks_for_the_principal():
    case, effects = opened("staff_involved")
    principal = Party("principal", "u-rektor")
    assert actions_of(effects) == [
        ("task", "environment.investigate", principal),
        ("alert", "environment.staff_involved", principal),
        ("task", "environment.activity_plan", principal),
        ("note", "environment.staff_involved", None),
    ]
    investigate, alert, _, _ = [e for e in effects if isinstance(e, Action)]
    assert alert.severity == "urgent"
    assert alert.title == "Urgent: a member of staff may have offended a pupil (case c-1)"
    assert "The principal must be told at once when a member of staff may have offended a pupil." in alert.body
    assert "the stricter duty to act" in alert.body
    assert investigate.external_ref == ref(rule.RULE_INVESTIGATE, "school:0", "task", subject="c-1")
    assert (case["route"], case["track"], case["lines"]["school"]["level"]) == ("staff", "staff", 0)


def test_a_suspect_in_the_school_leadership_goes_to_the_school_owner():
    case, effects = opened("staff_involved", accused="school_leadership")
    owner = Party("school_owner", "u-eier")
    assert [a[2] for a in actions_of(effects)] == [owner, owner, owner, None]
    alert = next(e for e in effects if isinstance(e, Action) and e.kind == "alert")
    assert "the case goes to the school owner, not the principal" in alert.body
    assert case["track"] == "staff_leadership" and case["history"][0]["told"] == "school_owner"


def test_without_a_social_teacher_the_school_environment_team_investigates_or_the_role_alone():
    _, effects = opened(people={"school_environment_team": "u-team", "principal": "u-rektor"})
    assert actions_of(effects)[0][2] == Party("school_environment_team", "u-team")
    _, effects = opened(people={})
    assert actions_of(effects)[0][2] == Party("social_teacher")


def test_external_refs_are_stable_per_case_and_the_case_makes_them_distinct():
    _, first = opened()
    _, again = opened(language="nb")
    _, other = opened(case_id="c-2")
    refs = [e.external_ref for e in first if isinstance(e, Action)]
    assert refs == [e.external_ref for e in again if isinstance(e, Action)] == [
        ref(rule.RULE_INVESTIGATE, "school:1", "task", subject="c-1"),
        ref(rule.RULE_NOTIFY, "case", "alert", subject="c-1"),
        ref(rule.RULE_PLAN, "school:1", "task", subject="c-1"),
        ref(rule.RULE_NOTIFY, "created", "note", subject="c-1"),
    ]
    assert not set(refs) & {e.external_ref for e in other if isinstance(e, Action)}


def test_a_school_can_give_the_investigation_two_school_days_and_the_activity_plan_ten():
    case, effects = opened(plan={rule.RULE_INVESTIGATE: {"school_days": 2}, rule.RULE_PLAN: {"school_days": 10}})
    investigate, _, plan, _ = [e for e in effects if isinstance(e, Action)]
    assert (investigate.due_date, plan.due_date) == ("2026-11-10", "2026-11-20")
    assert case["lines"]["school"]["due"]["ack"] == "2026-11-10"


def test_the_law_routes_have_no_switch_of_their_own():
    """Only the ladder's ``escalation.level_task.enabled`` turns cases off (checked where messages come in)."""
    with pytest.raises(ValidationError) as caught:
        merge_plan({rule.RULE_INVESTIGATE: {"enabled": False}})
    assert "enabled" in caught.value.messages[rule.RULE_INVESTIGATE]
