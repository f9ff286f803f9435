"""The pure rule ``absence.persistent`` (worrying absence), without Redis, HTTP or Flask.

DOMAIN §1: after a pattern conversation is completed, an absence rate over the next 15 school days of at least
10 %, or 2 or more new undocumented occasions, calls for a new meeting with the guardians (resource person with the
contact teacher) within 3 weeks of the previous meeting, repeating while it persists.

The conversation here was held on Monday 2 November 2026; its watch covers the 15 school days 3–24 November
(Friday 6 November is a day off).
"""
from __future__ import annotations

import pytest

from connector.contract.actions import Party, case_id
from connector.rules import persistent as rule
from tests.rule_support import CALENDAR, PUPIL, TENANT, context, day, history, lessons, ref, settings, whole_day

SETTINGS = settings(rule.RULE_ID)
MEETING = day("2026-11-02")
HELD = rule.meeting_held(None, MEETING, None)


def judge(records, judged, state=HELD, settings_=SETTINGS, language="en", today=None):
    ctx = context(today or day(judged), {rule.RULE_ID: settings_}, language=language, contact_teacher="u-res",
                  resource_person="u-res", principal="u-res")
    return rule.evaluate(ctx, day(judged), records, state)


def one_lesson(*days: str) -> dict:
    """Away from one undocumented lesson on each day: a new undocumented occasion, but hardly any rate."""
    return history(days, lessons(None))


def test_a_completed_conversation_starts_a_watch_of_the_next_fifteen_school_days():
    assert HELD == {"meeting": "2026-11-02"}
    assert [rule.watching(HELD, day(d), SETTINGS, CALENDAR)
            for d in ("2026-11-02", "2026-11-03", "2026-11-24", "2026-11-25")] == [False, True, True, False]


def test_without_a_completed_conversation_nothing_is_watched():
    assert judge(history(["2026-11-03", "2026-11-04", "2026-11-05"]), "2026-11-05", state=None) == ([], {})


@pytest.mark.parametrize("lessons_on_the_second_day,found", [(3, True), (2, False)], ids=["10-percent", "8.9-percent"])
def test_a_rate_of_ten_percent_over_the_watch_calls_a_new_meeting(lessons_on_the_second_day, found):
    """Documented absence counts in the rate (but is no undocumented occasion): 1 day + 3 of 6 lessons = 1.5 of 15
    school days = 10 %; 1 day + 2 lessons = 8.9 %."""
    records = {"2026-11-10": whole_day(documented=True),
               "2026-11-12": lessons(*[None] * lessons_on_the_second_day, documented=True)}
    actions, state = judge(records, "2026-11-12")
    assert [a.kind for a in actions] == (["task"] if found else [])
    assert ("fired_for" in state) is found


def test_two_new_undocumented_occasions_call_a_new_meeting_and_one_does_not():
    assert judge(one_lesson("2026-11-10"), "2026-11-10") == ([], HELD)
    (task,), state = judge(one_lesson("2026-11-04", "2026-11-10"), "2026-11-10")
    assert (task.kind, task.rule_id, task.student_id, task.priority) == ("task", "absence.persistent", PUPIL, "high")
    assert task.assignee == Party("resource_person", "u-res")
    assert task.title == "New meeting with the guardians: the absence continues"
    assert task.body.startswith("Why: Since the conversation on Monday 2 November 2026 the pupil is still absent: ")
    assert "of the 5 school days since, and 2 absence occasions without a notice from the guardians." in task.body
    assert "Responsible: resource person, with the contact teacher (the principal holds overall responsibility)." \
        in task.body
    assert state == {"meeting": "2026-11-02", "fired_for": "2026-11-02",
                     "open": {"ref": task.external_ref, "case": task.case_id, "since": "2026-11-02"}}


def test_consecutive_school_days_across_a_day_off_are_one_occasion():
    assert judge(one_lesson("2026-11-05", "2026-11-09"), "2026-11-09") == ([], HELD)


@pytest.mark.parametrize("second,found", [("2026-11-24", True), ("2026-11-25", False), ("2026-11-02", False)],
                         ids=["15th-school-day-after", "16th-school-day-after", "the-meeting-day"])
