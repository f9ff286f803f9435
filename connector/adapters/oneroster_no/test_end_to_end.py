"""A week of a class's absences, polled from a fake OneRoster service, ends with the same tasks, alerts, deadlines and
pupils' days as the same facts sent as webhooks through the generic contract; and under every fault at once each
change reaches the rules exactly once."""
from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from dataclasses import replace

import pytest

from connector import create_app
from connector.engine import routing, runtime
from connector.engine.poller import Poller
from connector.engine.runtime import Runtime
from connector.store import polls
from tests.oneroster_server import FakeOneRoster, settings
from tests.support import PLATFORM, add_adapter, cleanup, post_event, run_worker

ORG = "bergen.kommune.no"
TENANT = "skole-a"
PUPILS = [f"p{n}" for n in range(1, 6)]

# The week of 16-20 November 2026 in class 7A: (record id, pupil, day, type, documented, lesson or None, minutes)
WEEK = [
    ("r1", "p1", "2026-11-16", "absent", False, None, None),
    ("r2", "p1", "2026-11-17", "absent", False, None, None),
    ("r3", "p1", "2026-11-18", "absent", False, None, None),
    ("r4", "p2", "2026-11-16", "absent", False, "mat", None),
    ("r5", "p2", "2026-11-18", "absent", False, "mat", None),
    ("r6", "p2", "2026-11-20", "absent", False, "mat", None),
    ("r7", "p3", "2026-11-17", "late", False, "nor", 12),
    ("r8", "p4", "2026-11-19", "absent", False, None, None),
    ("r9", "p5", "2026-11-20", "absent", False, None, None),
    ("r10", "p2", "2026-11-09", "absent", False, "mat", None),  # three Mondays running: a pattern
    ("r11", "p2", "2026-11-02", "absent", False, "mat", None),
]
EDITS = [("r8", "documented"), ("r9", "deleted")]  # the guardian's note came for p4; p5's was registered in error


def record(rid, pupil, day, kind, documented, lesson, minutes) -> dict:
    body = {"sourcedId": rid, "student": {"sourcedId": pupil, "type": "user", "href": f"/users/{pupil}"},
            "absenceType": kind, "documented": documented, "comment": "SENTINEL-HELSE"}
    if minutes:
        body["startTime"], body["endTime"] = f"{day}T07:00:00Z", f"{day}T07:{minutes:02d}:00Z"
    else:
        body["startDate"] = body["endDate"] = day
    if lesson:
        body["classesAffected"] = [{"sourcedId": lesson, "type": "class", "href": f"/classes/{lesson}"}]
    return body


def mark(rid, pupil, day, kind, documented, lesson, minutes, status=None) -> dict:
    """The same fact as a generic platform sends it."""
    data = {"student_id": pupil, "date": day, "status": status or kind, "documented": documented, "group_id": "7A"}
    if lesson:
        data["lesson"] = {"id": rid}
    if minutes:
        data["minutes"] = minutes
    return data


def roster(server) -> None:
    server.set_roster(ORG, "classes", [{"sourcedId": "7A", "status": "active", "classType": "homeroom", "title": "7A"}])
    enrollments = [{"sourcedId": f"e-{p}", "status": "active", "role": "student", "user": {"sourcedId": p},
                    "class": {"sourcedId": "7A"}} for p in PUPILS]
    enrollments.append({"sourcedId": "e-t", "status": "active", "role": "teacher", "primary": True,
                        "user": {"sourcedId": "u-kl-7a"}, "class": {"sourcedId": "7A"}})
    server.set_roster(ORG, "enrollments", enrollments)
    server.set_roster(ORG, "users", [])


@pytest.fixture
def written(platform):
    """Everything the connector writes to the generic platform (its /tasks, /alerts and /notes)."""
    calls = []

    def created(request):
        calls.append((request.url.rsplit("/", 1)[1], json.loads(request.body)))
        return 201, {}, json.dumps({"id": f"remote-{len(calls)}"})

    for path in ("tasks", "alerts", "notes"):
        platform.add_callback("POST", f"{PLATFORM}/{path}", callback=created)
    return calls


@pytest.fixture
def server(platform):
    with FakeOneRoster() as fake:
        platform.add_passthru(fake.url)
        roster(fake)
        yield fake


@pytest.fixture
def vigilo(rt, server, monkeypatch):
    monkeypatch.setenv("ONEROSTER_TEST_SECRET", "fake-oneroster-secret-not-in-logs")
    add_adapter(rt, TENANT, "vigilo", "oneroster_no", settings(server, page_size=4))
    tenant = replace(rt.config.tenants[TENANT], actions_adapter="generic")
    rt.config = replace(rt.config, tenants={**rt.config.tenants, TENANT: tenant})
    return rt


