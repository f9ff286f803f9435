"""The escalation ladder end to end: a guardian's message opens a case, each level gets its task, deadlines remind
and then alert the level above, and only an explicit escalation with the recorded talk moves the case.

Clock: Monday 23 November 2026, 09:00 in Oslo; the platform's API is the only thing mocked.
"""
from __future__ import annotations

import json
import logging
import threading
from datetime import date, datetime, timezone

import pytest

from connector.engine import absence, cases, routing as processing
from connector.store import cases as stored_cases
from connector.contract.actions import Action, external_ref
from connector.rules import escalation
from connector.rules.calendar import SchoolCalendar
from connector.rules.effects import Schedule
from tests.cases_support import (  # noqa: F401 - ``school`` is a fixture
    CONTACT_TEACHER, GUARDIAN, accept_all, at, level_of, message, school, send_message, sent, steps, the_case,
    update,
)
from tests.support import OTHER_TENANT_SECRET, post_event, run_worker

OWN_CHILD = "Jeg er bekymret for at Emil ikke får nok oppfølging i matte. Kan vi ta en prat?"
SEVERAL = "Flere av oss foreldre i 7B opplever at det er mye uro i timene. Kan dette tas opp?"
TALK = "Snakket med mor 24.11. Vi er enige om at sosiallærer kobles inn."

THU_00_OSLO = datetime(2026, 11, 25, 23, 0, tzinfo=timezone.utc)  # end of Wed 25 Nov: 2 school days after Monday
TUE_00_OSLO = datetime(2026, 11, 30, 23, 0, tzinfo=timezone.utc)  # end of Mon 30 Nov: 5 school days after Monday


def level_task(platform, role: str) -> dict:
    (task,) = [t for t in sent(platform, "tasks") if t["assignee"]["role"] == role
               and t["rule_id"] in ("escalation.level_task", "environment.investigate")]
    return task


def open_own_child_case(client, rt, platform) -> dict:
    accept_all(platform)
    send_message(client, rt, OWN_CHILD)
    return level_task(platform, "contact_teacher")


# --- Intake --------------------------------------------------------------------------------------------------------


def test_own_child_message_gives_the_contact_teacher_the_first_level_task(client, rt, platform, school):
    task = open_own_child_case(client, rt, platform)
    case = the_case(rt)
    assert task["assignee"] == {"role": "contact_teacher", "id": "u-kl-7a"}
    assert task["rule_id"] == "escalation.level_task"
    assert task["case_id"] == case["id"]
    assert task["student_id"] == "s-1"
    assert task["due_date"] == "2026-11-30"  # feedback to the guardian within 5 school days
    assert task["external_ref"] == external_ref("skole-a", "escalation.level_task", case["id"], "school:0", "task")
    assert len(sent(platform, "tasks")) == 1
    assert sent(platform, "alerts") == []
    (note,) = sent(platform, "notes")
    assert note["case_id"] == case["id"] and note["visibility"] == "staff"
    assert "regel own_child.nb" in note["body"] and "melding m-1" in note["body"]
    assert (case["category"], case["rule"], case["track"], case["guardian"]) == (
        "own_child_case", "own_child.nb", "A", "g-1")
    assert case["messages"] == ["m-1"] and case["pupils"] == ["s-1"]
    assert level_of(case) == (0, "contact_teacher")
    assert steps(case) == ["created"]


def test_level_task_text_says_why_which_step_what_by_when_and_who(client, rt, platform, school):
    task = open_own_child_case(client, rt, platform)
    case_id = the_case(rt)["id"]
    assert task["title"] == f"Sak {case_id}: undersøk og gi foresatt tilbakemelding (kontaktlærer)"
    body = task["body"]
    why = f"Hvorfor: Foresatt meldte en sak som gjelder eget barn mandag 23. november 2026 (sak {case_id}, elev s-1)."
    assert why in body
    assert "Steg i trappen: Trinn 1 av 4 i trappen for saker som gjelder ett barn: kontaktlærer." in body
    assert "Hva du gjør: Undersøk saken, sett inn tiltak og gi foresatt tilbakemelding." in body
    assert "Frist: Bekreft at du har tatt saken innen onsdag 25. november 2026. " \
           "Gi foresatt tilbakemelding innen mandag 30. november 2026." in body
    assert body.endswith("Ansvarlig: kontaktlærer.")
    assert "Emil" not in body and "Emil" not in task["title"]


def test_nynorsk_school_gets_nynorsk_texts(client, rt, platform):
    accept_all(platform)
    post_event(client, "message.created", message(OWN_CHILD, recipients=[{"id": "u-kl-7b", "role": "contact_teacher"}]),
               tenant="skole-b", secret=OTHER_TENANT_SECRET)
    run_worker(rt)
    (task,) = sent(platform, "tasks")
    case_id = the_case(rt, tenant="skole-b")["id"]
    assert task["title"] == f"Sak {case_id}: undersøk og gi føresette tilbakemelding (kontaktlærar)"
    assert "Kva du gjer:" in task["body"] and "Ansvarleg: kontaktlærar." in task["body"]


def test_the_message_body_is_neither_stored_nor_logged(client, rt, platform, school, caplog):
    caplog.set_level(logging.DEBUG, logger="connector")
    secret_words = "Emil ikke får nok oppfølging"
    open_own_child_case(client, rt, platform)
    stored = []
    for key in rt.redis.scan_iter(match=f"{rt.keys.prefix}:*"):
        kind = rt.redis.type(key).decode()
        if kind == "string":
            stored.append(rt.redis.get(key))
        elif kind == "hash":
            stored += list(rt.redis.hgetall(key).values())
        elif kind in ("set", "zset"):
            stored += list(rt.redis.zrange(key, 0, -1) if kind == "zset" else rt.redis.smembers(key))
    assert stored, "the case should be stored"
    assert not any(secret_words.encode() in value for value in stored)
    assert the_case(rt)  # stored, with ids only
    connector_logs = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("connector"))
    assert "opened case" in connector_logs
    assert secret_words not in connector_logs


def test_a_message_the_classifier_finds_nothing_in_does_nothing(client, rt, platform, school):
    accept_all(platform)
    send_message(client, rt, "Takk for en fin juleavslutning!")
    assert sent(platform) == []
    assert rt.redis.get(rt.keys.case("skole-a", cases.case_id_for("skole-a", "m-1"))) is None


def test_the_platforms_category_decides_over_the_words(client, rt, platform, school):
    accept_all(platform)
    send_message(client, rt, "Takk for en fin juleavslutning!", category="several_children_case")
    case = the_case(rt)
    assert (case["category"], case["rule"], case["track"]) == ("several_children_case", "platform.category", "B")


def test_a_message_from_staff_never_opens_a_case(client, rt, platform, school):
    accept_all(platform)
    send_message(client, rt, OWN_CHILD, sender=CONTACT_TEACHER,
                 recipients=[{"id": "u-leder", "role": "nearest_leader"}])
    assert sent(platform) == []


def test_absence_notices_and_school_refusal_are_handed_to_the_absence_plan(client, rt, platform, school, monkeypatch):
    accept_all(platform)
    handed = []
    monkeypatch.setitem(absence.MESSAGE_HANDLERS, "absence_notice",
                        lambda rt_, tenant, event, found: handed.append(("notice", tenant.id, event["message_id"])))
    monkeypatch.setitem(absence.MESSAGE_HANDLERS, "school_refusal",
                        lambda rt_, tenant, event, found: handed.append(("refusal", tenant.id, event["message_id"])))
    send_message(client, rt, "Hei, Jonas har feber og blir hjemme i dag.", message_id="m-7")
    send_message(client, rt, "Han nekter å gå på skolen og vi må nesten presse ham.", message_id="m-8")
    assert handed == [("notice", "skole-a", "m-7"), ("refusal", "skole-a", "m-8")]
    assert sent(platform) == []
    assert rt.redis.smembers(rt.keys.pupil_cases("skole-a", "s-1")) == set()


