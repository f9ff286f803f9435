"""A replay's state: the same layouts as the service's (every key from ``store.keys``), under a key prefix of its
own (``replay-<random>``), on the same Redis. This module owns only its removal: when a replay ends, every key
under its prefix goes, so a replay leaves nothing behind and never reads or writes a live key."""
from __future__ import annotations

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
