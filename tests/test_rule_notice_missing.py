"""The pure rule ``absence.notice_missing``, without Redis, HTTP or Flask: plain data in, effects out."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from connector.rules import notice_missing as rule
from connector.rules.calendar import SchoolCalendar
from connector.rules.effects import Cancel, Schedule
from connector.rules.history import mark_code
from connector.rules.context import Context
from connector.rules.triggers import DayFacts
from connector.rules.plan import DEFAULT_PLAN, merge_plan
from tests.rule_support import Holders

SETTINGS = DEFAULT_PLAN[rule.RULE_ID]
CALENDAR = SchoolCalendar()  # weekdays minus Norwegian public holidays


def ctx(day: str, settings=SETTINGS, language: str = "en", teacher: str = "u-kl") -> Context:
    """Judged on the absence's own day (as a register sent the same day is), by the pupil's contact teacher."""
    plan = {**DEFAULT_PLAN, rule.RULE_ID: settings}
    return Context("skole", "s-1", plan, CALENDAR, language, date.fromisoformat(day), Holders(contact_teacher=teacher))


def test_undocumented_absence_schedules_the_end_of_the_third_school_day():
    (effect,) = rule.on_day_changed(ctx("2026-11-23", SETTINGS), "2026-11-23", {"day": "a0"}, {})
    assert effect == Schedule(
        "absence.notice_missing|s-1|2026-11-23",
        datetime(2026, 11, 26, 23, 0, tzinfo=timezone.utc),  # Friday 00:00 in Oslo
        {"rule_id": rule.RULE_ID, "student_id": "s-1", "date": "2026-11-23"},
    )


def test_deadline_skips_easter():
    """Absence Tue 23 Mar 2027 (no school break configured): Wed 24, Mon 29 is Easter Monday → Tue 30, Wed 31."""
    (effect,) = rule.on_day_changed(ctx("2027-03-23", SETTINGS), "2027-03-23", {"day": "a0"}, {})
    assert effect.due.astimezone(CALENDAR.start_of_day(date(2027, 4, 1)).tzinfo).date() == date(2027, 4, 1)


@pytest.mark.parametrize("record", [{}, {"day": "a1"}, {"L1": "l0"}, {"L1": "a1", "L2": "l0"}])
def test_documented_late_or_cleared_days_cancel(record):
    assert rule.on_day_changed(ctx("2026-11-23", SETTINGS), "2026-11-23", record, {}) == [
        Cancel("absence.notice_missing|s-1|2026-11-23"), Cancel("absence.notice_missing|s-1|2026-11-23|same_day")
    ]


def test_left_early_counts_as_absence():
    assert isinstance(rule.on_day_changed(ctx("2026-11-23", SETTINGS), "2026-11-23", {"L4": "e0"}, {})[0], Schedule)


def test_a_covering_notice_cancels():
    notices = {"2026-11-20|2026-11-24": "illness"}
    effects = rule.on_day_changed(ctx("2026-11-23", SETTINGS), "2026-11-23", {"day": "a0"}, notices)
    assert effects[0] == Cancel("absence.notice_missing|s-1|2026-11-23")


def test_notice_cancels_each_day_it_covers():
    effects = rule.on_notice("s-1", "2026-11-23", "2026-11-25")
    assert sorted({e.id.split("|")[2] for e in effects}) == ["2026-11-23", "2026-11-24", "2026-11-25"]


def test_a_very_long_notice_is_bounded():
    assert len(rule.on_notice("s-1", "2026-08-13", "2027-06-18")) == 2 * (rule.MAX_NOTICE_SPAN_DAYS + 1)


LESSON_REMINDERS = {**SETTINGS, "remind_guardians_for_lessons": True}


def test_on_deadline_with_the_absence_still_undocumented_gives_alert_and_task():
    (alert, task), state = rule.on_deadline(ctx("2026-11-23", LESSON_REMINDERS, "en", "u-kl"), "2026-11-23",
                                            DayFacts({"L1": "a0"}, {}), None)
    assert state["open"]["ref"] == task.external_ref
    assert (alert.kind, alert.assignee.role, alert.assignee.id) == ("alert", "guardian", None)
    assert (task.kind, task.assignee.role, task.assignee.id) == ("task", "contact_teacher", "u-kl")
    assert task.due_date == "2026-11-30"
    assert task.title == "Follow up an absence without notice on 23 Nov"
    assert "Monday 23 November 2026 (1 lesson)" in task.body
    assert "within 3 school days" in task.body


@pytest.mark.parametrize(
    "record,notices,settings",
    [
        ({"L1": "a1"}, {}, SETTINGS),
        ({"L1": "a0"}, {"2026-11-23|2026-11-23": ""}, SETTINGS),
        ({"L1": "a0"}, {}, merge_plan({rule.RULE_ID: {"enabled": False}})[rule.RULE_ID]),
    ],
    ids=["documented-since", "notice-since", "rule-disabled"],
)
def test_on_deadline_decides_on_the_state_as_it_is_now(record, notices, settings):
    assert rule.on_deadline(ctx("2026-11-23", settings, "nb", "u"), "2026-11-23", DayFacts(record, notices), None)[0] == []


def test_external_refs_are_stable_and_distinct_per_kind_pupil_and_day():
    first, _ = rule.on_deadline(ctx("2026-11-23", SETTINGS, "nb", "u"), "2026-11-23", DayFacts({"day": "a0"}, {}), None)
    again, _ = rule.on_deadline(ctx("2026-11-23", SETTINGS, "nn", "u"), "2026-11-23", DayFacts({"day": "a0"}, {}), None)
    other_day, _ = rule.on_deadline(ctx("2026-11-24", SETTINGS, "nb", "u"), "2026-11-24", DayFacts({"day": "a0"}, {}), None)
    assert [a.external_ref for a in first] == [a.external_ref for a in again]
    assert len({a.external_ref for a in first + other_day}) == 4


def test_mark_codes():
    assert mark_code("present", False) == ""
    assert mark_code("absent", False) == "a0"
    assert mark_code("left_early", True) == "e1"
    assert mark_code("late", False) == "l0"


def test_every_text_exists_in_all_three_languages_with_the_same_placeholders():
    import string

    from connector.rules.texts import LANGUAGES, catalogue

    for text_id, versions in catalogue().items():
        assert set(versions) == set(LANGUAGES), text_id
        fields = [{f for _, f, _, _ in string.Formatter().parse(versions[lang]) if f} for lang in LANGUAGES]
        assert fields[0] == fields[1] == fields[2], text_id


def test_a_tenants_own_wording_wins():
    from connector.rules.texts import render

    overrides = {"notice_missing.task.title": {"nb": "Ring hjem om {short_date}"}}
    assert render("nb", "notice_missing.task.title", overrides, short_date="23. nov") == "Ring hjem om 23. nov"
    assert render("nn", "notice_missing.task.title", overrides, short_date="23. nov").startswith("Følg opp fråvær")


def test_a_misspelt_plan_setting_is_an_error_not_a_silent_default():
    from marshmallow import ValidationError

    with pytest.raises(ValidationError) as caught:
        merge_plan({rule.RULE_ID: {"notice_school_day": 5}})
    assert "notice_school_day" in caught.value.messages[rule.RULE_ID]


def test_while_the_teachers_task_is_open_a_further_day_is_a_note_on_its_case():
    (_, task), state = rule.on_deadline(ctx("2026-11-23", SETTINGS, "nb", "u"), "2026-11-23", DayFacts({"day": "a0"}, {}), None)
    (reminder, note), state = rule.on_deadline(ctx("2026-11-24", SETTINGS, "nb", "u"), "2026-11-24", DayFacts({"day": "a0"}, {}), state)
    assert (reminder.kind, note.kind) == ("alert", "note")
    assert note.case_id == task.case_id
    assert "Også fravær uten melding fra foresatte tirsdag 24. november 2026" in note.body


def test_closing_a_follow_up_clears_only_its_own_task_and_survives_one_already_closed():
    from connector.rules.followup import close

    state = {"open": {"ref": "sf1-a", "case": "case-1", "since": "2026-11-23"}}
    assert close(state, "sf1-other") == state
    assert close(state, "sf1-a")["open"] is None
    assert close({"open": None}, "sf1-a") == {"open": None}
    assert close(None, "sf1-a") == {}


# --- a late notice: the guardians reported after the reminder went out ------------------------------------------


def opened_on(*days: str, language: str = "nb"):
    """The follow-up state after each day's deadline fell due (the first opens the task, the rest are notes)."""
    state, task = None, None
    for day in days:
        actions, state = rule.on_deadline(ctx(day, SETTINGS, language, "u"), day, DayFacts({"day": "a0"}, {}), state)
        task = task or next(a for a in actions if a.kind == "task")
    return task, state


