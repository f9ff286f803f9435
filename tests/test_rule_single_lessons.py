"""The pure rule ``absence.single_lessons``, without Redis, HTTP or Flask.

DOMAIN §1: absence from single lessons while present that day otherwise: the contact teacher contacts the home
and discusses the absence, within 1 week (5 school days). The day is judged once its registers are in (16:00).
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from connector.contract.actions import Party
from connector.rules import single_lessons as rule
from connector.rules.effects import Schedule
from connector.rules.followup import close, opened
from connector.rules.triggers import DayFacts
from tests.rule_support import PUPIL, TENANT, context, held, lessons, ref, settings, whole_day

SETTINGS = settings(rule.RULE_ID)
MONDAY = "2026-11-02"
SIX_LESSONS = held(6)
SECOND_LESSON = lessons(None, first=2)  # away from lesson 2 of 6, undocumented


def judge(record, lessons_held=SIX_LESSONS, day=MONDAY, notices=None, state=None, settings_=SETTINGS, language="en"):
    ctx = context(day, {rule.RULE_ID: settings_}, language=language, contact_teacher="u-kl")
    return rule.on_deadline(ctx, day, DayFacts(record, notices or {}, frozenset(lessons_held)), state)


def test_a_lesson_absence_is_judged_at_four_in_the_afternoon_oslo_time():
    assert rule.on_day_changed(context(MONDAY, {rule.RULE_ID: SETTINGS}), MONDAY, SECOND_LESSON) == [Schedule(
        "absence.single_lessons|s-1|2026-11-02",
        datetime(2026, 11, 2, 15, 0, tzinfo=timezone.utc),  # 16:00 in Oslo
        {"rule_id": rule.RULE_ID, "student_id": PUPIL, "date": MONDAY},
    )]


@pytest.mark.parametrize("record", [{}, whole_day(), lessons(None, status="late")], ids=["present", "whole-day", "late"])
def test_a_day_without_a_lesson_absence_is_not_judged(record):
    assert rule.on_day_changed(context(MONDAY, {rule.RULE_ID: SETTINGS}), MONDAY, record) == []


def test_absent_from_one_lesson_and_present_in_the_others_gives_the_contact_teacher_a_task():
    (task,), state = judge(SECOND_LESSON)
    assert (task.kind, task.rule_id, task.student_id) == ("task", "absence.single_lessons", PUPIL)
    assert task.assignee == Party("contact_teacher", "u-kl")
    assert task.due_date == "2026-11-10"  # 5 school days: Tue 3, Wed 4, Thu 5, (Fri 6 off), Mon 9, Tue 10
    assert task.title == "Contact the home about single-lesson absence on Monday 2 November 2026"
    assert task.body.startswith("Why: The pupil was at school on Monday 2 November 2026 but missed 1 lesson "
                                "without a notice from the guardians.")
    assert "Due: Tuesday 10 November 2026." in task.body
    assert state == {"open": opened(TENANT, rule.RULE_ID, PUPIL, MONDAY)}
    assert (task.external_ref, task.case_id) == (state["open"]["ref"], state["open"]["case"])


def test_present_in_just_one_lesson_is_enough_and_absent_from_every_lesson_is_not_single_lessons():
    five_of_six = lessons(*[None] * 5)
    (task,), _ = judge(five_of_six)
    assert "missed 5 lessons" in task.body
    assert judge(lessons(*[None] * 6)) == ([], {})


def test_a_whole_day_mark_is_never_single_lessons():
    assert judge({**whole_day(), **SECOND_LESSON}) == ([], {})


def test_leaving_early_counts_as_absence_and_arriving_late_as_present():
    (task,), _ = judge(lessons(None, status="left_early", first=6))
    assert "missed 1 lesson" in task.body
    assert judge(lessons(None, status="late")) == ([], {})


def test_without_the_groups_lesson_registers_the_day_cannot_be_judged():
    assert judge(SECOND_LESSON, lessons_held=set()) == ([], {})


def test_a_guardians_notice_covering_the_day_needs_no_talk():
    assert judge(SECOND_LESSON, notices={"2026-11-02|2026-11-02": "dentist"}) == ([], {})


def test_documented_single_lessons_need_no_talk_unless_the_school_says_so():
    dentist = lessons(None, documented=True, first=2)
    assert judge(dentist) == ([], {})
    (task,), _ = judge(dentist, settings_=settings(rule.RULE_ID, count_documented=True))
    assert task.due_date == "2026-11-10"


def test_external_refs_are_stable_and_the_absence_day_makes_them_distinct():
    first, _ = judge(SECOND_LESSON)
    again, _ = judge(SECOND_LESSON, language="nb")
    other_day, _ = judge(SECOND_LESSON, day="2026-11-03")
    assert first[0].external_ref == again[0].external_ref == ref(rule.RULE_ID, MONDAY, "task")
    assert other_day[0].external_ref == ref(rule.RULE_ID, "2026-11-03", "task") != first[0].external_ref


def test_while_the_task_is_open_another_day_is_a_note_on_its_case_and_once_closed_a_new_task():
    (task,), state = judge(SECOND_LESSON)
    (note,), after = judge(lessons(None, None, first=3), day="2026-11-04", state=state)
    assert (note.kind, note.case_id) == ("note", task.case_id)
    assert note.external_ref == ref(rule.RULE_ID, "2026-11-02/2026-11-04", "note")
    assert note.body == ("More single-lesson absence on Wednesday 4 November 2026 (2 lessons). "
                         "Include it in the talk with the home.")
    assert after == state
    (new_task,), reopened = judge(SECOND_LESSON, day="2026-11-12", state=close(after, task.external_ref))
    assert (new_task.kind, new_task.due_date) == ("task", "2026-11-19")
    assert reopened["open"] == opened(TENANT, rule.RULE_ID, PUPIL, "2026-11-12")


def test_a_disabled_rule_neither_schedules_nor_makes_a_task():
    disabled = settings(rule.RULE_ID, enabled=False)
    assert rule.on_day_changed(context(MONDAY, {rule.RULE_ID: disabled}), MONDAY, SECOND_LESSON) == []
    assert judge(SECOND_LESSON, settings_=disabled, state={"noted": []}) == ([], {"noted": []})


def test_a_school_can_judge_the_day_earlier_and_ask_for_the_talk_sooner():
    changed = settings(rule.RULE_ID, evaluate_at="14:30", task_school_days=4)
    (schedule,) = rule.on_day_changed(context(MONDAY, {rule.RULE_ID: changed}), MONDAY, SECOND_LESSON)
    assert schedule.due == datetime(2026, 11, 2, 13, 30, tzinfo=timezone.utc)
    (task,), _ = judge(SECOND_LESSON, settings_=changed)
    assert task.due_date == "2026-11-09"


def test_lessons_marked_on_a_day_that_is_no_school_day_are_kept_but_followed_up_by_nobody():
    """A register dated a Sunday (a weekend trip, a date typed wrong) or a day of the autumn break."""
    for day in ("2026-11-01", "2026-09-30"):
        assert rule.on_day_changed(context(day, {rule.RULE_ID: SETTINGS}), day, SECOND_LESSON) == []
        assert judge(SECOND_LESSON, day=day) == ([], {})


def test_a_day_registered_late_gets_a_week_from_when_it_is_judged_never_a_task_due_in_the_past():
    ctx = context("2026-11-23", {rule.RULE_ID: SETTINGS}, contact_teacher="u-kl")
    (task,), _ = rule.on_deadline(ctx, MONDAY, DayFacts(SECOND_LESSON, {}, frozenset(SIX_LESSONS)), None)
    assert task.due_date == "2026-11-30"  # Monday 23 + 5 school days, not Tuesday 10 (past)