def test_an_absence_notice_without_an_absence_handler_is_logged_and_left(client, rt, platform, school, monkeypatch,
                                                                          caplog):
    caplog.set_level(logging.INFO, logger="connector.engine.cases")
    monkeypatch.delitem(absence.MESSAGE_HANDLERS, "absence_notice", raising=False)
    accept_all(platform)
    send_message(client, rt, "Hei, Jonas har feber og blir hjemme i dag.")
    assert sent(platform) == []
    assert "absence_notice (rule absence_notice.nb) is for the absence plan" in caplog.text


def test_cases_can_be_switched_off_in_the_plan(client, rt, platform, school):
    from dataclasses import replace

    from connector.rules.plan import merge_plan

    tenant = replace(rt.config.tenants["skole-a"], plan=merge_plan({"escalation.level_task": {"enabled": False}}))
    rt.config = replace(rt.config, tenants={**rt.config.tenants, "skole-a": tenant})
    accept_all(platform)
    send_message(client, rt, OWN_CHILD)
    assert sent(platform) == []


def test_a_guardians_second_message_on_the_same_matter_joins_the_open_case(client, rt, platform, school):
    open_own_child_case(client, rt, platform)
    send_message(client, rt, "Jeg er fortsatt bekymret for matten.", message_id="m-2",
                 created_at="2026-11-24T18:00:00+01:00")
    case = the_case(rt)
    assert case["messages"] == ["m-1", "m-2"]
    assert steps(case) == ["created", "message"]
    assert len(sent(platform, "tasks")) == 1


# --- Track A, level by level ---------------------------------------------------------------------------------------


def test_track_a_climbs_one_level_per_escalation_with_the_talk_recorded(client, rt, platform, school):
    first = open_own_child_case(client, rt, platform)
    update(client, rt, first["external_ref"], outcome="escalate", note=TALK, completed_at="2026-11-24T14:00:00+01:00")
    case = the_case(rt)
    assert level_of(case) == (1, "school_environment")
    second = level_task(platform, "social_teacher")
    assert second["assignee"] == {"role": "social_teacher", "id": "u-sos"}
    assert second["due_date"] == "2026-12-01"  # 5 school days from Tuesday, the day in completed_at
    assert "Trinn 2 av 4" in second["body"] and "ble løftet hit fra kontaktlærer tirsdag 24. november 2026" in \
        second["body"]
    (plan,) = sent(platform, "tasks", "escalation.activity_plan")
    assert plan["assignee"] == {"role": "social_teacher", "id": "u-sos"}
    assert "i samarbeid med kontaktlærer og foresatt" in plan["body"]
    # § 12-4 is a duty, not an option
    assert "skal skolen lage en skriftlig aktivitetsplan (opplæringslova § 12-4)" in plan["body"]
    assert "eventuell" not in plan["body"] and "Vurder" not in plan["body"]
    (moved,) = sent(platform, "notes", "escalation.escalated")
    assert "fra kontaktlærer til sosiallærer/skolemiljøteam tirsdag 24. november 2026" in moved["body"]
    # the talk is pointed to, never quoted: a teacher's note is free text about a child (issue 12)
    assert moved["body"].endswith("skrevet i merknaden på oppgaven til kontaktlærer tirsdag 24. november 2026; "
                                  "merknaden står på oppgaven.")
    assert TALK not in moved["body"]

    update(client, rt, second["external_ref"], outcome="escalate", note="Møte med foresatt 26.11.",
           completed_at="2026-11-26T10:00:00+01:00")
    third = level_task(platform, "nearest_leader")
    assert third["assignee"] == {"role": "nearest_leader", "id": "u-leder"} and "Trinn 3 av 4" in third["body"]
    update(client, rt, third["external_ref"], outcome="escalate", note="Foresatt ønsker rektor inn.",
           completed_at="2026-11-27T10:00:00+01:00")
    fourth = level_task(platform, "principal")
    assert fourth["assignee"] == {"role": "principal", "id": "u-rektor"} and "Trinn 4 av 4" in fourth["body"]
    assert len(sent(platform, "tasks", "escalation.activity_plan")) == 1  # only level 2 draws up the plan
    case = the_case(rt)
    assert level_of(case) == (3, "principal")
    assert [e["to"] for e in case["history"] if e["step"] == "escalated"] == [
        "school_environment", "nearest_leader", "principal"]


def test_escalating_from_the_top_keeps_the_case_and_says_why(client, rt, platform, school):
    task = open_own_child_case(client, rt, platform)
    for role, day in (("contact_teacher", 24), ("social_teacher", 25), ("nearest_leader", 26)):
        update(client, rt, level_task(platform, role)["external_ref"], outcome="escalate", note="Snakket med far.",
               completed_at=f"2026-11-{day}T10:00:00+01:00")
    assert task["external_ref"] != level_task(platform, "principal")["external_ref"]
    update(client, rt, level_task(platform, "principal")["external_ref"], outcome="escalate", note="Far vil videre.",
           completed_at="2026-11-27T10:00:00+01:00")
    (alert,) = sent(platform, "alerts")
    assert alert["recipient"] == {"role": "principal", "id": "u-rektor"}
    assert "kan ikke løftes høyere" in alert["title"] and "Statsforvalteren" in alert["body"]
    case = the_case(rt)
    assert level_of(case) == (3, "principal") and case["status"] == "open"
    assert case["history"][-1]["reason"] == "top_of_ladder"


def test_escalate_without_the_agreement_note_does_not_move_and_says_what_is_missing(client, rt, platform, school):
    task = open_own_child_case(client, rt, platform)
    update(client, rt, task["external_ref"], outcome="escalate", completed_at="2026-11-24T14:00:00+01:00")
    case = the_case(rt)
    assert level_of(case) == (0, "contact_teacher")
    assert len(sent(platform, "tasks")) == 1
    assert sent(platform, "notes", "escalation.escalated") == []
    (alert,) = sent(platform, "alerts")
    assert alert["recipient"] == {"role": "contact_teacher", "id": "u-kl-7a"}
    assert alert["rule_id"] == "escalation.level_task"
    assert "merknad om samtalen med foresatt mangler" in alert["title"]
    assert "skriv i merknaden hva dere snakket om" in alert["body"]
    assert case["history"][-1] == {"on": "2026-11-24", "step": "escalation_refused", "line": "school",
                                   "level": "contact_teacher", "reason": "no_agreement_note"}
    # ... and with the note, the same task moves it
    update(client, rt, task["external_ref"], outcome="escalate", note=TALK, completed_at="2026-11-25T09:00:00+01:00")
    assert level_of(the_case(rt)) == (1, "school_environment")


def test_an_update_on_an_earlier_levels_task_changes_nothing(client, rt, platform, school):
    task = open_own_child_case(client, rt, platform)
    update(client, rt, task["external_ref"], outcome="escalate", note=TALK, completed_at="2026-11-24T14:00:00+01:00")
    before = the_case(rt)
    calls = len(platform.calls)
    update(client, rt, task["external_ref"], outcome="escalate", note="Nok en gang.",
           completed_at="2026-11-25T14:00:00+01:00")
    update(client, rt, task["external_ref"], outcome="resolved", completed_at="2026-11-25T15:00:00+01:00")
    after = the_case(rt)
    assert (after["status"], after["lines"], after["history"]) == (before["status"], before["lines"], before["history"])
    assert len(platform.calls) == calls


