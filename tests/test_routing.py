"""The seams later capabilities plug into: task updates routed by external_ref, the adapter's prepare step in the
worker, and role lookups that ask the platform before the configured directory."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import responses

from connector.engine import outbox, routing as processing
from connector.contract.actions import external_ref
from connector.store import outbox as stored
from tests.support import PLATFORM, post_event, run_worker


def fire_notice_missing_now(client, rt, platform):
    for path in ("tasks", "alerts"):
        platform.add(responses.POST, f"{PLATFORM}/{path}", json={"id": path}, status=201)
    rt.clock.set(datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc))
    data = {"date": "2026-11-23", "group_id": "7A",
            "marks": [{"student_id": "s-2", "status": "absent", "documented": False}]}
    post_event(client, "attendance.register", data)
    run_worker(rt)
    from connector.engine import scheduler

    scheduler.sweep(rt)
    run_worker(rt)


def test_every_written_action_is_remembered_by_external_ref(client, rt, platform):
    fire_notice_missing_now(client, rt, platform)
    ref = external_ref("skole-a", "absence.notice_missing", "s-2", "2026-11-23", "task")
    [info] = outbox.task_infos(rt, "skole-a", [ref])
    case = info.pop("case_id")
    assert case.startswith("case-")
    assert info == {"rule_id": "absence.notice_missing", "kind": "task", "student_id": "s-2"}
    raw = rt.redis.hget(rt.keys.refs("skole-a", stored.REFS.current(rt.clock.now().timestamp())), ref)
    assert raw == f"absence.notice_missing|{case}|s-2".encode() and len(raw) <= 64
    assert outbox.task_infos(rt, "skole-a", ["sf1-not-ours"]) == [None]


def test_a_tasks_ref_is_found_for_two_school_years_then_forgotten(client, rt, platform):
    fire_notice_missing_now(client, rt, platform)
    ref = external_ref("skole-a", "absence.notice_missing", "s-2", "2026-11-23", "task")
    [key] = rt.redis.scan_iter(match=f"{rt.keys.prefix}:t:skole-a:refs:*")
    period = stored.REFS.seconds
    assert 0 < rt.redis.ttl(key) <= (stored.REFS.kept + 1) * period
    start = rt.clock.now()
    rt.clock.set(start + timedelta(days=2 * 365))
    assert outbox.task_infos(rt, "skole-a", [ref])[0]["rule_id"] == "absence.notice_missing"
    rt.clock.set(start + timedelta(seconds=(stored.REFS.kept + 1) * period + 1))
    assert outbox.task_infos(rt, "skole-a", [ref]) == [None]


def test_a_task_with_more_to_remember_keeps_it_and_a_pupil_id_may_hold_the_separator(rt):
    from connector.contract.actions import Action

    escalated = Action(kind="task", external_ref="sf1-aaaaaaaaaaaaaaaaaaaaaaa1", rule_id="escalation.level",
                       student_id="s|3", title="t", body="b", case_id="case-9", extra={"line": "school", "level": 1})
    plain = Action(kind="task", external_ref="sf1-aaaaaaaaaaaaaaaaaaaaaaa2", rule_id="absence.pattern",
                   student_id="s|4", title="t", body="b")
    with rt.redis.pipeline() as pipe:
        outbox.add(pipe, rt, "skole-a", "generic", [escalated, plain], rt.clock.now().timestamp())
        pipe.execute()
    assert outbox.task_infos(rt, "skole-a", [escalated.external_ref, plain.external_ref]) == [
        {"rule_id": "escalation.level", "kind": "task", "student_id": "s|3", "case_id": "case-9", "line": "school",
         "level": 1},
        {"rule_id": "absence.pattern", "kind": "task", "student_id": "s|4", "case_id": None},
    ]


def test_task_updated_reaches_the_rule_that_created_the_task(client, rt, platform, monkeypatch):
    fire_notice_missing_now(client, rt, platform)
    seen = []
    monkeypatch.setitem(processing.TASK_HANDLERS, "absence.notice_missing",
                        [lambda rt_, tenant, event, info, found: seen.append((tenant.id, event["status"], info["kind"]))])
    ref = external_ref("skole-a", "absence.notice_missing", "s-2", "2026-11-23", "task")
    post_event(client, "task.updated", {"external_ref": ref, "status": "completed", "outcome": "resolved"})
    post_event(client, "task.updated", {"external_ref": "sf1-not-ours", "status": "completed"})
    run_worker(rt)
    assert seen == [("skole-a", "completed", "task")]


def test_adapter_prepare_runs_in_the_worker_before_the_rules(client, rt, monkeypatch):
    adapter = rt.adapter("skole-a", "generic")
    prepared = []

    def prepare(events):
        prepared.extend(e["type"] for e in events)
        return [dict(e, marks=[]) for e in events]  # e.g. the platform said nobody was absent after all

    monkeypatch.setattr(adapter, "prepare", prepare)
    data = {"date": "2026-11-23", "group_id": "7A",
            "marks": [{"student_id": "s-2", "status": "absent", "documented": False}]}
    post_event(client, "attendance.register", data)
    assert prepared == []
    run_worker(rt)
    assert prepared == ["attendance.register"]
    assert rt.redis.zcard(rt.keys.due) == 0


def test_contact_teacher_comes_from_the_platform_when_the_adapter_knows(client, rt, platform, monkeypatch):
    adapter = rt.adapter("skole-a", "generic")
    monkeypatch.setattr(adapter, "lookup_role", lambda role, group_id=None, student_id=None: f"platform-{role}")
    fire_notice_missing_now(client, rt, platform)
    (task,) = [json.loads(c.request.body) for c in platform.calls if c.request.url.endswith("/tasks")]
    assert task["assignee"] == {"role": "contact_teacher", "id": "platform-contact_teacher"}


def test_a_failing_platform_lookup_falls_back_to_the_configured_directory(client, rt, platform, monkeypatch):
    adapter = rt.adapter("skole-a", "generic")

    def broken(role, group_id=None, student_id=None):
        raise ConnectionError("platform down")

    monkeypatch.setattr(adapter, "lookup_role", broken)
    fire_notice_missing_now(client, rt, platform)
    (task,) = [json.loads(c.request.body) for c in platform.calls if c.request.url.endswith("/tasks")]
    assert task["assignee"] == {"role": "contact_teacher", "id": "u-kl-7a"}


def test_actions_go_through_the_tenants_actions_adapter_when_one_is_set(client, rt, platform):
    """Registers from one platform, tasks written in another (say attendance from a SIS, tasks in Teams)."""
    from dataclasses import replace

    from tests.support import add_adapter

    add_adapter(rt, "skole-a", "writer", "generic", {
        "webhook_secrets": [{"env": "SKOLE_A_WEBHOOK_SECRET"}], "base_url": "https://writer.test/api",
        "api_token": {"env": "SKOLE_A_API_TOKEN"}})
    tenant = replace(rt.config.tenants["skole-a"], actions_adapter="writer")
    rt.config = replace(rt.config, tenants={**rt.config.tenants, "skole-a": tenant})
    for path in ("tasks", "alerts"):
        platform.add(responses.POST, f"https://writer.test/api/{path}", json={"id": path}, status=201)
    fire_notice_missing_now(client, rt, platform)
    assert sorted(c.request.url for c in platform.calls) == ["https://writer.test/api/alerts",
                                                              "https://writer.test/api/tasks"]


def test_an_actions_adapter_that_does_not_exist_is_a_configuration_problem():
    from connector.config.schema import ConfigError, config_from_dict

    raw = {"tenants": {"skole": {
        "name": "Skole", "calendar": [{"first_day": "2026-08-13", "last_day": "2027-06-18"}],
        "adapters": {"generic": {"type": "generic", "webhook_secrets": [{"env": "X"}],
                                 "base_url": "https://p.test", "api_token": {"env": "Y"}}},
        "actions_adapter": "teams"}}}
    try:
        config_from_dict(raw)
    except ConfigError as exc:
        assert any("tenants.skole.actions_adapter" in p and "teams" in p for p in exc.problems)
    else:
        raise AssertionError("an unknown actions_adapter was accepted")


def test_retry_after_in_decimal_seconds_as_microsoft_graph_sends_it():
    from connector.adapters.http import retry_after_seconds

    assert retry_after_seconds("2.128") == 2.128
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("-5") == 0.0
