"""Helpers for the case tests: guardians' messages, task updates and a school whose directory fills every role."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

import pytest
import responses

from connector.engine import cases, scheduler
from connector.config.schema import Directory
from tests.support import PLATFORM, door_clock_at, post_event, run_worker

GUARDIAN = {"id": "g-1", "role": "guardian"}
CONTACT_TEACHER = {"id": "u-kl-7a", "role": "contact_teacher"}
MONDAY_MORNING = "2026-11-23T09:00:00+01:00"

PEOPLE = {
    "principal": "u-rektor",
    "nearest_leader": "u-leder",
    "social_teacher": "u-sos",
    "school_environment_team": "u-smt",
    "school_owner": "u-eier",
    "class_parent_rep": "u-trinnkontakt",
    "parents_council": "u-fau",
}


@pytest.fixture
def school(rt):
    """Tenant ``skole-a`` with someone in every role, and pupil s-1 known to be in group 7A."""
    tenant = rt.config.tenants["skole-a"]
    directory = Directory(roles=PEOPLE, groups={"7A": {"contact_teacher": "u-kl-7a"}})
    rt.config = replace(rt.config, tenants={**rt.config.tenants, "skole-a": replace(tenant, directory=directory)})
    rt.redis.hset(rt.keys.pupil("skole-a", "s-1"), "g", "7A")
    return rt


def accept_all(platform) -> None:
    for path in ("tasks", "alerts", "notes"):
        platform.add(responses.POST, f"{PLATFORM}/{path}", json={"id": f"remote-{path}"}, status=201)


def sent(platform, path: str | None = None, rule_id: str | None = None) -> list[dict]:
    calls = [json.loads(c.request.body) for c in platform.calls if path is None or c.request.url.endswith(f"/{path}")]
    return [body for body in calls if rule_id is None or body["rule_id"] == rule_id]


def message(body: str, message_id: str = "m-1", sender: dict = GUARDIAN, recipients: list | None = None,
            students: list | None = None, created_at: str = MONDAY_MORNING, **extra) -> dict:
    return {
        "message_id": message_id, "sender": sender, "recipients": recipients or [CONTACT_TEACHER],
        "student_ids": ["s-1"] if students is None else students, "created_at": created_at, "body": body, **extra,
    }


def send_message(client, rt, body: str, **kwargs) -> None:
    data = message(body, **kwargs)
    with door_clock_at(client, data["created_at"]):
        assert post_event(client, "message.created", data).status_code == 202
    run_worker(rt)


def update(client, rt, ref: str, status: str = "completed", outcome: str | None = None, note: str | None = None,
           completed_at: str | None = None, msg_id: str | None = None) -> None:
    data = {"external_ref": ref, "status": status}
    data.update({k: v for k, v in (("outcome", outcome), ("note", note), ("completed_at", completed_at)) if v})
    with door_clock_at(client, completed_at):
        assert post_event(client, "task.updated", data, msg_id=msg_id).status_code == 202
    run_worker(rt)


def at(rt, moment: datetime) -> None:
    """Move the clock, sweep the due set and run what it queued, as the scheduler and worker do."""
    rt.clock.set(moment)
    scheduler.sweep(rt)
    run_worker(rt)


def the_case(rt, message_id: str = "m-1", tenant: str = "skole-a") -> dict:
    case = cases.load_case(rt, tenant, cases.case_id_for(tenant, message_id))
    assert case is not None, f"no case opened by {message_id}"
    return case


def steps(case: dict) -> list[str]:
    return [entry["step"] for entry in case["history"]]


def level_of(case: dict, line: str = "school") -> tuple[int, str]:
    from connector.rules.escalation import levels

    state = case["lines"][line]
    return state["level"], levels(case, line)[state["level"]].key
