"""Keeping the platforms' subscriptions alive: without them some platforms (Microsoft Graph) send nothing.

Each adapter instance that keeps subscriptions has one member on the due set (``<tenant>|subscriptions|<adapter>``).
When it falls due, :func:`upkeep` (in a worker, from ``jobs.run_due``) takes the instance's lock, hands the stored
records and the platform's pending lifecycle signals to the adapter's ``keep_subscriptions``, stores what it kept,
puts the member back on the due set for the next renewal, and queues what the platform did not notify meanwhile
as deliveries of their own (one per message, so a message read twice is queued once). A lifecycle notification at
the door only records its signal and moves the member to now (:func:`on_lifecycle`): the Graph calls happen in the
upkeep, one at a time per instance. If anything dies midway, the due set's lease runs out and it is done again.
"""
from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from connector.engine.rq_compat import enqueue_delivery
from connector.engine.runtime import Runtime, UnknownTarget
from connector.store import due, health, subscriptions as stored
from connector.store.keys import digest

log = logging.getLogger(__name__)

LOCK_SECONDS = 240  # less than the due set's lease, so a dead holder's lock is gone before the member is swept again
BUSY_RETRY_SECONDS = 30


def instances(rt: Runtime) -> list[tuple[str, str]]:
    """``(tenant, adapter)`` of every configured adapter instance that wants subscriptions."""
    found = []
    for tenant_id, tenant in rt.config.tenants.items():
        for name in tenant.adapters:
            if rt.adapter(tenant_id, name).wants_subscriptions():
                found.append((tenant_id, name))
    return found


def schedule(rt: Runtime) -> int:
    """Put each instance's upkeep on the due set, now, unless it is there already (the scheduler, at start and
    every hour: a member that went missing, say with a Redis restored from an older backup, is back within it)."""
    now = rt.clock.now().timestamp()
    found = instances(rt)
    for tenant_id, name in found:
        due.set_upkeep(rt.redis, rt.keys, tenant_id, name, now, nx=True)
    return len(found)


def on_lifecycle(rt: Runtime, tenant_id: str, adapter: str, events: list[dict[str, Any]]) -> None:
    """Record the platform's lifecycle signals and bring the upkeep forward to now."""
    for event in events:
        stored.signal(rt.redis, rt.keys, tenant_id, adapter, event["subscription_id"], event["lifecycle"])
        log.info("tenant=%s adapter=%s: lifecycle signal %s for subscription %s", tenant_id, adapter,
                 event["lifecycle"], event["subscription_id"])
    due.set_upkeep(rt.redis, rt.keys, tenant_id, adapter, rt.clock.now().timestamp(), lt=True)


def upkeep(rt: Runtime, tenant_id: str, adapter_name: str) -> int:
    """One round of upkeep for an instance; returns how many missed messages were queued."""
    now = rt.clock.now().timestamp()
    try:
        adapter = rt.adapter(tenant_id, adapter_name)
    except UnknownTarget:
        adapter = None
    if adapter is None or not adapter.keeps_subscriptions:
        log.warning("tenant=%s adapter=%s: no such adapter keeping subscriptions; its upkeep is dropped",
                    tenant_id, adapter_name)
        due.drop_upkeep(rt.redis, rt.keys, tenant_id, adapter_name)
        return 0
    token = uuid.uuid4().hex
    if not stored.lock(rt.redis, rt.keys, tenant_id, adapter_name, token, LOCK_SECONDS):
        due.set_upkeep(rt.redis, rt.keys, tenant_id, adapter_name, now + BUSY_RETRY_SECONDS)
        return 0
    try:
        records = stored.records(rt.redis, rt.keys, tenant_id, adapter_name)
        signals = stored.signals(rt.redis, rt.keys, tenant_id, adapter_name)
        result = adapter.keep_subscriptions(records, signals, now)
        queued = 0
        for event in result.events:  # before the records are saved: a crash here reads them again, not never
            what = json.dumps({k: v for k, v in event.items() if k != "timestamp"}, sort_keys=True)
            delivery_id = "missed-" + digest(what, length=40)  # the same message read back twice: one delivery
            queued += enqueue_delivery(rt, tenant_id, adapter_name, delivery_id, [event])
        stored.save(rt.redis, rt.keys, tenant_id, adapter_name, result.records, signals)
        if stored.signals(rt.redis, rt.keys, tenant_id, adapter_name):  # one came while this round ran
            due.set_upkeep(rt.redis, rt.keys, tenant_id, adapter_name, now)
        elif result.next_at is None:
            due.drop_upkeep(rt.redis, rt.keys, tenant_id, adapter_name)
        else:
            due.set_upkeep(rt.redis, rt.keys, tenant_id, adapter_name, result.next_at)
    finally:
        stored.release(rt.redis, rt.keys, tenant_id, adapter_name, token)
    if result.refused is not None and health.refuse(rt.redis, rt.keys, tenant_id, adapter_name,
                                                    result.refused.reason_code):
        log.error("tenant=%s adapter=%s: the platform refuses the subscriptions (%s). %s", tenant_id, adapter_name,
                  result.refused.reason_code, result.refused.hint)
    for problem in result.problems:
        log.error("tenant=%s adapter=%s: subscription upkeep: %s", tenant_id, adapter_name, problem)
    if result.events:
        log.info("tenant=%s adapter=%s: %d message(s) posted while notifications were missing; %d queued",
                 tenant_id, adapter_name, len(result.events), queued)
    return queued