# --- Track B -------------------------------------------------------------------------------------------------------


def open_several_children_case(client, rt, platform) -> dict:
    accept_all(platform)
    send_message(client, rt, SEVERAL)
    return level_task(platform, "contact_teacher")


def involve_parents(client, rt, school_task: dict, completed_at: str = "2026-11-24T15:00:00+01:00", **kwargs) -> None:
    update(client, rt, school_task["external_ref"], status="open", outcome="involve_parents",
           completed_at=completed_at, **kwargs)


def test_a_track_b_case_opens_with_one_level_task_to_the_contact_teacher(client, rt, platform, school):
    school_task = open_several_children_case(client, rt, platform)
    case = the_case(rt)
    assert (case["category"], case["track"]) == ("several_children_case", "B")
    assert [(t["assignee"]["role"], t["rule_id"]) for t in sent(platform, "tasks")] == [
        ("contact_teacher", "escalation.level_task")]
    assert list(case["lines"]) == ["school"] and steps(case) == ["created"]
    assert "Trinn 1 av 3 i trappen for saker som gjelder flere barn, skolens linje" in school_task["body"]
    assert "sett utfallet til «involve_parents»" in school_task["body"]
    (created,) = sent(platform, "notes")
    assert "Saken ligger hos kontaktlærer med sosiallærer/miljøterapeut, som skal" in created["body"]
    assert "trinnkontakt" not in created["body"]


PARENTS_LINE = "Trinn 1 av 3 i trappen for saker som gjelder flere barn, foreldrenes linje"


def parents_line_task(platform, level: int = 1) -> dict:
    """The contact teacher's task for a volunteer level of the parents' line (the volunteers get no task)."""
    (task,) = [t for t in sent(platform, "tasks") if t["assignee"]["role"] == "contact_teacher"
               and f"Trinn {level} av 3 i trappen for saker som gjelder flere barn, foreldrenes linje" in t["body"]]
    return task


def invitations(platform) -> list[dict]:
    return sent(platform, "alerts", "escalation.invitation")


def assert_nothing_about_the_case(invitation: dict, case: dict) -> None:
    """What a volunteer sees: no pupil, group, case, message, guardian or date, no deadline, nothing to remind."""
    assert invitation["student_id"] is None and "case_id" not in invitation and "due_date" not in invitation
    assert invitation["severity"] == "info" and "group_id" not in invitation
    seen = json.dumps(invitation, ensure_ascii=False)
    for detail in [case["id"], *case["pupils"], *case["messages"], case["guardian"], "7A", "7B", "2026", "november",
                   "Frist", "frist", "sak ", "Sak "]:
        assert detail not in seen, detail


def test_involve_parents_invites_the_class_parent_rep_once_and_gives_the_contact_teacher_the_lines_task(
        client, rt, platform, school):
    school_task = open_several_children_case(client, rt, platform)
    involve_parents(client, rt, school_task, msg_id="msg_parents")
    involve_parents(client, rt, school_task, msg_id="msg_parents")  # redelivered
    involve_parents(client, rt, school_task, msg_id="msg_parents_resent")  # the same update sent again
    involve_parents(client, rt, school_task, completed_at="2026-11-25T09:00:00+01:00")  # asked once more, later
    case = the_case(rt)
    # the volunteer: one invitation, as from the contact teacher, with nothing about the case, and no task
    assert [t for t in sent(platform, "tasks") if t["assignee"]["role"] in ("class_parent_rep", "parents_council")] \
        == []
    (invitation,) = invitations(platform)
    assert invitation["recipient"] == {"role": "class_parent_rep", "id": "u-trinnkontakt"}
    assert invitation["title"] == "Invitasjon fra kontaktlærer: en samtale om miljøet blant barna"
    assert invitation["body"].startswith("Hei!\nJeg er kontaktlærer og vil gjerne invitere deg som trinnkontakt ")
    assert invitation["body"].endswith("Vennlig hilsen kontaktlærer")
    assert_nothing_about_the_case(invitation, case)
    # the staff: the level's task, deadlines and all, is the contact teacher's
    parents_task = parents_line_task(platform)
    assert parents_task["assignee"] == {"role": "contact_teacher", "id": "u-kl-7a"}
    assert parents_task["due_date"] == "2026-12-01"  # 5 school days from Tuesday 24, the day in completed_at
    assert parents_task["student_id"] == "s-1" and parents_task["case_id"] == case["id"]
    assert "ba kontaktlærer med sosiallærer/miljøterapeut på skolens linje om at trinnkontakten kobles inn" in \
        parents_task["body"]
    assert "Trinnkontakten har fått en invitasjon fra deg" in parents_task["body"]
    assert "har ikke taushetsplikt" in parents_task["body"]
    assert parents_task["body"].endswith("Ansvarlig: kontaktlærer (som inviterte trinnkontakten).")
    assert "involver foreldre" not in parents_task["body"]
    (started,) = [n for n in sent(platform, "notes") if "Foreldrenes linje er startet" in n["body"]]
    assert started["rule_id"] == "escalation.level_task"
    assert "en invitasjon fra kontaktlærer uten opplysninger om elever og uten frister" in started["body"]
    assert sent(platform, "alerts") == [invitation]
    assert level_of(case, "parents") == (0, "class_parent_rep") and case["lines"]["parents"]["since"] == "2026-11-24"
    assert level_of(case, "school") == (0, "contact_and_social_teacher")  # the school line stays where it is
    assert case["lines"]["school"]["acknowledged"] == "2026-11-24" and case["status"] == "open"
    assert steps(case).count("line_started") == 1


def test_track_b_runs_the_school_line_and_the_parents_line_side_by_side(client, rt, platform, school):
    school_task = open_several_children_case(client, rt, platform)
    involve_parents(client, rt, school_task)
    case = the_case(rt)
    parents_task = parents_line_task(platform)
    assert parents_task["assignee"] == {"role": "contact_teacher", "id": "u-kl-7a"}
    assert "sammen med sosiallærer/miljøterapeut" in school_task["body"]
    assert "Drøft hvordan foresatte kan bidra" in parents_task["body"]
    assert sent(platform, "tasks", "escalation.activity_plan") == []
    assert level_of(case, "school") == (0, "contact_and_social_teacher")
    assert level_of(case, "parents") == (0, "class_parent_rep")

    # the parents' line: class parent rep → FAU → principal; the contact teacher records each step
    update(client, rt, parents_task["external_ref"], outcome="escalate", note="Drøftet med trinnkontakt og foresatt.",
           completed_at="2026-11-24T19:00:00+01:00")
    fau = parents_line_task(platform, level=2)
    assert fau["assignee"] == {"role": "contact_teacher", "id": "u-kl-7a"}
    assert fau["body"].endswith("Ansvarlig: kontaktlærer (som inviterte FAU).")
    invited = invitations(platform)
    assert [i["recipient"] for i in invited] == [{"role": "class_parent_rep", "id": "u-trinnkontakt"},
                                                 {"role": "parents_council", "id": "u-fau"}]
    assert "som representant i FAU" in invited[1]["body"]
    (lifted,) = [n for n in sent(platform, "notes", "escalation.escalated") if "til FAU" in n["body"]]
    assert "oppgaven og fristene for å bekrefte og gi foresatt tilbakemelding er kontaktlærers" in lifted["body"]
    for invitation in invited:
        assert_nothing_about_the_case(invitation, the_case(rt))
    update(client, rt, fau["external_ref"], outcome="escalate", note="FAU har snakket med foresatt.",
           completed_at="2026-11-26T19:00:00+01:00")
    principal = level_task(platform, "principal")
    assert "Trinn 3 av 3" in principal["body"] and "Ta kontakt med FAU ved behov" in principal["body"]
    assert level_of(the_case(rt), "school") == (0, "contact_and_social_teacher")  # the lines move independently

    # the school line: contact teacher → nearest leader → principal, who already holds the case
    update(client, rt, school_task["external_ref"], outcome="escalate", note="Snakket med foresatt.",
           completed_at="2026-11-25T10:00:00+01:00")
    leader = level_task(platform, "nearest_leader")
    assert "Trinn 2 av 3 i trappen for saker som gjelder flere barn, skolens linje" in leader["body"]
    assert "involver foreldre" not in leader["body"]  # the parents' line is already running
    update(client, rt, leader["external_ref"], outcome="escalate", note="Enige om å ta det til rektor.",
           completed_at="2026-11-27T10:00:00+01:00")
    assert len([t for t in sent(platform, "tasks") if t["assignee"]["role"] == "principal"]) == 1
    case = the_case(rt)
    assert case["lines"]["school"]["status"] == "joined"
    assert case["history"][-1]["step"] == "joined"
    assert len(sent(platform, "notes", "escalation.escalated")) == 4

    update(client, rt, principal["external_ref"], outcome="resolved", completed_at="2026-12-02T10:00:00+01:00")
    assert the_case(rt)["status"] == "resolved"


