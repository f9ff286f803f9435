"""A delivery job that dies at any step, then retried by RQ, ends exactly as the run that did not die; two jobs on
the same pupil, interleaved, never lose each other's change.

The fault is injected once at a step boundary (after the pupils were read, after the rules decided, in the middle
of the transaction, after the commit before the send, in the middle of a send), RQ retries the job (its retry
interval set to 0 so the same burst runs it), the scheduler drains what is due, and the platform (an idempotent
recording fake: ``409`` for a key it holds, as the contract says) must have received every action exactly once,
the same as in an undisturbed run on a runtime of its own.
"""
from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
import responses
from rq.job import Retry

from connector import create_app
from connector.adapters.generic.adapter import GenericAdapter
from connector.engine import outbox, routing, rq_compat, runtime, scheduler
from connector.engine.consequences import Consequences
from connector.store import pupils as pupil_store
from tests.streams_support import TENANT, fresh_runtime, stored_facts
from tests.support import PLATFORM, post_event, run_worker

# Monday 23 Nov 2026, 09:00: last week's absences are past their notice deadline; the third Monday is a pattern.
STUDENTS = ["s-1", "s-2", "s-3"]
REGISTERS = [
    {"date": day, "group_id": "7A", "marks": [
        {"student_id": "s-1", "status": "absent", "documented": True},
        {"student_id": "s-2", "status": "absent", "documented": False},
        {"student_id": "s-3", "status": "present", "documented": False},
    ]}
    for day in ("2026-11-02", "2026-11-09", "2026-11-16")
]


class Platform:
    """The platform's write API, idempotent by ``Idempotency-Key``: every request recorded, ``409`` on a repeat."""

    def __init__(self, mock: responses.RequestsMock):
        self.received: list[tuple[str, str]] = []
        self.held: set[str] = set()
        for path in ("tasks", "alerts", "notes"):
            mock.add_callback(responses.POST, f"{PLATFORM}/{path}", callback=self._answer(path))

    def _answer(self, path):
        def answer(request):
            key = request.headers["Idempotency-Key"]
            self.received.append((path, key))
            if key in self.held:
                return 409, {}, json.dumps({"error": "conflict"})
            self.held.add(key)
            return 201, {}, json.dumps({"id": f"remote-{len(self.held)}"})
        return answer

    def written(self) -> Counter:
        """How often each action was *created* (a 409 creates nothing)."""
        return Counter(self.held)


def drain(rt) -> None:
    """Run the queue, then the due set (deadlines, sends) until nothing is left, minutes at a time."""
    run_worker(rt)
    for _ in range(15):
        rt.clock.advance(minutes=2)
        scheduler.sweep(rt)
        run_worker(rt)
        if not rt.redis.zcard(rt.keys.due):
            return
    raise AssertionError("the due set did not drain")


def run_scenario(rt, platform: Platform) -> dict:
    client = create_app(runtime=rt).test_client()
    runtime.install(rt)
    for n, register in enumerate(REGISTERS):
        assert post_event(client, "attendance.register", register, msg_id=f"msg-register-{n}").status_code == 202
    drain(rt)
    return {
        "facts": stored_facts(rt, STUDENTS),
        "written": {key for _, key in platform.received},
        "outbox": rt.redis.hlen(rt.keys.outbox(TENANT)),
        "failed": rt.queue.failed_job_registry.count,
    }


