"""The pure rule ``absence.pattern``, without Redis, HTTP or Flask: day records in; task, alert, notes out.

DOMAIN §1: 3 or more absences on the same weekday, or in the same subject, within the last 30 school days; or 4 or
more separate occasions within 20 school days; or increasing absence (the last 20 school days' rate at least twice
the 20 before, at least 5 %, on at least 2 occasions). Then: a conversation with pupil and guardians within a week
(5 school days), and the nearest leader is told.

Most pupils here were away four days in September (:func:`steady_before`), so their absence is not *increasing*
and each test sees only the pattern it is about.
"""
from __future__ import annotations

from datetime import date

import pytest

from connector.contract.actions import Party
from connector.rules import pattern as rule
from connector.rules.followup import opened
from tests.rule_support import CALENDAR, PUPIL, TENANT, context, day, history, lessons, ref, settings, whole_day

SETTINGS = settings(rule.RULE_ID)
MONDAY = day("2026-11-23")


def steady_before(judged: date) -> dict:
    """Four days away in a row, 37–40 school days before ``judged``: in the 20 school days before the last 20 (so
    the rate is not rising) and outside the 30-day window of the weekday and subject counts."""
    first = CALENDAR.add_school_days(judged, -39)
    return history(d.isoformat() for d in CALENDAR.school_days(first, CALENDAR.add_school_days(first, 3)))


def judge(records, judged=MONDAY, state=None, settings_=SETTINGS, language="en", today=None, watched=False,
          tenant=TENANT):
    ctx = context(today or judged, {rule.RULE_ID: settings_}, tenant=tenant, language=language,
                  contact_teacher="u-kl", nearest_leader="u-leder")
    return rule.evaluate(ctx, judged, records, state, watched=watched)


def absent(*days: str, judged=MONDAY, record=None) -> dict:
    return {**steady_before(judged), **history(days, record)}


MONDAYS = ("2026-11-09", "2026-11-16", "2026-11-23")


def test_two_mondays_within_thirty_school_days_are_not_yet_a_pattern():
    assert judge(absent("2026-11-16", "2026-11-23")) == ([], {})


def test_three_mondays_within_thirty_school_days_open_one_conversation_and_tell_the_nearest_leader():
    (task, alert, note), state = judge(absent(*MONDAYS))
    assert (task.kind, task.rule_id, task.student_id) == ("task", "absence.pattern", PUPIL)
    assert task.assignee == Party("contact_teacher", "u-kl")
    assert task.due_date == "2026-11-30"  # within a week: 5 school days
    assert task.title == "Conversation about an absence pattern"
    assert "– 3 absences on Mondays in the last 30 school days (9 Nov, 16 Nov and 23 Nov)" in task.body
    assert "Due: Monday 30 November 2026." in task.body
    assert (alert.kind, alert.rule_id, alert.severity) == ("alert", "absence.pattern", "info")
    assert alert.assignee == Party("nearest_leader", "u-leder")
    assert alert.title == "For your information: an absence pattern"
    assert "by Monday 30 November 2026" in alert.body
    assert (note.kind, note.rule_id, note.student_id, note.case_id) == ("note", "absence.pattern", PUPIL, task.case_id)
    assert note.external_ref == ref(rule.RULE_ID, "first/weekday:0", "note")
    assert note.body == ("Found in the absence pattern: "
                         "3 absences on Mondays in the last 30 school days (9 Nov, 16 Nov and 23 Nov).")
    assert state == {"open": opened(TENANT, rule.RULE_ID, PUPIL, "first"), "noted": ["weekday:0"]}
    assert task.case_id == state["open"]["case"]
    assert task.external_ref == state["open"]["ref"]


def test_the_note_is_in_the_schools_language():
    (_, _, note), _ = judge(absent(*MONDAYS), language="nb")
    assert note.body == ("Funn i fraværsmønsteret: "
                         "3 fravær på mandager de siste 30 skoledagene (9. nov, 16. nov og 23. nov).")