@pytest.mark.parametrize("tenant_plan", [{"escalation.level_task": {"parents_line": False}}])
def test_a_school_can_leave_the_parents_line_out(client, rt, platform, school, tenant_plan):
    school_task = open_several_children_case(client, rt, platform)
    assert "involver foreldre" not in school_task["body"]
    involve_parents(client, rt, school_task)
    assert [t["assignee"]["role"] for t in sent(platform, "tasks")] == ["contact_teacher"]
    (alert,) = sent(platform, "alerts")
    assert alert["recipient"] == {"role": "contact_teacher", "id": "u-kl-7a"}
    assert alert["title"] == f"Sak {the_case(rt)['id']}: foreldrenes linje kan ikke kobles inn"
    case = the_case(rt)
    assert list(case["lines"]) == ["school"]
    assert case["history"][-1]["reason"] == "not_used_by_school"


def test_involve_parents_on_a_case_about_ones_own_child_starts_nothing_and_says_so(client, rt, platform, school):
    task = open_own_child_case(client, rt, platform)
    assert "involver foreldre" not in task["body"]
    involve_parents(client, rt, task)
    assert len(sent(platform, "tasks")) == 1
    (alert,) = sent(platform, "alerts")
    assert "finnes bare i saker som gjelder flere barn" in alert["body"]
    case = the_case(rt)
    assert list(case["lines"]) == ["school"] and case["history"][-1]["reason"] == "no_parents_line"
    assert case["status"] == "open" and level_of(case) == (0, "contact_teacher")


# --- Deadlines on school days: remind, then alert the level above; never move -------------------------------------


def test_a_missed_acknowledgement_reminds_the_owner_then_alerts_the_level_above(client, rt, platform, school):
    open_own_child_case(client, rt, platform)
    at(rt, datetime(2026, 11, 25, 22, 59, tzinfo=timezone.utc))  # Wednesday 23:59 in Oslo: still in time
    assert sent(platform, "alerts") == []

    at(rt, THU_00_OSLO)
    (reminder,) = sent(platform, "alerts")
    case_id = the_case(rt)["id"]
    assert reminder["rule_id"] == "escalation.reminder"
    assert reminder["recipient"] == {"role": "contact_teacher", "id": "u-kl-7a"}
    assert reminder["title"] == f"Påminnelse, sak {case_id}: bekrefte at saken er tatt"
    assert "gikk ut onsdag 25. november 2026" in reminder["body"]
    # two school days of grace counted from the missed deadline (Wed 25), not from the day it was noticed
    assert "Frist: fredag 27. november 2026. Går også denne fristen ut, får sosiallærer/skolemiljøteam beskjed" \
        in reminder["body"]
    assert len(sent(platform, "notes", "escalation.reminder")) == 1

    at(rt, TUE_00_OSLO)
    (supervisor,) = sent(platform, "alerts", "escalation.supervisor_alert")
    assert supervisor["recipient"] == {"role": "social_teacher", "id": "u-sos"}
    assert "Du får dette som nivået over (sosiallærer/skolemiljøteam)" in supervisor["body"]
    assert len(sent(platform, "notes", "escalation.supervisor_alert")) == 1
    # the feedback deadline fell due at the same moment: its first miss is a reminder, not yet a supervisor alert
    assert [a["title"].split(": ")[-1] for a in sent(platform, "alerts", "escalation.reminder")] == [
        "bekrefte at saken er tatt", "gi foresatt tilbakemelding"]
    assert level_of(the_case(rt)) == (0, "contact_teacher")


def test_time_never_moves_the_case(client, rt, platform, school):
    open_own_child_case(client, rt, platform)
    for moment in (THU_00_OSLO, TUE_00_OSLO, datetime(2026, 12, 3, 23, 0, tzinfo=timezone.utc),
                   datetime(2027, 2, 1, 8, 0, tzinfo=timezone.utc)):
        at(rt, moment)
    case = the_case(rt)
    assert level_of(case) == (0, "contact_teacher") and case["status"] == "open"
    assert len(sent(platform, "tasks")) == 1
    assert [a["rule_id"] for a in sent(platform, "alerts")] == [
        "escalation.reminder", "escalation.supervisor_alert", "escalation.reminder", "escalation.supervisor_alert"]
    assert rt.redis.hlen(rt.keys.deadlines("skole-a")) == 0  # nothing keeps ticking after the supervisor is told
    assert "escalated" not in steps(case)


def test_deadlines_count_school_days_across_the_weekend_and_the_schools_day_off(client, rt, platform, school):
    """Reported Thursday 5 Nov; Friday 6 Nov is a day off: 2 school days are Monday 9 and Tuesday 10."""
    accept_all(platform)
    rt.clock.set(datetime(2026, 11, 5, 8, 0, tzinfo=timezone.utc))
    send_message(client, rt, OWN_CHILD, created_at="2026-11-05T09:00:00+01:00")
    assert level_task(platform, "contact_teacher")["due_date"] == "2026-11-13"
    at(rt, datetime(2026, 11, 10, 22, 59, tzinfo=timezone.utc))
    assert sent(platform, "alerts") == []
    at(rt, datetime(2026, 11, 10, 23, 0, tzinfo=timezone.utc))
    assert len(sent(platform, "alerts", "escalation.reminder")) == 1


def test_acknowledging_in_the_platform_stops_the_acknowledge_deadline_only(client, rt, platform, school):
    task = open_own_child_case(client, rt, platform)
    update(client, rt, task["external_ref"], status="open", completed_at="2026-11-24T08:00:00+01:00")
    at(rt, THU_00_OSLO)
    assert sent(platform, "alerts") == []
    at(rt, TUE_00_OSLO)
    (reminder,) = sent(platform, "alerts")
    assert reminder["title"].endswith("gi foresatt tilbakemelding")
    assert the_case(rt)["lines"]["school"]["acknowledged"] == "2026-11-24"


