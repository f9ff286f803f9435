"""The door writes a delivery's job with a script of its own, in RQ's layout: these fail if RQ changes that layout.

``connector.engine.rq_compat`` lets RQ build the job's fields but puts them in Redis itself (one round trip instead of
three). If a new RQ writes a job differently, or reads it differently, a job queued our way must not silently stop
running, retrying or expiring as set: each test here compares with RQ's own enqueue or runs RQ's own worker.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from rq import Queue
from rq.job import Job, JobStatus, Retry
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer

from connector.engine import rq_compat
from tests.support import post_event, queued_jobs, run_worker

REGISTER = {
    "date": "2026-11-23",
    "group_id": "7A",
    "marks": [{"student_id": "s-1", "status": "absent", "documented": False}],
}
TIMESTAMPS = {b"created_at", b"enqueued_at"}


def queue_one(rt, delivery_id: str = "msg_contract") -> Job:
    assert rq_compat.enqueue_delivery(rt, "skole-a", "generic", delivery_id, [{"type": "attendance.register"}])
    (job,) = queued_jobs(rt)
    return job


def test_the_job_hash_is_what_rqs_own_unique_enqueue_writes(rt):
    ours = queue_one(rt)
    theirs = rt.queue.enqueue_call(
        "connector.engine.jobs.process_delivery", args=ours.args, job_id=f"{ours.id}-rq",
        description=ours.description, unique=True, result_ttl=0, failure_ttl=rq_compat.FAILED_JOB_TTL,
        retry=Retry(max=3, interval=[10, 60, 300]),
    )
    mine, rqs = rt.redis.hgetall(ours.key), rt.redis.hgetall(theirs.key)
    assert set(mine) == set(rqs)
    assert {k: v for k, v in mine.items() if k not in TIMESTAMPS} == {k: v for k, v in rqs.items() if k not in TIMESTAMPS}
    for field in TIMESTAMPS:  # same format, moments a few milliseconds apart
        moments = [datetime.fromisoformat(fields[field].decode()) for fields in (mine, rqs)]
        assert abs(moments[0] - moments[1]) < timedelta(seconds=5)
    assert rt.redis.ttl(ours.key) == rt.redis.ttl(theirs.key) == -1
    assert rt.redis.lrange(rt.queue.key, 0, -1) == [ours.id.encode(), theirs.id.encode()]
    assert rt.redis.sismember(Queue.redis_queues_keys, rt.queue.key)


def test_rq_reads_back_every_setting(rt):
    job = Job.fetch(queue_one(rt).id, connection=rt.redis, serializer=JSONSerializer)
    assert job.func_name == "connector.engine.jobs.process_delivery"
    assert list(job.args) == ["skole-a", "generic", rt.keys.delivery("skole-a", "generic", "msg_contract"),
                              [{"type": "attendance.register"}]]
    assert job.description == "delivery for skole-a/generic"
    assert (job.result_ttl, job.failure_ttl, job.ttl) == (0, rq_compat.FAILED_JOB_TTL, None)
    assert (job.retries_left, job.retry_intervals) == (3, [10, 60, 300])
    assert job.get_status() == JobStatus.QUEUED and job.origin == rt.queue.name
    assert job.timeout == Queue.DEFAULT_TIMEOUT and job.enqueued_at is not None


def test_rqs_worker_runs_the_job_and_the_marker_outlives_it(client, rt):
    post_event(client, "attendance.register", REGISTER, msg_id="msg_run")
    (job,) = queued_jobs(rt)
    marker = job.args[2]
    run_worker(rt)
    assert queued_jobs(rt) == [] and not rt.redis.exists(job.key)  # result_ttl=0: gone once finished
    assert 0 < rt.redis.ttl(marker) <= rt.config.dedupe_ttl_seconds


def test_a_failing_job_is_retried_as_set_then_kept_for_failure_ttl(client, rt, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the rules broke")

    monkeypatch.setattr("connector.engine.routing.handle_events", broken)
    post_event(client, "attendance.register", REGISTER, msg_id="msg_fail")
    (job,) = queued_jobs(rt)
    scheduled = ScheduledJobRegistry(queue=rt.queue)
    scheduler = RQScheduler([rt.queue], connection=rt.redis, serializer=JSONSerializer)
    assert scheduler.acquire_locks()
    for retries_left, interval in ((2, 10), (1, 60), (0, 300)):
        run_worker(rt)
        job.refresh()
        assert (job.get_status(), job.retries_left) == (JobStatus.SCHEDULED, retries_left)
        due_in = scheduled.get_expiration_time(job) - datetime.now(timezone.utc)
        assert abs(due_in - timedelta(seconds=interval)) < timedelta(seconds=5)
        again = post_event(client, "attendance.register", REGISTER, msg_id="msg_fail")
        assert again.get_json() == {"accepted": 0, "duplicate": True}
        scheduled.schedule(job, datetime.now(timezone.utc) - timedelta(seconds=1))  # due now, as if time passed
        scheduler.enqueue_scheduled_jobs()
        assert [j.id for j in queued_jobs(rt)] == [job.id]
    run_worker(rt)
    job.refresh()
    assert job.get_status() == JobStatus.FAILED and job.id in FailedJobRegistry(queue=rt.queue)
    assert rq_compat.FAILED_JOB_TTL - 60 < rt.redis.ttl(job.key) <= rq_compat.FAILED_JOB_TTL
    assert post_event(client, "attendance.register", REGISTER, msg_id="msg_fail").get_json()["duplicate"] is True


def test_a_marker_without_a_job_is_a_duplicate_and_writes_nothing(rt):
    rt.redis.set(rt.keys.delivery("skole-a", "generic", "msg_marked"), "1", ex=60)
    assert not rq_compat.enqueue_delivery(rt, "skole-a", "generic", "msg_marked", [{"type": "attendance.register"}])
    assert queued_jobs(rt) == [] and not rt.redis.sismember(Queue.redis_queues_keys, rt.queue.key)


def test_a_redis_that_lost_the_script_gets_it_again(rt, monkeypatch):
    from redis.exceptions import NoScriptError

    calls = []
    evalsha = rt.redis.evalsha

    def forgetful(sha, *args):  # as after a Redis restart or SCRIPT FLUSH, which the shared test Redis must not get
        calls.append(sha)
        if len(calls) == 1:
            raise NoScriptError("NOSCRIPT No matching script.")
        return evalsha(sha, *args)

    monkeypatch.setattr(rt.redis, "evalsha", forgetful)
    queue_one(rt)
    assert calls == [rq_compat.ENQUEUE_ONCE_SHA, rq_compat.ENQUEUE_ONCE_SHA]


def test_a_second_enqueue_of_the_same_delivery_is_refused_while_queued(rt):
    job = queue_one(rt)
    before = rt.redis.hgetall(job.key)
    time.sleep(0.002)  # a second write would change enqueued_at
    assert not rq_compat.enqueue_delivery(rt, "skole-a", "generic", "msg_contract", [{"type": "changed"}])
    assert rt.redis.hgetall(job.key) == before and rt.redis.llen(rt.queue.key) == 1