@pytest.mark.parametrize("earliest,found", [("2026-10-12", True), ("2026-10-05", False)],
                         ids=["30th-school-day-back", "35th-school-day-back"])
def test_the_thirty_school_days_include_the_day_itself(earliest, found):
    """Monday 12 October is the 30th school day counting back from Monday 23 November (Friday 6 Nov is a day off)."""
    assert CALENDAR.count_school_days(day("2026-10-12"), MONDAY) == 30
    actions, _ = judge(absent(earliest, "2026-11-16", "2026-11-23"))
    assert [a.kind for a in actions] == (["task", "alert", "note"] if found else [])


def test_three_absences_from_the_same_subject_within_thirty_school_days_open_a_conversation():
    maths = lessons("Matematikk")
    assert judge(history(["2026-11-19", "2026-11-23"], maths)) == ([], {})
    (task, _, note), state = judge(history(["2026-11-10", "2026-11-19", "2026-11-23"], maths))
    assert "– 3 absences from Matematikk in the last 30 school days (10 Nov, 19 Nov and 23 Nov)" in task.body
    assert (note.kind, note.case_id) == ("note", task.case_id)
    assert note.body == ("Found in the absence pattern: "
                         "3 absences from Matematikk in the last 30 school days (10 Nov, 19 Nov and 23 Nov).")
    assert state["noted"] == ["subject:Matematikk"]


def test_four_separate_occasions_within_twenty_school_days_open_a_conversation():
    three = ("2026-11-05", "2026-11-11", "2026-11-23")
    assert judge(absent(*three)) == ([], {})
    (task, _, note), state = judge(absent("2026-10-27", *three))
    assert "– 4 separate absence occasions in the last 20 school days (from 27 Oct, 5 Nov, 11 Nov and 23 Nov)" \
        in task.body
    assert (note.kind, note.case_id) == ("note", task.case_id)
    assert note.body == ("Found in the absence pattern: "
                         "4 separate absence occasions in the last 20 school days "
                         "(from 27 Oct, 5 Nov, 11 Nov and 23 Nov).")
    assert state["noted"] == ["occasions"]


@pytest.mark.parametrize("earliest,found", [("2026-10-26", True), ("2026-10-23", False)],
                         ids=["20th-school-day-back", "21st-school-day-back"])
def test_the_occasions_count_over_exactly_twenty_school_days(earliest, found):
    actions, _ = judge(absent(earliest, "2026-11-05", "2026-11-11", "2026-11-23"))
    assert [a.kind for a in actions] == (["task", "alert", "note"] if found else [])


def test_consecutive_school_days_are_one_occasion_even_across_a_day_off():
    """Thursday 5 and Monday 9 November are consecutive school days (Friday 6 is off): four days, three occasions."""
    assert judge(absent("2026-10-27", "2026-11-05", "2026-11-09", "2026-11-23")) == ([], {})


def test_a_single_sick_day_is_never_a_trend():
    """5 % of 20 school days against nothing before is "double", but one occasion is not a trend."""
    assert judge(history(["2026-11-23"])) == ([], {})


def test_one_long_illness_is_not_a_trend():
    assert judge(history(["2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20", "2026-11-23"])) == ([], {})


BEFORE_TWO_DAYS = ("2026-09-22", "2026-09-23")  # 10 % of the 20 school days before the last 20
RECENT_FOUR_DAYS_TWO_OCCASIONS = ("2026-11-03", "2026-11-04", "2026-11-20", "2026-11-23")  # 20 %, Fri + Mon is one run


def test_absence_that_doubles_to_at_least_five_percent_on_two_occasions_is_increasing():
    (task, _, note), state = judge(history(BEFORE_TWO_DAYS + RECENT_FOUR_DAYS_TWO_OCCASIONS))
    assert ("– increasing absence: 20 % in the last 20 school days, against 10 % in the 20 school days before"
            in task.body)
    assert (note.kind, note.case_id) == ("note", task.case_id)
    assert note.body == ("Found in the absence pattern: "
                         "increasing absence: 20 % in the last 20 school days, "
                         "against 10 % in the 20 school days before.")
    assert state["noted"] == ["increasing"]


