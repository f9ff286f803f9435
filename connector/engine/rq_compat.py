"""Everything the connector knows about RQ's insides, in one place: the door's job writing and the worker's overrides.

**Queueing a delivery.** The door's one Redis round trip: a script of ours checks the delivery's dedupe marker and the
job's key, then writes the job exactly as RQ's own unique enqueue does (``rq/scripts.py`` and ``Queue.enqueue_job``
in rq 3.0). RQ builds the job's fields (``Queue.create_job`` and ``Job.to_dict``); only where they go is ours, so
RQ's workers find and run the job as any other, Retry and failure_ttl included.

**The worker.** RQ's SimpleWorker (jobs run in this process, no fork per job), with lighter heartbeats and logs.
RQ sends a standalone worker heartbeat (HSET + 2 EXPIRE) three times per job; with jobs of a few milliseconds that
was a third of the worker's Redis round trips (bench/processing.py --profile). Heartbeats RQ sends inside its own
pipelines (a job's start and end) are kept; a standalone one is skipped while the last is under five seconds old,
far inside the worker key's time-to-live of minutes, so the worker still counts as alive and a job as started.
RQ also logs three INFO lines for every job that succeeds (taken, completed, OK) and one on its result's lifetime.
One job is one webhook delivery, so in a register burst that is thousands of lines a minute saying nothing an
admin acts on, and about a tenth of the worker's CPU per job. They are left out; what RQ says about the worker
itself (start, queues, suspension, shutdown) and every warning or failure still goes to the log.

**Jobs taken several at a time.** RQ's own steps around a job of a few milliseconds (prepare the execution, prepare
the job, handle its success) were 18 round trips and ~2 ms of CPU, more than the job's own work. For the jobs the
connector queues itself (:func:`plain_job`: no dependents, repeats, callbacks, webhooks, group or rate limit; result
not kept), the worker writes the same keys in fewer steps, and when the queue is full it takes up to
:data:`BATCH_JOBS` at once (:func:`take_more`: RQ's dequeue, for several jobs in one script): one transaction starts
them all, each runs alone under its own timeout, and one transaction ends those that succeeded. A job that raises is
handled by RQ as it would be alone; every job is still one delivery, retried and failed on its own.

**A dead worker's job is taken over in seconds, not minutes.** RQ finds a job whose worker died (kill -9, a lost
machine) only when the job's entry in the queue's ``StartedJobRegistry`` has expired *and* some worker runs its
maintenance. Out of the box that is the job's timeout plus a minute (SimpleWorker) and then maintenance every ten
minutes, taken under a queue lock that lives fifteen minutes if its holder dies: 12-14 minutes of waiting in a
burst, while a school expects a same-day answer. The worker here
- registers a running job for :data:`LIVENESS_SECONDS` only and keeps it alive from a small thread every
  :data:`PULSE_SECONDS` while the job runs (a job may still run up to its timeout; RQ's own monitoring does this
  for a forking worker, the SimpleWorker has none);
- runs maintenance every :data:`MAINTENANCE_SECONDS`, under a lock that expires as fast, and waits on the queue no
  longer than that, so an idle worker looks too;
- puts an abandoned job back at the head of its queue at once, as the retry it is (one of its ``Retry`` attempts,
  so a job that kills every worker that takes it cannot go round for ever), instead of waiting a retry interval.
A job run again ends as the first run would have: the store's check-out and one-transaction commit make a job that
died before its commit a job that wrote nothing, and the ledger and ``Idempotency-Key`` stop a second write of an
action it had sent (``tests/test_stream_faults.py``; ``tests/reliability/`` kills real workers).

**Redis lost and back.** RQ's work loop quits on most Redis errors (it retries only while waiting for a job).
``connector worker`` starts a fresh worker once Redis answers again (``cli.worker_command``); a clean stop
(SIGTERM, Ctrl-C) is told apart by :attr:`ConnectorWorker.stop_asked`.

**Before the pin (``rq>=3.0,<3.1`` in pyproject.toml) moves**, check against the new release:
- ``rq/scripts.py``'s unique-enqueue script and ``Queue.enqueue_job`` (what :data:`ENQUEUE_ONCE` copies: the
  ``SADD`` to ``rq:queues``, the job hash, its TTL, the ``RPUSH``);
- ``Job.to_dict`` and ``Queue.create_job`` (the fields :func:`job_fields` writes);
- the format strings of the per-job INFO lines in ``rq/worker/base.py`` (:data:`PER_JOB_LINES`) and the signature
  of ``Worker.heartbeat``;
- what :meth:`ConnectorWorker.run_plain_jobs` writes for RQ's ``prepare_execution``, ``prepare_job_execution`` and
  ``handle_job_success`` (``tests/test_worker_batches.py`` checks that nothing of RQ's is left behind), and
  :data:`TAKE_MORE` for ``Queue.lmove`` and ``Job.fetch``;
- what :meth:`ConnectorWorker.prepare_execution` copies of ``rq/executions.py``'s ``prepare_execution``, what
  :meth:`ConnectorWorker.clean_registries` copies of ``BaseWorker.clean_registries``, and what
  :func:`requeue_abandoned` copies of ``StartedJobRegistry.cleanup`` (rq 3.0: an abandoned job with retries left is
  retried, after its retry interval; without, it fails).
``tests/test_intake_rq_contract.py`` compares the door's job with RQ's own enqueue byte for byte and runs RQ's
worker through every retry; it fails if any of the first two changed. A changed log line is simply logged again.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any

from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.group import Group
from rq.executions import Execution, ExecutionRegistry
from rq.job import Job, JobStatus, Retry
from rq.results import Result
from rq.timeouts import JobTimeoutException
from rq.utils import current_timestamp, now
from rq.queue import Queue
from rq.registry import StartedJobRegistry, clean_registries
from rq.scheduler import RQScheduler
from rq.worker import WorkerStatus
from rq import worker_registration

from connector.store.keys import digest
from connector.store.scripts import Script
from connector.engine.runtime import Runtime

FAILED_JOB_TTL = 7 * 24 * 3600  # long enough for an admin to look; then the events (and any text in them) go
RETRY = Retry(max=3, interval=[10, 60, 300])

def write_job(job_id: int, ttl: int, sizes: int, fields: int) -> str:
    """The end of a script that writes a job as RQ's unique enqueue does (KEYS[2] the job hash, KEYS[3] the queue,
    KEYS[4] RQ's set of queues), its arguments at the given ARGV positions: the job id, its TTL (-1: none), and the
    lengths of the hash's names and values and those names and values end to end (see :func:`job_fields`)."""
    return f"""
local fields, at = {{}}, 1
for size in string.gmatch(ARGV[{sizes}], "%d+") do
    local stop = at + tonumber(size)
    fields[#fields + 1] = string.sub(ARGV[{fields}], at, stop - 1)
    at = stop
end
redis.call("SADD", KEYS[4], KEYS[3])
redis.call("HSET", KEYS[2], unpack(fields))
local ttl = tonumber(ARGV[{ttl}])
if ttl and ttl > 0 then
    redis.call("EXPIRE", KEYS[2], ttl)
end
redis.call("RPUSH", KEYS[3], ARGV[{job_id}])
return 1
"""


