"""A polled platform's state: who may poll it now (the lease), how far it has been read (the checkpoint), which
records were queued at which change (seen), whether its polls keep failing (health) and its roster cache.

- ``keys.poll_lease(tenant, adapter)``: string, a poller's random token, with a TTL. Taken with ``SET NX``; every
  page is committed only while the token is still there (``WATCH``), so a poller that stalled past its lease and was
  overtaken writes nothing. After a poll the holder keeps it until the next poll is due: it doubles as "not yet".
- ``keys.poll_checkpoint(tenant, adapter)``: hash org -> ISO ``dateLastModified``, the newest durably queued.
- ``keys.poll_seen(tenant, adapter)``: hash record id -> ``<dateLastModified>|<first day>|<last day>|<whole day 1/0>``.
- ``keys.poll_health``: hash ``<tenant>/<adapter>`` -> JSON ``{"since": epoch, "reason": code, "interval": s,
  "alert_after": n}`` while polls fail.
- ``keys.roster(tenant, adapter)``: hash, see ``keys.roster``; replaced whole at each refresh.

A page is committed in one transaction: its job (the door's layout, queued by ``engine.rq_compat``), the records it
carried as seen, and the checkpoint. A crash before ``EXEC`` leaves all three as they were, so the page is read and
queued again; after it, all three are there, so nothing is queued twice.
"""
from __future__ import annotations

import json
from typing import Callable, Iterable, Mapping

from redis import Redis
from redis.exceptions import WatchError

from connector.store.keys import Keys
from connector.store.scripts import Script

# KEYS: the lease. ARGV: token, milliseconds. Extends the lease only for its holder.
EXTEND = Script("""
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
""")
RELEASE = Script("""
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
""")


def take_lease(redis: Redis, keys: Keys, tenant: str, adapter: str, token: str, milliseconds: int) -> bool:
    return bool(redis.set(keys.poll_lease(tenant, adapter), token, nx=True, px=milliseconds))


def extend_lease(redis: Redis, keys: Keys, tenant: str, adapter: str, token: str, milliseconds: int) -> bool:
    """``False`` when the lease is no longer this token's (it ran out and another poller took it)."""
    return bool(EXTEND(redis, [keys.poll_lease(tenant, adapter)], [token, int(milliseconds)]))


def release_lease(redis: Redis, keys: Keys, tenant: str, adapter: str, token: str) -> bool:
    return bool(RELEASE(redis, [keys.poll_lease(tenant, adapter)], [token]))


def checkpoint(redis: Redis, keys: Keys, tenant: str, adapter: str, org: str) -> str | None:
    raw = redis.hget(keys.poll_checkpoint(tenant, adapter), org)
    return raw.decode() if raw is not None else None


def seen(redis: Redis, keys: Keys, tenant: str, adapter: str, record_ids: list[str]) -> dict[str, str]:
    """What was remembered of each record (absent ids are not in the answer)."""
    if not record_ids:
        return {}
    values = redis.hmget(keys.poll_seen(tenant, adapter), record_ids)
    return {rid: value.decode() for rid, value in zip(record_ids, values) if value is not None}


def commit_page(redis: Redis, keys: Keys, tenant: str, adapter: str, token: str, org: str, new_checkpoint: str | None,
                records: Mapping[str, str], queue: Callable | None) -> bool:
    """The page's job (``queue(pipe)`` adds it to the transaction), its records as seen and the checkpoint, in one
    ``MULTI``/``EXEC``, only while ``token`` still holds the lease; ``False`` (nothing written) when it does not."""
    lease = keys.poll_lease(tenant, adapter)
    with redis.pipeline() as pipe:
        try:
            pipe.watch(lease)
            held = pipe.get(lease)
            if held is None or held.decode() != token:
                return False
            pipe.multi()
            if queue is not None:
                queue(pipe)
            if records:
                pipe.hset(keys.poll_seen(tenant, adapter), mapping=dict(records))
            if new_checkpoint is not None:
                pipe.hset(keys.poll_checkpoint(tenant, adapter), org, new_checkpoint)
            pipe.execute()
        except WatchError:
            return False
    return True


def forget_seen_before(redis: Redis, keys: Keys, tenant: str, adapter: str, cutoff: str) -> int:
    """Drop what is remembered of records last changed before ``cutoff`` (an ISO ``dateLastModified``), so the hash
    does not grow for ever; returns how many. Safe: a forgotten record that changes again is read as new, and its
    marks (or its ``present`` marks, if deleted) land on the same keys as before."""
    key, stale = keys.poll_seen(tenant, adapter), []
    for field, value in redis.hscan_iter(key, count=1000):
        if value.decode().split("|", 1)[0] < cutoff:
            stale.append(field)
    for start in range(0, len(stale), 1000):
        redis.hdel(key, *stale[start:start + 1000])
    return len(stale)


# --- health ---------------------------------------------------------------------------------------------------------


def _field(tenant: str, adapter: str) -> str:
    return f"{tenant}/{adapter}"


def poll_failed(redis: Redis, keys: Keys, tenant: str, adapter: str, now: float, reason: str, interval: float,
                alert_after: int) -> float:
    """Record a failed poll; returns since when polls have been failing (this one's time if it is the first)."""
    field = _field(tenant, adapter)
    fresh = json.dumps({"since": now, "reason": reason, "interval": interval, "alert_after": alert_after})
    if redis.hsetnx(keys.poll_health, field, fresh):
        return now
    spell = json.loads(redis.hget(keys.poll_health, field) or fresh)
    spell.update(reason=reason, interval=interval, alert_after=alert_after)
    redis.hset(keys.poll_health, field, json.dumps(spell))
    return float(spell["since"])


def poll_succeeded(redis: Redis, keys: Keys, tenant: str, adapter: str) -> bool:
    """Clear a failing spell; ``True`` when there was one."""
    return bool(redis.hdel(keys.poll_health, _field(tenant, adapter)))


def failing_polls(redis: Redis, keys: Keys) -> dict[str, dict]:
    """Every ``<tenant>/<adapter>`` whose polls are failing, with its spell."""
    return {field.decode(): json.loads(raw) for field, raw in redis.hgetall(keys.poll_health).items()}


# --- roster ---------------------------------------------------------------------------------------------------------


def replace_roster(redis: Redis, keys: Keys, tenant: str, adapter: str, entries: Mapping[str, str],
                   read_at: float) -> None:
    """The roster as read now, replacing the one before in one step (a pupil who left is gone from it)."""
    key = keys.roster(tenant, adapter)
    with redis.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        pipe.hset(key, mapping={**entries, "at": repr(read_at)})
        pipe.execute()


def roster_values(redis: Redis, keys: Keys, tenant: str, adapter: str, fields: Iterable[str]) -> list[str | None]:
    fields = list(fields)
    if not fields:
        return []
    return [v.decode() if v is not None else None for v in redis.hmget(keys.roster(tenant, adapter), fields)]


def roster_read_at(redis: Redis, keys: Keys, tenant: str, adapter: str) -> float | None:
    raw = redis.hget(keys.roster(tenant, adapter), "at")
    return float(raw) if raw is not None else None
