"""Platform subscriptions an adapter keeps alive (Microsoft Graph's change-notification subscriptions).

``keys.subscriptions(tenant, adapter)``: hash resource -> JSON ``{"id", "expires", "since"}`` (the platform's
subscription id, its expiry and when notifications were last known to flow, epoch seconds). ``keys.subscription_
signals(tenant, adapter)``: hash subscription id -> the platform's last lifecycle signal for it
(``reauthorizationRequired``, ``subscriptionRemoved``, ``missed``), removed once the upkeep acted on it.
``keys.subscriptions_lock(tenant, adapter)``: the token of the one job doing the upkeep, so two never create the
same subscription twice. Resources and ids are the platform's; nothing here is about a person.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from connector.store.keys import Keys
from connector.store.scripts import Script

# KEYS: the lock; ARGV: the token. Deletes the lock only if this job still holds it.
RELEASE = Script("""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""")


def records(redis, keys: Keys, tenant: str, adapter: str) -> dict[str, dict[str, Any]]:
    return {resource.decode(): json.loads(raw)
            for resource, raw in redis.hgetall(keys.subscriptions(tenant, adapter)).items()}


def signals(redis, keys: Keys, tenant: str, adapter: str) -> dict[str, str]:
    return {sid.decode(): event.decode()
            for sid, event in redis.hgetall(keys.subscription_signals(tenant, adapter)).items()}


def signal(redis, keys: Keys, tenant: str, adapter: str, subscription_id: str, event: str) -> None:
    redis.hset(keys.subscription_signals(tenant, adapter), subscription_id, event)


def save(redis, keys: Keys, tenant: str, adapter: str, kept: Mapping[str, dict[str, Any]],
         handled: Mapping[str, str]) -> None:
    """Replace the records with ``kept`` and forget the signals acted on (unless a new one came meanwhile)."""
    key, signal_key = keys.subscriptions(tenant, adapter), keys.subscription_signals(tenant, adapter)
    with redis.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        if kept:
            pipe.hset(key, mapping={resource: json.dumps(record) for resource, record in kept.items()})
        pipe.execute()
    for subscription_id, event in handled.items():
        current = redis.hget(signal_key, subscription_id)
        if current is not None and current.decode() == event:
            redis.hdel(signal_key, subscription_id)


def lock(redis, keys: Keys, tenant: str, adapter: str, token: str, seconds: int) -> bool:
    return bool(redis.set(keys.subscriptions_lock(tenant, adapter), token, nx=True, ex=seconds))


def release(redis, keys: Keys, tenant: str, adapter: str, token: str) -> None:
    RELEASE(redis, [keys.subscriptions_lock(tenant, adapter)], [token])