# KEYS: dedupe marker, job hash, queue list, RQ's set of queues. ARGV: job id, job TTL (-1: none), the lengths of
# the job hash's names and values, and those names and values end to end (two arguments instead of ~40: redis-py
# spends a microsecond or more on each argument). Apart from the marker check, this is what RQ's
# UNIQUE_ENQUEUE_SCRIPT does, plus the SADD to ``rq:queues`` that ``Queue.enqueue_job`` sends before that script.
ENQUEUE_ONCE = Script("""
if redis.call("EXISTS", KEYS[1]) == 1 or redis.call("EXISTS", KEYS[2]) == 1 then
    return 0
end
""" + write_job(job_id=1, ttl=2, sizes=3, fields=4))
ENQUEUE_ONCE_SHA = ENQUEUE_ONCE.sha


def enqueue_delivery(rt: Runtime, tenant: str, adapter: str, delivery_id: str, events: list[dict[str, Any]]) -> bool:
    """Queue the delivery; ``False`` when this ``webhook-id`` was taken before (queued, running or done).

    Two guards, because RQ deletes a finished job: the job's key while it exists, and the dedupe marker, which the
    job sets as it starts and which outlives it. Both are checked in the same script that writes the job, so there
    is no moment between check and write, and one round trip instead of three.
    """
    return run_enqueue_once(rt.redis, _delivery_job(rt, tenant, adapter, delivery_id, events)) == 1


