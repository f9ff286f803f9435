"""A webhook delivery's dedupe marker: the one piece of state that says "this ``webhook-id`` was taken".

``keys.delivery(tenant, adapter, delivery id)``: string ``"1"``, expiring after the configuration's
``dedupe_ttl_seconds`` (as long as senders may redeliver). The door's enqueue script (``engine.rq_compat``) refuses a
delivery whose marker or job exists; the job sets the marker as it starts (:func:`mark_taken`), because RQ deletes a
finished job and the marker must outlive it. The key's name is a digest of the ids: no delivery id is stored.
"""
from __future__ import annotations

from redis import Redis


def mark_taken(redis: Redis, marker: str, ttl_seconds: int) -> None:
    """``marker`` is the key the door built (``keys.delivery``) and handed to the job with the delivery."""
    redis.set(marker, "1", ex=ttl_seconds)
