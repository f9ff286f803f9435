"""The pure rule ``absence.school_refusal``, without Redis, HTTP or Flask.

DOMAIN §1: the guardian reports the pupil must be pressed to go to school and asks to stay home (also problem
behaviour at home): alert the contact teacher as soon as possible (the same school day) and start the pattern
follow-up, a conversation with the pupil and guardians (within 5 school days, as for a pattern).
"""
from __future__ import annotations

from connector.contract.actions import Party
from connector.rules import school_refusal as rule
from connector.rules.followup import close, opened
from tests.rule_support import PUPIL, TENANT, context, day, ref, settings

SETTINGS = settings(rule.RULE_ID)


def report(reported_on="2026-11-23", source="m-1", via="message", state=None, settings_=SETTINGS, language="en"):
    ctx = context(reported_on, {rule.RULE_ID: settings_}, language=language, contact_teacher="u-kl")
    return rule.evaluate(ctx, source, day(reported_on), via, state)


def test_a_report_alerts_the_contact_teacher_at_once_and_opens_the_conversation():
    (alert, task), state = report()
    assert (alert.kind, alert.rule_id, alert.severity) == ("alert", "absence.school_refusal", "urgent")
    assert alert.assignee == Party("contact_teacher", "u-kl")
    assert alert.due_date is None  # an alert is the same school day: it is sent when the report is processed
    assert alert.title == "The guardians report the pupil must be pressed to go to school"
    assert alert.body.startswith("On Monday 23 November 2026 the guardians wrote, in a message, that the pupil must "
                                 "be pressed to go to school and asks to stay home, or about problem behaviour at home.")
    assert (task.kind, task.rule_id, task.priority) == ("task", "absence.school_refusal", "high")
    assert task.assignee == Party("contact_teacher", "u-kl")
    assert task.due_date == "2026-11-30"
    assert task.title == "Possibly worrying school absence: conversation with pupil and guardians"
    assert state == {"open": opened(TENANT, rule.RULE_ID, PUPIL, "2026-11-23")}


def test_the_conversation_is_due_five_school_days_later_skipping_the_day_off():
    (_, task), _ = report("2026-11-05")
    assert task.due_date == "2026-11-13"  # Mon 9 … Fri 13: Friday 6 November is off


def test_a_report_on_a_day_without_school_counts_from_the_next_school_day():
    for reported_on in ("2026-11-06", "2026-11-07"):  # the school's day off, a Saturday
        (alert, task), _ = report(reported_on)
        assert alert.kind == "alert"
        assert task.due_date == "2026-11-16"


def test_a_report_in_an_absence_notice_says_so():
    (alert, _), _ = report(source="2026-11-23|2026-11-24", via="notice")
    assert "in an absence notice" in alert.body
    assert alert.external_ref == ref(rule.RULE_ID, "2026-11-23|2026-11-24", "alert")


def test_external_refs_are_stable_the_alert_per_report_and_the_task_per_report_day():
    first, _ = report()
    again, _ = report(language="nb")
    assert [a.external_ref for a in first] == [a.external_ref for a in again] == [
        ref(rule.RULE_ID, "m-1", "alert"), ref(rule.RULE_ID, "2026-11-23", "task")]
    other_message, _ = report(source="m-2", reported_on="2026-11-24")
    assert len({a.external_ref for a in first + other_message}) == 4


def test_a_further_report_while_the_conversation_is_open_alerts_again_and_notes_it_on_the_case():
    (_, task), state = report()
    (alert, note), after = report("2026-11-25", source="m-2", state=state)
    assert (alert.kind, alert.external_ref) == ("alert", ref(rule.RULE_ID, "m-2", "alert"))
    assert (note.kind, note.case_id) == ("note", task.case_id)
    assert note.external_ref == ref(rule.RULE_ID, "2026-11-23/2026-11-25", "note")
    assert note.body == ("On Wednesday 25 November 2026 the guardians reported again, in a message, that the pupil "
                         "must be pressed to go to school.")
    assert after == state
    (_, new_task), _ = report("2026-12-07", source="m-3", state=close(after, task.external_ref))
    assert (new_task.kind, new_task.external_ref) == ("task", ref(rule.RULE_ID, "2026-12-07", "task"))


def test_a_disabled_rule_neither_alerts_nor_opens_a_task():
    state = {"open": None}
    assert report(state=state, settings_=settings(rule.RULE_ID, enabled=False)) == ([], state)


def test_a_school_can_ask_for_the_conversation_within_two_school_days():
    (alert, task), _ = report("2026-11-05", settings_=settings(rule.RULE_ID, task_school_days=2))
    assert task.due_date == "2026-11-10"
    assert "by Tuesday 10 November 2026" in alert.body
