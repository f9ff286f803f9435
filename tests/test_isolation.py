"""Tenants never see each other (issue 12, isolation): two schools with the same group and pupil ids.

Everything the connector keeps is under the tenant's id (``store/keys.py``), and every action is written with the
tenant's own adapter and token. The story: school B has pupil s-1 absent with a notice, and a case about s-1 that
it escalates. Then school A, with its own s-1 in its own 7A, gets the same kinds of events: its absence is not
covered by B's notice (A asks the guardians for one when its deadline falls due, B does not), its guardian's message (the same message id as B's) opens A's own case instead of joining
B's, and a task update sent to one school with the other school's task reference changes nothing. B's state is
byte for byte what it was, and no call of A's story carries B's token.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from tests.cases_support import accept_all, at
from tests.support import OTHER_TENANT_SECRET, SECRET, post_event, run_worker

MONDAY = "2026-11-23"
MONDAY_MORNING = "2026-11-23T09:00:00+01:00"
TOKENS = {"skole-a": "Bearer token-a-not-in-logs", "skole-b": "Bearer token-b-not-in-logs"}


def post(client, tenant: str, event_type: str, data: dict) -> None:
    secret = SECRET if tenant == "skole-a" else OTHER_TENANT_SECRET
    answer = post_event(client, event_type, data, tenant=tenant, secret=secret)
    assert answer.status_code == 202, answer.get_json()


def story(client, rt, tenant: str, with_notice: bool) -> None:
    """Pupil s-1 of group 7A away on Monday, and a guardian's message about s-1 that opens a case."""
    post(client, tenant, "attendance.register", {"date": MONDAY, "group_id": "7A", "marks": [
        {"student_id": "s-1", "status": "absent", "documented": False},
        {"student_id": "s-2", "status": "present", "documented": False}]})
    if with_notice:
        post(client, tenant, "absence.notice", {"student_id": "s-1", "from_date": MONDAY, "to_date": MONDAY,
                                                 "reason": "Syk", "reason_code": "illness"})
    post(client, tenant, "message.created", {
        "message_id": "m-1", "sender": {"id": "g-1", "role": "guardian"},
        "recipients": [{"id": "u-kl-7a", "role": "contact_teacher"}], "student_ids": ["s-1"],
        "created_at": MONDAY_MORNING, "category": "own_child_case"})
    run_worker(rt)


def calls(platform, since: int = 0) -> list[tuple[str, dict]]:
    """(tenant whose token was used, body) of each call to the platform since the ``since``-th."""
    out = []
    for call in platform.calls[since:]:
        tenant = next(t for t, token in TOKENS.items() if call.request.headers["Authorization"] == token)
        out.append((tenant, json.loads(call.request.body)))
    return out


def state_of(rt, tenant: str) -> dict[bytes, bytes]:
    """Every key of the tenant, with its serialized value: what "unchanged" means."""
    return {key: rt.redis.dump(key) for key in sorted(rt.redis.scan_iter(match=f"{rt.token}:t:{tenant}:*"))}


def level_task(found: list[tuple[str, dict]]) -> dict:
    (task,) = [body for _, body in found if body["rule_id"] == "escalation.level_task" and "due_date" in body]
    return task


@pytest.fixture
def both(rt, platform):
    accept_all(platform)
    return rt


def test_one_schools_events_never_act_for_or_change_another_school_with_the_same_ids(client, both, platform):
    rt = both
    # school B: s-1's absence is covered by a notice; its case opens, and B escalates it with the agreement
    story(client, rt, "skole-b", with_notice=True)
    b_calls = calls(platform)
    assert {tenant for tenant, _ in b_calls} == {"skole-b"}
    assert not [body for _, body in b_calls if body["rule_id"] == "absence.notice_missing"]  # covered in B
    b_task = level_task(b_calls)
    post(client, "skole-b", "task.updated", {"external_ref": b_task["external_ref"], "status": "completed",
                                             "outcome": "escalate", "note": "Samtale med foresatt",
                                             "completed_at": "2026-11-23T08:30:00+01:00"})
    run_worker(rt)
    assert any(body["rule_id"] == "escalation.escalated" for _, body in calls(platform, len(b_calls)))
    b_before = state_of(rt, "skole-b")
    assert b_before
    start = len(platform.calls)

    # school A, the same ids: its own notice reminder, its own case at the lowest level, written with A's token
    story(client, rt, "skole-a", with_notice=False)
    a_calls = calls(platform, start)
    assert a_calls and {tenant for tenant, _ in a_calls} == {"skole-a"}
    a_task = level_task(a_calls)
    assert a_task["assignee"] == {"role": "contact_teacher", "id": "u-kl-7a"}  # level 1: B's escalation is B's
    assert a_task["case_id"] != b_task["case_id"] and a_task["external_ref"] != b_task["external_ref"]
    assert {body["external_ref"] for _, body in a_calls}.isdisjoint({body["external_ref"] for _, body in b_calls})
    assert not [key for key in state_of(rt, "skole-a") if b_task["case_id"].encode() in key]

    # each school's task reference sent to the other: nothing happens in either
    start = len(platform.calls)
    a_before = state_of(rt, "skole-a")
    post(client, "skole-b", "task.updated", {"external_ref": a_task["external_ref"], "status": "completed",
                                             "outcome": "escalate", "note": "Feil skole",
                                             "completed_at": "2026-11-23T08:40:00+01:00"})
    post(client, "skole-a", "task.updated", {"external_ref": b_task["external_ref"], "status": "completed",
                                             "outcome": "resolved", "completed_at": "2026-11-23T08:40:00+01:00"})
    run_worker(rt)
    assert calls(platform, start) == []
    assert state_of(rt, "skole-a") == a_before
    assert state_of(rt, "skole-b") == b_before

    # Friday night the deadlines fall due: A's s-1 has no notice (B's is B's), so only A asks for one
    start = len(platform.calls)
    at(rt, datetime(2026, 11, 27, 23, 0, tzinfo=timezone.utc))
    swept = calls(platform, start)
    asked = [tenant for tenant, body in swept if body["rule_id"] == "absence.notice_missing"]
    assert asked and set(asked) == {"skole-a"}
    for tenant, body in swept:
        if body.get("case_id") in (a_task["case_id"], b_task["case_id"]):
            assert tenant == ("skole-a" if body["case_id"] == a_task["case_id"] else "skole-b")
