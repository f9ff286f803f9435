"""oneroster: one municipality on Vigilo (10,000 pupils in one OnEdHub org) polled and processed within one poll
interval on 2 cores, and what a poll with nothing new costs.

The fake OneRoster service (``tests/oneroster_server.py``, Flask on loopback, in a thread of this process) serves:

* the roster: 400 base groups (``homeroom``) of 25 pupils, each with a primary teacher, and every pupil's guardian;
* a morning's absences (07:30-09:30): about 7 % of pupils away the whole day, 6 % away from a lesson, 3 % late;
* the day's edits (09:30-15:00): a third of the morning's absences made documented, 2 % deleted, and 200 edits of
  last week's absences (never polled before: the first poll of the day backfilled from the checkpoint).

Timed, each from the first request to the queue empty with every action written to the fake platform
(``bench.fake_platform``, its own process), with 2 forked ``ConnectorWorker`` processes as ``connector worker`` runs
them: (1) the roster's refresh, (2) the morning's poll and processing, (3) the edits' poll and processing; then
(4) a poll with nothing new, counting its requests per org. The poll interval is 5 minutes (300 s): each of (2)
and (3) must end well within it.

    python -m bench.oneroster [--pupils 10000] [--page-size 100]
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

from redis import Redis
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from bench.common import REDIS_URL, cleanup_token
from bench.fake_platform import FakePlatform
from bench.generator import API_TOKEN_VAR, CALENDAR_FILE
from connector.config.schema import config_from_dict
from connector.engine import runtime
from connector.engine.clock import FixedClock
from connector.engine.poller import Poller
from connector.engine.rq_compat import ConnectorWorker
from connector.engine.runtime import Runtime
from connector.store import polls
from tests.oneroster_server import CLIENT_SECRET, FakeOneRoster, settings

ORG = "bench.kommune.no"
TENANT = "kommune"
NOW = datetime(2026, 11, 23, 14, 30, tzinfo=timezone.utc)  # a Monday afternoon in Oslo
MORNING = "2026-11-23"
LAST_WEEK = ["2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20"]


def build_roster(server: FakeOneRoster, pupils: int) -> list[tuple[str, str]]:
    groups = (pupils + 24) // 25
    classes, enrollments, users, roster = [], [], [], []
    for g in range(groups):
        group = f"grp-{g:04d}"
        classes.append({"sourcedId": group, "status": "active", "classType": "homeroom", "title": f"{g}"})
        enrollments.append({"sourcedId": f"e-t-{g}", "status": "active", "role": "teacher", "primary": True,
                            "user": {"sourcedId": f"t-{g:04d}"}, "class": {"sourcedId": group}})
    for n in range(pupils):
        pupil, group = f"p-{n:05d}", f"grp-{n // 25:04d}"
        roster.append((pupil, group))
        enrollments.append({"sourcedId": f"e-{n}", "status": "active", "role": "student",
                            "user": {"sourcedId": pupil}, "class": {"sourcedId": group}})
        users.append({"sourcedId": pupil, "status": "active", "roles": [{"roleType": "primary", "role": "student"}],
                      "agents": [{"sourcedId": f"g-{n:05d}", "type": "user"}]})
    server.set_roster(ORG, "classes", classes)
    server.set_roster(ORG, "enrollments", enrollments)
    server.set_roster(ORG, "users", users)
    return roster


def record(rid: str, pupil: str, day: str, kind: str, lesson: str | None = None, minutes: int = 0,
           documented: bool = False) -> dict:
    body = {"sourcedId": rid, "student": {"sourcedId": pupil, "type": "user"}, "absenceType": kind,
            "documented": documented, "comment": "fritekst som aldri leses"}
    if kind == "late":
        body["startTime"], body["endTime"] = f"{day}T07:30:00Z", f"{day}T07:{30 + minutes:02d}:00Z"
    else:
        body["startDate"] = body["endDate"] = day
    if lesson:
        body["classesAffected"] = [{"sourcedId": lesson, "type": "class"}]
    return body


def morning(roster, rng: random.Random) -> list[dict]:
    found = []
    for pupil, group in roster:
        draw = rng.random()
        if draw < 0.07:
            found.append(record(f"abs-{pupil}-d", pupil, MORNING, "absent"))
        elif draw < 0.13:
            found.append(record(f"abs-{pupil}-l", pupil, MORNING, "absent", lesson=f"{group}-mat"))
        elif draw < 0.16:
            found.append(record(f"abs-{pupil}-s", pupil, MORNING, "late", lesson=f"{group}-nor", minutes=12))
    return found


def spread(server: FakeOneRoster, records: list[dict], start: datetime, end: datetime, put) -> None:
    step = (end - start) / max(len(records), 1)
    server.now = start
    for body in records:
        put(body)
        server.now += step


def _work(config, prefix: str) -> None:
    redis = Redis.from_url(REDIS_URL)
    rt = Runtime(config, redis, clock=FixedClock(NOW))
    runtime.install(rt)
    worker = ConnectorWorker([rt.queue], connection=redis, serializer=JSONSerializer, log_job_description=False,
                             name=f"{prefix}-{uuid.uuid4().hex[:6]}")
    worker.work(burst=True, logging_level="WARNING")


def drain(rt: Runtime, workers: int) -> float:
    """2 forked workers (the runtime's configuration copied, a Redis connection each) until the queue is empty."""
    context = multiprocessing.get_context("fork")
    start = time.perf_counter()
    procs = [context.Process(target=_work, args=(rt.config, rt.config.key_prefix)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(600)
    return time.perf_counter() - start


def main() -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fake server's line per request: thousands
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pupils", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    token = f"bench{uuid.uuid4().hex[:8]}"
    redis = Redis.from_url(REDIS_URL)
    os.environ["BENCH_ONEROSTER_SECRET"] = CLIENT_SECRET
    os.environ[API_TOKEN_VAR] = "bench-api-token"
    rng = random.Random(2026)
    with FakeOneRoster(now=NOW - timedelta(hours=8)) as server, FakePlatform() as platform:
        raw_settings = settings(server, orgs=[ORG], page_size=args.page_size,
                                client_secret={"env": "BENCH_ONEROSTER_SECRET"})
        raw = {"key_prefix": token, "queue_name": token, "tenants": {TENANT: {
            "name": "Bench kommune", "calendar": [{"file": str(CALENDAR_FILE)}],
            "adapters": {
                "generic": {"type": "generic", "webhook_secrets": [{"env": "BENCH_UNUSED_SECRET"}],
                            "base_url": platform.url, "api_token": {"env": API_TOKEN_VAR}},
                "vigilo": {"type": "oneroster_no", **raw_settings},
            },
            "actions_adapter": "generic",
            "directory": {"roles": {"principal": "u-rektor", "nearest_leader": "u-leder"}},
        }}}
        os.environ["BENCH_UNUSED_SECRET"] = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZg=="
        config = config_from_dict(raw)
        rt = Runtime(config, redis, clock=FixedClock(NOW))
        runtime.install(rt)
        poller = Poller(rt, sleep=time.sleep, name="bench")
        try:
            roster = build_roster(server, args.pupils)
            print(f"municipality: {args.pupils} pupils in {len(roster) // 25} groups, one org; page size "
                  f"{args.page_size}; {args.workers} workers; {os.cpu_count()} cores (shared machine)")

            start = time.perf_counter()
            requests_before = server_requests = len(server.requests)
            polls.take_lease(rt.redis, rt.keys, TENANT, "vigilo", poller.token, 120_000)
            fields = poller.refresh_roster(TENANT, "vigilo")  # the first tick would do it; timed on its own here
            polls.release_lease(rt.redis, rt.keys, TENANT, "vigilo", poller.token)
            print(f"roster refresh: {time.perf_counter() - start:6.1f} s, {len(server.requests) - requests_before} "
                  f"requests, {fields} cache fields")

            old = [record(f"old-{pupil}-{n}", pupil, LAST_WEEK[n % 5], "absent")
                   for n, (pupil, _) in enumerate(rng.sample(roster, 200))]
            spread(server, old, NOW - timedelta(days=6), NOW - timedelta(days=5), lambda b: server.put(ORG, b))
            first = morning(roster, rng)
            spread(server, first, NOW - timedelta(hours=7), NOW - timedelta(hours=5), lambda b: server.put(ORG, b))
            phase("morning", rt, poller, server, platform, len(first) + len(old), args.workers)

            edits = [dict(b, documented=True) for b in rng.sample(first, len(first) // 3)]
            deletions = [b["sourcedId"] for b in rng.sample(first, len(first) // 50)]
            old_edits = [dict(b, documented=True) for b in old]
            changes = [("put", b) for b in edits + old_edits] + [("delete", rid) for rid in deletions]
            rng.shuffle(changes)
            spread(server, changes, NOW - timedelta(hours=5), NOW - timedelta(minutes=30),
                   lambda c: server.put(ORG, c[1]) if c[0] == "put" else server.delete(ORG, c[1]))
            polls.release_lease(rt.redis, rt.keys, TENANT, "vigilo", poller.token)  # the next interval
            phase("the day's edits", rt, poller, server, platform, len(changes), args.workers)

            polls.release_lease(rt.redis, rt.keys, TENANT, "vigilo", poller.token)
            server.now = NOW
            before = len(server.absence_calls())
            outcome = poller.tick()[(TENANT, "vigilo")]
            print(f"a poll with nothing new: {len(server.absence_calls()) - before} request(s) for 1 org "
                  f"({outcome.unchanged} record(s) in the overlap window read again, {outcome.jobs} jobs)")
            failed = FailedJobRegistry(queue=rt.queue).count
            print(f"failed jobs: {failed}; outbox left: {rt.redis.hlen(rt.keys.outbox(TENANT))}")
        finally:
            runtime.install(None)
            cleanup_token(redis, token)


def phase(name: str, rt: Runtime, poller: Poller, server, platform, changes: int, workers: int) -> None:
    calls = len(server.absence_calls())
    start = time.perf_counter()
    outcome = poller.tick()[(rt.config.tenants[TENANT].id, "vigilo")]
    polled = time.perf_counter() - start
    processed = drain(rt, workers)
    total = time.perf_counter() - start
    written = platform.stats()["written"]
    print(f"{name}: {changes} changes on the server; poll {polled:5.1f} s ({len(server.absence_calls()) - calls} "
          f"requests, {outcome.jobs} jobs, {outcome.changes} changes, {outcome.events} marks); processing "
          f"{processed:5.1f} s; total {total:5.1f} s of the 300 s interval; {written} actions written so far")


if __name__ == "__main__":
    sys.exit(main())
