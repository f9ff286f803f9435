"""A webhook delivery's dedupe marker: the one piece of state that says "this ``webhook-id`` was taken".

``keys.delivery(tenant, adapter, delivery id)``: string ``"1"``, expiring after the configuration's
``dedupe_ttl_seconds`` (as long as senders may redeliver). The door's enqueue script (``engine.rq_compat``) refuses a
delivery whose marker or job exists; the job sets the marker as it starts (:func:`mark_taken`), because RQ deletes a
finished job and the marker must outlive it. The key's name is a digest of the ids: no delivery id is stored.

``keys.last_seen``: hash ``<tenant>/<adapter>|delivery`` (or ``|poll``) -> epoch seconds of the last delivery a job
took (or the last poll a poller finished), for the admin page: one field per adapter, overwritten.
"""
from __future__ import annotations

from redis import Redis

from connector.store.keys import Keys

KINDS = ("delivery", "poll")


def mark_taken(redis: Redis, marker: str, ttl_seconds: int, seen: tuple[Keys, str, str, float] | None = None) -> None:
    """``marker`` is the key the door built (``keys.delivery``) and handed to the job with the delivery; ``seen``
    (keys, tenant, adapter, now) also records the adapter's last delivery, in the same round trip."""
    if seen is None:
        redis.set(marker, "1", ex=ttl_seconds)
        return
    keys, tenant, adapter, now = seen
    with redis.pipeline(transaction=False) as pipe:
        pipe.set(marker, "1", ex=ttl_seconds)
        pipe.hset(keys.last_seen, f"{tenant}/{adapter}|delivery", f"{now:.0f}")
        pipe.execute()


def saw(redis: Redis, keys: Keys, tenant: str, adapter: str, kind: str, now: float) -> None:
    """Record a delivery or a finished poll (``kind``) of ``tenant``'s ``adapter`` at ``now``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    redis.hset(keys.last_seen, f"{tenant}/{adapter}|{kind}", f"{now:.0f}")


def last_seen(redis: Redis, keys: Keys, tenant: str) -> dict[tuple[str, str], float]:
    """``(adapter, kind)`` -> epoch seconds, for one tenant's adapters (never another tenant's)."""
    found = {}
    for field, value in redis.hgetall(keys.last_seen).items():
        name, _, kind = field.decode().rpartition("|")
        owner, _, adapter = name.partition("/")
        if owner == tenant:
            found[(adapter, kind)] = float(value)
    return found
