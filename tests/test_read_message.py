"""A message that may be a case, but only by a hint (a typo, a dialect form, a weak rule): the contact teacher
reads it first. No case, no deadlines, reminders or alerts, and the task carries no text of the message.

Clock: Monday 23 November 2026, 09:00 in Oslo; the platform's API is the only thing mocked.
"""
from __future__ import annotations

from datetime import date

import pytest

from connector.contract.actions import external_ref
from connector.engine import cases
from connector.rules import read_message
from connector.rules.calendar import SchoolCalendar
from connector.rules.texts import LANGUAGES
from tests.cases_support import accept_all, school, send_message, sent  # noqa: F401 - ``school`` is a fixture

TYPO_BULLYING = "Han blir mobet hver dag på skolen"


def no_case(rt, message_id: str = "m-1") -> bool:
    return rt.redis.get(rt.keys.case("skole-a", cases.case_id_for("skole-a", message_id))) is None


def test_a_weak_match_gives_the_contact_teacher_one_read_task_and_opens_nothing(client, rt, platform, school):
    accept_all(platform)
    send_message(client, rt, TYPO_BULLYING)
    (task,) = sent(platform)
    assert task["rule_id"] == read_message.RULE_ID
    assert task["assignee"] == {"role": "contact_teacher", "id": "u-kl-7a"}
    assert task["external_ref"] == external_ref("skole-a", read_message.RULE_ID, "m-1", "read", "task")
    assert task["due_date"] == "2026-11-24" and task["priority"] == "high"
    assert "m-1" in task["body"] and "mandag 23. november 2026" in task["body"]
    assert "skolemiljøet" in task["title"]
    assert "mobet" not in task["title"] + task["body"]  # no text of the message
    assert no_case(rt)


def test_the_same_message_again_makes_no_second_task(client, rt, platform, school):
    accept_all(platform)
    send_message(client, rt, TYPO_BULLYING)
    send_message(client, rt, TYPO_BULLYING)
    refs = {task["external_ref"] for task in sent(platform)}
    assert len(refs) == 1


@pytest.mark.parametrize("body, days", [
    ("Hei! Emma er sykk i dag. Mvh mor", b"2026-11-23|2026-11-23"),
    ("Ho e dårle i dag", b"2026-11-23|2026-11-23"),
    ("han e sjuk", b"2026-11-23|2026-11-24"),  # no date in it: the send day and the next school day
])
def test_a_misspelt_sick_note_counts_as_the_notice_and_asks_nobody_to_read_it(client, rt, platform, school, body,
                                                                               days):
    # issue 18: a typo or a dialect form in the commonest message a school gets is still the guardian reporting the
    # absence; recording it opens nothing, so it needs no person's reading first (``tolerant: strong``).
    accept_all(platform)
    send_message(client, rt, body)
    assert sent(platform) == []
    assert rt.redis.hkeys(rt.keys.notices("skole-a", "s-1")) == [days]
    assert no_case(rt)


@pytest.mark.parametrize("body", [
    "Rektor ringte og kjeftet på meg.",  # how staff treated the parent: not §12-5 about a pupil
    "Vi foreldre på 3. trinn vil takke for juleavslutningen.",
    "Takk for oppfølgingen!",
])
def test_harmless_messages_open_nothing_and_ask_nothing(client, rt, platform, school, body):
    accept_all(platform)
    send_message(client, rt, body)
    assert sent(platform) == []
    assert no_case(rt)


def with_plan(rt, **settings) -> None:
    from dataclasses import replace

    from connector.rules.plan import merge_plan

    tenant = rt.config.tenants["skole-a"]
    rt.config = replace(rt.config, tenants={**rt.config.tenants, "skole-a": replace(
        tenant, plan=merge_plan({read_message.RULE_ID: settings}))})


def test_the_plan_chooses_who_reads_a_weak_match_and_by_when(client, rt, platform, school):
    with_plan(rt, responsible="social_teacher", task_school_days=3)
    accept_all(platform)
    send_message(client, rt, TYPO_BULLYING)
    (task,) = sent(platform)
    assert task["assignee"] == {"role": "social_teacher", "id": "u-sos"}
    assert task["due_date"] == "2026-11-26"
    assert no_case(rt)


def test_a_school_that_switches_reading_tasks_off_gets_nothing_for_a_weak_match(client, rt, platform, school):
    with_plan(rt, enabled=False)
    accept_all(platform)
    send_message(client, rt, TYPO_BULLYING)
    assert sent(platform) == []
    assert no_case(rt)


def test_an_exact_match_still_opens_its_case(client, rt, platform, school):
    accept_all(platform)
    send_message(client, rt, "Vi tror sønnen vår blir mobbet. Han kommer hjem med ødelagte klær.")
    assert not no_case(rt)
    assert not sent(platform, rule_id=read_message.RULE_ID)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("category", ["absence_notice", "school_refusal", "own_child_case", "several_children_case",
                                      "school_environment", "staff_involved"])
def test_every_suspected_category_has_words_in_every_language(language, category):
    action = read_message.task(tenant_id="t", message_id="m-9", sent_on=date(2026, 11, 27), category=category,
                               pupils=[], teacher=None, calendar=SchoolCalendar(), language=language)
    assert "m-9" in action.body and "{" not in action.title + action.body
    assert action.student_id is None and action.assignee.role == "contact_teacher"
    assert action.due_date == "2026-11-30"  # Friday's message: read by Monday