def test_a_further_day_noted_on_the_open_task_is_remembered_compactly():
    task, state = opened_on("2026-11-23", "2026-11-24", "2026-11-26")
    assert state["days"] == [0, 1, 3]  # days after the task's own day that still lack a notice
    from connector.rules.followup import pack
    assert len(pack(state, tenant="skole", rule_id=rule.RULE_ID, student_id="s-1").encode()) <= 64
    _, fresh = opened_on("2026-11-23")
    assert "days" not in fresh  # a task about its own day alone


def test_a_late_notice_covering_the_tasks_days_is_a_note_and_closes_the_follow_up():
    task, state = opened_on("2026-11-23")
    (note,), after = rule.on_late_notice(ctx("2026-11-30"), [date(2026, 11, 23), date(2026, 11, 24)], state,
                                         ["illness"])
    assert after["open"] is None
    assert (note.kind, note.case_id, note.student_id) == ("note", task.case_id, "s-1")
    assert note.body.startswith("The guardians have now reported the absence on 23 Nov (reason: illness).")
    assert "you can close the task" in note.body


def test_a_late_notice_for_some_of_the_tasks_days_keeps_it_open_for_the_rest():
    task, state = opened_on("2026-11-23", "2026-11-24", language="nb")
    (note,), after = rule.on_late_notice(ctx("2026-11-30", language="nb"), [date(2026, 11, 23)], state)
    assert after["open"] == state["open"] and after["days"] == [1]
    assert note.body == "Foresatte har nå meldt fraværet 23. nov. Fortsatt uten melding: 24. nov."
    (note2,), closed = rule.on_late_notice(ctx("2026-11-30", language="nb"), ["2026-11-24"], after, ["", "medical"])
    assert closed["open"] is None and "days" not in closed
    assert note2.case_id == task.case_id and note2.external_ref != note.external_ref
    assert "24. nov (årsak: time hos lege, tannlege o.l.)" in note2.body


