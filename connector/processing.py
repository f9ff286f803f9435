"""From internal events to state changes, deadlines and actions: the I/O around the pure rules.

Each handler reads only what its rules need (never a pupil's whole history), calls the rules, and writes every
consequence in one Redis transaction: the new state, the deadlines, and the actions into the outbox. Sending
happens after the transaction, so a crash never leaves an action that was decided but not recorded.
"""
from __future__ import annotations

import json
import logging
from collections import OrderedDict
from typing import Any, Iterable

from connector import outbox
from connector.actions import Action
from connector.config import Tenant
from connector.rules import notice_missing
from connector.rules.effects import Cancel, Schedule
from connector.rules.history import lesson_key, mark_code, notice_key
from connector.runtime import Runtime

log = logging.getLogger(__name__)

# Applies marks to day records atomically, so two registers for the same pupil and day (lesson by lesson, on two
# workers) never overwrite each other. ARGV per mark: field, lesson key, code ("" = present). Returns, per mark,
# the day record after it (JSON; "" when the day holds no absence any more, false when nothing changed).
APPLY_MARKS = """
local out = {}
for i = 1, #KEYS do
  local field, lesson, code = ARGV[3*i-2], ARGV[3*i-1], ARGV[3*i]
  local raw = redis.call('HGET', KEYS[i], field)
  local record = {}
  if raw then record = cjson.decode(raw) end
  if (record[lesson] or '') == code then
    out[i] = false
  else
    if code == '' then record[lesson] = nil else record[lesson] = code end
    if next(record) == nil then
      redis.call('HDEL', KEYS[i], field)
      out[i] = ''
    else
      local encoded = cjson.encode(record)
      redis.call('HSET', KEYS[i], field, encoded)
      out[i] = encoded
    end
  end
end
return out
"""


def deadline_member(tenant: str, deadline_id: str) -> str:
    return f"{tenant}|deadline|{deadline_id}"


class Consequences:
    """What handling one delivery decided, gathered so it can be written in one transaction."""

    def __init__(self, adapter: str):
        self.adapter = adapter
        self.schedules: dict[str, Schedule] = {}
        self.cancels: set[str] = set()
        self.actions: list[Action] = []

    def add(self, effects: Iterable[Any]) -> None:
        for effect in effects:
            if isinstance(effect, Schedule):
                self.cancels.discard(effect.id)
                self.schedules[effect.id] = effect
            elif isinstance(effect, Cancel):
                self.schedules.pop(effect.id, None)
                self.cancels.add(effect.id)
            else:
                self.actions.append(effect)

    def write(self, rt: Runtime, tenant: str) -> list[Action]:
        if not (self.schedules or self.cancels or self.actions):
            return []
        keys = rt.keys
        now = rt.clock.now().timestamp()
        with rt.redis.pipeline(transaction=True) as pipe:
            for schedule in self.schedules.values():
                payload = dict(schedule.payload, adapter=self.adapter)
                pipe.hset(keys.deadlines(tenant), schedule.id, json.dumps(payload))
                pipe.zadd(keys.due, {deadline_member(tenant, schedule.id): schedule.due.timestamp()})
            for deadline_id in self.cancels:
                pipe.hdel(keys.deadlines(tenant), deadline_id)
                pipe.zrem(keys.due, deadline_member(tenant, deadline_id))
            outbox.add(pipe, rt, tenant, self.adapter, self.actions, now)
            pipe.execute()
        return self.actions


def marks_of(event: dict[str, Any]) -> list[dict[str, Any]]:
    """A register's marks, or a single mark, each with its own date, group and lesson."""
    if event["type"] == "attendance.register":
        shared = {"date": event["date"], "group_id": event["group_id"], "lesson": event.get("lesson")}
        return [{**shared, **mark} for mark in event["marks"]]
    return [event]


