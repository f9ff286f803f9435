"""The absence action plan's I/O: reads what its rules need from a pupil's compact history and writes back.

Each handler reads only the days and notices concerned (never the whole history), so the cost of a mark does not
grow with how long the school has used the connector.
"""
from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from connector.config import Tenant
from connector.consequences import Consequences
from connector.directory import resolve
from connector.rules import notice_missing
from connector.rules.history import lesson_key, mark_code, notice_key
from connector.runtime import Runtime

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


def marks_of(event: dict[str, Any]) -> list[dict[str, Any]]:
    """A register's marks, or a single mark, each with its own date, group and lesson."""
    if event["type"] == "attendance.register":
        shared = {"date": event["date"], "group_id": event["group_id"], "lesson": event.get("lesson")}
        return [{**shared, **mark} for mark in event["marks"]]
    return [event]


def decode_hash(raw: dict) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


def on_attendance(rt: Runtime, tenant: Tenant, events: list[dict[str, Any]], found: Consequences) -> None:
    marks = [mark for event in events for mark in marks_of(event)]
    if not marks:
        return
    keys = rt.keys
    absent_pupils = list(OrderedDict.fromkeys(m["student_id"] for m in marks if m["status"] != "present"))
    args: list[str] = []
    for mark in marks:
        args += [f"d:{mark['date']}", lesson_key(mark.get("lesson")), mark_code(mark["status"], mark["documented"])]
    with rt.redis.pipeline(transaction=False) as pipe:
        rt.redis.register_script(APPLY_MARKS)(
            keys=[keys.pupil(tenant.id, m["student_id"]) for m in marks], args=args, client=pipe
        )
        for mark in marks:
            if mark.get("group_id"):
                pipe.hset(keys.pupil(tenant.id, mark["student_id"]), "g", mark["group_id"])
        for student in absent_pupils:
            pipe.hgetall(keys.notices(tenant.id, student))
        results = pipe.execute()
    records = results[0]
    notices = {s: decode_hash(n) for s, n in zip(absent_pupils, results[len(results) - len(absent_pupils):])}
    changed: dict[tuple[str, str], dict[str, str]] = {}
    for mark, record in zip(marks, records):
        if record is not None:  # false from Lua: this mark changed nothing
            changed[(mark["student_id"], mark["date"])] = json.loads(record) if record else {}
    settings = tenant.plan[notice_missing.RULE_ID]
    for (student, day), record in changed.items():
        found.add(
            notice_missing.on_day_changed(student, day, record, notices.get(student, {}), settings, tenant.calendar)
        )


def on_notices(rt: Runtime, tenant: Tenant, events: list[dict[str, Any]], found: Consequences) -> None:
    """Keep each notice's dates and reason code (never its text), and stop the watch on the days it covers."""
    for event in events:
        key = notice_key(event["from_date"], event["to_date"])
        notices_key = rt.keys.notices(tenant.id, event["student_id"])
        found.writes.append(lambda pipe, k=notices_key, f=key, v=event.get("reason_code", ""): pipe.hset(k, f, v))
        found.add(notice_missing.on_notice(event["student_id"], event["from_date"], event["to_date"]))


def fire_notice_missing(rt: Runtime, tenant: Tenant, payload: dict[str, Any], found: Consequences) -> None:
    keys = rt.keys
    student, day = payload["student_id"], payload["date"]
    with rt.redis.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.pupil(tenant.id, student), f"d:{day}", "g")
        pipe.hgetall(keys.notices(tenant.id, student))
        (record, group), notices = pipe.execute()
    found.add(
        notice_missing.on_deadline(
            tenant.id, student, day,
            json.loads(record) if record else {},
            decode_hash(notices),
            resolve(rt, tenant, payload.get("adapter"), "contact_teacher", group.decode() if group else None, student),
            tenant.plan[notice_missing.RULE_ID], tenant.calendar, tenant.language,
        )
    )


# Classified guardian messages the absence plan acts on: category -> handler(rt, tenant, message event, found).
# The escalation capability classifies ``message.created`` and hands these categories over here.
MESSAGE_HANDLERS: dict = {}

EVENT_HANDLERS = {
    "attendance.register": on_attendance,
    "attendance.marked": on_attendance,
    "absence.notice": on_notices,
}
DEADLINE_HANDLERS = {
    notice_missing.RULE_ID: fire_notice_missing,
}
