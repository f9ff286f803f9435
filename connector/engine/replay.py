"""Replay a past period's events through a school's plan on a simulated clock: what would the plan have created?

The events (the contract's envelopes) are judged by the same code as in the service (``routing.handle_events`` and
``routing.fire_deadline``), with the tenant in shadow mode, so every action is recorded as *would write* and no
adapter is ever asked to send. The clock is a ``FixedClock`` moved along the events: before each event, every
deadline that falls due by its time fires, in order, as the scheduler would have fired it, so deadlines count in
the school days of the period; a ``task.updated`` in the file closes what it closes, since the replay's own tasks
carry the same ``external_ref`` as live mode's. The state lives under a key prefix of its own (``replay-<random>``)
on the service's Redis and is removed afterwards, whatever happens: nothing live is read or touched.

Where the events come from is a *source*: a JSON Lines file of envelopes (``.jsonl``, or ``.jsonl.gz``), or a
folder of them, read by :func:`read_events`; or a platform that can be asked for a date range instead (the
OneRoster adapter's Absence Service), registered in ``SOURCES`` and read by :func:`source_events`:
``SOURCES[adapter type](tenant, first, last)`` giving envelopes in time order.
"""
from __future__ import annotations

import gzip
import json
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from marshmallow import ValidationError

from connector.config.schema import SHADOW, Config, Tenant
from connector.contract.events import load_event
from connector.engine import absence, outbox, routing
from connector.engine.clock import FixedClock
from connector.engine.runtime import Runtime
from connector.store import due, replay as replay_store

log = logging.getLogger(__name__)

# adapter type -> callable(tenant, first_day, last_day) -> envelopes in time order: a platform's API as a source of
# events (``source_events``). Adapters may not import the engine, so the command line registers them
# (``cli.register_replay_sources``: ``oneroster_no``). A source raises ``ValueError`` with a message fit to print.
SOURCES: dict[str, Callable[[Tenant, date, date], Iterable[dict[str, Any]]]] = {}

# Events of one type stamped with the same instant (one lesson's registers of every group) are judged as one
# delivery: each pupil is read once, not once per register, and no deadline can fall due between them. The result
# is the one of a delivery each (tests/test_replay.py compares every word with live mode). Larger batches (a day's
# registers at once) would be three times faster, but a rule's evidence would then be counted on the whole day
# where live mode counts it at the first lesson (the first version of an action wins): not the same actions.
BATCH = 1000
DUE_BATCH = 100  # the scheduler's batch (engine.scheduler.BATCH)


class EventsError(ValueError):
    """An events file that cannot be replayed: which file and line, never its content."""


@dataclass(frozen=True)
class Replayed:
    """What a replay produced: the actions the plan would have written and the facts the report needs."""

    tenant: Tenant
    plan_name: str
    actions: list[dict[str, Any]]  # shadow records: {adapter, action, decided_at}, in the order decided
    first_absence: dict[str, str]  # pupil id -> the first day with a mark other than present (ISO date)
    closed: frozenset[str]  # external_refs of the replay's own tasks that a task.updated in the events ended
    first_day: date | None
    last_day: date | None
    events: int


def _files(source: Path) -> list[Path]:
    if source.is_dir():
        found = sorted(p for p in source.iterdir() if p.name.endswith((".jsonl", ".jsonl.gz", ".json")))
        if not found:
            raise EventsError(f"{source}: no .jsonl, .jsonl.gz or .json files in this folder")
        return found
    if not source.is_file():
        raise EventsError(f"{source}: no such file or folder")
    return [source]


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            if path.name.endswith(".json") and not path.name.endswith(".jsonl"):
                yield 1, handle.read()
                return
            for number, line in enumerate(handle, 1):
                if line.strip():
                    yield number, line
    except (OSError, UnicodeDecodeError) as exc:
        raise EventsError(f"{path}: cannot be read ({type(exc).__name__})") from None