def test_a_deadline_already_past_when_the_escalation_arrives_fires_at_once(client, rt, platform, school):
    """The escalation happened Tuesday 24 Nov (completed_at) but reaches the connector on Monday 7 Dec."""
    task = open_own_child_case(client, rt, platform)
    rt.clock.set(datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc))
    update(client, rt, task["external_ref"], outcome="escalate", note=TALK, completed_at="2026-11-24T14:00:00+01:00")
    assert level_task(platform, "social_teacher")["due_date"] == "2026-12-01"  # judged by completed_at
    at(rt, rt.clock.now())
    titles = [a["title"] for a in sent(platform, "alerts", "escalation.reminder")]
    assert any(title.endswith("bekrefte at saken er tatt") for title in titles)
    # the grace period counts from the missed deadline (Thu 26 Nov), so it too had passed: the level above is told
    assert the_case(rt)["lines"]["school"]["due"]["ack"] == "2026-11-30"
    assert {a["recipient"]["role"] for a in sent(platform, "alerts", "escalation.supervisor_alert")} == {
        "nearest_leader"}


def test_a_case_reported_eight_school_days_late_gets_its_reminder_and_supervisor_alert_in_the_same_run(
        client, rt, platform, school):
    """Written Wednesday 11 Nov, received Monday 23 Nov: acknowledge was due Fri 13 (grace to Tue 17), feedback
    Wed 18 (grace to Fri 20). Every one of those has passed, so each fires now, in order."""
    accept_all(platform)
    send_message(client, rt, OWN_CHILD, created_at="2026-11-11T09:00:00+01:00")
    at(rt, rt.clock.now())
    alerts = [(a["rule_id"], a["title"].split(": ")[-1], a["recipient"]["role"]) for a in sent(platform, "alerts")]
    assert sorted(alerts) == sorted([
        ("escalation.reminder", "bekrefte at saken er tatt", "contact_teacher"),
        ("escalation.supervisor_alert", "bekrefte at saken er tatt", "social_teacher"),
        ("escalation.reminder", "gi foresatt tilbakemelding", "contact_teacher"),
        ("escalation.supervisor_alert", "gi foresatt tilbakemelding", "social_teacher"),
    ])
    for obligation in ("bekrefte at saken er tatt", "gi foresatt tilbakemelding"):  # the reminder first
        assert [rule for rule, what, _ in alerts if what == obligation] == [
            "escalation.reminder", "escalation.supervisor_alert"]
    (supervisor,) = [a for a in sent(platform, "alerts", "escalation.supervisor_alert")
                     if a["title"].endswith("bekrefte at saken er tatt")]
    assert "gikk ut tirsdag 17. november 2026, også etter en påminnelse" in supervisor["body"]
    case = the_case(rt)
    assert case["lines"]["school"]["due"] == {"ack": "2026-11-17", "feedback": "2026-11-20"}
    assert case["lines"]["school"]["misses"] == {"ack": 2, "feedback": 2}
    assert rt.redis.hlen(rt.keys.deadlines("skole-a")) == 0
    at(rt, datetime(2026, 12, 10, 8, 0, tzinfo=timezone.utc))
    assert len(sent(platform, "alerts")) == 4  # nothing fires twice
    assert level_of(case) == (0, "contact_teacher")


# --- Feedback to the guardian --------------------------------------------------------------------------------------


def test_a_staff_message_to_the_guardian_is_feedback_and_is_noted(client, rt, platform, school):
    open_own_child_case(client, rt, platform)
    send_message(client, rt, "Hei! Vi har satt inn ekstra lesetrening.", message_id="m-20", sender=CONTACT_TEACHER,
                 recipients=[GUARDIAN], created_at="2026-11-26T15:00:00+01:00")
    (note,) = sent(platform, "notes", "escalation.feedback")
    assert "kontaktlærer skrev til foresatt torsdag 26. november 2026" in note["body"]
    case = the_case(rt)
    assert case["lines"]["school"]["feedback"] == ["2026-11-26"]
    assert case["lines"]["school"]["acknowledged"] == "2026-11-26"
    assert case["history"][-1] == {"on": "2026-11-26", "step": "feedback", "line": "school",
                                   "level": "contact_teacher", "by": "contact_teacher", "message": "m-20"}
    at(rt, datetime(2026, 12, 10, 8, 0, tzinfo=timezone.utc))
    assert sent(platform, "alerts") == []  # neither deadline is missed


def test_feedback_is_tracked_per_level(client, rt, platform, school):
    task = open_own_child_case(client, rt, platform)
    send_message(client, rt, "Oppdatering.", message_id="m-20", sender=CONTACT_TEACHER, recipients=[GUARDIAN],
                 created_at="2026-11-23T15:00:00+01:00")
    update(client, rt, task["external_ref"], outcome="escalate", note=TALK, completed_at="2026-11-24T14:00:00+01:00")
    # a staff message written before level 2 took the case is not level 2's feedback, even if it arrives later
    send_message(client, rt, "Gammel melding.", message_id="m-21", sender=CONTACT_TEACHER, recipients=[GUARDIAN],
                 created_at="2026-11-23T16:00:00+01:00")
    assert the_case(rt)["lines"]["school"]["feedback"] == []
    at(rt, datetime(2026, 12, 1, 23, 0, tzinfo=timezone.utc))  # level 2's feedback deadline (Tue 1 Dec) passed
    assert any(a["title"].endswith("gi foresatt tilbakemelding") for a in sent(platform, "alerts"))


def test_on_the_parents_line_the_contact_teacher_not_the_volunteer_is_reminded_and_the_principal_alerted(
        client, rt, platform, school):
    involve_parents(client, rt, open_several_children_case(client, rt, platform),
                    completed_at="2026-11-23T15:00:00+01:00")  # Monday: the school line's task is acknowledged
    parents_task = parents_line_task(platform)
    at(rt, THU_00_OSLO)  # the parents' line's acknowledgement (Wed 25) missed
    (reminder,) = [a for a in sent(platform, "alerts", "escalation.reminder") if "foreldrenes linje" in a["body"]]
    assert reminder["recipient"] == {"role": "contact_teacher", "id": "u-kl-7a"}
    assert "Ansvarlig: kontaktlærer (som inviterte trinnkontakten)." in reminder["body"]
    assert "får rektor beskjed som nivået over" in reminder["body"]
    at(rt, TUE_00_OSLO)  # the grace period (to Fri 27) missed too
    supervisor = [a for a in sent(platform, "alerts", "escalation.supervisor_alert") if "foreldrenes linje" in a["body"]]
    assert [a["recipient"] for a in supervisor] == [{"role": "principal", "id": "u-rektor"}]
    assert "Følg opp med kontaktlærer (som inviterte trinnkontakten)" in supervisor[0]["body"]
    # the volunteers got their invitation and nothing else, ever
    volunteers = [a for a in sent(platform, "alerts") if a["recipient"]["role"] in ("class_parent_rep",
                                                                                      "parents_council")]
    assert [a["rule_id"] for a in volunteers] == ["escalation.invitation"]
    assert not [t for t in sent(platform, "tasks") if t["assignee"]["role"] in ("class_parent_rep", "parents_council")]
    # an escalation without its note is refused to the contact teacher, not to the volunteer
    update(client, rt, parents_task["external_ref"], status="open", outcome="escalate",
           completed_at="2026-12-01T10:00:00+01:00")
    (refused,) = [a for a in sent(platform, "alerts", "escalation.level_task") if "ikke løftet" in a["title"]]
    assert refused["recipient"] == {"role": "contact_teacher", "id": "u-kl-7a"}
    assert refused["body"].endswith("Ansvarlig: kontaktlærer (som inviterte trinnkontakten).")


