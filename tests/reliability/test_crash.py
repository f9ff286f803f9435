"""Crash faults on the running system: kill -9 of workers mid-job, of the scheduler, of a web process mid-request,
and of Redis itself (back from its append-only file), during a burst of registers. Afterwards every delivery that
got a 202 has been processed, exactly the actions an undisturbed run writes have been written, each created once,
no deadline is lost, and it all drained within :data:`DRAIN_BOUND_SECONDS` of the last fault.

The expected result is not written by hand: the same deliveries go first through an undisturbed system (its own
key prefix on the same Redis, its own platform), and the faulted run must end exactly as that one did: the same
actions created, the same pupils' state, the same deadlines still to come. Figures in ``docs/reliability.md``.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from datetime import time as dt_time

import psutil
import pytest

from connector.contract.terms import OSLO
from tests.reliability.harness import Sender, System, past_school_days, registers

TENANTS = ["skole-a", "skole-b"]
GROUPS = [f"{grade}{letter}" for grade in (5, 6, 7, 8, 9, 10) for letter in "AB"]  # 12 groups of 25 per tenant
PUPILS = 25
DAYS = 15  # school days back: 2 × 12 × 15 = 360 registers, 9,000 marks

# Why this bound, after the last fault: a dead worker's job is taken over once its registry entry lapses
# (rq_compat.LIVENESS_SECONDS, 20 s) and a worker's maintenance runs (MAINTENANCE_SECONDS, 5 s); after a Redis
# restart, a worker waits at most 5 s between pings and the scheduler as long; a job that failed on the lost Redis
# is retried after RETRY's first interval (10 s), a second time after 60 s. What is left is the work itself: the
# undisturbed run drains in well under a minute on 2 shared cores. 20 + 5 + 5 + 10 + 60 + 60 rounds to 3 minutes.
DRAIN_BOUND_SECONDS = 180


def burst(system: System, deliveries, statuses: Counter, accepted: list, threads: int = 4, pause: float = 0.0) -> None:
    """Post every delivery, from ``threads`` senders at once; a delivery not answered 202 (503 while Redis is
    down, a connection reset by a killed web worker) is posted again with the same ``webhook-id``, as a platform
    retries, until it is."""
    pending = list(deliveries)
    lock = threading.Lock()

    def run():
        sender = Sender(system.url, timeout=10)
        while True:
            with lock:
                if not pending:
                    return
                delivery = pending.pop()
            while True:
                try:
                    response = sender.post(delivery.tenant, delivery.msg_id, delivery.envelope)
                    status = response.status_code
                except Exception as exc:  # noqa: BLE001 - a killed web worker resets the connection
                    status = type(exc).__name__
                with lock:
                    statuses[status] += 1
                if status == 202:
                    with lock:
                        accepted.append(delivery.msg_id)
                    time.sleep(pause)
                    break
                time.sleep(0.2)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def drained(system: System, expected: set[str] | None, quiet_for: float = 3.0, timeout: float = 600.0) -> float:
    """Wait until RQ has nothing left for the queue, nothing is due now and the platform's writes have stopped
    (and, given ``expected``, every expected action is created); returns when that first held (monotonic)."""
    deadline = time.monotonic() + timeout
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        try:
            backlog = system.backlog()
        except Exception:  # noqa: BLE001 - Redis restarting
            backlog = {"redis": 1}
        count = len(system.platform.posts)
        now = time.monotonic()
        if count != last_count:
            last_count, last_change = count, now
        done = not any(backlog.values()) and now - last_change >= quiet_for
        if done and (expected is None or expected <= system.platform.created_refs()):
            return last_change
        time.sleep(0.25)
    missing = sorted((expected or set()) - system.platform.created_refs())
    raise AssertionError(f"not drained within {timeout} s: backlog {system.backlog()}, "
                         f"{len(system.platform.created_refs())} created, {len(missing)} missing: {missing[:20]}, "
                         f"due set {system.client().zrange(f'{system.prefix}:due', 0, 20, withscores=True)}")


# absence.notice_missing: while a pupil's task for an earlier day is open, a further day becomes a note on it. Which
# day gets the task and which the notes is decided by the order in which the days' deadlines fire, and a late or
# retried job changes that order: the same pupils get the same number of reminders, tasks and notes, under other
# external_refs (reported in docs/reliability.md as a finding for the issue on late and out-of-order events).
ORDER_DEPENDENT = {"absence.notice_missing"}


def per_pupil(posts: dict, refs: set[str]) -> Counter:
    return Counter((posts[r].body["rule_id"], posts[r].kind, posts[r].body["student_id"]) for r in refs)


def state(system: System) -> dict[str, object]:
    """What the run left in Redis that must not depend on faults: pupils' histories and notices, deadlines' payloads,
    the due set's members (deadlines still to come), with the run's own key prefix taken off."""
    r = system.client()
    found: dict[str, object] = {}
    for key in r.scan_iter(match=f"{system.prefix}:t:*", count=1000):
        name = key.decode()[len(system.prefix):]
        if ":pupil:" in name or ":notices:" in name or name.endswith(":deadlines"):
            found[name] = {field: value for field, value in r.hgetall(key).items()
                           if not any(rule.encode() in field for rule in ORDER_DEPENDENT)}
    found["due"] = {m for m in r.zrange(f"{system.prefix}:due", 0, -1)}
    return found


def run_undisturbed(make_system, deliveries) -> tuple[System, float, dict]:
    system = make_system(TENANTS, GROUPS)
    system.start_web()
    for _ in range(2):
        system.start_worker()
    system.start_scheduler()
    statuses, accepted = Counter(), []
    started = time.monotonic()
    burst(system, deliveries, statuses, accepted)
    drained(system, None)
    took = time.monotonic() - started
    system.stop_all()
    return system, took, {"statuses": dict(statuses)}


@pytest.mark.timeout(900)
def test_kill_9_of_workers_scheduler_web_and_redis_loses_nothing_and_doubles_nothing(make_system, recording_platform):
    # Both runs must see the same school day: the deadlines fall due at Oslo midnight, and one that falls due between
    # the undisturbed run and the faulted one makes them differ for a reason that is no fault's.
    oslo_day = datetime.now(OSLO).date()
    if datetime.now(OSLO) + timedelta(minutes=8) > datetime.combine(oslo_day + timedelta(days=1), dt_time(), OSLO):
        pytest.skip("too close to midnight in Oslo: the two runs would see different school days")
    days = past_school_days(DAYS)
    deliveries = registers(TENANTS, GROUPS, PUPILS, days)
    reference, calm_seconds, calm = run_undisturbed(make_system, deliveries)
    expected = recording_platform.created_refs()
    reference_posts = dict(recording_platform.created)
    expected_state = state(reference)
    assert expected, "the workload must lead to actions"
    assert calm["statuses"] == {202: len(deliveries)}
    print(f"undisturbed: {len(deliveries)} deliveries, {len(expected)} actions, drained in {calm_seconds:.1f} s")

    faulted = make_system(TENANTS, GROUPS)
    recording_platform.posts.clear()
    recording_platform.created.clear()
    faulted.start_web()
    workers = [faulted.start_worker() for _ in range(2)]
    scheduler = faulted.start_scheduler()
    statuses, accepted, faults = Counter(), [], []
    # paced (about 20 s for all of them), so that every fault below falls while deliveries come in
    sending = threading.Thread(target=burst, args=(faulted, deliveries, statuses, accepted, 4, 0.2))
    started = time.monotonic()
    sending.start()

    def busy() -> bool:  # a job is running: the kill lands mid-job
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if faulted.client().zcard(f"rq:wip:{faulted.prefix}"):
                return True
            time.sleep(0.01)
        return False

    def fault(what: str) -> None:
        faults.append((round(time.monotonic() - started, 1), what))

    # A gunicorn worker, mid-request (four senders keep it busy); its master starts another.
    time.sleep(1)
    web_worker = psutil.Process(faulted.running("web")[0].pid).children()[0]
    web_worker.kill()
    fault(f"kill -9 web worker pid {web_worker.pid}")
    # Workers: kill -9 one mid-job, four times; a supervisor starts a new one each time (systemd, compose, serve).
    for round_ in range(4):
        time.sleep(1.5)
        busy()
        victim = workers.pop(0)
        victim.kill()
        fault(f"kill -9 worker pid {victim.pid}")
        workers.append(faulted.start_worker())
    # The scheduler.
    busy()
    scheduler.kill()
    fault("kill -9 scheduler")
    time.sleep(1)
    scheduler = faulted.start_scheduler()
    # Redis itself, mid-burst: back from its append-only file. No process is restarted by the test after this.
    survivors = {p.pid for p in faulted.running("worker") + faulted.running("scheduler")}
    busy()
    faulted.redis.kill()
    fault("kill -9 redis")
    time.sleep(3)
    faulted.redis.start()
    fault("redis started again from its AOF")
    last_fault = time.monotonic()
    sending.join(timeout=300)
    sending_for = time.monotonic() - started
    assert not sending.is_alive(), "the senders never got every delivery accepted"
    exact = {ref for ref in expected if reference_posts[ref].body["rule_id"] not in ORDER_DEPENDENT}
    try:
        drained_at = drained(faulted, exact, timeout=DRAIN_BOUND_SECONDS + 20)
    except AssertionError as exc:
        if datetime.now(OSLO).date() != oslo_day:
            pytest.skip("the run passed midnight in Oslo: the two runs saw different school days")
        missing = exact - recording_platform.created_refs()
        raise AssertionError(f"{exc}\nmissing: {[(reference_posts[r].body['rule_id'], reference_posts[r].kind, reference_posts[r].body['student_id']) for r in missing]}\n"
                             f"leased: {faulted.client().zrangebyscore(f'{faulted.prefix}:due', time.time(), time.time() + 400)[:20]}\n"
                             + "\n".join(line for line in faulted.logs().splitlines() if "WARNING" in line or "ERROR" in line)[-8000:]) from None
    drain_seconds = drained_at - last_fault
    total = time.monotonic() - started

    if datetime.now(OSLO).date() != oslo_day:
        pytest.skip("the run passed midnight in Oslo: the two runs saw different school days")
    posts = recording_platform.posts_per_ref()
    created = recording_platform.created_refs()
    resent = {ref: n for ref, n in posts.items() if n > 1}
    print(f"faulted: {len(deliveries)} deliveries, {sum(statuses.values())} posts at the door {dict(statuses)}, "
          f"faults {faults}, {len(created)} actions created, {len(resent)} resent (409), drained "
          f"{drain_seconds:.1f} s after the last fault, {total:.1f} s in all")

    assert sorted(accepted) == sorted(d.msg_id for d in deliveries)
    # The same actions as the undisturbed run, ref for ref, but for one rule whose outcome depends on the order its
    # deadlines fire in (ORDER_DEPENDENT): for it, the same number of each kind of action for each pupil.
    done = {ref for ref in created if recording_platform.created[ref].body["rule_id"] not in ORDER_DEPENDENT}
    assert done == exact, f"missing {sorted(exact - done)[:20]}, extra {sorted(done - exact)[:20]}"
    assert per_pupil(reference_posts, expected - exact) == per_pupil(recording_platform.created, created - done)
    assert all(post.status in (201, 409) for post in recording_platform.posts)
    # Each action was created once. An action sent again reached the platform's Idempotency-Key (409): that can only
    # be one whose sender died between the platform's answer and the ledger's write, at most one per worker per kill.
    assert len(resent) <= 2 * (4 + 1), resent
    assert faults[-2][0] < sending_for, "Redis must die while deliveries still come in"
    assert 500 not in statuses and statuses[503] > 0, statuses  # Redis down at the door: 503, retried, then 202
    assert state(faulted) == expected_state
    assert faulted.failed_jobs() == 0 and faulted.dead_letters() == 0
    # Redis came back under the running processes: they reconnected, none exited.
    assert survivors <= {p.pid for p in faulted.running("worker") + faulted.running("scheduler")}
    assert drain_seconds <= DRAIN_BOUND_SECONDS
