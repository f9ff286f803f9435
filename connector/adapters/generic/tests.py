"""Replays every fixture of the generic adapter through the real webhook door and checks the exact result: the
internal event as queued, its free text already read and dropped (``engine.reading``)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses

from connector.contract.actions import Action, Party
from connector.contract.events import EVENT_TYPES
from tests.support import PLATFORM, queued_jobs

FIXTURES = Path(__file__).parent / "fixtures"
INBOUND = sorted(p for p in FIXTURES.glob("*.json"))


REPLAYED = {
    "attendance_register__whole_day": {
        "type": "attendance.register",
        "timestamp": "2026-11-23T08:05:12+00:00",
        "date": "2026-11-23",
        "group_id": "7A",
        "marks": [
            {"student_id": "s-1001", "status": "present", "documented": False},
            {"student_id": "s-1002", "status": "absent", "documented": False},
            {"student_id": "s-1003", "status": "absent", "documented": True},  # its reason is not queued
            {"student_id": "s-1004", "status": "late", "documented": False, "minutes": 12},
        ],
    },
    "attendance_register__lesson": {
        "type": "attendance.register",
        "timestamp": "2026-11-23T09:20:44+01:00",
        "date": "2026-11-23",
        "group_id": "7A",
        "lesson": {"id": "L-2026-11-23-2", "subject": "Matematikk", "start": "09:25", "end": "10:10"},
        "marks": [
            {"student_id": "s-1001", "status": "present", "documented": False},
            {"student_id": "s-1002", "status": "left_early", "documented": False, "minutes": 20},
        ],
    },
    "attendance_marked__absent": {
        "type": "attendance.marked",
        "timestamp": "2026-11-23T10:02:00+00:00",
        "student_id": "s-1002",
        "date": "2026-11-23",
        "status": "absent",
        "documented": False,
        "group_id": "7A",
        "lesson": {"id": "L-2026-11-23-3", "subject": "Norsk", "start": "10:20", "end": "11:05"},
    },
    "absence_notice__illness": {
        "type": "absence.notice",
        "timestamp": "2026-11-24T06:41:09+00:00",
        "student_id": "s-1002",
        "from_date": "2026-11-23",
        "to_date": "2026-11-24",
        "reason_code": "illness",  # the reason's text is not queued, only its code
        "guardian_id": "g-5001",
        "channel": "app",
    },
    "message_created__from_guardian": {
        "type": "message.created",
        "timestamp": "2026-11-23T18:30:00+00:00",
        "message_id": "m-88001",
        "sender": {"id": "g-5001", "role": "guardian"},
        "recipients": [{"id": "u-kl-7a", "role": "contact_teacher"}],
        "student_ids": ["s-1002"],
        "created_at": "2026-11-23T19:30:00+01:00",
        # not the subject and body ("Fravær", "... blir hjemme i morgen."): what the door read from them
        "reading": {"category": "absence_notice", "confidence": "strong", "rule": "absence_notice.nb",
                    "accused": None, "request": None, "days": ["2026-11-24"]},  # sent Monday: "i morgen" is Tuesday
    },
    "task_updated__completed": {
        "type": "task.updated",
        "timestamp": "2026-12-01T13:15:00+00:00",
        "external_ref": "sf1-3f1c9a0d2b7e44c1a9d0e6b5f4a3c2d1e0f9a8b7",
        "status": "completed",
        "outcome": "resolved",
        "completed_at": "2026-12-01T14:10:00+01:00",
        "noted": True,  # not the note's text: whether there is one, and the update's digest
        "update_key": "39d01f4645c86ebf",
    },
    "student_enrolled": {
        "type": "student.enrolled",
        "timestamp": "2027-01-11T07:30:00+00:00",
        "student_id": "s-2040",
        "group_id": "7B",
        "date": "2027-01-11",
    },
}
IGNORED = {"unknown_type__grade_published": "grade.published"}


def test_every_declared_event_type_has_a_fixture_and_every_fixture_is_replayed():
    names = {p.stem for p in INBOUND}
    assert names == set(REPLAYED) | set(IGNORED)
    assert {expected["type"] for expected in REPLAYED.values()} == set(EVENT_TYPES)


@pytest.mark.parametrize("name", sorted(REPLAYED))
def test_fixture_becomes_exactly_this_internal_event(replay, rt, name):
    replay("generic", name, expect_answer={"accepted": 1}, expect_events=[REPLAYED[name]])
    assert len(queued_jobs(rt)) == 1


@pytest.mark.parametrize("name", sorted(IGNORED))
def test_unknown_type_fixture_is_ignored_with_202(replay, rt, name):
    assert replay("generic", name, expect_answer={"accepted": 0, "ignored": IGNORED[name]}) == []
    assert queued_jobs(rt) == []


def outbound_action(kind: str) -> Action:
    return Action(
        kind=kind, external_ref=f"sf1-{kind}", rule_id="absence.notice_missing", student_id="s-1002",
        title="Tittel", body="Tekst", assignee=Party("contact_teacher", "u-kl-7a") if kind != "note" else None,
        due_date="2026-11-30" if kind == "task" else None, case_id="c-1" if kind != "alert" else None,
    )


OUTBOUND = {
    "task": {
        "external_ref": "sf1-task", "assignee": {"role": "contact_teacher", "id": "u-kl-7a"}, "student_id": "s-1002",
        "title": "Tittel", "body": "Tekst", "due_date": "2026-11-30", "rule_id": "absence.notice_missing",
        "priority": "normal", "case_id": "c-1",
    },
    "alert": {
        "external_ref": "sf1-alert", "recipient": {"role": "contact_teacher", "id": "u-kl-7a"},
        "student_id": "s-1002", "title": "Tittel", "body": "Tekst", "rule_id": "absence.notice_missing",
        "severity": "info",
    },
    "note": {
        "external_ref": "sf1-note", "student_id": "s-1002", "body": "Tekst", "rule_id": "absence.notice_missing",
        "case_id": "c-1", "visibility": "staff",
    },
}


@pytest.mark.parametrize("kind", ["task", "alert", "note"])
def test_outbound_call_has_the_contracts_exact_shape(rt, platform, kind):
    created = json.loads((FIXTURES / "outbound" / "created.json").read_text())
    platform.add(responses.POST, f"{PLATFORM}/{kind}s", json=created, status=201)
    result = rt.adapter("skole-a", "generic").send(outbound_action(kind))
    assert (result.outcome, result.remote_id) == ("done", created["id"])
    (call,) = platform.calls
    assert json.loads(call.request.body) == OUTBOUND[kind]
    assert call.request.headers["Idempotency-Key"] == f"sf1-{kind}"
    assert call.request.headers["Authorization"] == "Bearer token-a-not-in-logs"
    assert call.request.headers["Content-Type"] == "application/json"


def test_conflict_fixture_is_success(rt, platform):
    conflict = json.loads((FIXTURES / "outbound" / "conflict.json").read_text())
    platform.add(responses.POST, f"{PLATFORM}/tasks", json=conflict, status=409)
    result = rt.adapter("skole-a", "generic").send(outbound_action("task"))
    assert (result.outcome, result.status) == ("done", 409)


@pytest.mark.parametrize("status,outcome", [(401, "dead"), (403, "dead"), (404, "dead"), (422, "dead"),
                                            (429, "retry"), (500, "retry"), (503, "retry")])
def test_platform_answers_are_classified(rt, platform, status, outcome):
    platform.add(responses.POST, f"{PLATFORM}/alerts", json={"error": "x"}, status=status)
    assert rt.adapter("skole-a", "generic").send(outbound_action("alert")).outcome == outcome