def test_at_a_volunteer_level_the_contact_teachers_message_is_the_parents_lines_feedback_too(
        client, rt, platform, school):
    involve_parents(client, rt, open_several_children_case(client, rt, platform))
    send_message(client, rt, "Hei, vi har hatt et møte med trinnkontakten.", message_id="m-31",
                 sender=CONTACT_TEACHER, recipients=[GUARDIAN], created_at="2026-11-24T20:00:00+01:00")
    case = the_case(rt)
    assert case["lines"]["parents"]["feedback"] == ["2026-11-24"]
    assert case["lines"]["school"]["feedback"] == ["2026-11-24"]


def test_on_track_b_the_parents_representatives_give_the_parents_lines_feedback(client, rt, platform, school):
    involve_parents(client, rt, open_several_children_case(client, rt, platform))
    send_message(client, rt, "Hei, jeg har tatt det opp med kontaktlærer.", message_id="m-30",
                 sender={"id": "u-trinnkontakt", "role": "class_parent_rep"}, recipients=[GUARDIAN],
                 created_at="2026-11-24T20:00:00+01:00")
    case = the_case(rt)
    assert case["lines"]["parents"]["feedback"] == ["2026-11-24"]
    assert case["lines"]["school"]["feedback"] == []


def test_resolution_notes_whether_feedback_was_given(client, rt, platform, school):
    task = open_own_child_case(client, rt, platform)
    update(client, rt, task["external_ref"], outcome="resolved", completed_at="2026-11-25T12:00:00+01:00")
    (note,) = sent(platform, "notes", "escalation.resolved")
    assert "er løst hos kontaktlærer onsdag 25. november 2026" in note["body"]
    assert "Det er ikke registrert noen tilbakemelding til foresatt" in note["body"]


# --- Guardian asks to lift -----------------------------------------------------------------------------------------


def test_a_guardians_request_to_lift_waits_for_the_recorded_talk(client, rt, platform, school):
    task = open_own_child_case(client, rt, platform)
    send_message(client, rt, "Det har ikke blitt bedre. Vi ønsker å løfte saken.", message_id="m-2",
                 created_at="2026-11-25T19:00:00+01:00")
    (alert,) = sent(platform, "alerts")
    assert alert["recipient"] == {"role": "contact_teacher", "id": "u-kl-7a"}
    assert alert["title"] == f"Foresatt ber om at sak {the_case(rt)['id']} løftes"
    assert level_of(the_case(rt)) == (0, "contact_teacher")

    update(client, rt, task["external_ref"], status="open", note="Ringte mor 26.11., enige om å koble inn sosiallærer.",
           completed_at="2026-11-26T10:00:00+01:00")
    case = the_case(rt)
    assert level_of(case) == (1, "school_environment")
    assert case["history"][-2]["by"] == "guardian"
    assert case["messages"] == ["m-1", "m-2"]


def test_a_guardians_request_after_the_talk_was_recorded_lifts_at_once(client, rt, platform, school):
    task = open_own_child_case(client, rt, platform)
    update(client, rt, task["external_ref"], status="open", note="Samtale med far: vi prøver tiltak en uke til.",
           completed_at="2026-11-24T10:00:00+01:00")
    assert level_of(the_case(rt)) == (0, "contact_teacher")
    send_message(client, rt, "Tiltakene virker ikke. Vi vil ta saken videre.", message_id="m-2",
                 created_at="2026-12-01T19:00:00+01:00")
    assert level_of(the_case(rt)) == (1, "school_environment")
    (moved,) = sent(platform, "notes", "escalation.escalated")
    assert "etter ønske fra foresatt" in moved["body"]
    assert "skrevet i merknaden på oppgaven tirsdag 24. november 2026" in moved["body"]


def test_a_new_bullying_report_is_not_taken_as_a_request_to_lift_another_case(client, rt, platform, school):
    open_own_child_case(client, rt, platform)
    send_message(client, rt, "Nå blir han også mobbet i friminuttene. Jeg vil snakke med rektor.", message_id="m-2",
                 created_at="2026-11-24T19:00:00+01:00")
    own = the_case(rt)
    assert level_of(own) == (0, "contact_teacher") and "escalation_requested" not in steps(own)
    assert the_case(rt, "m-2")["route"] == "environment"
    assert len(sent(platform, "alerts", "environment.notify_principal")) == 1


# --- Closing -------------------------------------------------------------------------------------------------------


def test_resolved_closes_the_case_and_stops_every_deadline(client, rt, platform, school):
    task = open_own_child_case(client, rt, platform)
    update(client, rt, task["external_ref"], outcome="resolved", completed_at="2026-11-24T12:00:00+01:00")
    case = the_case(rt)
    assert (case["status"], case["closed_on"]) == ("resolved", "2026-11-24")
    assert case["history"][-1]["step"] == "resolved"
    assert rt.redis.hlen(rt.keys.deadlines("skole-a")) == 0
    assert rt.redis.smembers(rt.keys.pupil_cases("skole-a", "s-1")) == set()
    at(rt, datetime(2026, 12, 10, 8, 0, tzinfo=timezone.utc))
    assert sent(platform, "alerts") == []
    # raised again later: a new case
    send_message(client, rt, "Jeg er bekymret igjen for matten.", message_id="m-9",
                 created_at="2026-12-10T09:00:00+01:00")
    assert the_case(rt, "m-9")["status"] == "open"
    assert len(sent(platform, "tasks")) == 2


def test_a_task_cancelled_in_the_platform_stops_its_reminders_but_keeps_the_case(client, rt, platform, school):
    task = open_own_child_case(client, rt, platform)
    update(client, rt, task["external_ref"], status="cancelled", completed_at="2026-11-24T12:00:00+01:00")
    at(rt, datetime(2026, 12, 10, 8, 0, tzinfo=timezone.utc))
    assert sent(platform, "alerts") == []
    case = the_case(rt)
    assert case["status"] == "open" and "task_cancelled" in steps(case)


# --- Idempotency ---------------------------------------------------------------------------------------------------


def test_a_redelivered_message_opens_nothing_twice(client, rt, platform, school):
    accept_all(platform)
    data = message(OWN_CHILD)
    post_event(client, "message.created", data, msg_id="msg_same")
    post_event(client, "message.created", data, msg_id="msg_same")
    post_event(client, "message.created", data, msg_id="msg_resent_by_the_platform")
    run_worker(rt)
    assert len(sent(platform, "tasks")) == 1 and len(sent(platform, "notes")) == 1
    assert steps(the_case(rt)) == ["created"]


def test_a_redelivered_escalation_moves_the_case_only_once(client, rt, platform, school):
    task = open_own_child_case(client, rt, platform)
    for msg_id in ("msg_a", "msg_a", "msg_b"):
        update(client, rt, task["external_ref"], outcome="escalate", note=TALK,
               completed_at="2026-11-24T14:00:00+01:00", msg_id=msg_id)
    case = the_case(rt)
    assert level_of(case) == (1, "school_environment")
    assert steps(case).count("escalated") == 1
    assert len(sent(platform, "tasks")) == 3  # level 1, level 2, activity plan


