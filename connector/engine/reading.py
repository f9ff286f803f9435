"""Free text read where it arrives, and dropped: what the rules need of it becomes ids, dates, codes and flags.

A guardian's message body and subject, a notice's reason, a mark's reason and a teacher's note on a task are
personal data, often with names in them. Queued as they came, they would sit in Redis (and in its AOF and RDB
files on disk) for as long as the job, and for 7 days more in a failed one. So the door reads them before it
queues anything (:func:`read_events`), and what crosses into Redis is only this:

* ``message.created`` from a guardian: ``reading`` = ``{"category", "confidence", "rule", "accused", "request",
  "days"}``: the classification (``rules.classify``, with the school's own intake rules from its plan), the rule by
  which the message asks for its case to be lifted (or ``None``), and for an absence notice the school days it
  reports (``rules.notice_dates``, ISO dates). From anyone else no reading is needed (feedback counts the message,
  not its words). ``body`` and ``subject`` are dropped.
* ``absence.notice``: ``reason`` is dropped; ``reason_code`` is what the plan uses.
* ``attendance.register`` / ``attendance.marked``: each mark's ``reason`` is dropped (no rule reads it; a valid
  notice is ``documented``).
* ``task.updated``: ``note`` becomes ``noted`` (whether there is a note: the record of the talk the ladder asks
  for) and ``update_key`` (a digest that tells this update from another of the same task, so a redelivery is
  recognised and a changed note is not); the note itself is dropped.

Classifying a message costs the door tens of milliseconds (the tolerant reading of ``rules.classify``), and the
first message a web process reads compiles its school's intake rules (under a second); messages are few beside
registers, whose marks only lose a field.

Adapters that fetch a message's text from their platform in the worker (``prepare``: Canvas, Microsoft 365) have it
read the same way there, in memory, before the rules run; it never reaches Redis either. Reading an event twice
changes nothing, so an event already read passes through untouched.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from connector.config.schema import Tenant
from connector.rules import classify, escalation, notice_dates
from connector.store.keys import digest

FREE_TEXT = ("body", "subject")


def read_events(tenant: Tenant, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events as they may be queued: free text replaced by what the rules need of it (see the module)."""
    return [_READERS.get(event.get("type"), _as_is)(tenant, event) for event in events]


def _as_is(tenant: Tenant, event: dict[str, Any]) -> dict[str, Any]:
    return event


def _message(tenant: Tenant, event: dict[str, Any]) -> dict[str, Any]:
    if "reading" in event and not any(name in event for name in FREE_TEXT):
        return event
    if "sender" not in event:  # an adapter's pending event, ids only: its ``prepare`` completes it in the worker
        return event
    text = " ".join(str(event[name]) for name in FREE_TEXT if event.get(name))
    read = {name: value for name, value in event.items() if name not in FREE_TEXT}
    if event["sender"]["role"] == "guardian":
        read["reading"] = reading(tenant, text, event.get("category"), event["created_at"])
    del text
    return read


def reading(tenant: Tenant, text: str, platform_category: str | None, created_at: str) -> dict[str, Any]:
    """What the escalation ladder and the absence plan need of a guardian's message (the module's ``reading``)."""
    rules = classify.load_rules(tenant.plan[escalation.INTAKE])
    result = classify.classify(text, platform_category, rules)
    days: list[str] = []
    if result.category == "absence_notice":
        sent = tenant.calendar.local_date(datetime.fromisoformat(created_at))
        days = [day.isoformat() for day in notice_dates.reported_days(text, sent, tenant.calendar)]
    return {"category": result.category, "confidence": result.confidence, "rule": result.rule_id,
            "accused": result.accused, "request": classify.escalation_request(text, rules), "days": days}


def _notice(tenant: Tenant, event: dict[str, Any]) -> dict[str, Any]:
    if "reason" not in event:
        return event
    return {name: value for name, value in event.items() if name != "reason"}


def _mark(tenant: Tenant, event: dict[str, Any]) -> dict[str, Any]:
    return _notice(tenant, event)


def _register(tenant: Tenant, event: dict[str, Any]) -> dict[str, Any]:
    marks = event.get("marks") or ()
    if not any("reason" in mark for mark in marks):
        return event
    return {**event, "marks": [{name: value for name, value in mark.items() if name != "reason"} for mark in marks]}


def _task_update(tenant: Tenant, event: dict[str, Any]) -> dict[str, Any]:
    if "note" not in event and "update_key" in event:
        return event
    read = {name: value for name, value in event.items() if name != "note"}
    read["noted"] = bool((event.get("note") or "").strip())
    read["update_key"] = update_key(event)
    return read


def update_key(event: dict[str, Any]) -> str:
    """Stable per update of a task (its status, outcome, date and note), so a redelivered update is recognised and
    an edited note is another update. Only this digest of the note is kept; an event read already carries it."""
    if "update_key" in event:
        return event["update_key"]
    return digest(event["external_ref"], event["status"], event.get("outcome") or "",
                  event.get("completed_at") or "", event.get("note") or "", length=16)


_READERS = {
    "message.created": _message,
    "absence.notice": _notice,
    "attendance.marked": _mark,
    "attendance.register": _register,
    "task.updated": _task_update,
}