def read_events(source: str | Path) -> list[dict[str, Any]]:
    """The internal events of every envelope in ``source`` (validated by the contract's schemas), in time order;
    an envelope of a type this version does not know is skipped, as the door would answer it and drop it."""
    events: list[tuple[str, int, dict[str, Any]]] = []
    for path in _files(Path(source)):
        for number, line in _lines(path):
            try:
                envelope = json.loads(line)
                event = load_event(envelope) if isinstance(envelope, dict) else None
                if not isinstance(envelope, dict):
                    raise EventsError(f"{path}:{number}: not a contract envelope (an object with type, timestamp "
                                      "and data)")
            except json.JSONDecodeError as exc:
                raise EventsError(f"{path}:{number}: not JSON ({exc.msg})") from None
            except ValidationError as exc:
                fields_ = ", ".join(sorted(_field_names(exc.messages)))
                raise EventsError(f"{path}:{number}: not a valid envelope ({fields_})") from None
            if event is not None:
                events.append((event["timestamp"], len(events), event))
    events.sort(key=lambda item: (_instant(item[0]), item[1]))
    return [event for _, _, event in events]


def source_events(name: str, tenant: Tenant, first: date, last: date) -> list[dict[str, Any]]:
    """The internal events of ``SOURCES[name]`` for the days ``first`` to ``last`` (validated by the contract's
    schemas as a file's are), in time order. ``EventsError`` when the source cannot give them."""
    source = SOURCES.get(name)
    if source is None:
        raise EventsError(f"no replay source for {name!r} adapters (sources: {', '.join(sorted(SOURCES)) or 'none'})")
    try:
        envelopes = list(source(tenant, first, last))
    except ValueError as exc:
        raise EventsError(str(exc)) from None
    events: list[tuple[str, int, dict[str, Any]]] = []
    for number, envelope in enumerate(envelopes, 1):
        try:
            event = load_event(envelope)
        except ValidationError as exc:
            fields_ = ", ".join(sorted(_field_names(exc.messages)))
            raise EventsError(f"{name}: envelope {number} is not valid ({fields_})") from None
        if event is not None:
            events.append((event["timestamp"], len(events), event))
    events.sort(key=lambda item: (_instant(item[0]), item[1]))
    return [event for _, _, event in events]


