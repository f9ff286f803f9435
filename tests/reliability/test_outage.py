"""A platform outage, against the real processes: ``connector web``, ``connector worker`` and ``connector scheduler``
writing to a platform on loopback that answers ``429``/``503`` with ``Retry-After``, ``500`` and timeouts for a spell.

Afterwards every action is written exactly once (no call for an action after its success was answered), no call
came before a ``Retry-After`` ran out, the per-adapter back-off kept the outage from costing a call per action per
wait, and an action the platform kept refusing is a dead letter that ``connector dead-letters retry`` delivers once.
The back-off is shortened in the configuration's ``outbox`` section, so the whole story takes seconds.
"""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
from redis import Redis

from connector.store.keys import Keys
from tests.reliability.door_support import Connector, OutagePlatform, school_days_ago
from tests.support import REDIS_URL

pytestmark = [pytest.mark.reliability]

OUTBOX = {"backoff_base_seconds": 0.5, "backoff_cap_seconds": 2.0, "max_attempts": 5, "first_try_grace_seconds": 2.0}
PUPILS = 20
OUTAGE_SECONDS = 8.0


def wait_for(check, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.fixture
def platform():
    platform = OutagePlatform().start()
    yield platform
    platform.stop()


@pytest.fixture
def connector(tmp_path, platform):
    connector = Connector(tmp_path / "connector", platform_url=platform.url, outbox=OUTBOX)
    try:
        yield connector
    finally:
        connector.stop()
        connector.clean()


@pytest.mark.timeout(120)
def test_an_outage_ends_with_every_action_written_once_retry_after_honoured_and_no_spinning(connector, platform):
    keys = Keys(connector.token)
    redis = Redis.from_url(REDIS_URL)
    connector.start_web(workers=1)
    connector.start("worker", "worker")
    connector.start("scheduler", "scheduler", "--interval", "0.2")
    platform.down = True
    platform.poisoned.add("p-poison")

    for n in range(PUPILS):
        status, _, answer = connector.deliver("attendance.marked", {
            "student_id": f"p-{n:02d}", "date": school_days_ago(5), "status": "absent", "documented": False,
            "group_id": "7A"})
        assert status == 202, answer
    assert connector.deliver("attendance.marked", {
        "student_id": "p-poison", "date": school_days_ago(5), "status": "absent", "documented": False,
        "group_id": "7B"})[0] == 202

    wait_for(lambda: platform.calls, 30, "the worker's first call")  # the outage counts from there
    outage_began = min(call.started for call in platform.calls)
    time.sleep(max(0.0, outage_began + OUTAGE_SECONDS - time.monotonic()))
    with platform.lock:
        platform.down = False
        outage_calls = list(platform.calls)
    outage_ended = time.monotonic()

    def settled() -> bool:
        return redis.hlen(keys.outbox("skole-a")) == 0 and redis.hlen(keys.dead_letters) >= 1
    try:
        wait_for(settled, 60, "the outbox drained into the platform and the dead letters")
    except AssertionError:
        print(connector.log("worker").read_text()[-5000:])
        raise
    refs = {call.ref: call.student_id for call in platform.calls}
    pupils = set(refs.values())
    assert pupils == {f"p-{n:02d}" for n in range(PUPILS)} | {"p-poison"}  # every pupil's action was tried
    poison_refs = {ref for ref, student in refs.items() if student == "p-poison"}
    assert set(platform.created) == set(refs) - poison_refs  # each written (the platform keeps one per key)

    # the poisoned action: a dead letter after max_attempts tries, then retried by an admin, once
    letters = redis.hgetall(keys.dead_letters)
    assert {key.decode().split("|", 1)[1] for key in letters} == poison_refs
    poison_calls = [call for call in platform.calls if call.ref in poison_refs]
    assert len(poison_calls) == OUTBOX["max_attempts"] * len(poison_refs)
    platform.poisoned.clear()
    retried = subprocess.run([sys.executable, "-m", "connector.cli", "dead-letters", "retry", "--all"],
                             env=connector.env, capture_output=True, text=True, timeout=30)
    assert retried.returncode == 0, retried.stderr
    wait_for(lambda: poison_refs <= set(platform.created) and redis.hlen(keys.dead_letters) == 0
             and redis.hlen(keys.outbox("skole-a")) == 0, 20, "the retried dead letter was written")
    time.sleep(1.0)  # long enough for a second send to show

    calls = list(platform.calls)
    for call in sorted(calls, key=lambda c: c.started):  # the timeline, shown when the test fails
        print(f"{call.started - outage_began:7.2f} {call.answered - outage_began:7.2f} {call.status} "
              f"{call.retry_after} {call.student_id} {call.ref[:16]}")
    # exactly once: after the platform's answer of success reached the connector, no call for that action again
    for ref in refs:
        answered = [call.answered for call in calls if call.ref == ref and call.status in (201, 409)]
        assert answered, f"{ref}: never answered with success"
        later = [call for call in calls if call.ref == ref and call.started > min(answered)]
        assert later == [], f"{ref} sent again after it was written"
    assert sum(1 for call in calls if call.status == 201) + sum(
        1 for call in calls if call.status == 0 and call.ref in platform.created) >= len(platform.created)

    # Retry-After honoured: after a 429/503 with Retry-After, the platform heard nothing until it ran out
    for waited in (call for call in calls if call.retry_after is not None):
        too_soon = [call for call in calls
                    if waited.answered + 0.2 < call.started < waited.answered + waited.retry_after - 0.2]
        assert too_soon == [], f"called {len(too_soon)} time(s) within a Retry-After of {waited.retry_after} s"

    # every kind of failure was met, and no spinning: about one call per wait (the probe), not one per action
    assert {call.status for call in outage_calls} >= {429, 503, 500, 0}
    assert len(outage_calls) <= OUTAGE_SECONDS / (OUTBOX["backoff_base_seconds"] * 0.9) + 2, len(outage_calls)
    assert len(outage_calls) < len(refs) / 2

    # and nothing failed on the way: no failed job in RQ's registry
    assert redis.zcard(f"rq:failed:{connector.token}") == 0
    assert redis.zcard(f"rq:scheduled:{connector.token}") == 0  # none failed and waits for RQ's retry either
    print(f"outage {outage_ended - outage_began:.1f} s: {len(outage_calls)} platform call(s) for {len(refs)} "
          f"action(s); {len(calls)} call(s) in all; all written {time.monotonic() - outage_ended:.1f} s after")
    redis.close()