def handle_attendance(rt: Runtime, tenant: Tenant, events: list[dict[str, Any]], found: Consequences) -> None:
    marks = [mark for event in events for mark in marks_of(event)]
    if not marks:
        return
    keys = rt.keys
    script = rt.redis.register_script(APPLY_MARKS)
    absent_pupils = list(OrderedDict.fromkeys(m["student_id"] for m in marks if m["status"] != "present"))
    args: list[str] = []
    for mark in marks:
        args += [f"d:{mark['date']}", lesson_key(mark.get("lesson")), mark_code(mark["status"], mark["documented"])]
    with rt.redis.pipeline(transaction=False) as pipe:
        script(keys=[keys.pupil(tenant.id, m["student_id"]) for m in marks], args=args, client=pipe)
        for mark in marks:
            if mark.get("group_id"):
                pipe.hset(keys.pupil(tenant.id, mark["student_id"]), "g", mark["group_id"])
        for student in absent_pupils:
            pipe.hgetall(keys.notices(tenant.id, student))
        results = pipe.execute()
    records, notices = results[0], results[-len(absent_pupils):] if absent_pupils else []
    notices_by_pupil = {s: {k.decode(): v.decode() for k, v in n.items()} for s, n in zip(absent_pupils, notices)}
    changed: dict[tuple[str, str], dict[str, str]] = {}
    for mark, record in zip(marks, records):
        if record is not None:  # false from Lua: this mark changed nothing
            changed[(mark["student_id"], mark["date"])] = json.loads(record) if record else {}
    settings = tenant.plan[notice_missing.RULE_ID]
    for (student, day), record in changed.items():
        found.add(
            notice_missing.on_day_changed(
                student, day, record, notices_by_pupil.get(student, {}), settings, tenant.calendar
            )
        )


def handle_notice(rt: Runtime, tenant: Tenant, event: dict[str, Any], found: Consequences) -> None:
    """Keep the notice's dates and reason code (never its text), and stop the watch on the days it covers."""
    key = notice_key(event["from_date"], event["to_date"])
    rt.redis.hset(rt.keys.notices(tenant.id, event["student_id"]), key, event.get("reason_code", ""))
    found.add(notice_missing.on_notice(event["student_id"], event["from_date"], event["to_date"]))


ATTENDANCE_TYPES = ("attendance.register", "attendance.marked")


def handle_events(rt: Runtime, tenant_id: str, adapter: str, events: list[dict[str, Any]]) -> list[Action]:
    """Apply one delivery's events; returns the actions queued, which the caller then tries to send."""
    tenant = rt.tenant(tenant_id)
    found = Consequences(adapter)
    attendance = [e for e in events if e["type"] in ATTENDANCE_TYPES]
    handle_attendance(rt, tenant, attendance, found)
    for event in events:
        if event["type"] == "absence.notice":
            handle_notice(rt, tenant, event, found)
        elif event["type"] not in ATTENDANCE_TYPES:
            log.info("tenant=%s event %s has no rule in this version", tenant_id, event["type"])
    return found.write(rt, tenant_id)


def fire_deadline(rt: Runtime, tenant_id: str, deadline_id: str) -> list[Action]:
    """Re-evaluate a deadline that fell due against the state as it is now, then forget it."""
    keys = rt.keys
    tenant = rt.tenant(tenant_id)
    raw = rt.redis.hget(keys.deadlines(tenant_id), deadline_id)
    found = Consequences(adapter="")
    if raw is not None:
        payload = json.loads(raw)
        found.adapter = payload["adapter"]
        if payload["rule_id"] == notice_missing.RULE_ID:
            student, day = payload["student_id"], payload["date"]
            with rt.redis.pipeline(transaction=False) as pipe:
                pipe.hmget(keys.pupil(tenant_id, student), f"d:{day}", "g")
                pipe.hgetall(keys.notices(tenant_id, student))
                (record, group), notices = pipe.execute()
            found.add(
                notice_missing.on_deadline(
                    tenant_id, student, day,
                    json.loads(record) if record else {},
                    {k.decode(): v.decode() for k, v in notices.items()},
                    tenant.directory.lookup("contact_teacher", group.decode() if group else None),
                    tenant.plan[notice_missing.RULE_ID], tenant.calendar, tenant.language,
                )
            )
    found.cancels.add(deadline_id)
    return found.write(rt, tenant_id)