def test_a_retried_job_writes_nothing_twice(client, rt, platform, school):
    accept_all(platform)
    event = {"type": "message.created", "timestamp": "2026-11-23T08:00:00+00:00", **message(OWN_CHILD)}
    first = processing.handle_events(rt, "skole-a", "generic", [event])
    again = processing.handle_events(rt, "skole-a", "generic", [event])
    assert [a.rule_id for a in first] == ["escalation.level_task", "escalation.level_task"]
    assert again == []
    refused = {"type": "task.updated", "timestamp": "2026-11-24T08:00:00+00:00", "status": "completed",
               "outcome": "escalate", "external_ref": first[0].external_ref}
    assert len(processing.handle_events(rt, "skole-a", "generic", [refused])) == 1
    assert processing.handle_events(rt, "skole-a", "generic", [refused]) == []
    assert steps(the_case(rt)).count("escalation_refused") == 1


def test_a_second_job_waits_for_the_case_lock_instead_of_overwriting(client, rt, platform, school, monkeypatch):
    open_own_child_case(client, rt, platform)
    case_id = the_case(rt)["id"]
    rt.redis.set(rt.keys.case_lock("skole-a", case_id), "another-job", px=60_000)
    monkeypatch.setattr(stored_cases, "LOCK_WAIT_SECONDS", 0.2)
    event = {"type": "message.created", "timestamp": "2026-11-23T08:00:00+00:00",
             **message("Oppdatering.", message_id="m-20", sender=CONTACT_TEACHER, recipients=[GUARDIAN])}
    with pytest.raises(cases.CaseBusy):
        processing.handle_events(rt, "skole-a", "generic", [event])
    rt.redis.delete(rt.keys.case_lock("skole-a", case_id))
    assert len(processing.handle_events(rt, "skole-a", "generic", [event])) == 1  # the retry does the work
    assert rt.redis.get(rt.keys.case_lock("skole-a", case_id)) is None  # released by the commit


def test_a_job_that_gives_up_on_a_busy_case_releases_the_cases_it_already_holds(client, rt, platform, school,
                                                                                 monkeypatch):
    accept_all(platform)
    send_message(client, rt, OWN_CHILD)
    send_message(client, rt, SEVERAL, message_id="m-2")
    first, second = sorted([the_case(rt)["id"], the_case(rt, "m-2")["id"]])
    rt.redis.set(rt.keys.case_lock("skole-a", second), "another-job", px=60_000)
    monkeypatch.setattr(stored_cases, "LOCK_WAIT_SECONDS", 0.2)
    event = {"type": "message.created", "timestamp": "2026-11-23T08:00:00+00:00",
             **message("Oppdatering.", message_id="m-20", sender=CONTACT_TEACHER, recipients=[GUARDIAN])}
    with pytest.raises(cases.CaseBusy):
        processing.handle_events(rt, "skole-a", "generic", [event])
    assert rt.redis.get(rt.keys.case_lock("skole-a", first)) is None
    assert rt.redis.get(rt.keys.case_lock("skole-a", second)) == b"another-job"


def test_a_job_whose_handler_raises_after_checkout_releases_the_case_at_once(client, rt, platform, school,
                                                                            monkeypatch):
    open_own_child_case(client, rt, platform)
    case_id = the_case(rt)["id"]
    event = {"type": "message.created", "timestamp": "2026-11-23T08:00:00+00:00",
             **message("Oppdatering.", message_id="m-20", sender=CONTACT_TEACHER, recipients=[GUARDIAN])}

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in a rule")

    with monkeypatch.context() as patch:
        patch.setattr(escalation, "on_feedback", broken)  # called after the job checked the case out
        with pytest.raises(RuntimeError, match="a bug in a rule"):
            processing.handle_events(rt, "skole-a", "generic", [event])
    assert rt.redis.get(rt.keys.case_lock("skole-a", case_id)) is None
    monkeypatch.setattr(stored_cases, "LOCK_WAIT_SECONDS", 0)  # the next job must not have to wait for LOCK_TTL
    assert [a.rule_id for a in processing.handle_events(rt, "skole-a", "generic", [event])] == ["escalation.feedback"]
    assert the_case(rt)["lines"]["school"]["feedback"] == ["2026-11-23"]