def deadlines_passed(rt: Runtime, days: int = 7) -> None:
    """A week later: every deadline due by then fires (as the scheduler would queue them), then the clock is back."""
    from connector.engine import jobs

    before = rt.clock.now()
    rt.clock.advance(days=days)
    try:
        members = [m.decode() for m in rt.redis.zrangebyscore(rt.keys.due, "-inf", rt.clock.now().timestamp())]
        jobs.run_due(sorted(members))
    finally:
        rt.clock.set(before)


def what_it_ended_with(rt: Runtime, calls: list) -> dict:
    days = {p: {k.decode(): v.decode() for k, v in rt.redis.hgetall(rt.keys.pupil(TENANT, p)).items()
                if k.startswith(b"d:")} for p in PUPILS}
    deadlines = sorted(k.decode() for k in rt.redis.hkeys(rt.keys.deadlines(TENANT)))
    # A finding's text names the evidence known when it was written (pages of four here, one mark a delivery there),
    # which DOMAIN.md allows; what was written, to whom, about whom, by when and under which ref must be the same.
    written = [(path, {k: v for k, v in body.items() if k != "body"}) for path, body in calls]
    return {"written": sorted(json.dumps(call, sort_keys=True) for call in written), "days": days,
            "deadlines": deadlines}


def test_a_week_polled_ends_as_the_same_week_sent_as_webhooks(vigilo, server, written):
    p = Poller(vigilo, sleep=lambda s: None, name="poller")
    for fact in WEEK:
        server.put(ORG, record(*fact))
    assert p.tick()[(TENANT, "vigilo")].changes == len(WEEK)
    run_worker(vigilo)
    server.put(ORG, record(*WEEK[7][:4], True, *WEEK[7][5:]))
    server.delete(ORG, "r9")
    polls.release_lease(vigilo.redis, vigilo.keys, TENANT, "vigilo", p.token)  # the next interval
    assert p.tick()[(TENANT, "vigilo")].changes == 2
    run_worker(vigilo)
    deadlines_passed(vigilo)
    polled = what_it_ended_with(vigilo, written)
    assert polled["written"], "the week should have made the rules write something"

    token = f"test{uuid.uuid4().hex[:10]}"
    hooked = Runtime(replace(vigilo.config, key_prefix=token, queue_name=token), vigilo.redis, clock=vigilo.clock)
    hooked.token = token
    client = create_app(runtime=hooked).test_client()
    written.clear()
    try:
        runtime.install(hooked)
        for fact in WEEK:
            assert post_event(client, "attendance.marked", mark(*fact)).status_code == 202
        run_worker(hooked)
        assert post_event(client, "attendance.marked", mark(*WEEK[7][:4], True, *WEEK[7][5:])).status_code == 202
        assert post_event(client, "attendance.marked", mark(*WEEK[8], status="present")).status_code == 202
        run_worker(hooked)
        deadlines_passed(hooked)
        hooked_ended = what_it_ended_with(hooked, written)
        assert hooked_ended == polled
    finally:
        runtime.install(vigilo)
        cleanup(vigilo.redis, token)


def test_under_every_fault_at_once_each_change_reaches_the_rules_exactly_once(vigilo, server, written, monkeypatch):
    """Pages of four, a token that expires, 429 with Retry-After, a 5xx spell, a poller killed before its second
    commit, and two pollers at once afterwards; then edits and deletions of old absences."""
    reached = Counter()
    handle = routing.handle_events

    def counted(rt, tenant_id, adapter, events):
        reached.update((e["student_id"], e["date"], e["status"], e["documented"]) for e in events)
        return handle(rt, tenant_id, adapter, events)

    monkeypatch.setattr(routing, "handle_events", counted)
    for fact in WEEK:
        server.put(ORG, record(*fact))
    server.fail_next(429, retry_after="3")
    server.fail_next(503, times=2)
    real_commit, commits = polls.commit_page, []

    def killed_once(*args, **kwargs):
        commits.append(1)
        if len(commits) == 2:
            raise SystemExit(137)
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(polls, "commit_page", killed_once)
    with pytest.raises(SystemExit):
        Poller(vigilo, sleep=lambda s: None, name="killed").tick()
    monkeypatch.setattr(polls, "commit_page", real_commit)
    vigilo.redis.delete(vigilo.keys.poll_lease(TENANT, "vigilo"))  # the dead poller's lease ran out
    server.expire_tokens()
    run_worker(vigilo)

    def both(name, barrier):
        barrier.wait()
        Poller(vigilo, sleep=lambda s: None, name=name).tick()

    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=both, args=(f"p{n}", barrier)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    run_worker(vigilo)
    server.put(ORG, record(*WEEK[7][:4], True, *WEEK[7][5:]))
    server.delete(ORG, "r9")
    vigilo.redis.delete(vigilo.keys.poll_lease(TENANT, "vigilo"))  # the next interval
    Poller(vigilo, sleep=lambda s: None, name="p3").tick()
    run_worker(vigilo)
    expected = Counter((f[1], f[2], f[3], f[4]) for f in WEEK)
    expected.update([("p4", "2026-11-19", "absent", True), ("p5", "2026-11-20", "present", False)])
    assert reached == expected
