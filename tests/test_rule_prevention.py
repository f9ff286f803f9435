"""The preventive routines (``prevention.*``), without Redis, HTTP or Flask: the school calendar in, tasks out.

DOMAIN §1: a class-by-class review of expectations at the autumn parent meeting (by 15 September; contact teachers
and the principal); absence as a topic of each term's development talk (by 15 November and 15 March); and a pupil
who joins during the year: the contact teacher informs the guardians within 5 school days. The calendar tasks appear
10 school days before they are due. School year 2026-27 starts on Thursday 13 August 2026.
"""
from __future__ import annotations

from datetime import date

from connector.contract.actions import Party
from connector.rules import prevention as rule
from connector.rules.effects import Schedule
from connector.rules.plan import merge_plan
from tests.rule_support import CALENDAR, PUPIL, context, day, ref, settings

PLAN = merge_plan(None)
GROUPS = {"7B": "u-kl-7b", "7A": "u-kl-7a"}


def routine(rule_id: str, occurrence: str, appears: str, due: str) -> Schedule:
    return Schedule(f"{rule_id}|{occurrence}", CALENDAR.start_of_day(day(appears)),
                    {"rule_id": rule_id, "occurrence": occurrence, "due": due})


def test_each_routine_of_the_school_year_appears_ten_school_days_before_it_is_due():
    assert rule.schedules(PLAN, CALENDAR, day("2026-08-01")) == [
        routine(rule.REVIEW, "2026-27", "2026-09-01", "2026-09-15"),
        routine(rule.TALK, "2026-27/autumn", "2026-10-30", "2026-11-15"),  # Friday 6 November is off
        routine(rule.TALK, "2026-27/spring", "2027-03-01", "2027-03-15"),
    ]


def test_a_routine_due_today_is_still_scheduled_and_one_already_past_is_left_alone():
    assert [s.id for s in rule.schedules(PLAN, CALENDAR, day("2026-09-15"))] == [
        "prevention.expectations_review|2026-27", "prevention.development_talk|2026-27/autumn",
        "prevention.development_talk|2026-27/spring"]
    assert [s.id for s in rule.schedules(PLAN, CALENDAR, day("2026-09-16"))] == [
        "prevention.development_talk|2026-27/autumn", "prevention.development_talk|2026-27/spring"]


def test_the_lead_counts_school_days_across_the_autumn_break():
    plan = merge_plan({rule.REVIEW: {"due_month_day": "10-05"}})
    (review, *_) = rule.schedules(plan, CALENDAR, day("2026-08-01"))
    assert review == routine(rule.REVIEW, "2026-27", "2026-09-14", "2026-10-05")  # 28 Sep – 2 Oct is the break


def test_a_routine_never_appears_before_the_first_school_day():
    plan = merge_plan({rule.REVIEW: {"due_month_day": "08-20"}})
    (review, *_) = rule.schedules(plan, CALENDAR, day("2026-08-01"))
    assert review == routine(rule.REVIEW, "2026-27", "2026-08-13", "2026-08-20")


def test_a_disabled_routine_is_not_scheduled():
    plan = merge_plan({rule.REVIEW: {"enabled": False}, rule.TALK: {"enabled": False}})
    assert rule.schedules(plan, CALENDAR, day("2026-08-01")) == []


def test_the_review_gives_each_groups_contact_teacher_a_task_and_the_principal_one():
    *groups, principal = rule.group_tasks(routine_context(principal="u-rektor"), rule.REVIEW, "2026-27",
                                          date(2026, 9, 15), GROUPS)
    assert [(t.kind, t.rule_id, t.group_id, t.student_id, t.assignee, t.due_date) for t in groups] == [
        ("task", rule.REVIEW, "7A", None, Party("contact_teacher", "u-kl-7a"), "2026-09-15"),
        ("task", rule.REVIEW, "7B", None, Party("contact_teacher", "u-kl-7b"), "2026-09-15"),
    ]
    assert groups[0].title == "Review attendance expectations and absence procedures with 7A at the parent meeting"
    assert (principal.kind, principal.assignee, principal.due_date) == (
        "task", Party("principal", "u-rektor"), "2026-09-15")
    assert principal.title == "Attendance expectations and absence procedures at the autumn parent meetings"


def test_the_development_talk_is_for_the_contact_teachers_only():
    tasks = rule.group_tasks(routine_context(principal="u-rektor"), rule.TALK, "2026-27/autumn", date(2026, 11, 15),
                             GROUPS)
    assert [(t.group_id, t.assignee.role) for t in tasks] == [("7A", "contact_teacher"), ("7B", "contact_teacher")]
    assert tasks[0].title == "Absence as a topic in the development talks of 7A"


def test_routine_refs_are_stable_per_group_and_occurrence():
    def refs(occurrence, language="en"):
        return [t.external_ref for t in rule.group_tasks(routine_context(language), rule.TALK, occurrence,
                                                         date(2026, 11, 15), GROUPS)]
    assert refs("2026-27/autumn") == refs("2026-27/autumn", "nn") == [
        ref(rule.TALK, "2026-27/autumn", "task", subject="group:7A"),
        ref(rule.TALK, "2026-27/autumn", "task", subject="group:7B")]
    assert not set(refs("2026-27/autumn")) & set(refs("2026-27/spring"))
    (*_, principal) = rule.group_tasks(routine_context(), rule.REVIEW, "2026-27", date(2026, 9, 15), GROUPS)
    assert principal.external_ref == ref(rule.REVIEW, "2026-27", "task", subject="principal")


def routine_context(language="en", **holders):
    """A calendar routine is about a group, not a pupil: no student in its context."""
    return context(date(2026, 9, 1), {rule.REVIEW: PLAN[rule.REVIEW], rule.TALK: PLAN[rule.TALK]}, student=None,
                   language=language, **holders)


def new_student(enrolled: str, settings_=None, language="en"):
    ctx = context(enrolled, {rule.NEW_STUDENT: settings_ or PLAN[rule.NEW_STUDENT]}, language=language,
                  contact_teacher="u-kl-7a")
    return rule.new_student(ctx, "7A", day(enrolled))


def test_a_pupil_enrolled_on_the_first_school_day_had_the_autumn_review_and_one_a_day_later_gets_a_task():
    assert new_student("2026-08-13") == []
    (task,) = new_student("2026-08-14")
    assert task.due_date == "2026-08-21"


def test_a_pupil_who_joins_mid_year_has_the_guardians_informed_within_five_school_days():
    (task,) = new_student("2026-11-02")
    assert (task.kind, task.rule_id, task.student_id, task.group_id) == ("task", rule.NEW_STUDENT, PUPIL, "7A")
    assert task.assignee == Party("contact_teacher", "u-kl-7a")
    assert task.due_date == "2026-11-10"  # Friday 6 November is off
    assert task.title == "Tell a new pupil's guardians in 7A about the absence procedures"
    assert task.external_ref == ref(rule.NEW_STUDENT, "2026-11-02", "task")
    (again,) = new_student("2026-11-02", language="nb")
    assert again.external_ref == task.external_ref != new_student("2026-11-03")[0].external_ref


def test_an_enrolment_outside_the_school_year_gives_no_task():
    assert new_student("2027-07-01") == []


def test_a_disabled_new_student_routine_gives_no_task():
    assert new_student("2026-11-02", settings(rule.NEW_STUDENT, enabled=False)) == []


def test_a_school_can_ask_for_the_information_within_three_school_days():
    (task,) = new_student("2026-11-04", settings(rule.NEW_STUDENT, task_school_days=3))
    assert task.due_date == "2026-11-10"