def test_a_deadline_whose_handler_raises_releases_the_case_at_once(client, rt, platform, school, monkeypatch):
    open_own_child_case(client, rt, platform)
    case_id = the_case(rt)["id"]
    deadline = escalation.deadline_id(case_id, "school", 0, "ack")
    rt.clock.set(THU_00_OSLO)
    with monkeypatch.context() as patch:
        patch.setattr(escalation, "on_deadline", lambda *args: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            processing.fire_deadline(rt, "skole-a", deadline)
    assert rt.redis.get(rt.keys.case_lock("skole-a", case_id)) is None
    assert rt.redis.hexists(rt.keys.deadlines("skole-a"), deadline)  # nothing committed: the lease will retry it
    monkeypatch.setattr(stored_cases, "LOCK_WAIT_SECONDS", 0)
    assert [a.rule_id for a in processing.fire_deadline(rt, "skole-a", deadline)] == ["escalation.reminder"] * 2


def test_committing_a_case_costs_no_script_round_trip(client, rt, platform, school, monkeypatch):
    """A script registered inside a pipeline makes redis-py ask ``SCRIPT EXISTS`` before every commit."""
    from redis.client import Pipeline

    loads = []
    monkeypatch.setattr(Pipeline, "load_scripts", lambda pipe: loads.append(pipe.scripts))
    task = open_own_child_case(client, rt, platform)
    update(client, rt, task["external_ref"], outcome="escalate", note=TALK, completed_at="2026-11-24T14:00:00+01:00")
    assert level_of(the_case(rt)) == (1, "school_environment")
    assert list(rt.redis.scan_iter(match=rt.keys.case_lock("skole-a", "*"))) == []  # every lock given back
    assert loads == []


# --- Two messages about one pupil at the same instant ------------------------------------------------------------


def guardian_event(message_id: str, student: str = "s-1") -> dict:
    return {"type": "message.created", "timestamp": "2026-11-23T08:00:00+00:00",
            **message(OWN_CHILD, message_id=message_id, students=[student])}


def run_job(rt, event: dict, outcome: list) -> None:
    """One worker's job; what it returned or raised is kept for the test to look at."""
    try:
        outcome.append(processing.handle_events(rt, "skole-a", "generic", [event]))
    except BaseException as exc:  # noqa: BLE001 - handed to the test
        outcome.append(exc)


class PauseAfterReading:
    """Wraps ``cases._open_cases``: the first job to read the pupil's open cases stops right after, before its
    commit, until the test resumes it."""

    def __init__(self, real):
        self.real = real
        self.read, self.resume = threading.Event(), threading.Event()
        self._first = threading.Lock()

    def __call__(self, *args, **kwargs):
        found = self.real(*args, **kwargs)
        if self._first.acquire(blocking=False):
            self.read.set()
            assert self.resume.wait(10), "the test never resumed the paused job"
        return found


def the_only_case_of(rt, pupil: str = "s-1") -> dict:
    ids = rt.redis.smembers(rt.keys.pupil_cases("skole-a", pupil))
    assert len(ids) == 1, f"pupil {pupil} has {len(ids)} open cases"
    return cases.load_case(rt, "skole-a", ids.pop().decode())


def test_a_message_arriving_while_another_about_the_pupil_is_not_yet_committed_is_retried_and_joins_its_case(
        rt, school, monkeypatch):
    pause = PauseAfterReading(cases._open_cases)
    monkeypatch.setattr(cases, "_open_cases", pause)
    first: list = []
    job_a = threading.Thread(target=run_job, args=(rt, guardian_event("m-a"), first))
    job_a.start()
    try:
        assert pause.read.wait(5), "job A never read the open cases"
        monkeypatch.setattr(stored_cases, "LOCK_WAIT_SECONDS", 0)
        with pytest.raises(cases.CaseBusy, match="open cases of pupil s-1"):  # job B, on another worker, now
            processing.handle_events(rt, "skole-a", "generic", [guardian_event("m-b")])
    finally:
        pause.resume.set()
        job_a.join(10)
    assert [a.rule_id for a in first[0]] == ["escalation.level_task", "escalation.level_task"]  # task and note
    assert processing.handle_events(rt, "skole-a", "generic", [guardian_event("m-b")]) == []  # RQ's retry of B
    case = the_only_case_of(rt)
    assert case["id"] == cases.case_id_for("skole-a", "m-a")
    assert case["messages"] == ["m-a", "m-b"] and steps(case) == ["created", "message"]
    assert list(rt.redis.scan_iter(match=f"{rt.keys.prefix}:*lock*")) == []


def test_a_message_that_waits_for_the_pupils_lock_joins_the_case_the_first_one_opened(rt, school, monkeypatch):
    pause = PauseAfterReading(cases._open_cases)
    monkeypatch.setattr(cases, "_open_cases", pause)
    b_waits = threading.Event()
    try_lock = stored_cases.try_lock

    def noticing_try_lock(redis, key, token):
        taken = try_lock(redis, key, token)
        if not taken and threading.current_thread().name == "job-b":
            b_waits.set()
        return taken

    monkeypatch.setattr(stored_cases, "try_lock", noticing_try_lock)
    first: list = []
    second: list = []
    job_a = threading.Thread(target=run_job, args=(rt, guardian_event("m-a"), first), name="job-a")
    job_b = threading.Thread(target=run_job, args=(rt, guardian_event("m-b"), second), name="job-b")
    job_a.start()
    try:
        assert pause.read.wait(5), "job A never read the open cases"
        job_b.start()
        assert b_waits.wait(5), "job B did not wait for the pupil's lock"
    finally:
        pause.resume.set()
        job_a.join(10)
        if job_b.ident is not None:  # started
            job_b.join(10)
    assert len(first[0]) == 2 and second == [[]]  # B opened nothing and sent nothing
    case = the_only_case_of(rt)
    assert case["messages"] == ["m-a", "m-b"]


def test_two_workers_with_messages_about_the_same_pupil_at_the_same_instant_open_one_case(rt, school):
    def job(event: dict, start: threading.Barrier, outcome: list) -> None:
        start.wait(5)
        run_job(rt, event, outcome)

    for round_ in range(20):
        pupil = f"s-race-{round_}"
        start = threading.Barrier(2)
        outcomes: list = [[], []]
        workers = [threading.Thread(target=job, args=(guardian_event(f"m-{round_}-{side}", pupil), start, outcome))
                   for side, outcome in zip("ab", outcomes)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(15)
        assert all(len(outcome) == 1 and isinstance(outcome[0], list) for outcome in outcomes), (round_, outcomes)
        assert sorted(the_only_case_of(rt, pupil)["messages"]) == [f"m-{round_}-a", f"m-{round_}-b"], round_
        assert sorted(len(outcome[0]) for outcome in outcomes) == [0, 2]  # one opened it (task, note), one joined


# --- The pure ladder -----------------------------------------------------------------------------------------------


class _Nobody:
    def get(self, role):
        return None


def _ctx(**plan) -> escalation.Context:
    from connector.rules.plan import merge_plan

    return escalation.Context("skole", merge_plan(plan), SchoolCalendar(), "nb", _Nobody(), date(2026, 11, 23))


def _case(category="own_child_case") -> dict:
    return escalation.new_case("c-1", category, "rule", None, ["s-1"], "g-1", "m-1", date(2026, 11, 23))


def test_each_level_has_the_next_one_up_as_supervisor_and_the_school_owner_above_the_principal():
    case = _case()
    assert [escalation.supervisor(case, "school", i).key for i in range(4)] == [
        "school_environment", "nearest_leader", "principal", "school_owner"]
    several = _case("several_children_case")
    # a volunteer supervises nobody and is supervised by nobody: the principal watches the contact teacher there
    assert [escalation.supervisor(several, "parents", i).key for i in range(3)] == [
        "principal", "principal", "school_owner"]
    assert [escalation.owner_level(several, "parents", i).key for i in range(3)] == [
        "contact_teacher", "contact_teacher", "principal"]


def test_escalate_moves_exactly_one_level():
    case = _case()
    ctx = _ctx()
    escalation.open_case(case, ctx, date(2026, 11, 23))
    escalation.escalate(case, "school", date(2026, 11, 24), ctx, by="level", agreement="x")
    assert case["lines"]["school"]["level"] == 1


def test_a_role_nobody_holds_is_addressed_by_role_alone():
    effects = escalation.open_case(_case(), _ctx(), date(2026, 11, 23))
    (task,) = [e for e in effects if getattr(e, "kind", None) == "task"]
    assert task.assignee.to_dict() == {"role": "contact_teacher"}


def test_a_deadline_for_a_level_the_case_has_left_does_nothing():
    case = _case()
    ctx = _ctx()
    escalation.open_case(case, ctx, date(2026, 11, 23))
    escalation.escalate(case, "school", date(2026, 11, 24), ctx, by="level", agreement="x")
    stale = {"line": "school", "level": 0, "obligation": "ack", "miss": 0, "due": "2026-11-25"}
    assert escalation.on_deadline(case, stale, ctx) == []


def _opened(today: date) -> tuple[dict, escalation.Context]:
    from dataclasses import replace

    case = _case()
    ctx = _ctx()
    escalation.open_case(case, ctx, date(2026, 11, 23))
    return case, replace(ctx, today=today)


def test_the_grace_period_counts_from_the_missed_deadline_not_from_the_day_it_was_noticed():
    case, ctx = _opened(today=date(2026, 11, 26))  # the ack deadline (Wed 25) noticed a day late
    effects = escalation.on_deadline(case, {"line": "school", "level": 0, "obligation": "ack", "miss": 0,
                                            "due": "2026-11-25"}, ctx)
    (again,) = [e for e in effects if isinstance(e, Schedule)]
    assert again.payload["due"] == "2026-11-27" and again.payload["miss"] == 1  # 2 school days after Wed 25
    assert [e.rule_id for e in effects if isinstance(e, Action)] == ["escalation.reminder"] * 2


def test_a_grace_period_already_over_alerts_the_supervisor_in_the_same_call():
    case, ctx = _opened(today=date(2026, 12, 3))
    effects = escalation.on_deadline(case, {"line": "school", "level": 0, "obligation": "ack", "miss": 0,
                                            "due": "2026-11-25"}, ctx)
    assert not [e for e in effects if isinstance(e, Schedule)]
    assert [(e.rule_id, e.kind) for e in effects] == [
        ("escalation.reminder", "alert"), ("escalation.reminder", "note"),
        ("escalation.supervisor_alert", "alert"), ("escalation.supervisor_alert", "note")]
    assert [e["step"] for e in case["history"]][-2:] == ["reminded", "supervisor_alerted"]
    assert case["lines"]["school"]["misses"]["ack"] == 2


def test_the_stored_case_holds_ids_and_codes_only():
    case = _case()
    escalation.open_case(case, _ctx(), date(2026, 11, 23))
    assert set(case) == {"id", "category", "rule", "route", "track", "accused", "pupils", "guardian", "messages",
                         "opened_on", "status", "closed_on", "lines", "history", "seen"}
