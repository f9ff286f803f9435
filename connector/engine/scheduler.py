"""The due set: everything that must happen at a time, kept in Redis so it survives restarts of every process.

Deadlines and delivery retries are members of one sorted set scored by when they fall due. A sweep *leases* the
due members (moves their score a lease ahead) in one atomic step and hands them to the queue in batches; the job
that handles a member removes it. If anything dies in between, the lease runs out and the member is swept again,
and the handlers are idempotent, so a second run writes nothing twice. Several schedulers may run at once.
"""
from __future__ import annotations

import logging
import time

from connector.engine.runtime import Runtime
from connector.store import due

log = logging.getLogger(__name__)

LEASE_SECONDS = 300
BATCH = 100


def sweep(rt: Runtime, limit: int = 10_000) -> int:
    """Lease what is due now and queue it; returns how many members were queued."""
    now = rt.clock.now().timestamp()
    members = due.lease(rt.redis, rt.keys, now, LEASE_SECONDS, limit)
    queue = rt.queue
    for start in range(0, len(members), BATCH):
        queue.enqueue("connector.engine.jobs.run_due", members[start:start + BATCH], result_ttl=0, failure_ttl=7 * 24 * 3600)
    if members:
        log.info("queued %d due item(s)", len(members))
    return len(members)


ROUTINES_EVERY_SECONDS = 3600


def run_forever(rt: Runtime, interval: float = 1.0) -> None:  # pragma: no cover - a loop around sweep()
    """Sweep every ``interval``; put the calendar routines and the subscriptions' upkeep on the due set at start
    and every hour after."""
    from connector.engine.absence import schedule_routines
    from connector.engine.subscriptions import schedule as schedule_subscriptions

    log.info("scheduler sweeping %s every %.1fs", rt.keys.due, interval)
    routines_at = 0.0
    while True:
        try:
            if time.monotonic() >= routines_at:
                schedule_routines(rt)
                try:  # a platform's subscriptions must not stop the sweep of everyone's deadlines
                    schedule_subscriptions(rt)
                except Exception:
                    log.exception("scheduling the subscriptions' upkeep failed; trying again in an hour")
                routines_at = time.monotonic() + ROUTINES_EVERY_SECONDS
            sweep(rt)
        except Exception:
            log.exception("sweep failed; trying again")
        time.sleep(interval)