def test_absence_that_rises_but_less_than_doubles_is_not_increasing():
    before_three_days = BEFORE_TWO_DAYS + ("2026-09-24",)  # 15 %: 20 % is less than twice that
    assert judge(history(before_three_days + RECENT_FOUR_DAYS_TWO_OCCASIONS)) == ([], {})


@pytest.mark.parametrize("second_day_lessons,found", [(3, True), (2, False)], ids=["5-percent", "4.2-percent"])
def test_increasing_absence_needs_at_least_five_percent(second_day_lessons, found):
    """Six lessons a day: 3 + 3 missed lessons over 20 school days are 5 %, 3 + 2 are 4.2 %."""
    records = {"2026-11-17": lessons(None, None, None),
               "2026-11-23": lessons(*[None] * second_day_lessons)}
    actions, state = judge(records)
    assert [a.kind for a in actions] == (["task", "alert", "note"] if found else [])
    assert state.get("noted", []) == (["increasing"] if found else [])


def test_the_conversation_is_due_five_school_days_later_skipping_the_day_off():
    judged = day("2026-11-02")
    (task, _, _), _ = judge(absent("2026-10-19", "2026-10-26", "2026-11-02", judged=judged), judged=judged)
    assert task.due_date == "2026-11-10"  # Tue 3, Wed 4, Thu 5, (Fri 6 off), Mon 9, Tue 10


def test_a_pattern_found_late_gets_its_week_from_the_day_it_is_found_across_christmas():
    (task, _, _), _ = judge(absent(*MONDAYS), today=day("2026-12-14"))
    assert task.due_date == "2027-01-05"  # 15–18 December, then the break until Monday 4 January


def test_external_refs_are_the_same_whichever_day_completes_the_pattern_and_distinct_per_episode():
    first, _ = judge(absent(*MONDAYS), language="en")
    again, _ = judge(absent(*MONDAYS), language="nb", today=day("2026-12-14"))
    episode_refs = [ref(rule.RULE_ID, "first", "task"), ref(rule.RULE_ID, "first", "alert"),
                    ref(rule.RULE_ID, "first/weekday:0", "note")]
    assert [a.external_ref for a in first] == [a.external_ref for a in again] == episode_refs
    next_monday, _ = judge(absent("2026-11-16", "2026-11-23", "2026-11-30", judged=day("2026-11-30")),
                           judged=day("2026-11-30"))
    assert [a.external_ref for a in next_monday] == episode_refs  # another day completed it: the same episode
    assert next_monday[0].case_id == first[0].case_id
    closed = {"open": None, "noted": ["weekday:0"], "closed_on": "2026-11-23"}
    judged = day("2026-12-14")
    next_episode, _ = judge(absent(*MONDAYS, "2026-11-30", "2026-12-07", "2026-12-14", judged=judged),
                            judged=judged, state=closed)
    assert [a.external_ref for a in next_episode] == [
        ref(rule.RULE_ID, "after-2026-11-23", "task"), ref(rule.RULE_ID, "after-2026-11-23", "alert"),
        ref(rule.RULE_ID, "after-2026-11-23/weekday:0", "note")]
    assert next_episode[0].case_id != first[0].case_id
    other_school, _ = judge(absent(*MONDAYS), tenant="skole-b")
    assert len({a.external_ref for a in first + next_episode + other_school}) == 9


