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

**Before the pin (``rq>=3.0,<3.1`` in pyproject.toml) moves**, check against the new release:
- ``rq/scripts.py``'s unique-enqueue script and ``Queue.enqueue_job`` (what :data:`ENQUEUE_ONCE` copies: the
  ``SADD`` to ``rq:queues``, the job hash, its TTL, the ``RPUSH``);
- ``Job.to_dict`` and ``Queue.create_job`` (the fields :func:`job_fields` writes);
- the format strings of the per-job INFO lines in ``rq/worker/base.py`` (:data:`PER_JOB_LINES`) and the signature
  of ``Worker.heartbeat``.
``tests/test_intake_rq_contract.py`` compares the door's job with RQ's own enqueue byte for byte and runs RQ's
worker through every retry; it fails if any of the first two changed. A changed log line is simply logged again.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from rq import SimpleWorker
from rq.job import Job, Retry

from connector.store.keys import digest
from connector.store.scripts import Script
from connector.engine.runtime import Runtime

FAILED_JOB_TTL = 7 * 24 * 3600  # long enough for an admin to look; then the events (and any text in them) go
RETRY = Retry(max=3, interval=[10, 60, 300])

# KEYS: dedupe marker, job hash, queue list, RQ's set of queues. ARGV: job id, job TTL (-1: none), the lengths of
# the job hash's names and values, and those names and values end to end (two arguments instead of ~40: redis-py
# spends a microsecond or more on each argument). Apart from the marker check, this is what RQ's
# UNIQUE_ENQUEUE_SCRIPT does, plus the SADD to ``rq:queues`` that ``Queue.enqueue_job`` sends before that script.
ENQUEUE_ONCE = Script("""
if redis.call("EXISTS", KEYS[1]) == 1 or redis.call("EXISTS", KEYS[2]) == 1 then
    return 0
end
local fields, at = {}, 1
for size in string.gmatch(ARGV[3], "%d+") do
    local stop = at + tonumber(size)
    fields[#fields + 1] = string.sub(ARGV[4], at, stop - 1)
    at = stop
end
redis.call("SADD", KEYS[4], KEYS[3])
redis.call("HSET", KEYS[2], unpack(fields))
local ttl = tonumber(ARGV[2])
if ttl and ttl > 0 then
    redis.call("EXPIRE", KEYS[2], ttl)
end
redis.call("RPUSH", KEYS[3], ARGV[1])
return 1
""")
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


class ConnectorWorker(SimpleWorker):
    log_result_lifespan = False  # RQ's own switch for its "result discarded immediately" line

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not any(isinstance(f, WithoutPerJobLines) for f in self.log.filters):
            self.log.addFilter(WithoutPerJobLines())

    def heartbeat(self, timeout=None, pipeline=None):
        last = self.last_heartbeat
        if pipeline is None and last is not None:
            if last.tzinfo is None:
                last = last.replace(tzinfo=timezone.utc)
            if (datetime.now(timezone.utc) - last).total_seconds() < HEARTBEAT_EVERY_SECONDS:
                return
        super().heartbeat(timeout, pipeline)
