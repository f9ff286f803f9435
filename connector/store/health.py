"""Adapters' health flags: an adapter the platform refuses for a reason only an admin can fix.

``keys.adapter_health``: hash ``<tenant>/<adapter>`` -> a reason code (``protected_api_not_approved``), never the
platform's message text. Set when the refusal is seen, removed by the adapter's next success.
"""
from __future__ import annotations

from redis import Redis

from connector.store.keys import Keys


def flag(tenant: str, adapter: str) -> str:
    return f"{tenant}/{adapter}"


def refuse(redis: Redis, keys: Keys, tenant: str, adapter: str, reason_code: str) -> bool:
    """Record the refusal; ``True`` when it is new (the flag was absent or had another reason)."""
    field = flag(tenant, adapter)
    if redis.hsetnx(keys.adapter_health, field, reason_code):  # atomic: two workers cannot both see it as new
        return True
    previous = redis.hget(keys.adapter_health, field)
    if previous is not None and previous.decode() == reason_code:
        return False
    redis.hset(keys.adapter_health, field, reason_code)
    return True


def recover(redis: Redis, keys: Keys, tenant: str, adapter: str) -> bool:
    """Clear the adapter's flag; ``True`` when there was one."""
    return bool(redis.hdel(keys.adapter_health, flag(tenant, adapter)))


def refused(redis: Redis, keys: Keys) -> dict[str, str]:
    """Every flagged ``<tenant>/<adapter>`` and its reason code."""
    return {field.decode(): reason.decode() for field, reason in redis.hgetall(keys.adapter_health).items()}