def test_only_absence_within_the_fifteen_school_days_after_the_meeting_counts(second, found):
    actions, _ = judge(one_lesson("2026-11-04", second), max(second, "2026-11-04"))
    assert [a.kind for a in actions] == (["task"] if found else [])


def test_the_meeting_is_due_three_weeks_of_school_days_after_the_conversation_skipping_the_day_off():
    (task,), _ = judge(one_lesson("2026-11-04", "2026-11-10"), "2026-11-10")
    assert task.due_date == "2026-11-24"  # 15 school days: 3 weeks and a day, as Friday 6 November is off
    assert "Due: Tuesday 24 November 2026." in task.body


def test_a_meeting_found_late_is_never_due_sooner_than_two_school_days_from_when_it_is_found():
    (task,), _ = judge(one_lesson("2026-11-04", "2026-11-10"), "2026-11-10", today=day("2026-11-23"))
    assert task.due_date == "2026-11-25"
    (task,), _ = judge(one_lesson("2026-11-04", "2026-11-23"), "2026-11-23")
    assert task.due_date == "2026-11-25"


def test_the_task_is_made_once_per_meeting_and_its_ref_is_the_meetings():
    first, state = judge(one_lesson("2026-11-04", "2026-11-10"), "2026-11-10")
    again, _ = judge(one_lesson("2026-11-04", "2026-11-10"), "2026-11-10", language="nb")
    later_day, _ = judge(one_lesson("2026-11-04", "2026-11-10", "2026-11-12"), "2026-11-12")
    assert [a.external_ref for a in first] == [a.external_ref for a in again] == [a.external_ref for a in later_day] \
        == [ref(rule.RULE_ID, "2026-11-02", "task")]
    assert first[0].case_id == case_id(TENANT, rule.RULE_ID, PUPIL, "2026-11-02")
    assert judge(one_lesson("2026-11-04", "2026-11-10", "2026-11-12", "2026-11-17"), "2026-11-17",
                 state=state) == ([], state)


def test_the_next_meeting_starts_the_next_watch_while_the_absence_persists():
    _, fired = judge(one_lesson("2026-11-04", "2026-11-10"), "2026-11-10")
    next_watch = rule.meeting_held(fired, day("2026-11-30"), None)
    (task,), state = judge(one_lesson("2026-12-01", "2026-12-03"), "2026-12-03", state=next_watch)
    assert task.external_ref == ref(rule.RULE_ID, "2026-11-30", "task")
    assert task.due_date == "2027-01-05"  # 15 school days after 30 November, across the Christmas break
    assert (state["meeting"], state["fired_for"]) == ("2026-11-30", "2026-11-30")


def test_a_meeting_that_resolves_the_absence_ends_the_watch():
    resolved = rule.meeting_held(HELD, day("2026-11-02"), "resolved")
    assert resolved == {"meeting": None}
    assert judge(one_lesson("2026-11-04", "2026-11-10"), "2026-11-10", state=resolved) == ([], resolved)


def test_a_disabled_rule_does_nothing_and_keeps_the_state():
    disabled = settings(rule.RULE_ID, enabled=False)
    assert judge(one_lesson("2026-11-04", "2026-11-10"), "2026-11-10", settings_=disabled) == ([], HELD)


def test_a_school_that_asks_for_three_occasions_waits_for_the_third():
    three = settings(rule.RULE_ID, undocumented_occasions=3)
    assert judge(one_lesson("2026-11-04", "2026-11-10"), "2026-11-10", settings_=three) == ([], HELD)
    (task,), _ = judge(one_lesson("2026-11-04", "2026-11-10", "2026-11-12"), "2026-11-12", settings_=three)
    assert task.kind == "task"


def test_a_school_that_wants_the_meeting_within_two_weeks_gets_it_due_ten_school_days_after():
    (task,), _ = judge(one_lesson("2026-11-04", "2026-11-10"), "2026-11-10",
                       settings_=settings(rule.RULE_ID, meeting_within_school_days=10))
    assert task.due_date == "2026-11-17"
