"""The due set: everything that must happen at a time, and the deadlines' payloads — kept in Redis so they survive
restarts of every process.

``keys.due`` is one sorted set for the whole deployment, scored by when each member falls due (epoch seconds). A
member is ``<tenant>|deadline|<deadline id>`` (re-judge something, its payload in the tenant's ``keys.deadlines``
hash), ``<tenant>|send|<external_ref>`` (try an outbox entry again) or ``<tenant>|subscriptions|<adapter>`` (keep
an adapter's platform subscriptions alive: ``store.subscriptions``). ``keys.routines`` records the calendar
routines already put on the due set, so each is scheduled once.

A sweep *leases* due members (moves their score a lease ahead) and queues the job that handles them in one atomic
step (``engine.rq_compat.queue_due``); the job that handles a member removes it. A job whose worker dies is run
again (RQ's retry); if that fails too, the lease runs out and the member is swept again.
"""
from __future__ import annotations

import json
from typing import Any

from connector.store.keys import Keys

DEADLINE, SEND, SUBSCRIPTIONS = "deadline", "send", "subscriptions"




def member(tenant: str, kind: str, ident: str) -> str:
    return f"{tenant}|{kind}|{ident}"


def parse(raw: str) -> tuple[str, str, str]:
    """``(tenant, kind, ident)``; the ident last, since a deadline id may hold ``|``."""
    tenant, kind, ident = raw.split("|", 2)
    return tenant, kind, ident


# --- deadlines (queued on the caller's transaction) ----------------------------------------------------------------


def set_deadline(pipe, keys: Keys, tenant: str, deadline_id: str, payload: dict[str, Any], due: float,
                 nx: bool = False) -> None:
    """``nx``: only where none is set yet (a recurring routine must not move one already leased)."""
    raw = json.dumps(payload)
    if nx:
        pipe.hsetnx(keys.deadlines(tenant), deadline_id, raw)
    else:
        pipe.hset(keys.deadlines(tenant), deadline_id, raw)
    pipe.zadd(keys.due, {member(tenant, DEADLINE, deadline_id): due}, nx=nx)


def drop_deadline(pipe, keys: Keys, tenant: str, deadline_id: str) -> None:
    pipe.hdel(keys.deadlines(tenant), deadline_id)
    pipe.zrem(keys.due, member(tenant, DEADLINE, deadline_id))


def deadline(redis, keys: Keys, tenant: str, deadline_id: str) -> dict[str, Any] | None:
    """What a deadline re-judges when it falls due, or ``None`` when it was dropped meanwhile."""
    raw = redis.hget(keys.deadlines(tenant), deadline_id)
    return json.loads(raw) if raw is not None else None


# --- sends ---------------------------------------------------------------------------------------------------------


def set_send(pipe, keys: Keys, tenant: str, ref: str, at: float, nx: bool = False) -> None:
    pipe.zadd(keys.due, {member(tenant, SEND, ref): at}, nx=nx)


def drop_send(pipe, keys: Keys, tenant: str, ref: str) -> None:
    pipe.zrem(keys.due, member(tenant, SEND, ref))


def send_due_at(redis, keys: Keys, tenant: str, ref: str) -> float | None:
    return redis.zscore(keys.due, member(tenant, SEND, ref))


# --- subscriptions' upkeep ----------------------------------------------------------------------------------------


def set_upkeep(redis, keys: Keys, tenant: str, adapter: str, at: float, nx: bool = False, lt: bool = False) -> None:
    """``nx``: only if none is set (the scheduler's start); ``lt``: only to move it earlier (a lifecycle signal)."""
    redis.zadd(keys.due, {member(tenant, SUBSCRIPTIONS, adapter): at}, nx=nx, lt=lt)


def drop_upkeep(redis, keys: Keys, tenant: str, adapter: str) -> None:
    redis.zrem(keys.due, member(tenant, SUBSCRIPTIONS, adapter))


def upkeep_due_at(redis, keys: Keys, tenant: str, adapter: str) -> float | None:
    return redis.zscore(keys.due, member(tenant, SUBSCRIPTIONS, adapter))


# --- the sweep -----------------------------------------------------------------------------------------------------


def due_now(redis, keys: Keys, now: float, limit: int) -> list[str]:
    """Members due at ``now`` and not leased, oldest first. The scheduler leases them together with queueing their
    job, in one script (``engine.rq_compat.queue_due``): a lease whose job was never queued (the scheduler or Redis
    killed between the two) would hold its members for the whole lease."""
    return [m.decode() for m in redis.zrangebyscore(keys.due, "-inf", now, start=0, num=limit)]


def due_by(redis, keys: Keys, limit: float, count: int) -> list[tuple[str, float]]:
    """Up to ``count`` members due by ``limit``, earliest first, with their scores (a replay's simulated scheduler,
    which has the due set to itself and so needs no lease)."""
    found = redis.zrangebyscore(keys.due, "-inf", limit, start=0, num=count, withscores=True)
    return [(member.decode(), score) for member, score in found]


def forget(redis, keys: Keys, raw_member: str) -> None:
    """A member nothing can handle (its tenant left the configuration)."""
    redis.zrem(keys.due, raw_member)


# --- calendar routines ---------------------------------------------------------------------------------------------


def routines_scheduled(redis, keys: Keys, tenant: str) -> set[str]:
    """``<rule id>|<occurrence>`` of each routine already put on the due set."""
    return {f.decode() for f in redis.hkeys(keys.routines(tenant))}


def routine_scheduled(pipe, keys: Keys, tenant: str, rule_id: str, occurrence: str) -> None:
    pipe.hset(keys.routines(tenant), f"{rule_id}|{occurrence}", "done")
