"""``escalation.read_message`` as a pure rule: the plan's settings decide who reads a weak match, and by when."""
from __future__ import annotations

from datetime import date

import pytest
from marshmallow import ValidationError

from connector.rules import read_message
from connector.rules.calendar import SchoolCalendar
from connector.rules.plan import merge_plan

FRIDAY = date(2026, 11, 27)


def the_task(category="school_environment", **settings):
    plan = merge_plan({read_message.RULE_ID: settings} if settings else None)
    return read_message.task(tenant_id="t", message_id="m-9", sent_on=FRIDAY, category=category, pupils=["s-1"],
                             teacher="u-1", calendar=SchoolCalendar(), language="nb",
                             settings=plan[read_message.RULE_ID])


def test_by_default_the_contact_teacher_reads_it_by_the_next_school_day():
    action = the_task()
    assert action.assignee.role == "contact_teacher" and action.assignee.id == "u-1"
    assert action.due_date == "2026-11-30"  # Friday's message: Monday
    assert "Ansvarlig: kontaktlærer." in action.body
    assert action.priority == "high"


def test_a_school_chooses_who_reads_and_how_long_they_have():
    action = the_task(responsible="social_teacher", task_school_days=3)
    assert action.assignee.role == "social_teacher"
    assert action.due_date == "2026-12-02"
    assert "Ansvarlig: sosiallærer." in action.body


def test_a_school_may_word_the_task_its_own_way():
    action = the_task(texts={"escalation.read_message.title": {"nb": "Se på melding {message_id}"}})
    assert action.title == "Se på melding m-9"


def test_a_hint_of_an_absence_notice_is_not_urgent():
    assert the_task(category="absence_notice").priority == "normal"


@pytest.mark.parametrize("settings", [{"responsible": "parents_council"}, {"task_school_days": -1},
                                      {"enabled": "maybe"}])
def test_settings_a_school_cannot_have(settings):
    with pytest.raises(ValidationError):
        merge_plan({read_message.RULE_ID: settings})
