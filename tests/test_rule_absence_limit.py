"""The pure rules of the 10 % absence limit (``absence_limit.warning`` and ``absence_limit.reached``).

DOMAIN §1 (upper secondary): per subject, only undocumented lesson hours count; warn the pupil and guardian at
5 % and 8 %, and tell the contact teacher at 10 %. Each threshold once per term. Both are off by default: a school
turns them on with its planned hours. Here Matematikk has 100 planned hours (6000 minutes): 5 % is 300 minutes,
8 % is 480 and 10 % is 600.
"""
from __future__ import annotations

import pytest

from connector.contract.actions import Party
from connector.rules import absence_limit as rule
from connector.rules.history import mark_code
from tests.rule_support import CALENDAR, context, day, lessons, ref, settings, whole_day

WARNING = settings(rule.WARNING, enabled=True, planned_hours={"Matematikk": 100})
REACHED = settings(rule.REACHED, enabled=True)
THURSDAY = "2026-11-05"


def cross(minutes, acted_on=0.0, on=THURSDAY, subject="Matematikk", warning=WARNING, reached=REACHED,
          language="en", today=None):
    ctx = context(today or day(on), {rule.WARNING: warning, rule.REACHED: reached}, language=language,
                  contact_teacher="u-kl")
    return rule.crossings(ctx, day(on), subject, minutes, acted_on)


def kinds(actions):
    return [(a.kind, a.rule_id, a.assignee.role) for a in actions]


WARNED = [("alert", "absence_limit.warning", "student"), ("alert", "absence_limit.warning", "guardian")]


def test_only_undocumented_lessons_with_a_subject_count_at_their_own_length_or_the_default():
    timed = {"id": "lesson-9", "subject": "Matematikk", "start": "08:30", "end": "09:30"}
    record = {
        **lessons("Matematikk", "Matematikk", None),
        **lessons("Engelsk", documented=True, first=4),
        "day": mark_code("absent", False),  # a whole-day mark names no subject
        "timed": mark_code("absent", False, timed),
        "early": mark_code("left_early", False, {"id": "lesson-8", "subject": "Norsk"}, minutes=20),
    }
    assert rule.undocumented_minutes(record, 45) == {"Matematikk": 2 * 45 + 60, "Norsk": 20}
    assert rule.undocumented_minutes(whole_day(), 45) == {}


def test_a_lesson_documented_later_takes_its_minutes_back():
    before = lessons("Matematikk")
    after = lessons("Matematikk", documented=True)
    assert rule.minutes_delta(before, after, 45) == {"Matematikk": -45}
    assert rule.minutes_delta({}, before, 45) == {"Matematikk": 45}
    assert rule.minutes_delta(before, before, 45) == {}


def test_just_under_five_percent_is_no_warning():
    assert cross(299) == ([], 0.0)


def test_five_percent_warns_the_pupil_and_the_guardians():
    actions, acted = cross(300)
    assert acted == 0.05
    assert kinds(actions) == WARNED
    student, guardian = actions
    assert [a.assignee for a in actions] == [Party("student"), Party("guardian")]
    assert {a.severity for a in actions} == {"warning"}
    assert student.title == guardian.title == "Absence warning in Matematikk: 5 % undocumented"
    assert student.body.startswith("You have 5.0 hours of undocumented absence in Matematikk, 5 % of the subject's "
                                   "100 hours this year. This warning is sent when the absence passes 5 %.")
    assert guardian.body.startswith("Hello,\nYour child has 5.0 hours of undocumented absence in Matematikk")
    assert "With more than 10 % undocumented absence in a subject your child will" in guardian.body


def test_eight_percent_warns_again_once_five_was_acted_on():
    assert cross(479, acted_on=0.05) == ([], 0.05)
    actions, acted = cross(480, acted_on=0.05)
    assert (kinds(actions), acted) == (WARNED, 0.08)
    assert actions[0].title == "Absence warning in Matematikk: 8 % undocumented"