def once(fail_after: bool = False):
    """A wrapper that raises the first time the wrapped function is called (after running it, if ``fail_after``)."""
    calls = {"n": 0}

    def wrap(original):
        def wrapped(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 1 and not fail_after:
                raise ConnectionError("injected: the worker died here")
            result = original(*args, **kwargs)
            if calls["n"] == 1:
                raise ConnectionError("injected: the worker died here")
            return result
        return wrapped
    return wrap, calls


STEPS = {
    "after the pupils were read": (pupil_store.Checkout, "read", True),
    "after the rules decided": (Consequences, "write", False),
    "in the middle of the transaction": (pupil_store.Checkout, "commit", False),
    "after the commit, before the send": (outbox, "send", False),
    "in the middle of a send": (GenericAdapter, "send", True),
}


@pytest.fixture
def instant_retries(monkeypatch):
    monkeypatch.setattr(rq_compat, "RETRY", Retry(max=3, interval=0))


@pytest.mark.parametrize("step", list(STEPS))
def test_a_job_that_dies_at_any_step_and_is_retried_ends_as_the_undisturbed_run(
        step, rt, platform, instant_retries, monkeypatch):
    with fresh_runtime(rt.clock.now()) as calm:
        expected = run_scenario(calm, Platform(platform))
    runtime.install(rt)
    platform.reset()
    target, name, fail_after = STEPS[step]
    wrap, calls = once(fail_after)
    monkeypatch.setattr(target, name, wrap(getattr(target, name)))
    recorder = Platform(platform)
    got = run_scenario(rt, recorder)
    assert calls["n"] >= 2, "the fault was injected and the work done again"
    assert got == expected
    assert expected["written"] and expected["outbox"] == 0 and expected["failed"] == 0
    assert set(recorder.written().values()) == {1}, "every action created exactly once"


# --- no lost update ------------------------------------------------------------------------------------------------


def test_a_task_update_landing_while_a_register_is_being_judged_is_not_undone(rt, monkeypatch):
    """Job A (a register for s-1) reads the pupil and waits; job B (the pattern task completed) commits; A goes on.
    Before, A wrote back the pattern state it had read and the completed conversation was undone."""
    for day in ("2026-11-02", "2026-11-09", "2026-11-16"):
        routing.handle_events(rt, TENANT, "generic", [{"type": "attendance.marked", "timestamp": "2026-11-23T08:00:00Z",
                                                       "student_id": "s-1", "date": day, "group_id": "7A",
                                                       "status": "absent", "documented": True}])
    state_key = rt.keys.pupil(TENANT, "s-1")
    opened = json.loads(rt.redis.hget(state_key, "s:absence.pattern"))
    assert opened["open"], "the pattern task is open"
    ref = next(json.loads(raw)["action"]["external_ref"] for raw in rt.redis.hvals(rt.keys.outbox(TENANT))
               if json.loads(raw)["action"]["rule_id"] == "absence.pattern"
               and json.loads(raw)["action"]["kind"] == "task")

    a_has_read, b_has_committed = threading.Event(), threading.Event()
    original_read = pupil_store.Checkout.read
    first = {"done": False}

    def read_then_wait(self, wants, *args, **kwargs):
        result = original_read(self, wants, *args, **kwargs)
        if threading.current_thread().name == "job-a" and not first["done"]:
            first["done"] = True
            a_has_read.set()
            assert b_has_committed.wait(10)
        return result

    monkeypatch.setattr(pupil_store.Checkout, "read", read_then_wait)
    errors = []

    def job_a():
        try:
            routing.handle_events(rt, TENANT, "generic", [{"type": "attendance.marked",
                                                           "timestamp": "2026-11-23T08:00:00Z", "student_id": "s-1",
                                                           "date": "2026-11-20", "group_id": "7A",
                                                           "status": "absent", "documented": True}])
        except Exception as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=job_a, name="job-a")
    thread.start()
    assert a_has_read.wait(10)
    routing.handle_events(rt, TENANT, "generic", [{"type": "task.updated", "timestamp": "2026-11-23T08:00:00Z",
                                                   "external_ref": ref, "status": "completed",
                                                   "completed_at": "2026-11-19T12:00:00+01:00"}])
    b_has_committed.set()
    thread.join(10)
    assert not errors
    state = json.loads(rt.redis.hget(state_key, "s:absence.pattern"))
    assert not state.get("open"), "the completed conversation stays completed"
    assert state["closed_on"] == "2026-11-19"
    assert rt.redis.hget(state_key, "d:2026-11-20") is not None, "and job A's mark is stored"


def test_two_registers_completing_one_pupils_pattern_at_once_give_one_task(rt):
    """Two workers, each with one Monday that completes the pattern, released together 20 times."""
    for attempt in range(20):
        student = f"p-{attempt}"
        routing.handle_events(rt, TENANT, "generic", [{"type": "attendance.marked", "timestamp": "2026-11-23T08:00:00Z",
                                                       "student_id": student, "date": "2026-11-02", "group_id": "7A",
                                                       "status": "absent", "documented": True}])
        start = threading.Barrier(2)

        def job(day):
            start.wait(5)
            routing.handle_events(rt, TENANT, "generic", [{"type": "attendance.marked",
                                                           "timestamp": "2026-11-23T08:00:00Z", "student_id": student,
                                                           "date": day, "group_id": "7A", "status": "absent",
                                                           "documented": True}])

        threads = [threading.Thread(target=job, args=(day,)) for day in ("2026-11-09", "2026-11-16")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        tasks = [a for a in (json.loads(raw)["action"] for raw in rt.redis.hvals(rt.keys.outbox(TENANT)))
                 if a["rule_id"] == "absence.pattern" and a["kind"] == "task" and a["student_id"] == student]
        assert len(tasks) == 1, attempt



def test_a_second_read_of_a_pupil_in_the_same_job_sees_what_the_job_already_decided(rt):
    """A delivery holding a register and a task update of one pupil: the second handler must build on the first's
    decision, not on the stored value (else the transaction writes the older one last)."""
    checkout = pupil_store.Checkout(rt.redis, rt.keys, TENANT)
    rt.redis.hset(rt.keys.pupil(TENANT, "s-1"), mapping={"s:absence.pattern": "stored", "d:2026-11-20": "day=a1"})
    try:
        assert checkout.read({"s-1": ["s:absence.pattern"]})["s-1"].get("s:absence.pattern") == "stored"
        checkout.set_state("s-1", "absence.pattern", "decided")
        checkout.set_day("s-1", "2026-11-20", "")
        checkout.add_notice("s-1", "2026-11-20|2026-11-20", "illness")
        again = checkout.read({"s-1": ["s:absence.pattern", "d:2026-11-20"]})["s-1"]
        assert again.get("s:absence.pattern") == "decided"
        assert again.get("d:2026-11-20") is None
        assert again.notices == {"2026-11-20|2026-11-20": "illness"}
    finally:
        checkout.close()
