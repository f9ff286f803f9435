"""Marks as a platform really sends them: one by one, shuffled, in batches, as whole-day registers newest first —
and what the connector ended with, to compare one delivery order with another.

The engine is called directly (``routing.handle_events``, ``routing.fire_deadline``) with the internal events the
door queues, so a property test can run hundreds of deliveries per example on the real Redis.
"""
from __future__ import annotations

import json
import random
import uuid
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime

from redis import Redis

from connector.engine import routing
from connector.engine.clock import FixedClock
from connector.engine.runtime import Runtime
from connector.config.schema import Config
from connector.rules.plan import merge_plan
from tests.support import REDIS_URL, cleanup, make_tenant

TENANT = "skole-a"
GROUP = "7A"


@contextmanager
def fresh_runtime(now: datetime, plan: dict | None = None):
    """A runtime of its own (key prefix, queue) for one example of a property test, removed afterwards."""
    token = f"test{uuid.uuid4().hex[:10]}"
    redis = Redis.from_url(REDIS_URL)
    tenant = make_tenant(TENANT, ["SKOLE_A_WEBHOOK_SECRET"], "SKOLE_A_API_TOKEN", plan=plan)
    rt = Runtime(Config(tenants={TENANT: tenant}, key_prefix=token, queue_name=token), redis,
                 clock=FixedClock(now))
    rt.token = token
    try:
        yield rt
    finally:
        cleanup(redis, token)
        redis.close()


def set_plan(rt: Runtime, plan: dict) -> None:
    tenant = replace(rt.config.tenants[TENANT], plan=merge_plan(plan))
    rt.config = replace(rt.config, tenants={**rt.config.tenants, TENANT: tenant})


def marked(mark: dict, stamp: str = "2026-11-23T08:00:00+00:00") -> dict:
    """One mark as an ``attendance.marked`` event (what the door queues)."""
    return {"type": "attendance.marked", "timestamp": stamp, **mark}


def registers_newest_first(marks: list[dict], stamp: str = "2026-11-23T08:00:00+00:00") -> list[list[dict]]:
    """The same marks as a platform's registers: one per day and lesson (or whole day), newest day first."""
    registers: dict[tuple, dict] = {}
    for mark in marks:
        lesson = mark.get("lesson")
        key = (mark["date"], lesson["id"] if lesson else "")
        register = registers.setdefault(key, {
            "type": "attendance.register", "timestamp": stamp, "date": mark["date"], "group_id": mark["group_id"],
            "lesson": lesson, "marks": []})
        register["marks"].append({k: v for k, v in mark.items() if k in ("student_id", "status", "documented")})
    return [[registers[key]] for key in sorted(registers, key=lambda k: (k[0], k[1]), reverse=True)]


def deliveries(marks: list[dict], mode: str, rng: random.Random) -> list[list[dict]]:
    """The marks cut into deliveries (each a list of events) in one of the ways platforms send them."""
    if mode == "chronological":
        return [[marked(m)] for m in sorted(marks, key=lambda m: m["date"])]
    if mode == "shuffled":
        shuffled = list(marks)
        rng.shuffle(shuffled)
        return [[marked(m)] for m in shuffled]
    if mode == "batches":
        shuffled = list(marks)
        rng.shuffle(shuffled)
        out, at = [], 0
        while at < len(shuffled):
            size = rng.randint(1, 12)
            out.append([marked(m) for m in shuffled[at:at + size]])
            at += size
        return out
    if mode == "registers_newest_first":
        return registers_newest_first(marks)
    raise ValueError(mode)


def deliver(rt: Runtime, batches: list[list[dict]]) -> None:
    for events in batches:
        routing.handle_events(rt, TENANT, "generic", events)


def fire_due(rt: Runtime) -> int:
    """Fire every deadline due by the clock's now, again until none is left (a fired one may set the next)."""
    fired = 0
    prefix = f"{TENANT}|deadline|"
    for _ in range(20):
        due = [m.decode() for m in rt.redis.zrangebyscore(rt.keys.due, "-inf", rt.clock.now().timestamp())]
        due = [m for m in due if m.startswith(prefix)]
        if not due:
            return fired
        for member in due:
            routing.fire_deadline(rt, TENANT, member[len(prefix):])
            fired += 1
    raise AssertionError("deadlines kept falling due")


def stored_facts(rt: Runtime, students: list[str]) -> dict:
    """Each pupil's stored days and group (the facts, not the rule states, which record how they were found)."""
    facts = {}
    for student in students:
        raw = rt.redis.hgetall(rt.keys.pupil(TENANT, student))
        facts[student] = {k.decode(): v.decode() for k, v in raw.items() if k.startswith(b"d:") or k == b"g"}
    return facts


def queued_actions(rt: Runtime) -> dict[str, dict]:
    """Every action the connector queued for the platform (the outbox: nothing was sent), by ``external_ref``."""
    return {ref.decode(): json.loads(raw)["action"] for ref, raw in rt.redis.hgetall(rt.keys.outbox(TENANT)).items()}


def outcome(rt: Runtime, rules: set[str]) -> set[tuple]:
    """``(rule, kind, external_ref, due_date)`` of what was queued for the given rules."""
    return {(a["rule_id"], a["kind"], ref, a.get("due_date")) for ref, a in queued_actions(rt).items()
            if a["rule_id"] in rules}


def pending_deadlines(rt: Runtime) -> set[str]:
    return {m.decode() for m in rt.redis.zrange(rt.keys.due, 0, -1) if b"|deadline|" in m}

