"""The pure rule ``absence.external_meeting``, without Redis, HTTP or Flask.

DOMAIN §1: when external bodies are involved (a completed conversation or meeting with the outcome
``external_involved``; the I/O decides that), the principal holds a meeting of guardians, pupil, contact teacher and
school leadership, with minutes as a note: by agreement, default within 10 school days of the decision.
"""
from __future__ import annotations

from connector.contract.actions import Party, case_id
from connector.rules import external_meeting as rule
from tests.rule_support import PUPIL, TENANT, context, day, ref, settings

SETTINGS = settings(rule.RULE_ID)
SOURCE = "sf1-persistent-meeting"  # the external_ref of the meeting whose outcome brought the external bodies in


def decide(decided_on="2026-11-02", source=SOURCE, settings_=SETTINGS, language="en"):
    ctx = context(decided_on, {rule.RULE_ID: settings_}, language=language, principal="u-rektor",
                  nearest_leader="u-leder")
    return rule.evaluate(ctx, source, day(decided_on))


def test_external_bodies_involved_give_the_principal_a_meeting_task_within_ten_school_days():
    (task,) = decide()
    assert (task.kind, task.rule_id, task.student_id, task.priority) == (
        "task", "absence.external_meeting", PUPIL, "high")
    assert task.assignee == Party("principal", "u-rektor")
    assert task.due_date == "2026-11-17"  # 10 school days, Friday 6 November off
    assert task.title == "Meeting with guardians, pupil, contact teacher and school leadership"
    assert task.body.startswith("Why: On Monday 2 November 2026 it was decided that external bodies will be "
                                "involved in following up the pupil's absence.")
    assert "What to do: Arrange and hold the meeting. Write minutes as a note on the case." in task.body
    assert "Due: Tuesday 17 November 2026 (or as agreed)." in task.body


def test_the_ten_school_days_skip_the_christmas_break():
    (task,) = decide("2026-12-16")
    assert task.due_date == "2027-01-14"  # 17 and 18 December, then 5–14 January


def test_the_task_is_keyed_by_the_meeting_that_brought_the_external_bodies_in():
    (first,) = decide()
    (again,) = decide(language="nb")
    (redated,) = decide("2026-11-03")  # the same meeting's outcome, re-sent with another completed_at
    (other,) = decide(source="sf1-another-meeting")
    assert first.external_ref == again.external_ref == redated.external_ref == ref(rule.RULE_ID, SOURCE, "task")
    assert first.case_id == case_id(TENANT, rule.RULE_ID, PUPIL, SOURCE)
    assert other.external_ref == ref(rule.RULE_ID, "sf1-another-meeting", "task") != first.external_ref


def test_a_disabled_rule_makes_no_task():
    assert decide(settings_=settings(rule.RULE_ID, enabled=False)) == []


def test_a_school_can_agree_on_five_school_days_and_give_the_meeting_to_the_nearest_leader():
    (task,) = decide(settings_=settings(rule.RULE_ID, task_school_days=5, responsible="nearest_leader"))
    assert task.due_date == "2026-11-10"
    assert task.assignee == Party("nearest_leader", "u-leder")  # who holds that role for the pupil
