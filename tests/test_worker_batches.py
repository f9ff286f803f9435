"""The worker takes queued jobs several at a time (``rq_compat.ConnectorWorker.run_plain_jobs``): one job per
delivery is still what the door acknowledges, what RQ retries and what the failed registry shows.

What a batch must keep: every job of it registered as started (and so taken over if the worker dies) from the moment
it is taken; a job that raises handled by RQ exactly as alone (its retry scheduled, the others of the batch ended);
a job that is not the connector's own (another program's, with a result to keep) run through RQ's own steps; and
nothing of RQ's bookkeeping left behind. The crash tests (``tests/reliability/test_crash.py``) kill workers with -9
while they drain full queues, that is, in the middle of batches.
"""
from __future__ import annotations

import pytest
from rq.job import Job, JobStatus
from rq.registry import FinishedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from connector.engine import rq_compat
from tests.support import queued_jobs, run_worker

EVENTS = [{"type": "attendance.register"}]


@pytest.fixture(autouse=True)
def batches(monkeypatch):
    """Batches of 4, whatever the shipped ``BATCH_JOBS``: small enough that a test sees several batches."""
    monkeypatch.setattr(rq_compat, "BATCH_JOBS", 4)


def queue(rt, count: int) -> list[str]:
    for n in range(count):
        assert rq_compat.enqueue_delivery(rt, "skole-a", "generic", f"batch-{n}", EVENTS)
    ids = [job.id for job in queued_jobs(rt)]
    assert len(ids) == count
    return ids


def test_a_batch_is_registered_as_started_at_once_and_ends_with_nothing_left(rt, monkeypatch):
    ids = queue(rt, rq_compat.BATCH_JOBS + 3)
    seen_started: list[set[str]] = []

    def recording(rt_, tenant_id, adapter, events):
        seen_started.append(set(StartedJobRegistry(queue=rt.queue).get_job_ids()))
        return []

    monkeypatch.setattr("connector.engine.routing.handle_events", recording)
    run_worker(rt)
    assert len(seen_started) == len(ids)
    # the first job of the first batch saw the whole batch started; the first of the second saw the rest
    assert seen_started[0] == set(ids[:rq_compat.BATCH_JOBS])
    assert seen_started[rq_compat.BATCH_JOBS] == set(ids[rq_compat.BATCH_JOBS:])
    assert StartedJobRegistry(queue=rt.queue).get_job_ids() == [] and queued_jobs(rt) == []
    assert not any(rt.redis.exists(Job.key_for(job_id)) for job_id in ids)  # result_ttl 0: gone once finished
    assert not any(rt.redis.exists(f"rq:executions:{job_id}") for job_id in ids)
    assert rt.redis.llen(rt.queue.intermediate_queue_key) == 0
    worker_key = f"rq:worker:{rt.token}-worker"
    assert int(rt.redis.hget(worker_key, "successful_job_count")) == len(ids)
    assert rt.redis.hget(worker_key, "state") == b"idle"
    assert rt.redis.scard(f"rq:worker_executions:{rt.token}-worker") == 0


def test_a_job_that_raises_in_a_batch_is_retried_as_alone_and_the_others_end(rt, monkeypatch):
    ids = queue(rt, 5)
    broken = ids[2]
    ran = []

    def sometimes(rt_, tenant_id, adapter, events):
        from rq import get_current_job

        ran.append(get_current_job().id)
        if get_current_job().id == broken:
            raise RuntimeError("the rules broke")
        return []

    monkeypatch.setattr("connector.engine.routing.handle_events", sometimes)
    run_worker(rt)
    assert ran == ids  # in queue order, the broken one did not stop the rest
    job = Job.fetch(broken, connection=rt.redis, serializer=JSONSerializer)
    assert (job.get_status(), job.retries_left) == (JobStatus.SCHEDULED, 2)
    assert broken in ScheduledJobRegistry(queue=rt.queue)
    assert not any(rt.redis.exists(Job.key_for(job_id)) for job_id in ids if job_id != broken)
    assert StartedJobRegistry(queue=rt.queue).get_job_ids() == []


def test_another_programs_job_in_a_batch_runs_through_rqs_own_steps(rt, monkeypatch):
    monkeypatch.setattr("connector.engine.routing.handle_events", lambda *args: [])
    first = queue(rt, 2)
    theirs = rt.queue.enqueue_call("connector.engine.jobs.process_delivery",
                                   args=("skole-a", "generic", rt.keys.delivery("skole-a", "generic", "x"), EVENTS),
                                   result_ttl=600)
    assert not rq_compat.plain_job(theirs, rt_worker(rt))
    run_worker(rt)
    theirs.refresh()
    assert theirs.get_status() == JobStatus.FINISHED and theirs.id in FinishedJobRegistry(queue=rt.queue)
    assert not any(rt.redis.exists(Job.key_for(job_id)) for job_id in first)


def rt_worker(rt):
    return rq_compat.ConnectorWorker([rt.queue], connection=rt.redis, serializer=JSONSerializer,
                                     name=f"{rt.token}-probe")
