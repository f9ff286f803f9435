"""Shadow mode: every event judged as in live mode, every action recorded as *would write*, nothing sent; going live
sends nothing decided before, and afterwards writes as usual, once.

The tenant's mode is switched in its configuration file, as an admin does, while the worker's runtime keeps
running (``Runtime.refresh`` at the start of each job). The platform's API is mocked with ``responses`` and no
route registered in shadow mode: any call to it would fail the request and show up in ``platform.calls``.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import responses

from connector import create_app
from connector.config.schema import load_config
from connector.contract.actions import Action, external_ref
from connector.engine import outbox, runtime, scheduler
from connector.engine.runtime import Runtime
from connector.store import outbox as stored
from tests.support import PLATFORM, cleanup, post_event, run_worker

RULE = "absence.notice_missing"
CONFIG = """\
key_prefix: {token}
queue_name: {token}
tenants:
  skole-a:
    name: Skole A
    mode: {mode}
    calendar:
      - first_day: 2026-08-13
        last_day: 2027-06-18
        breaks: [[2026-12-21, 2027-01-04]]
    adapters:
      generic:
        type: generic
        webhook_secrets: [{{env: SKOLE_A_WEBHOOK_SECRET}}]
        base_url: {platform}
        api_token: {{env: SKOLE_A_API_TOKEN}}
        timeout_seconds: 2
    directory:
      roles: {{principal: u-rektor}}
      groups:
        7A: {{contact_teacher: u-kl-7a}}
"""


@pytest.fixture
def school(tmp_path, redis_client, clock, env_secrets):
    """A runtime built from a configuration *file* (so a change of mode is picked up), installed as a worker's."""
    token = f"test{uuid.uuid4().hex[:10]}"
    path = tmp_path / "connector.yaml"

    def set_mode(mode: str) -> None:
        path.write_text(CONFIG.format(token=token, mode=mode, platform=PLATFORM), encoding="utf-8")

    set_mode("shadow")
    rt = Runtime(load_config(path), redis_client, clock=clock)
    rt.token = token
    rt.set_mode = set_mode
    runtime.install(rt)
    yield rt
    runtime.install(None)
    cleanup(redis_client, token)


def absent(student: str, day: str) -> dict:
    return {"date": day, "group_id": "7A", "marks": [{"student_id": student, "status": "absent", "documented": False}]}


def at(rt: Runtime, moment: datetime) -> None:
    rt.clock.set(moment)
    scheduler.sweep(rt)
    run_worker(rt)


def bodies(platform) -> list[dict]:
    return [json.loads(call.request.body) for call in platform.calls]


def accept_all(platform) -> None:
    for path in ("tasks", "alerts", "notes"):
        platform.add(responses.POST, f"{PLATFORM}/{path}", json={"id": f"remote-{path}"}, status=201)


def would_write_count(kind: str) -> float:
    from prometheus_client import REGISTRY

    labels = {"rule": RULE, "kind": kind, "outcome": "would_write"}
    return REGISTRY.get_sample_value("connector_actions_total", labels) or 0.0


def test_shadow_mode_records_what_it_would_write_and_calls_no_platform(school, platform):
    counted = would_write_count("task")
    client = create_app(runtime=school).test_client()
    assert post_event(client, "attendance.register", absent("s-2", "2026-11-23")).status_code == 202
    run_worker(school)
    at(school, datetime(2026, 11, 26, 23, 0, tzinfo=timezone.utc))  # Friday 00:00 in Oslo: the deadline fell due

    assert len(platform.calls) == 0  # nothing reached the platform, not even a failed try
    assert school.redis.hlen(school.keys.outbox("skole-a")) == 0
    recorded = {entry["action"]["kind"]: entry for entry in outbox.shadow_actions(school, "skole-a")}
    assert set(recorded) == {"alert", "task"}
    task = recorded["task"]["action"]
    assert task["rule_id"] == RULE and task["student_id"] == "s-2"
    assert task["external_ref"] == external_ref("skole-a", RULE, "s-2", "2026-11-23", "task")
    assert task["due_date"] == "2026-11-30"  # the deadline, in school days, as live mode would set it
    assert task["assignee"] == {"role": "contact_teacher", "id": "u-kl-7a"}
    assert "mandag 23. november 2026" in task["body"]  # the evidence: the day without a notice
    assert recorded["task"]["decided_at"] == school.clock.now().timestamp()
    members = [m.decode() for m in school.redis.zrange(school.keys.due, 0, -1)]
    assert not [m for m in members if "|send|" in m]  # no send retry waiting either
    assert would_write_count("task") == counted + 1  # the worker's metrics: connector_actions_total{would_write}