def test_while_the_task_is_open_a_new_kind_of_pattern_is_one_note_on_its_case_and_a_known_one_nothing():
    (task, _, _), state = judge(absent(*MONDAYS))
    more = absent(*MONDAYS, "2026-10-27", "2026-11-05", "2026-11-11")
    (note,), after = judge(more, state=state)
    assert (note.kind, note.case_id) == ("note", task.case_id)
    assert note.external_ref == ref(rule.RULE_ID, "first/occasions", "note")
    assert note.body == ("Found in the absence pattern: "
                         "5 separate absence occasions in the last 20 school days "
                         "(from 27 Oct, 5 Nov, 11 Nov, 16 Nov and 23 Nov).")
    assert after == {"open": state["open"], "noted": ["occasions", "weekday:0"]}
    assert judge(more, state=after) == ([], after)
    fresh, opening = judge(more)  # both kinds found when the task opens: a note for each
    assert [(a.kind, a.external_ref) for a in fresh[2:]] == [
        ("note", ref(rule.RULE_ID, "first/weekday:0", "note")), ("note", ref(rule.RULE_ID, "first/occasions", "note"))]
    assert opening == {"open": opened(TENANT, rule.RULE_ID, PUPIL, "first"), "noted": ["occasions", "weekday:0"]}


def test_after_the_conversation_only_absence_since_it_counts_towards_a_new_pattern():
    closed = {"open": None, "noted": ["weekday:0"], "closed_on": "2026-11-23"}
    mondays = absent(*MONDAYS, "2026-11-30", "2026-12-07", "2026-12-14", judged=day("2026-12-14"))
    assert judge(mondays, state=closed) == ([], closed)  # the same absences never open a second task
    assert judge(mondays, judged=day("2026-12-07"), state=closed) == ([], closed)  # two Mondays since
    (task, _, note), state = judge(mondays, judged=day("2026-12-14"), state=closed)
    assert "(30 Nov, 7 Dec and 14 Dec)" in task.body
    assert (note.kind, note.case_id) == ("note", task.case_id)  # the new episode notes its weekday again
    assert note.body == ("Found in the absence pattern: "
                         "3 absences on Mondays in the last 30 school days (30 Nov, 7 Dec and 14 Dec).")
    assert state == {"open": opened(TENANT, rule.RULE_ID, PUPIL, "after-2026-11-23"), "noted": ["weekday:0"],
                     "closed_on": "2026-11-23"}


def test_during_a_persistence_watch_the_pattern_rule_opens_no_task():
    assert judge(absent(*MONDAYS), watched=True) == ([], {})


def test_a_disabled_rule_does_nothing_and_keeps_the_state():
    state = {"noted": ["weekday:0"], "closed_on": "2026-10-01"}
    disabled = settings(rule.RULE_ID, enabled=False)
    assert judge(absent(*MONDAYS), state=state, settings_=disabled) == ([], state)


def test_a_school_that_asks_for_two_mondays_gets_the_conversation_at_the_second():
    (task, _, note), _ = judge(absent("2026-11-16", "2026-11-23"),
                               settings_=settings(rule.RULE_ID, same_weekday_count=2))
    assert "– 2 absences on Mondays in the last 30 school days (16 Nov and 23 Nov)" in task.body
    assert note.body == ("Found in the absence pattern: "
                         "2 absences on Mondays in the last 30 school days (16 Nov and 23 Nov).")


def test_a_school_that_narrows_the_window_to_29_school_days_no_longer_counts_the_30th_day_back():
    narrow = settings(rule.RULE_ID, repeat_window_school_days=29)
    assert judge(absent("2026-10-12", "2026-11-16", "2026-11-23"), settings_=narrow) == ([], {})


def test_a_school_that_leaves_documented_absence_out_sees_no_pattern_in_it():
    documented = absent(*MONDAYS, record=whole_day(documented=True))
    assert judge(documented, settings_=settings(rule.RULE_ID, count_documented=False)) == ([], {})
    # by default worrying whatever its reason
    assert [a.kind for a in judge(documented)[0]] == ["task", "alert", "note"]


def test_a_school_can_give_the_conversation_to_another_role():
    ctx = context(MONDAY, {rule.RULE_ID: settings(rule.RULE_ID, responsible="social_teacher")},
                  contact_teacher="u-kl", social_teacher="u-sos", nearest_leader="u-leder")
    (task, alert, _), _ = rule.evaluate(ctx, MONDAY, absent(*MONDAYS), None)
    assert task.assignee == Party("social_teacher", "u-sos")  # who holds that role for the pupil
    assert alert.assignee.role == "nearest_leader"