def queue_delivery(pipe, rt: Runtime, tenant: str, adapter: str, delivery_id: str, events: list[dict[str, Any]]) -> None:
    """The same job and marker check as :func:`enqueue_delivery`, queued on a transaction's pipeline (a poller's
    page commits its job with its checkpoint: ``store.polls.commit_page``). Inside ``MULTI`` the script is sent as
    ``EVAL`` (``store.scripts``), so a server that never saw it cannot fail half the transaction."""
    keys_and_args = _delivery_job(rt, tenant, adapter, delivery_id, events)
    ENQUEUE_ONCE.queue(pipe, keys_and_args[:4], keys_and_args[4:])


def _delivery_job(rt: Runtime, tenant: str, adapter: str, delivery_id: str, events: list[dict[str, Any]]) -> tuple:
    marker = rt.keys.delivery(tenant, adapter, delivery_id)
    queue = rt.queue
    job = queue.create_job(
        "connector.engine.jobs.process_delivery",
        args=(tenant, adapter, marker, events),
        job_id=delivery_job_id(rt, tenant, adapter, delivery_id),
        description=f"delivery for {tenant}/{adapter}",  # RQ's default repr of the events costs CPU and bytes
        result_ttl=0,
        failure_ttl=FAILED_JOB_TTL,
        retry=RETRY,
    )
    job.enqueued_at = datetime.now(timezone.utc)  # what RQ's enqueue sets (origin and status create_job has set)
    keys_and_args = (marker, job.key, queue.key, queue.redis_queues_keys, job.id, -1 if job.ttl is None else job.ttl)
    return keys_and_args + job_fields(job)


# KEYS: the due set, then as ENQUEUE_ONCE: job hash, queue list, RQ's set of queues. ARGV: now, lease end, job id, job
# TTL, the field lengths and the fields, then the members. Leases the members and queues the job that handles them
# in one step, or, when one of them is no longer due (another scheduler leased it, its job removed it), does nothing.
QUEUE_DUE = Script("""
local now = tonumber(ARGV[1])
for i = 7, #ARGV do
    local score = redis.call("ZSCORE", KEYS[1], ARGV[i])
    if not score or tonumber(score) > now then
        return 0
    end
end
for i = 7, #ARGV do
    redis.call("ZADD", KEYS[1], "XX", ARGV[2], ARGV[i])
end
""" + write_job(job_id=3, ttl=4, sizes=5, fields=6))


def queue_due(rt: Runtime, members: list[str], now: float, lease_until: float) -> bool:
    """Lease due-set members and queue the ``run_due`` job for them, atomically (the scheduler's sweep): a
    scheduler or a Redis killed in between leaves either both or neither, never members leased with no job to
    handle them until the lease runs out. ``False`` when one of them was taken meanwhile (the sweep reads again)."""
    queue = rt.queue
    job = queue.create_job(
        "connector.engine.jobs.run_due", args=(members,), result_ttl=0, failure_ttl=FAILED_JOB_TTL, retry=RETRY,
        description="due items",
    )
    job.enqueued_at = datetime.now(timezone.utc)
    keys = (rt.keys.due, job.key, queue.key, queue.redis_queues_keys)
    args = (now, lease_until, job.id, -1 if job.ttl is None else job.ttl, *job_fields(job), *members)
    return QUEUE_DUE(rt.redis, keys, args) == 1


def delivery_job_id(rt: Runtime, tenant: str, adapter: str, delivery_id: str) -> str:
    """The delivery's job id: a digest of its ``webhook-id`` (never the id itself), and the ``delivery`` of the log
    lines of the door and of the job (``engine.logs``)."""
    return f"{rt.config.queue_name}-{digest(rt.config.key_prefix, tenant, adapter, delivery_id, length=40)}"


