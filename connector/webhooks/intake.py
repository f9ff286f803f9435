"""Queueing a verified delivery: once, durably, as one job, before the sender hears 202."""
from __future__ import annotations

from typing import Any

from rq.exceptions import DuplicateJobError
from rq.job import Retry

from connector.keys import digest
from connector.runtime import Runtime

FAILED_JOB_TTL = 7 * 24 * 3600  # long enough for an admin to look; then the events (and any text in them) go


def enqueue_delivery(rt: Runtime, tenant: str, adapter: str, delivery_id: str, events: list[dict[str, Any]]) -> bool:
    """Queue the delivery; ``False`` when this ``webhook-id`` was taken before (queued, running or done).

    Two guards, because RQ deletes a finished job: while the job exists, RQ's atomic ``unique`` enqueue refuses a
    second one with the same id; from the moment the job starts it sets the dedupe marker, which outlives it.
    """
    marker = rt.keys.delivery(tenant, adapter, delivery_id)
    if rt.redis.exists(marker):
        return False
    job_id = f"{rt.config.queue_name}-{digest(rt.config.key_prefix, tenant, adapter, delivery_id, length=40)}"
    try:
        rt.queue.enqueue_call(
            "connector.jobs.process_delivery",
            args=(tenant, adapter, marker, events),
            job_id=job_id,
            description=f"delivery for {tenant}/{adapter}",  # RQ's default repr of the events costs CPU and bytes
            unique=True,
            result_ttl=0,
            failure_ttl=FAILED_JOB_TTL,
            retry=Retry(max=3, interval=[10, 60, 300]),
        )
    except DuplicateJobError:
        return False
    return True
