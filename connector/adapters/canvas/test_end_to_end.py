"""From Canvas's signed webhook to Canvas's own API, with the real door, queue, worker, outbox and scheduler; only
Canvas (and its key endpoint) is mocked."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import responses
from responses import matchers

from connector.engine import routing as processing, scheduler
from connector.contract.actions import Action, Party, external_ref
from connector.adapters.canvas.conftest import CANVAS, calls_to, fixture, query
from connector.adapters.canvas.test_prepare import CONVERSATION, SELF, serve_roster
from connector.engine.rq_compat import enqueue_delivery
from tests.support import run_worker

NOTES = f"{CANVAS}/api/v1/planner_notes"
CONVERSATIONS = f"{CANVAS}/api/v1/conversations"
OSLO_MIDNIGHT_FRIDAY = datetime(2026, 11, 26, 23, 0, tzinfo=timezone.utc)


def accept_writes(platform) -> None:
    platform.add(responses.GET, NOTES, json=fixture("outbound/list_planner_notes__empty"))
    platform.add(responses.POST, NOTES, json=fixture("outbound/create_planner_note"), status=201)
    platform.add(responses.GET, CONVERSATIONS, json=[],
                 match=[matchers.query_param_matcher({"scope": "sent"}, strict_match=False)])
    platform.add(responses.POST, CONVERSATIONS, json=fixture("outbound/create_conversation"), status=201)


@pytest.fixture
def message_rule(monkeypatch):
    """No rule in this version acts on messages (the escalation ladder will); this stand-in does what such a rule
    does — a task and an alert for the teacher the guardian wrote to — and keeps what it was given."""
    seen = []

    def on_message(rt, tenant, events, found):
        for event in events:
            seen.append(event)
            teacher = next(r for r in event["recipients"] if r["role"] == "contact_teacher")
            for kind in ("task", "alert"):
                found.add([Action(
                    kind=kind, external_ref=external_ref(tenant.id, "absence.school_refusal", event["student_ids"][0],
                                                         event["message_id"], kind),
                    rule_id="absence.school_refusal", student_id=event["student_ids"][0],
                    title="Melding fra foresatte om skolevegring", body="Les meldingen i innboksen og ring hjem.",
                    assignee=Party("contact_teacher", teacher["id"]), due_date="2026-11-24" if kind == "task" else None,
                )])

    monkeypatch.setitem(processing.EVENT_HANDLERS, "message.created", [on_message])
    return seen


def test_guardians_canvas_message_reaches_the_rules_read_and_their_actions_land_in_canvas(
        replay, rt, platform, message_rule):
    platform.add(responses.GET, SELF, json=fixture("outbound/get_user_self"))
    platform.add(responses.GET, CONVERSATION, json=fixture("outbound/get_conversation"))
    serve_roster(platform)
    accept_writes(platform)

    replay("canvas", "conversation_message_created", expect_answer={"accepted": 1})
    run_worker(rt)

    (event,) = message_rule
    assert (event["sender"], event["student_ids"]) == ({"id": "5001", "role": "guardian"}, ["1002"])
    # the text fetched in the worker reaches the rules read (TEXT: "... blir hjemme i morgen"), never as words
    assert "body" not in event and "subject" not in event
    assert (event["reading"]["category"], event["reading"]["confidence"]) == ("absence_notice", "strong")
    assert calls_to(platform, "POST", "/api/v1/planner_notes") == []  # Canvas shows a teacher no planner
    messages = [json.loads(c.request.body) for c in calls_to(platform, "POST", "/api/v1/conversations")]
    assert [m["recipients"] for m in messages] == [["3001"], ["3001"]]  # the task, and the alert
    (task,) = [m for m in messages if "Frist:" in m["body"]]
    assert "Frist: 24.11.2026\n\nRef: sf1-" in task["body"]
    ledger = [k for k in rt.redis.scan_iter(match=f"{rt.keys.prefix}:t:skole-a:ledger:*")]
    assert sum(rt.redis.hlen(k) for k in ledger) == 2

    calls = len(platform.calls)
    replay("canvas", "conversation_message_created", expect_answer={"accepted": 0, "duplicate": True})
    run_worker(rt)
    assert len(platform.calls) == calls  # Canvas re-sent the event: nothing read, nothing written twice


def test_absence_rule_writes_its_task_and_guardian_reminder_into_canvas(rt, canvas, platform, monkeypatch):
    """The real ``absence.notice_missing`` rule with a register for this adapter (Canvas has no register event of
    its own, see the README): the contact teacher comes from the course roster, the guardians are the pupil's
    observers, each written to once. The rule's own wording and dates are its business: they are checked to arrive
    unchanged, not restated here."""
    serve_roster(platform)
    accept_writes(platform)
    platform.add(responses.GET, f"{CANVAS}/api/v1/users/1002/observers", json=fixture("outbound/list_observers"))
    sent_actions = []
    send = canvas.send
    monkeypatch.setattr(canvas, "send", lambda action: sent_actions.append(action) or send(action))
    register = {"type": "attendance.register", "timestamp": "2026-11-23T08:05:00+00:00", "date": "2026-11-23",
                "group_id": "565", "marks": [{"student_id": "1002", "status": "absent", "documented": False}]}
    assert enqueue_delivery(rt, "skole-a", "canvas", "register-2026-11-23-565", [register])
    run_worker(rt)
    assert [c for c in platform.calls if c.request.method == "POST"] == []  # nothing is due yet

    rt.clock.set(OSLO_MIDNIGHT_FRIDAY)
    scheduler.sweep(rt)
    run_worker(rt)

    (task,) = [a for a in sent_actions if a.kind == "task"]
    (reminder,) = [a for a in sent_actions if a.kind == "alert"]
    assert (task.rule_id, task.assignee) == ("absence.notice_missing", Party("contact_teacher", "3001"))
    assert calls_to(platform, "POST", "/api/v1/planner_notes") == []  # Canvas shows a teacher no planner
    messages = [json.loads(c.request.body) for c in calls_to(platform, "POST", "/api/v1/conversations")]
    (to_teacher,) = [m for m in messages if m["subject"] == task.title]
    due = datetime.strptime(task.due_date, "%Y-%m-%d").strftime("%d.%m.%Y")
    assert to_teacher == {"recipients": ["3001"], "subject": task.title, "force_new": True,
                          "group_conversation": False,
                          "body": f"{task.body}\n\nFrist: {due}\n\nRef: {task.external_ref}"}
    reminders = [m for m in messages if m is not to_teacher]
    assert [m["recipients"] for m in reminders] == [["5001"], ["5002"]]
    assert {m["subject"] for m in reminders} == {reminder.title}
    assert len(calls_to(platform, "GET", "/api/v1/courses/565/enrollments")) == 2  # read once, then cached

    rt.clock.set(datetime(2026, 12, 10, 8, 0, tzinfo=timezone.utc))
    scheduler.sweep(rt)
    run_worker(rt)
    written = [c.request.body.decode() for c in platform.calls if c.request.method == "POST"]
    assert sum(task.external_ref in body for body in written) == 1
    assert sum(reminder.external_ref in body for body in written) == 2  # one per guardian, never again