def _field_names(messages: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            yield from _field_names(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip(".") or "envelope"


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def load_plan_file(path: str | Path) -> dict[str, Any]:
    """A plan to try: a YAML mapping of rule id -> settings (a tenant's ``plan:``), or a file with a ``plan:`` key;
    merged over the defaults and checked as the configuration is."""
    import yaml

    from connector.config.schema import ConfigError
    from connector.rules.plan import merge_plan

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError([f"{path}: the plan cannot be read ({type(exc).__name__})"]) from None
    if isinstance(raw, Mapping) and isinstance(raw.get("plan"), Mapping):
        raw = raw["plan"]
    if not isinstance(raw, Mapping):
        raise ConfigError([f"{path}: a plan is a mapping of rule id -> settings"])
    try:
        return merge_plan(raw)
    except ValidationError as exc:
        raise ConfigError([f"{path}: {rule}: {message}" for rule, message in _flat(exc.messages)]) from None


def _flat(messages: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            yield from _flat(value, f"{path}.{key}" if path else str(key))
    elif isinstance(messages, (list, tuple)):
        for message in messages:
            yield from _flat(message, path)
    else:
        yield path, str(messages)


def replay(config: Config, tenant_id: str, events: list[dict[str, Any]], redis, *,
           plan: Mapping[str, Any] | None = None, plan_name: str = "", until: date | None = None) -> Replayed:
    """Run ``events`` (internal events, in time order) through ``tenant_id``'s plan, or ``plan``; the deadlines
    that fall due up to the end of the last event's day (or of ``until``) fire. Nothing is sent and nothing outside
    the replay's own key prefix is touched; that prefix is removed before this returns."""
    tenant = config.tenants[tenant_id]
    tenant = replace(tenant, mode=SHADOW, plan=plan if plan is not None else tenant.plan)
    prefix = f"replay-{uuid.uuid4().hex[:16]}"
    alone = replace(config, tenants={tenant_id: tenant}, key_prefix=prefix, queue_name=prefix, path=None)
    start = _instant(events[0]["timestamp"]) if events else datetime.now().astimezone()
    rt = Runtime(alone, redis, clock=FixedClock(start))
    adapter = tenant.actions_adapter or next(iter(tenant.adapters))
    first_absence: dict[str, str] = {}
    closed: set[str] = set()
    try:
        routine_day: date | None = None
        batch: list[dict[str, Any]] = []
        next_due = float("-inf")  # when the first deadline falls due; only a commit can change it

        def flush() -> None:
            nonlocal next_due
            if batch:
                rt.clock.set(max(rt.clock.now(), _instant(batch[-1]["timestamp"])))
                routing.handle_events(rt, tenant_id, adapter, list(batch))
                batch.clear()
                next_due = _next_due(rt)

        for event in events:
            moment = _instant(event["timestamp"])
            today = tenant.calendar.local_date(moment)
            if today != routine_day:  # the scheduler puts the calendar's routines on the due set now and then
                flush()
                _fire_due(rt, tenant_id, moment)
                rt.clock.set(max(rt.clock.now(), moment))
                absence.schedule_routines(rt)
                routine_day = today
                next_due = _next_due(rt)
            _note_absences(event, first_absence)
            if event["type"] == "task.updated" and event.get("status") != "open":
                flush()  # the task it is about may have been made by the events just before it
                if outbox.task_infos(rt, tenant_id, [event["external_ref"]])[0] is not None:
                    closed.add(event["external_ref"])
            if batch and (batch[-1]["type"] != event["type"] or batch[-1]["timestamp"] != event["timestamp"]
                          or len(batch) >= BATCH or next_due <= moment.timestamp()):
                flush()
            if next_due <= moment.timestamp():
                _fire_due(rt, tenant_id, moment)
                next_due = _next_due(rt)
            batch.append(event)
        flush()
        last = until or (tenant.calendar.local_date(_instant(events[-1]["timestamp"])) if events else None)
        if last is not None:
            end = tenant.calendar.start_of_day(last + timedelta(days=1)) - timedelta(seconds=1)
            _fire_due(rt, tenant_id, end)
        actions = outbox.shadow_actions(rt, tenant_id)
    finally:
        replay_store.remove(redis, prefix)
    days = [tenant.calendar.local_date(_instant(e["timestamp"])) for e in (events[0], events[-1])] if events else []
    return Replayed(tenant=tenant, plan_name=plan_name, actions=actions, first_absence=first_absence,
                    closed=frozenset(closed),
                    first_day=days[0] if days else None, last_day=(until or days[-1]) if days else None,
                    events=len(events))


def _next_due(rt: Runtime) -> float:
    found = due.due_by(rt.redis, rt.keys, float("inf"), 1)
    return found[0][1] if found else float("inf")


def _fire_due(rt: Runtime, tenant_id: str, moment: datetime) -> None:
    """Fire every deadline due by ``moment``, earliest first, each at its own time, as the scheduler leases them:
    up to ``due.BATCH`` at a time, then again for what those set (a miss's reminder, then its supervisor alert)."""
    limit = moment.timestamp()
    fired: set[tuple[str, float]] = set()
    while True:
        members = due.due_by(rt.redis, rt.keys, limit, DUE_BATCH)
        if not members:
            return
        for raw, score in members:
            if (raw, score) in fired:  # fired and still there: a member nothing handles; never twice
                due.forget(rt.redis, rt.keys, raw)
                continue
            fired.add((raw, score))
            rt.clock.set(max(rt.clock.now(), datetime.fromtimestamp(score, tz=moment.tzinfo)))
            _, kind, ident = due.parse(raw)
            if kind == due.DEADLINE:
                routing.fire_deadline(rt, tenant_id, ident)  # drops it, unless it set itself again
            else:  # a send retry: none in shadow mode, but never left to loop
                due.forget(rt.redis, rt.keys, raw)


def _note_absences(event: dict[str, Any], first_absence: dict[str, str]) -> None:
    if event["type"] == "attendance.register":
        marks, day = event.get("marks") or (), event["date"]
    elif event["type"] == "attendance.marked":
        marks, day = (event,), event["date"]
    else:
        return
    for mark in marks:
        if mark.get("status") not in (None, "present"):
            student = mark["student_id"]
            if student not in first_absence or day < first_absence[student]:
                first_absence[student] = day
