"""From internal events and due deadlines to consequences: which capability handles what.

Each capability module (``absence`` for the absence plan; escalation next) offers ``EVENT_HANDLERS`` (event type ->
handler over that delivery's events of the type), ``DEADLINE_HANDLERS`` (rule id -> handler of a due deadline) and
``TASK_HANDLERS`` (rule id -> handler of a ``task.updated`` for a task that rule created). This module only routes
and commits; it holds no rule.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, Callable

from connector.engine import absence, cases, outbox, reading
from connector.contract.actions import Action
from connector.config.schema import Tenant
from connector.engine.consequences import Consequences
from connector.rules.effects import Cancel
from connector.engine.runtime import Runtime
from connector.store import due
from connector.store.pupils import Conflict

log = logging.getLogger(__name__)

CAPABILITIES = (absence, cases)


def _merge(attribute: str) -> dict[str, list[Callable]]:
    table: dict[str, list[Callable]] = defaultdict(list)
    for module in CAPABILITIES:
        for key, handler in getattr(module, attribute, {}).items():
            table[key].append(handler)
    return dict(table)


EVENT_HANDLERS = _merge("EVENT_HANDLERS")
DEADLINE_HANDLERS = _merge("DEADLINE_HANDLERS")
TASK_HANDLERS = _merge("TASK_HANDLERS")


def on_task_updated(rt: Runtime, tenant: Tenant, events: list[dict[str, Any]], found: Consequences) -> None:
    """Route a platform's task update to the rule that created the task, found by its ``external_ref``."""
    infos = outbox.task_infos(rt, tenant.id, [event["external_ref"] for event in events])
    for event, info in zip(events, infos):
        if info is None:
            log.info("tenant=%s: task.updated for an external_ref the connector did not create", tenant.id)
            continue
        for handler in TASK_HANDLERS.get(info["rule_id"], ()):
            handler(rt, tenant, event, info, found)


EVENT_HANDLERS.setdefault("task.updated", []).append(on_task_updated)


JUDGE_ATTEMPTS = 25


def judged(rt: Runtime, tenant_id: str, adapter: str, decide: Callable[[Consequences], None],
           shadow: bool = False) -> list[Action]:
    """Run ``decide`` on a fresh checkout and commit what it found; again from the start when another job changed
    a pupil it read (``Conflict``), so the decision is always made on what is stored. Returns the actions queued."""
    for attempt in range(1, JUDGE_ATTEMPTS + 1):
        found = Consequences.start(rt, tenant_id, adapter)
        found.shadow = shadow
        try:
            decide(found)
            return found.write(rt)
        except Conflict:
            log.info("tenant=%s: a pupil changed meanwhile; judging again (attempt %d)", tenant_id, attempt)
        finally:
            found.release()
    raise Conflict(f"tenant={tenant_id}: pupils kept changing for {JUDGE_ATTEMPTS} attempts; the job is retried")


def handle_events(rt: Runtime, tenant_id: str, adapter: str, events: list[dict[str, Any]]) -> list[Action]:
    """Apply one delivery's events, grouped by type in arrival order; returns the actions queued.

    The door read the events' free text before queueing them; what an adapter's ``prepare`` fetched from its
    platform (a message's text) is read here, in memory, the same way (``engine.reading``).
    """
    tenant = rt.tenant(tenant_id)
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in reading.read_events(tenant, events):
        by_type[event["type"]].append(event)

    def decide(found: Consequences) -> None:
        for event_type, batch in by_type.items():
            handlers = EVENT_HANDLERS.get(event_type)
            if not handlers:
                log.info("tenant=%s: no rule handles %s in this version (%d event(s))", tenant_id, event_type,
                         len(batch))
            for handler in handlers or ():
                handler(rt, tenant, batch, found)
    return judged(rt, tenant_id, adapter, decide)


def fire_deadline(rt: Runtime, tenant_id: str, deadline_id: str) -> list[Action]:
    """Re-evaluate a deadline that fell due against the state as it is now, then forget it."""
    tenant = rt.tenant(tenant_id)
    payload = due.deadline(rt.redis, rt.keys, tenant_id, deadline_id)

    def decide(found: Consequences) -> None:
        found.add([Cancel(deadline_id)])  # first, so a handler may set the same deadline again (a repeating rule)
        if payload is None:
            return
        handlers = DEADLINE_HANDLERS.get(payload["rule_id"])
        if not handlers:
            log.warning("tenant=%s: no handler for deadline rule %s", tenant_id, payload["rule_id"])
        for handler in handlers or ():
            handler(rt, tenant, payload, found)
    shadow = bool(payload and payload.get("shadow"))  # set in shadow mode: what follows stays *would write*
    return judged(rt, tenant_id, payload["adapter"] if payload else "", decide, shadow=shadow)
