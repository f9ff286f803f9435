"""RQ job functions: the worker's entry points. Each finds the process's runtime and does one delivery's work."""
from __future__ import annotations

import logging
from typing import Any

from connector.adapters.base import SUBSCRIPTION_LIFECYCLE, PlatformRefused
from connector.engine import logs, metrics, outbox, routing as processing, runtime, subscriptions
from connector.store import deliveries, due, health

log = logging.getLogger(__name__)


def process_delivery(tenant_id: str, adapter: str, delivery_key: str, events: list[dict[str, Any]]) -> int:
    """Handle one webhook delivery (a whole register is one job) and try to send what it decided at once.

    The delivery's dedupe marker is set first, so a redelivery is recognised after this job has gone.
    """
    with logs.in_job(), metrics.timed_job("process_delivery"):
        return _process_delivery(tenant_id, adapter, delivery_key, events)


def _process_delivery(tenant_id: str, adapter: str, delivery_key: str, events: list[dict[str, Any]]) -> int:
    rt = runtime.current()
    rt.refresh()
    deliveries.mark_taken(rt.redis, delivery_key, rt.config.dedupe_ttl_seconds,
                          seen=(rt.keys, tenant_id, adapter, rt.clock.now().timestamp()))
    platform = rt.adapter(tenant_id, adapter)
    signals = [event for event in events if event["type"] == SUBSCRIPTION_LIFECYCLE]
    if signals:  # about the platform's subscriptions, not about pupils: the subscriptions' upkeep acts on them
        subscriptions.on_lifecycle(rt, tenant_id, adapter, signals)
        events = [event for event in events if event["type"] != SUBSCRIPTION_LIFECYCLE]
        if not events:
            return 0
    try:
        events = platform.prepare(events)
    except PlatformRefused as refusal:
        _drop_refused(rt, tenant_id, adapter, len(events), refusal)
        return 0
    if platform.may_refuse:
        health.recover(rt.redis, rt.keys, tenant_id, adapter)
    actions = processing.handle_events(rt, tenant_id, adapter, events)
    for action in actions:
        outbox.send(rt, tenant_id, action.external_ref)
    return len(actions)


def _drop_refused(rt: runtime.Runtime, tenant_id: str, adapter: str, count: int, refusal: PlatformRefused) -> None:
    """The platform refuses every read until an admin acts: retrying cannot help, so the job ends and the events
    are dropped. The flag (``/readyz``) and the ERROR line are the admin's notice, logged once until it clears."""
    if health.refuse(rt.redis, rt.keys, tenant_id, adapter, refusal.reason_code):
        log.error("tenant=%s adapter=%s: the platform refuses to be read (%s); events are dropped until an admin "
                  "fixes it. %s", tenant_id, adapter, refusal.reason_code, refusal.hint)
    log.warning("tenant=%s adapter=%s: %d event(s) dropped, not retried: %s", tenant_id, adapter, count,
                refusal.reason_code)


def run_due(members: list[str]) -> int:
    """Handle due-set members leased by the scheduler: deadlines to fire and actions to (re)send."""
    with logs.in_job(), metrics.timed_job("run_due"):
        return _run_due(members)


def _run_due(members: list[str]) -> int:
    rt = runtime.current()
    rt.refresh()
    handled = 0
    for member in members:
        tenant_id, kind, ident = due.parse(member)
        if tenant_id not in rt.config.tenants:
            log.warning("due item for unknown tenant %s dropped", tenant_id)
            due.forget(rt.redis, rt.keys, member)
            continue
        if kind == due.DEADLINE:
            for action in processing.fire_deadline(rt, tenant_id, ident):
                outbox.send(rt, tenant_id, action.external_ref)
        elif kind == due.SEND:
            outbox.send(rt, tenant_id, ident)
        elif kind == due.SUBSCRIPTIONS:
            subscriptions.upkeep(rt, tenant_id, ident)
        handled += 1
    return handled
