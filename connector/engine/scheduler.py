"""The due set: everything that must happen at a time, kept in Redis so it survives restarts of every process.

Deadlines and delivery retries are members of one sorted set scored by when they fall due. A sweep *leases* the
due members (moves their score a lease ahead) in one atomic step and hands them to the queue in batches; the job
that handles a member removes it. If anything dies in between, the lease runs out and the member is swept again,
and the handlers are idempotent, so a second run writes nothing twice. Several schedulers may run at once.
"""
from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError

from connector.engine.rq_compat import queue_due
from connector.engine.runtime import Runtime
from connector.store import due

log = logging.getLogger(__name__)

LEASE_SECONDS = 300
BATCH = 100


def sweep(rt: Runtime, limit: int = 10_000) -> int:
    """Lease what is due now and queue it, each batch leased and queued in one step; returns how many members were
    queued. A batch another scheduler took part of meanwhile is left to the next sweep."""
    now = rt.clock.now().timestamp()
    members = due.due_now(rt.redis, rt.keys, now, limit)
    queued = 0
    for start in range(0, len(members), BATCH):
        batch = members[start:start + BATCH]
        # retried as a delivery is: a worker that dies under it must not leave it failed until the lease runs out
        if queue_due(rt, batch, now, now + LEASE_SECONDS):
            queued += len(batch)
    if queued:
        log.info("queued %d due item(s)", queued)
    return queued


ROUTINES_EVERY_SECONDS = 3600
REDIS_BACKOFF_MAX_SECONDS = 5.0


def run_forever(rt: Runtime, interval: float = 1.0) -> None:  # pragma: no cover - a loop around sweep()
    """Sweep every ``interval``; put the calendar routines and the subscriptions' upkeep on the due
    set at start and every hour after.

    It never exits on its own: while Redis does not answer it says so once, tries again with a back-off (up to
    :data:`REDIS_BACKOFF_MAX_SECONDS`), and says when Redis is back. Nothing is lost meanwhile: what is due stays on
    the due set, and a lease taken before Redis went away runs out and is swept again.
    """
    from connector.engine.absence import schedule_routines
    from connector.engine.subscriptions import schedule as schedule_subscriptions

    log.info("scheduler sweeping %s every %.1fs", rt.keys.due, interval)
    routines_at = 0.0
    wait = interval
    redis_down = False
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
            if redis_down:
                log.warning("Redis answers again; sweeping")
                redis_down, wait = False, interval
        except RedisError as exc:
            if not redis_down:
                log.error("Redis does not answer (%s); trying again with a back-off", type(exc).__name__)
                redis_down = True
            wait = min(max(wait * 2, interval), REDIS_BACKOFF_MAX_SECONDS)
        except Exception:
            log.exception("sweep failed; trying again")
        time.sleep(wait if redis_down else interval)
