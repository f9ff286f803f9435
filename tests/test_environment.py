"""The school-environment routes (opplæringslova chapter 12) end to end: the only cases that skip levels.

Clock: Monday 23 November 2026, 09:00 in Oslo; the platform's API is the only thing mocked.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.cases_support import (  # noqa: F401 - ``school`` is a fixture
    accept_all, at, level_of, school, send_message, sent, steps, the_case, update,
)

BULLYING = "Vi tror sønnen vår blir mobbet. Han kommer hjem med ødelagte klær."
TEACHER = "En av lærerne skal ha lugget Mia i timen i går. Dette må undersøkes."
PRINCIPAL = "Rektor kjeftet på sønnen min foran hele klassen og kalte ham dum."


def one(platform, path, rule_id):
    found = sent(platform, path, rule_id)
    assert len(found) == 1, found
    return found[0]


def test_bullying_alerts_the_principal_and_starts_investigation_and_activity_plan(client, rt, platform, school):
    accept_all(platform)
    send_message(client, rt, BULLYING)
    case = the_case(rt)
    alert = one(platform, "alerts", "environment.notify_principal")
    assert alert["recipient"] == {"role": "principal", "id": "u-rektor"}
    assert alert["severity"] == "warning"
    investigate = one(platform, "tasks", "environment.investigate")
    assert investigate["assignee"] == {"role": "social_teacher", "id": "u-sos"}
    assert investigate["priority"] == "high"
    assert investigate["due_date"] == "2026-11-24"  # as soon as possible: 1 school day
    assert investigate["case_id"] == case["id"]
    plan = one(platform, "tasks", "environment.activity_plan")
    assert plan["due_date"] == "2026-11-30"
    one(platform, "notes", "environment.notify_principal")
    assert len(sent(platform)) == 4
    # the immediate route skips the contact teacher's level, and only that
    assert [t["assignee"]["role"] for t in sent(platform, "tasks")] == ["social_teacher", "social_teacher"]
    assert (case["route"], case["track"]) == ("environment", "A")
    assert level_of(case) == (1, "school_environment")
    assert steps(case) == ["created", "activity_plan_requested"]


def test_the_activity_plan_asks_for_problem_measures_when_who_and_evaluation(client, rt, platform, school):
    accept_all(platform)
    send_message(client, rt, BULLYING)
    body = one(platform, "tasks", "environment.activity_plan")["body"]
    for item in ("hvilket problem tiltakene skal løse", "hvilke tiltak skolen har planlagt",
                 "når tiltakene skal gjennomføres", "hvem som er ansvarlig for å gjennomføre tiltakene",
                 "når tiltakene skal evalueres"):
        assert item in body
    assert "Frist: mandag 30. november 2026." in body


def test_the_investigation_text_names_the_law_the_deadline_and_who(client, rt, platform, school):
    accept_all(platform)
    send_message(client, rt, BULLYING)
    task = one(platform, "tasks", "environment.investigate")
    assert task["title"] == f"Skolemiljøsak {the_case(rt)['id']}: undersøk snarest"
    assert "Opplæringslova kapittel 12 (§ 12-4): skolen skal undersøke saken snarest." in task["body"]
    assert "innen tirsdag 24. november 2026" in task["body"]
    assert task["body"].endswith("Ansvarlig: sosiallærer/skolemiljøteam.")
    alert = one(platform, "alerts", "environment.notify_principal")
    assert "Ansvarlig: rektor har ansvaret for at skolen oppfyller aktivitetsplikten" in alert["body"]


def test_the_investigation_is_due_after_one_school_day(client, rt, platform, school):
    accept_all(platform)
    send_message(client, rt, BULLYING)
    at(rt, datetime(2026, 11, 24, 22, 59, tzinfo=timezone.utc))
    assert sent(platform, "alerts", "escalation.reminder") == []
    at(rt, datetime(2026, 11, 24, 23, 0, tzinfo=timezone.utc))  # end of Tuesday in Oslo
    reminder = one(platform, "alerts", "escalation.reminder")
    assert reminder["recipient"] == {"role": "social_teacher", "id": "u-sos"}


@pytest.mark.parametrize("tenant_plan", [{"environment.investigate": {"school_days": 2},
                                          "environment.activity_plan": {"school_days": 10}}])
def test_the_schools_own_deadlines_are_used(client, rt, platform, school, tenant_plan):
    accept_all(platform)
    send_message(client, rt, BULLYING)
    assert one(platform, "tasks", "environment.investigate")["due_date"] == "2026-11-25"
    assert one(platform, "tasks", "environment.activity_plan")["due_date"] == "2026-12-07"


def test_from_the_investigation_the_case_climbs_the_ordinary_ladder(client, rt, platform, school):
    accept_all(platform)
    send_message(client, rt, BULLYING)
    investigate = one(platform, "tasks", "environment.investigate")
    update(client, rt, investigate["external_ref"], status="open", completed_at="2026-11-23T14:00:00+01:00")
    assert the_case(rt)["lines"]["school"]["acknowledged"] == "2026-11-23"
    update(client, rt, investigate["external_ref"], outcome="escalate", note="Møte med foresatte 27.11.",
           completed_at="2026-11-27T14:00:00+01:00")
    leader = one(platform, "tasks", "escalation.level_task")
    assert leader["assignee"] == {"role": "nearest_leader", "id": "u-leder"}
    assert "Trinn 3 av 4" in leader["body"]
    assert sent(platform, "tasks", "escalation.activity_plan") == []  # the §12 plan exists already


def test_a_completed_activity_plan_is_recorded_in_the_history(client, rt, platform, school):
    accept_all(platform)
    send_message(client, rt, BULLYING)
    plan = one(platform, "tasks", "environment.activity_plan")
    update(client, rt, plan["external_ref"], completed_at="2026-11-27T12:00:00+01:00")
    update(client, rt, plan["external_ref"], completed_at="2026-11-27T12:00:00+01:00", msg_id="redelivered")
    case = the_case(rt)
    assert steps(case).count("activity_plan_completed") == 1
    assert case["status"] == "open"  # the plan is done; the case is not


def test_a_staff_member_suspected_alerts_the_principal_immediately(client, rt, platform, school):
    accept_all(platform)
    send_message(client, rt, TEACHER)
    alert = one(platform, "alerts", "environment.staff_involved")
    assert alert["recipient"] == {"role": "principal", "id": "u-rektor"}
    assert alert["severity"] == "urgent"
    assert alert["title"] == f"Haster: en ansatt kan ha krenket en elev (sak {the_case(rt)['id']})"
    assert "Rektor skal varsles straks" in alert["body"]
    investigate = one(platform, "tasks", "environment.investigate")
    assert investigate["assignee"] == {"role": "principal", "id": "u-rektor"} and investigate["priority"] == "high"
    assert one(platform, "tasks", "environment.activity_plan")["assignee"]["role"] == "principal"
    one(platform, "notes", "environment.staff_involved")
    assert all(a["recipient"]["role"] != "school_owner" for a in sent(platform, "alerts"))
    case = the_case(rt)
    assert (case["route"], case["track"], case["accused"]) == ("staff", "staff", None)


def test_a_suspect_in_the_school_leadership_goes_to_the_school_owner_instead(client, rt, platform, school):
    accept_all(platform)
    send_message(client, rt, PRINCIPAL)
    alert = one(platform, "alerts", "environment.staff_involved")
    assert alert["recipient"] == {"role": "school_owner", "id": "u-eier"}
    assert alert["severity"] == "urgent"
    assert "derfor går saken til skoleeier og ikke til rektor" in alert["body"]
    assert {t["assignee"]["role"] for t in sent(platform, "tasks")} == {"school_owner"}
    assert not any(c.get("recipient", c.get("assignee", {})).get("role") == "principal" for c in sent(platform))
    case = the_case(rt)
    assert (case["track"], case["accused"]) == ("staff_leadership", "school_leadership")


def test_the_platforms_staff_category_with_a_leadership_suspect_goes_to_the_school_owner(client, rt, platform,
                                                                                          school):
    accept_all(platform)
    send_message(client, rt, "Inspektøren dyttet ham inn i veggen.", category="staff_involved")
    assert one(platform, "alerts", "environment.staff_involved")["recipient"]["role"] == "school_owner"
    assert the_case(rt)["rule"] == "platform.category"


def test_a_principal_who_misses_the_staff_investigation_twice_is_followed_up_by_the_school_owner(client, rt, platform,
                                                                                                  school):
    accept_all(platform)
    send_message(client, rt, TEACHER)
    at(rt, datetime(2026, 11, 24, 23, 0, tzinfo=timezone.utc))
    assert one(platform, "alerts", "escalation.reminder")["recipient"]["role"] == "principal"
    # the grace counts from the missed deadline: Tue 24 + 2 school days = Thu 26, so Thursday 23:59 is still in time
    at(rt, datetime(2026, 11, 26, 22, 59, tzinfo=timezone.utc))
    assert sent(platform, "alerts", "escalation.supervisor_alert") == []
    at(rt, datetime(2026, 11, 26, 23, 0, tzinfo=timezone.utc))
    assert one(platform, "alerts", "escalation.supervisor_alert")["recipient"] == {"role": "school_owner",
                                                                                   "id": "u-eier"}
    assert the_case(rt)["lines"]["school"]["level"] == 0


def test_a_staff_case_cannot_be_lifted_beyond_its_holder(client, rt, platform, school):
    accept_all(platform)
    send_message(client, rt, PRINCIPAL)
    investigate = one(platform, "tasks", "environment.investigate")
    update(client, rt, investigate["external_ref"], outcome="escalate", note="Foresatt vil klage.",
           completed_at="2026-11-25T12:00:00+01:00")
    alert = one(platform, "alerts", "escalation.level_task")
    assert "kan ikke løftes høyere" in alert["title"]
    assert the_case(rt)["history"][-1]["reason"] == "top_of_ladder"