def test_a_jump_past_both_warnings_sends_each_warning_it_crossed():
    """One delivery (a day's registers at once, a backfill) gives the same warnings as the marks one by one."""
    actions, acted = cross(500, language="nb")
    assert (kinds(actions), acted) == (WARNED + WARNED, 0.08)
    assert [a.title for a in actions[::2]] == ["Varsel om fravær i Matematikk: 8,3 % udokumentert"] * 2
    assert "Varselet sendes når fraværet passerer 5 %." in actions[0].body
    assert "Varselet sendes når fraværet passerer 8 %." in actions[2].body
    one_by_one = cross(300)[0] + cross(500, acted_on=0.05)[0]
    assert [a.external_ref for a in actions] == [a.external_ref for a in one_by_one]


def test_ten_percent_gives_the_contact_teacher_a_task_due_in_three_school_days():
    assert cross(599, acted_on=0.08) == ([], 0.08)
    (task,), acted = cross(600, acted_on=0.08)
    assert acted == 0.10
    assert (task.kind, task.rule_id, task.priority) == ("task", "absence_limit.reached", "high")
    assert task.assignee == Party("contact_teacher", "u-kl")
    assert task.due_date == "2026-11-11"  # Thursday 5 + 3 school days, Friday 6 November off
    assert task.title == "The absence limit is reached in Matematikk (10 %)"
    assert "Between 10 and 15 % undocumented absence the principal may still decide the pupil gets a grade" \
        in task.body


def test_a_jump_straight_past_the_limit_gives_the_warnings_it_crossed_and_the_task():
    actions, acted = cross(700)
    assert (kinds(actions), acted) == (WARNED + WARNED + [("task", "absence_limit.reached", "contact_teacher")], 0.10)


def test_the_limit_task_found_late_is_due_counted_from_when_it_is_found():
    (task,), _ = cross(600, acted_on=0.08, today=day("2026-11-23"))
    assert task.due_date == "2026-11-26"  # Monday 23 + 3 school days, not Thursday 5 + 3 (already past)


def test_each_threshold_is_acted_on_once_per_term():
    assert cross(350, acted_on=0.05) == ([], 0.05)
    assert cross(650, acted_on=0.10) == ([], 0.10)


def test_external_refs_are_stable_and_made_distinct_by_term_subject_threshold_and_recipient():
    autumn, _ = cross(300)
    again, _ = cross(310, on="2026-12-01", language="nb")
    assert [a.external_ref for a in autumn] == [a.external_ref for a in again] == [
        ref(rule.WARNING, "2026-27/autumn/Matematikk/0.05/student", "alert"),
        ref(rule.WARNING, "2026-27/autumn/Matematikk/0.05/guardian", "alert"),
    ]
    spring, _ = cross(300, on="2027-01-11")
    assert rule.term_of(day("2027-01-11"), CALENDAR) == ("2026-27", "spring")
    (limit,), _ = cross(600, acted_on=0.08)
    assert limit.external_ref == ref(rule.REACHED, "2026-27/autumn/Matematikk/0.1", "task")
    assert len({a.external_ref for a in autumn + spring + [limit]}) == 5


def test_a_subject_without_planned_hours_is_not_counted():
    assert cross(6000, subject="Norsk") == ([], 0.0)


@pytest.mark.parametrize("minutes", [300, 600])
def test_both_rules_are_off_by_default(minutes):
    off_warning = settings(rule.WARNING, planned_hours={"Matematikk": 100})
    assert cross(minutes, warning=off_warning, reached=settings(rule.REACHED)) == ([], 0.0)


def test_with_the_limit_task_switched_off_the_limit_still_gets_the_warnings():
    actions, acted = cross(600, reached=settings(rule.REACHED, enabled=False))
    assert (kinds(actions), acted) == (WARNED + WARNED, 0.08)


def test_a_school_with_one_warning_at_six_percent_warns_there_only():
    six = settings(rule.WARNING, enabled=True, planned_hours={"Matematikk": 100}, warning_thresholds=[0.06])
    assert cross(300, warning=six) == ([], 0.0)
    actions, acted = cross(360, warning=six)
    assert (kinds(actions), acted) == (WARNED, 0.06)