def job_fields(job: Job) -> tuple[str, bytes]:
    """The job hash as RQ's unique enqueue writes it (``Job.to_dict`` without Nones, each value as text or bytes),
    packed for the script: the lengths of the names and values, and the names and values end to end."""
    parts = []
    for name, value in job.to_dict().items():
        if value is None:
            continue
        if not isinstance(value, bytes):
            value = (value if isinstance(value, str) else str(value)).encode()
        parts += (name.encode(), value)
    return " ".join([str(len(part)) for part in parts]), b"".join(parts)


def run_enqueue_once(redis, keys_and_args: tuple) -> int:
    """``EVALSHA``, and the script loaded once if this Redis has not seen it (a restart, another server): the
    store's one way of running Lua (``store.scripts``), though what the script writes is RQ's layout, kept here."""
    return ENQUEUE_ONCE(redis, keys_and_args[:4], keys_and_args[4:])


# --- The worker ---------------------------------------------------------------------------------------------------

HEARTBEAT_EVERY_SECONDS = 5.0

# The format strings of RQ's per-job success lines (rq/worker/base.py, rq 3.x), matched exactly: a line RQ adds or
# rewords is simply logged.
PER_JOB_LINES = frozenset({
    "Worker %s: %s: %s",
    "Worker %s: %s: %s (%s)",
    "Successfully completed job %s in %ss on worker %s",
    "Successfully completed %s job in %ss on worker %s",
})


class WithoutPerJobLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and record.msg in PER_JOB_LINES)


LIVENESS_SECONDS = 20  # a running job's entry in RQ's StartedJobRegistry lasts this long without a pulse
PULSE_SECONDS = 2.0  # how often a running job's entry is renewed
MAINTENANCE_SECONDS = 5  # how often a worker looks for abandoned jobs (RQ: 600)


def requeue_abandoned(queue: Queue) -> list[str]:
    """Jobs of ``queue`` whose worker stopped renewing them (it died), back at the head of the queue at once.

    What RQ's ``StartedJobRegistry.cleanup`` does, except that a job with retries left is queued now instead of
    after its retry interval (an abandoned job did not fail: its worker went away). A job without retries left is
    left to RQ's cleanup, which fails it (kept 7 days; ``connector jobs retry``). Runs under the queue's maintenance
    lock, so one worker at a time; a job's own run is told apart by its status (only ``started`` is abandoned).
    """
    registry = StartedJobRegistry(queue.name, connection=queue.connection, job_class=queue.job_class,
                                  serializer=queue.serializer)
    cutoff = current_timestamp()
    entries = queue.connection.zrangebyscore(registry.key, 0, cutoff)
    requeued = []
    with queue.connection.pipeline() as pipe:
        for entry in entries:
            job_id = registry.parse_job_id(entry)
            job = queue.fetch_job(job_id)
            if job is None or job.get_status(refresh=False) != JobStatus.STARTED or not job.retries_left:
                continue
            job.retries_left -= 1
            queue._enqueue_job(job, pipeline=pipe, at_front=True)
            pipe.zrem(registry.key, entry)
            # and the dead run's execution record, which the next run's clean-up would otherwise try to read
            execution_id = (entry.decode() if isinstance(entry, bytes) else entry).rsplit(":", 1)[-1]
            pipe.zrem(ExecutionRegistry(job_id=job_id, connection=queue.connection).key, execution_id)
            pipe.delete(Execution(id=execution_id, job_id=job_id, connection=queue.connection).key)
            requeued.append(job_id)
        pipe.execute()
    return requeued


