"""A replay's state: the same layouts as the service's (every key from ``store.keys``), under a key prefix of its
own (``replay-<random>``), on the same Redis. This module owns its removal: when a replay ends, every key under its
prefix goes, so a replay leaves nothing behind and never reads or writes a live pupil's, case's or action's key.

It also owns the one thing a replay leaves for the service on purpose: the school's **latest report**
(``keys.replay_report``), which ``connector replay`` keeps so that the admin page can link to it.
"""
from __future__ import annotations

from redis import Redis

from connector.store.keys import Keys

REPORT_SECONDS = 90 * 24 * 3600  # a report a school has not looked at for a term is gone

REMOVE_BATCH = 500


def remove(redis, prefix: str) -> int:
    """Remove every key under ``prefix`` (a replay's own: never the service's); returns how many went."""
    if not prefix.startswith("replay-"):
        raise ValueError(f"not a replay's key prefix: {prefix!r}")
    removed = 0
    batch: list[bytes] = []
    for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
        batch.append(key)
        if len(batch) >= REMOVE_BATCH:
            removed += redis.unlink(*batch)
            batch = []
    if batch:
        removed += redis.unlink(*batch)
    return removed


def keep_report(redis: Redis, keys: Keys, tenant: str, html: str, at: float, events: int) -> None:
    """Keep ``html`` as ``tenant``'s latest replay report (the one before goes)."""
    key = keys.replay_report(tenant)
    with redis.pipeline() as pipe:
        pipe.delete(key)
        pipe.hset(key, mapping={"html": html, "at": f"{at:.0f}", "events": str(events)})
        pipe.expire(key, REPORT_SECONDS)
        pipe.execute()


def latest_report(redis: Redis, keys: Keys, tenant: str, with_html: bool = False) -> dict | None:
    """``{at, events}`` (and ``html`` when asked) of ``tenant``'s latest report, or ``None``."""
    fields = ["at", "events"] + (["html"] if with_html else [])
    values = redis.hmget(keys.replay_report(tenant), fields)
    if values[0] is None:
        return None
    found = {"at": float(values[0]), "events": int(values[1] or 0)}
    if with_html:
        found["html"] = (values[2] or b"").decode()
    return found