def test_going_live_sends_nothing_from_the_shadow_period_and_later_actions_once(school, platform):
    client = create_app(runtime=school).test_client()
    post_event(client, "attendance.register", absent("s-2", "2026-11-23"))  # judged in shadow, fires in shadow
    run_worker(school)
    at(school, datetime(2026, 11, 26, 23, 0, tzinfo=timezone.utc))
    post_event(client, "attendance.register", absent("s-3", "2026-11-26"))  # its deadline is set in shadow...
    run_worker(school)
    shadow_refs = {entry["action"]["external_ref"] for entry in outbox.shadow_actions(school, "skole-a")}
    assert len(shadow_refs) == 2

    school.set_mode("live")  # the admin edits the file; the worker keeps running
    accept_all(platform)
    school.clock.set(datetime(2026, 11, 30, 7, 0, tzinfo=timezone.utc))
    post_event(client, "attendance.register", absent("s-4", "2026-11-30"))  # decided live
    run_worker(school)
    assert school.config.tenants["skole-a"].mode == "live"

    # ...and falls due after going live: what a shadow decision set in motion stays *would write*.
    at(school, datetime(2026, 12, 1, 23, 0, tzinfo=timezone.utc))
    assert len(platform.calls) == 0
    assert len(outbox.shadow_actions(school, "skole-a")) == 4

    # The same action derived again after going live (a re-judged window) is not written: it was recorded.
    again = Action.from_dict(outbox.shadow_actions(school, "skole-a")[0]["action"])
    with school.redis.pipeline() as pipe:
        outbox.add(pipe, school, "skole-a", "generic", [again], school.clock.now().timestamp())
        pipe.execute()
    assert outbox.send(school, "skole-a", again.external_ref) == "skipped"
    assert len(platform.calls) == 0

    at(school, datetime(2026, 12, 3, 23, 0, tzinfo=timezone.utc))  # Friday 00:00: s-4's deadline, set live
    sent = bodies(platform)
    assert sorted(call.request.url.rsplit("/", 1)[1] for call in platform.calls) == ["alerts", "tasks"]
    assert {body["student_id"] for body in sent} == {"s-4"}
    assert not {body["external_ref"] for body in sent} & shadow_refs

    at(school, datetime(2026, 12, 9, 23, 0, tzinfo=timezone.utc))  # a week on: nothing written twice
    assert len(platform.calls) == 2


def test_switching_to_shadow_holds_back_what_live_mode_had_not_sent_yet(school, platform):
    school.set_mode("live")
    platform.add(responses.POST, f"{PLATFORM}/tasks", status=503)
    platform.add(responses.POST, f"{PLATFORM}/alerts", status=503)
    client = create_app(runtime=school).test_client()
    post_event(client, "attendance.register", absent("s-2", "2026-11-23"))
    run_worker(school)
    at(school, datetime(2026, 11, 26, 23, 0, tzinfo=timezone.utc))
    tried = len(platform.calls)
    # the first try met the 503 and holds the adapter back (engine.outbox's per-adapter back-off): the second was
    # put off untried; both wait in the outbox for a retry
    assert tried == 1 and school.redis.hlen(school.keys.outbox("skole-a")) == 2

    school.set_mode("shadow")
    at(school, datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc))  # the retries fall due
    assert len(platform.calls) == tried
    assert school.redis.hlen(school.keys.outbox("skole-a")) == 0
    held = outbox.shadow_actions(school, "skole-a")
    assert [entry.get("held") for entry in held] == [True, True]


def test_a_file_that_no_longer_loads_keeps_the_mode(school, caplog):
    Path(school.config.path).write_text("tenants: [oops\n", encoding="utf-8")
    assert school.refresh() == []
    assert school.config.tenants["skole-a"].mode == "shadow"
    assert "does not load" in caplog.text


def test_shadow_record_lives_only_under_the_tenants_own_key(school):
    assert school.keys.shadow("skole-a") != school.keys.shadow("skole-b")
    assert stored.shadow_actions(school.redis, school.keys, "skole-b") == []


def test_shadow_list_shows_what_would_have_been_written_without_text(school, platform, monkeypatch, capsys):
    from connector import cli

    client = create_app(runtime=school).test_client()
    post_event(client, "attendance.register", absent("s-2", "2026-11-23"))
    run_worker(school)
    at(school, datetime(2026, 11, 26, 23, 0, tzinfo=timezone.utc))
    monkeypatch.setattr(cli, "_runtime", lambda args: school)
    assert cli.main(["shadow", "list", "skole-a"]) == 0
    out = capsys.readouterr().out
    assert "tenant skole-a: mode shadow; 2 action(s) recorded as would write" in out
    assert "contact_teacher/u-kl-7a" in out and "2026-11-30" in out and RULE in out
    assert "november" not in out  # ids, codes and dates only: no action text


def test_serve_banner_says_which_schools_are_in_shadow_mode(school):
    from connector import cli

    banner = cli._banner(school.config, Path(school.config.path), "127.0.0.1:8000", "a Redis")
    assert "/webhooks/skole-a/generic   (Skole A; shadow mode: judged and recorded, nothing written)" in banner