class Pulse:
    """One thread per worker that, while a job runs, renews its entry in the StartedJobRegistry (and the worker's
    key), so that the entry can be short-lived: it lapses :data:`LIVENESS_SECONDS` after the worker died, not after
    the job's timeout. :attr:`current` holds the jobs taken and not yet ended (a batch: those still waiting their
    turn are renewed too); the worker only replaces the list (no thread per job: jobs take milliseconds). A pulse
    that cannot reach Redis is skipped; the job itself will meet the same error."""

    def __init__(self, worker: "ConnectorWorker"):
        self.worker = worker
        self.current: list[tuple[Job, Execution]] = []
        self.stopped = False
        self.thread = threading.Thread(target=self.run, name="pulse", daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stopped:
            time.sleep(PULSE_SECONDS)
            current = self.current
            if not current:
                continue
            try:
                with self.worker.connection.pipeline() as pipe:
                    for job, execution in current:
                        execution.heartbeat(job.started_job_registry, LIVENESS_SECONDS, pipeline=pipe)
                    pipe.expire(self.worker.key, self.worker.worker_ttl)
                    pipe.execute()
            except RedisError:
                pass


class ParentBoundScheduler(RQScheduler):
    """RQ's scheduler (job retries), which the worker forks: it stops when the worker that forked it is gone. A worker
    killed with -9 alone (not its whole unit) otherwise left it running for ever, holding the scheduler's lock."""

    def enqueue_scheduled_jobs(self, *args, **kwargs):
        if os.getppid() != self.parent_pid:
            self._stop_requested = True  # its loop then releases the locks and ends
            return
        return super().enqueue_scheduled_jobs(*args, **kwargs)


def plain_job(job: Job, worker: SimpleWorker) -> bool:
    """A job the connector queued itself (a delivery, due items): no dependencies or dependents, no repeats, callbacks,
    webhooks, group or rate limit, and a result that is not kept (dependents, which another program could add, are
    looked for as the job starts). Only such jobs take :meth:`ConnectorWorker.run_plain_jobs`; anything else (another
    program's job on the same queue) runs through RQ's own steps."""
    return (job.get_result_ttl(worker.default_result_ttl) == 0 and not job._dependency_ids
            and job.repeats_left is None and not job.webhooks and not job.group_id and not job.has_rate_limit
            and not (job._success_callback_name or job._failure_callback_name or job._stopped_callback_name))


# How many queued jobs a worker takes at once when the queue is full (a burst): their start is one transaction and
# their fetch one round trip. Small, so that a batch takes tens of milliseconds and the other workers get their share;
# a worker killed with -9 leaves its batch to be taken over once its registry entry lapses (LIVENESS_SECONDS), behind
# deliveries queued after it, which any arrival order must survive (tests/reliability/test_crash.py). Processing on 2
# cores: 9,939 marks/s one job at a time, ~14,600 with 16 (bench/README.md).
BATCH_JOBS = 16

# KEYS: the queue, its intermediate list. ARGV: how many, the job hashes' key prefix. What RQ's non-blocking dequeue
# (``Queue.lmove``, then ``Job.fetch``) does, for up to ARGV[1] jobs in one round trip: each job id moved to the
# intermediate list and its hash returned with it (a job whose hash is gone is returned with an empty one).
TAKE_MORE = Script("""
local out = {}
for i = 1, tonumber(ARGV[1]) do
    local id = redis.call("LMOVE", KEYS[1], KEYS[2], "LEFT", "RIGHT")
    if not id then
        break
    end
    out[#out + 1] = id
    out[#out + 1] = redis.call("HGETALL", ARGV[2] .. id)
end
return out
""")


def take_more(worker: SimpleWorker, queue: Queue, most: int) -> list[Job]:
    """Up to ``most`` more jobs from the head of ``queue``, each moved to its intermediate list as RQ's dequeue moves
    it (a worker that dies before it starts them leaves them where RQ's maintenance finds them). A job whose hash is
    gone (deleted while queued) is dropped from the intermediate list, as RQ's dequeue drops it."""
    reply = TAKE_MORE(worker.connection, (queue.key, queue.intermediate_queue_key),
                      (most, Job.redis_job_namespace_prefix))
    jobs = []
    for at in range(0, len(reply), 2):
        job_id, fields = reply[at].decode(), reply[at + 1]
        if not fields:
            worker.connection.lrem(queue.intermediate_queue_key, 1, job_id)
            continue
        job = worker.job_class(job_id, connection=worker.connection, serializer=worker.serializer)
        job.restore(dict(zip(fields[::2], fields[1::2])))
        jobs.append(job)
    return jobs


class ConnectorWorker(SimpleWorker):
    log_result_lifespan = False  # RQ's own switch for its "result discarded immediately" line

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("maintenance_interval", MAINTENANCE_SECONDS)
        super().__init__(*args, **kwargs)
        self.stop_asked = False
        self.pulse: Pulse | None = None
        if not any(isinstance(f, WithoutPerJobLines) for f in self.log.filters):
            self.log.addFilter(WithoutPerJobLines())

    @property
    def dequeue_timeout(self) -> int:
        """Wait for a job no longer than the maintenance interval, so that an idle worker takes over too."""
        return self.maintenance_interval

    def request_stop(self, signum, frame):
        self.stop_asked = True  # SIGTERM or Ctrl-C: the work loop's end is a stop, not a lost Redis
        super().request_stop(signum, frame)

    def prepare_execution(self, job: Job) -> Execution:
        """RQ's ``prepare_execution`` with the short-lived registry entry that :class:`Pulse` renews."""
        with self.connection.pipeline() as pipeline:
            execution = Execution.create(job, LIVENESS_SECONDS, pipeline=pipeline, worker_name=self.name)
            self.executions[execution.id] = execution
            self.set_state(WorkerStatus.BUSY, pipeline=pipeline)
            pipeline.execute()
        return execution

    def execute_job(self, job: Job, queue: Queue):
        if self.pulse is None:
            self.pulse = Pulse(self)
        if len(self.queues) != 1 or not plain_job(job, self):
            self.run_as_rq(job, queue)
            return
        plain, others = [job], []
        for more in take_more(self, queue, BATCH_JOBS - 1) if BATCH_JOBS > 1 else ():
            (plain if plain_job(more, self) else others).append(more)
        self.run_plain_jobs(plain, queue)
        for other in others:
            self.run_as_rq(other, queue)

    def run_as_rq(self, job: Job, queue: Queue) -> None:
        """RQ's own steps (with the short-lived registry entry), for a job that is not one of the connector's."""
        execution = self.prepare_execution(job)
        self.pulse.current = [(job, execution)]
        try:
            self.perform_job(job, queue, execution)
        finally:
            self.pulse.current = []
        self.set_state(WorkerStatus.IDLE)

    def run_plain_jobs(self, jobs: list[Job], queue: Queue) -> None:
        """The connector's own jobs, one after the other, with RQ's bookkeeping in one transaction to start them all
        and one to end each, instead of about fourteen round trips a job.

        Writes what RQ's ``prepare_execution``, ``prepare_job_execution`` and, on success, ``handle_job_success``
        write for a job without dependents, repeats, callbacks, webhooks, group or rate limit whose result is not
        kept (:func:`plain_job`), so each job's hash, its execution, the ``StartedJobRegistry`` and the worker's
        stats are as RQ leaves them at each step. Every job of the batch is registered as started, and kept alive
        by the :class:`Pulse`, from the first transaction: a worker that dies anywhere in the batch leaves jobs that
        are taken over as abandoned, each run again whole (a job run again ends as the first run would have). RQ
        itself handles a job that raises or times out (retries, the failed registry). See the module's docstring
        for what to check when the pin moves.
        """
        heartbeat_ttl = max(self.get_heartbeat_ttl(job) for job in jobs)
        runs: list[tuple[Job, Execution]] = []
        looked: list[int] = []  # where each job's EXISTS of its dependents is in the transaction's replies
        with self.connection.pipeline() as pipe:  # RQ: prepare_execution, then prepare_job_execution, for each
            for job in jobs:
                execution = Execution.create(job, LIVENESS_SECONDS, pipeline=pipe, worker_name=self.name)
                self.executions[execution.id] = execution
                job.prepare_for_execution(self.name, pipeline=pipe)
                pipe.persist(job.key)
                pipe.lrem(queue.intermediate_queue_key, 1, job.id)
                looked.append(len(pipe))
                pipe.exists(job.dependents_key)
                runs.append((job, execution))
            self.set_state(WorkerStatus.BUSY, pipeline=pipe)
            self.heartbeat(heartbeat_ttl, pipeline=pipe)
            replies = pipe.execute()
        dependents = [replies[at] for at in looked]
        self.pulse.current = list(runs)
        ended = self.connection.pipeline()  # the jobs that succeeded, ended in one transaction (see below)
        for n, (job, execution) in enumerate(runs):
            try:
                job.started_at = now()
                with self.death_penalty_class(job.timeout or self.queue_class.DEFAULT_TIMEOUT, JobTimeoutException,
                                              job_id=job.id):
                    job.perform()
            except:  # noqa: E722 (RQ's own catch-all: whatever the job raised is its failure)
                exc_info = sys.exc_info()
                self.end_plain_jobs(ended)  # in order: those before it first
                self.pulse.current = runs[n + 1:]
                self._finalize_failure(job, queue, execution, exc_info)
                continue
            self.pulse.current = runs[n + 1:]
            if dependents[n]:  # never for the connector's jobs: RQ's own success handling queues them
                self.end_plain_jobs(ended)
                self._finalize_success(job, queue, execution, job._result)
                continue
            job.ended_at = now()
            job._status = JobStatus.FINISHED
            # RQ: handle_job_success with result_ttl 0
            self.increment_successful_job_count(pipeline=ended)
            self.increment_total_working_time(job.ended_at - job.started_at, ended)
            ended.delete(execution.key)
            ended.zrem(queue.started_job_registry.key, execution.composite_key)
            ended.srem(execution.worker_executions_key, execution.composite_key)
            ended.delete(job.execution_registry.key)  # the job's only execution was this one
            ended.delete(job.key, job.dependents_key, job.dependencies_key, Result.get_key(job.id))
            self.executions.pop(execution.id, None)
        self.set_state(WorkerStatus.IDLE, pipeline=ended)
        self.end_plain_jobs(ended)

    def end_plain_jobs(self, ended) -> None:
        """End the batch's jobs that succeeded so far, in one transaction. Until it runs they stay registered as
        started (and renewed no longer): a worker that dies first leaves them to be taken over and run again, which
        ends as their first run did; nothing they wrote is written twice (the store's commit and the outbox's
        ledger)."""
        if len(ended):
            ended.execute()
        ended.reset()

    def clean_registries(self):
        """RQ's maintenance, abandoned jobs queued again first, under a lock that lapses with the interval (RQ's lasts
        15 minutes, and a worker killed while holding it would stop every other worker's maintenance that long)."""
        for queue in self.queues:
            lock = queue.registry_cleaning_key
            if not self.connection.set(lock, 1, nx=True, ex=max(int(self.maintenance_interval) * 2, 2)):
                continue
            try:
                requeued = requeue_abandoned(queue)
                if requeued:
                    self.log.warning("Worker %s: %d abandoned job(s) queued again: %s", self.name, len(requeued),
                                     ", ".join(requeued))
                clean_registries(queue, self._exc_handlers)
                worker_registration.clean_worker_registry(queue)
                queue.intermediate_queue.cleanup(self, queue)
            finally:
                self.connection.delete(lock)
        self.last_cleaned_at = datetime.now(timezone.utc)

    def teardown(self):
        if self.pulse is not None:
            self.pulse.stopped = True
        super().teardown()

    def _start_scheduler(self, burst=False, logging_level="INFO", date_format=None, log_format=None):
        """RQ's ``_start_scheduler`` with :class:`ParentBoundScheduler`."""
        from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT

        self.scheduler = ParentBoundScheduler(
            self.queues, connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format or DEFAULT_LOGGING_DATE_FORMAT, log_format=log_format or DEFAULT_LOGGING_FORMAT,
            serializer=self.serializer,
        )
        self.scheduler.parent_pid = os.getpid()
        self.scheduler.acquire_locks()
        if self.scheduler.acquired_locks:
            if burst:
                try:
                    self.scheduler.register_birth()
                    self.scheduler.enqueue_scheduled_jobs()
                finally:
                    self.scheduler.release_locks()
                    self.scheduler.register_death()
            else:
                self.scheduler.start()

    def clean_group_registries(self):
        """RQ's, without its INFO line: every few seconds now, it would say nothing an admin acts on."""
        if Group.acquire_maintenance_lock(self.connection, max(int(self.maintenance_interval) - 1, 1)):
            Group.clean_registries(connection=self.connection)

    def heartbeat(self, timeout=None, pipeline=None):
        last = self.last_heartbeat
        if pipeline is None and last is not None:
            if last.tzinfo is None:
                last = last.replace(tzinfo=timezone.utc)
            if (datetime.now(timezone.utc) - last).total_seconds() < HEARTBEAT_EVERY_SECONDS:
                return
        super().heartbeat(timeout, pipeline)