def test_a_late_notice_in_nynorsk():
    _, state = opened_on("2026-11-23", language="nn")
    (note,), _ = rule.on_late_notice(ctx("2026-11-30", language="nn"), [date(2026, 11, 23)], state, ["family"])
    assert note.body.startswith("Føresette har no meldt fråværet 23. nov (årsak: familiegrunnar).")


@pytest.mark.parametrize("covered, state", [
    ([date(2026, 11, 25)], "open"),  # other days than the task's: nothing to tell
    ([date(2026, 11, 23)], None),  # no task open (never, or the teacher closed it)
    ([date(2026, 11, 23)], {"open": None, "days": [0, 2]}),
])
def test_a_notice_that_covers_nothing_the_open_task_is_about_changes_nothing(covered, state):
    if state == "open":
        _, state = opened_on("2026-11-23")
    assert rule.on_late_notice(ctx("2026-11-30"), covered, state) == ([], dict(state or {}))


def test_the_same_late_notice_judged_twice_gives_the_same_note():
    _, state = opened_on("2026-11-23")
    first, _ = rule.on_late_notice(ctx("2026-11-30"), [date(2026, 11, 23)], state)
    again, _ = rule.on_late_notice(ctx("2026-11-30"), [date(2026, 11, 23)], state)
    assert first == again


def test_after_a_late_notice_closed_it_a_further_missing_notice_opens_a_new_task():
    task, state = opened_on("2026-11-23")
    _, state = rule.on_late_notice(ctx("2026-11-30"), [date(2026, 11, 23)], state)
    actions, state = rule.on_deadline(ctx("2026-12-01"), "2026-12-01", DayFacts({"day": "a0"}, {}), state)
    (new_task,) = [a for a in actions if a.kind == "task"]
    assert new_task.case_id != task.case_id and state["open"]["since"] == "2026-12-01" and "days" not in state


def test_a_day_missed_only_in_single_lessons_gets_no_automatic_text_to_the_guardians_by_default():
    """The contact teacher's conversation is the action (absence.single_lessons); an automatic text could tell the
    guardians of a confidential visit to the school nurse."""
    (task,), _ = rule.on_deadline(ctx("2026-11-23"), "2026-11-23", DayFacts({"L1": "a0"}, {}), None)
    assert (task.kind, task.assignee.role) == ("task", "contact_teacher")
    assert rule.on_deadline(ctx("2026-11-23"), "2026-11-23", DayFacts({"L1": "a0"}, {}), None, rule.SAME_DAY) == \
        ([], {})
    (alert, _), _ = rule.on_deadline(ctx("2026-11-23"), "2026-11-23", DayFacts({"day": "a0"}, {}), None)
    assert alert.assignee.role == "guardian"  # a whole day away: the guardians are reminded as before
