"""The absence action plan's I/O: reads what its rules need from a pupil's compact history and writes back.

Each handler reads a bounded window of a pupil's days (never the whole history), so the cost of a mark does not
grow with how long the school has used the connector, and writes every consequence of a delivery in one
transaction: day records, rule states, deadlines and actions.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import date, datetime
from typing import Any, Iterable

from connector.config.schema import Tenant
from connector.engine.consequences import Consequences
from connector.engine.directory import resolve
from connector.rules import (
    absence_limit,
    followup,
    external_meeting,
    notice_missing,
    pattern,
    persistent,
    prevention,
    school_refusal,
    single_lessons,
)
from connector.rules.history import (
    HISTORY,
    absence_lessons,
    decode_day,
    lesson_key,
    mark_code,
    notice_key,
    retention_cutoff,
)
from connector.engine.runtime import Runtime

log = logging.getLogger(__name__)

HELD_TTL_SECONDS = 14 * 24 * 3600

# Applies marks to day records (``history.encode_day``'s form) atomically, so two registers for the same pupil and
# day (lesson by lesson, on two workers) never overwrite each other. ARGV: the retention cutoff date, then per
# mark: field, lesson key, code ("" = present), group ("" = not given; the pupil's group is kept in field g).
# Returns per mark two values: the day record before it ("" if none) and after it (false when nothing changed, ""
# when the day holds no absence any more). Once per school year a pupil's hash is trimmed to the retention: day
# fields before the cutoff are dropped.
APPLY_MARKS = """
local cutoff = ARGV[1]
local trimmed = {}
local out = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  if not trimmed[key] then
    trimmed[key] = true
    if redis.call('HGET', key, 't') ~= cutoff then
      for _, field in ipairs(redis.call('HKEYS', key)) do
        if string.sub(field, 1, 2) == 'd:' and string.sub(field, 3) < cutoff then redis.call('HDEL', key, field) end
      end
      redis.call('HSET', key, 't', cutoff)
    end
  end
  local field, lesson, code, group = ARGV[4*i-2], ARGV[4*i-1], ARGV[4*i], ARGV[4*i+1]
  if group ~= '' and redis.call('HGET', key, 'g') ~= group then redis.call('HSET', key, 'g', group) end
  local raw = redis.call('HGET', key, field)
  local record, lessons = {}, {}
  if raw then
    for entry in string.gmatch(raw, '[^;]+') do
      local sep = string.find(entry, '=', 1, true)
      record[string.sub(entry, 1, sep - 1)] = string.sub(entry, sep + 1)
    end
  end
  out[2*i-1] = raw or ''
  if (record[lesson] or '') == code then
    out[2*i] = false
  else
    if code == '' then record[lesson] = nil else record[lesson] = code end
    for name in pairs(record) do lessons[#lessons + 1] = name end
    if #lessons == 0 then
      redis.call('HDEL', key, field)
      out[2*i] = ''
    else
      table.sort(lessons)
      for n, name in ipairs(lessons) do lessons[n] = name .. '=' .. record[name] end
      local encoded = table.concat(lessons, ';')
      redis.call('HSET', key, field, encoded)
      out[2*i] = encoded
    end
  end
end
return out
"""

STATE = "s:"  # pupil hash field prefix of a rule's follow-up state: s:<rule id>


def marks_of(event: dict[str, Any]) -> list[dict[str, Any]]:
    """A register's marks, or a single mark, each with its own date, group and lesson."""
    if event["type"] == "attendance.register":
        shared = {"date": event["date"], "group_id": event["group_id"], "lesson": event.get("lesson")}
        return [{**shared, **mark} for mark in event["marks"]]
    return [event]


def decode_hash(raw: dict) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


def state_of(tenant: Tenant, student: str, rule_id: str, raw: bytes | None) -> dict[str, Any]:
    return followup.unpack(raw, tenant=tenant.id, rule_id=rule_id, student_id=student)


def save_state(rt: Runtime, tenant: Tenant, student: str, rule_id: str, state: dict, found: Consequences) -> None:
    key = rt.keys.pupil(tenant.id, student)
    packed = followup.pack(state, tenant=tenant.id, rule_id=rule_id, student_id=student)
    found.writes.append(lambda pipe: pipe.hset(key, STATE + rule_id, packed))


def local_date(rt: Runtime, tenant: Tenant, moment: str | None = None) -> date:
    """The school's date of an event's timestamp, or of now."""
    when = datetime.fromisoformat(moment) if moment else rt.clock.now()
    return tenant.calendar.local_date(when)


def teacher(rt: Runtime, tenant: Tenant, adapter: str, role: str, group: str | None, student: str | None):
    return resolve(rt, tenant, adapter, role, group, student)


class PupilWindow:
    """One pupil's days (a bounded window) and rule states, read in one round trip for the rules to judge."""

    def __init__(self, tenant: Tenant, student: str, day: date, dates: list[date]):
        self.tenant, self.student, self.day, self.dates = tenant, student, day, dates
        self.records: dict[str, dict[str, str]] = {}
        self.states: dict[str, dict[str, Any]] = {}
        self.group: str | None = None

    FIELDS_RULES = (pattern.RULE_ID, persistent.RULE_ID)

    def fields(self) -> list[str]:
        return ["g", *(STATE + r for r in self.FIELDS_RULES), *(f"d:{d.isoformat()}" for d in self.dates)]

    def load(self, values: list) -> None:
        group, *rest = values
        self.group = group.decode() if group else None
        states, days = rest[: len(self.FIELDS_RULES)], rest[len(self.FIELDS_RULES):]
        self.states = {rule: state_of(self.tenant, self.student, rule, raw)
                       for rule, raw in zip(self.FIELDS_RULES, states)}
        self.records = {d.isoformat(): decode_day(raw) for d, raw in zip(self.dates, days) if raw}


def window_dates(tenant: Tenant, day: date) -> list[date]:
    """The school days up to ``day`` the pattern and persistence rules may read."""
    plan, calendar = tenant.plan, tenant.calendar
    dates = pattern.lookback(day, plan[pattern.RULE_ID], calendar)
    watch = plan[persistent.RULE_ID]["watch_school_days"]
    if len(dates) < watch + 1:
        dates = calendar.school_days(calendar.add_school_days(day, -watch), day)
    return dates if day in dates else [*dates, day]


def on_attendance(rt: Runtime, tenant: Tenant, events: list[dict[str, Any]], found: Consequences) -> None:
    marks = [mark for event in events for mark in marks_of(event)]
    if not marks:
        return
    keys, calendar, plan = rt.keys, tenant.calendar, tenant.plan
    today = local_date(rt, tenant)
    cutoff = retention_cutoff(today, calendar.years, plan[HISTORY]["retention_school_years"]).isoformat()
    absent_pupils = list(OrderedDict.fromkeys(m["student_id"] for m in marks if m["status"] != "present"))
    args: list[str] = [cutoff]
    held: dict[tuple[str, str], set[str]] = {}
    for mark in marks:
        code = mark_code(mark["status"], mark["documented"], mark.get("lesson"), mark.get("minutes"))
        lesson = lesson_key(mark.get("lesson"))
        args += [f"d:{mark['date']}", lesson, code, mark.get("group_id") or ""]
        if mark.get("lesson") and mark.get("group_id"):  # the platform's ids: numeric ones pack tightly in a set
            held.setdefault((mark["group_id"], mark["date"]), set()).add(str(mark["lesson"]["id"]))
    with rt.redis.pipeline(transaction=False) as pipe:
        # EVAL, not a registered Script: in a pipeline redis-py would ask SCRIPT EXISTS first, a round trip a mark
        pipe.eval(APPLY_MARKS, len(marks), *[keys.pupil(tenant.id, m["student_id"]) for m in marks], *args)
        for (group, day), lessons in held.items():
            held_key = lessons_held_key(rt, tenant, group, day)
            pipe.sadd(held_key, *sorted(lessons))
            pipe.expire(held_key, HELD_TTL_SECONDS)
        for student in absent_pupils:
            pipe.hgetall(keys.notices(tenant.id, student))
        results = pipe.execute()
    replies = results[0]
    notices = {s: decode_hash(n) for s, n in zip(absent_pupils, results[len(results) - len(absent_pupils):])}
    before: dict[tuple[str, str], dict[str, str]] = {}
    after: dict[tuple[str, str], dict[str, str]] = {}
    for i, mark in enumerate(marks):
        old, new = replies[2 * i], replies[2 * i + 1]
        if new is None:  # false from Lua: this mark changed nothing
            continue
        key = (mark["student_id"], mark["date"])
        before.setdefault(key, decode_day(old))
        after[key] = decode_day(new)
    if not after:
        return
    windows: list[PupilWindow] = []
    for (student, day), record in after.items():
        found.add(notice_missing.on_day_changed(
            student, day, record, notices.get(student, {}), plan[notice_missing.RULE_ID], calendar, today
        ))
        found.add(single_lessons.on_day_changed(student, day, record, plan[single_lessons.RULE_ID], calendar))
        if absence_lessons(record):
            the_day = date.fromisoformat(day)
            windows.append(PupilWindow(tenant, student, the_day, window_dates(tenant, the_day)))
    judge_windows(rt, tenant, windows, found)
    count_limit_minutes(rt, tenant, before, after, found)


def judge_windows(rt: Runtime, tenant: Tenant, windows: list[PupilWindow], found: Consequences) -> None:
    """The pattern and persistence rules, over each changed pupil's window (one pipelined read for all)."""
    if not windows:
        return
    with rt.redis.pipeline(transaction=False) as pipe:
        for window in windows:
            pipe.hmget(rt.keys.pupil(tenant.id, window.student), window.fields())
        for window, values in zip(windows, pipe.execute()):
            window.load(values)
    plan, calendar, language = tenant.plan, tenant.calendar, tenant.language
    today = local_date(rt, tenant)
    latest: dict[str, dict[str, dict]] = {}
    loaded: dict[str, dict[str, dict]] = {}
    for window in windows:
        loaded.setdefault(window.student, dict(window.states))
        states = latest.setdefault(window.student, dict(window.states))
        contact = teacher(rt, tenant, found.adapter, plan[pattern.RULE_ID]["responsible"], window.group,
                          window.student)
        leader = teacher(rt, tenant, found.adapter, "nearest_leader", window.group, window.student)
        watched = persistent.watching(states[persistent.RULE_ID], window.day, plan[persistent.RULE_ID], calendar)
        actions, states[pattern.RULE_ID] = pattern.evaluate(
            tenant.id, window.student, window.day, window.records, states[pattern.RULE_ID], plan[pattern.RULE_ID],
            calendar, language, contact, leader, watched, today,
        )
        found.add(actions)
        resource = teacher(rt, tenant, found.adapter, plan[persistent.RULE_ID]["responsible"], window.group,
                           window.student)
        actions, states[persistent.RULE_ID] = persistent.evaluate(
            tenant.id, window.student, window.day, window.records, states[persistent.RULE_ID],
            plan[persistent.RULE_ID], calendar, language, resource, today,
        )
        found.add(actions)
    for student, states in latest.items():
        for rule_id, state in states.items():
            if state != loaded[student][rule_id]:
                save_state(rt, tenant, student, rule_id, state, found)


def count_limit_minutes(
    rt: Runtime, tenant: Tenant, before: dict, after: dict, found: Consequences
) -> None:
    """Keep each pupil's undocumented minutes per subject (upper secondary) and act on the thresholds reached.

    The counters move by ``HINCRBY`` in the delivery's transaction, so they stay exact under concurrent jobs. What
    was acted on is kept per term (``L:<year>:<term>:<subject>``), and every change compares the total with it:
    a threshold is acted on once, and one missed (a crash between two writes) is caught by the next change.
    """
    warning, reached = tenant.plan[absence_limit.WARNING], tenant.plan[absence_limit.REACHED]
    if not (warning["enabled"] or reached["enabled"]):
        return
    changes: dict[tuple[str, str, str], int] = {}
    for (student, day), new in after.items():
        for subject, delta in absence_limit.minutes_delta(before[(student, day)], new, warning["lesson_minutes"]).items():
            if subject in warning["planned_hours"]:
                changes[(student, day, subject)] = changes.get((student, day, subject), 0) + delta
    if not changes:
        return
    keys, calendar = rt.keys, tenant.calendar
    fields = []
    for student, day, subject in changes:
        year, term = absence_limit.term_of(date.fromisoformat(day), calendar)
        fields.append((f"h:{year}:{subject}", f"L:{year}:{term}:{subject}"))
    with rt.redis.pipeline(transaction=False) as pipe:
        for (student, _, _), (total_field, level_field) in zip(changes, fields):
            pipe.hmget(keys.pupil(tenant.id, student), total_field, level_field, "g")
        current = pipe.execute()
    for ((student, day, subject), delta), (total_field, level_field), (total, level, group) in zip(
        changes.items(), fields, current
    ):
        pupil_key = keys.pupil(tenant.id, student)
        found.writes.append(lambda pipe, k=pupil_key, f=total_field, d=delta: pipe.hincrby(k, f, d))
        contact = teacher(rt, tenant, found.adapter, reached["responsible"], group.decode() if group else None,
                          student)
        actions, acted = absence_limit.crossings(
            tenant.id, student, date.fromisoformat(day), subject, int(total or 0) + delta,
            float(level or 0), warning, reached, calendar, tenant.language, contact,
        )
        if actions:
            found.add(actions)
            found.writes.append(lambda pipe, k=pupil_key, f=level_field, v=acted: pipe.hset(k, f, v))


def lessons_held_key(rt: Runtime, tenant: Tenant, group: str, day: str) -> str:
    """Which lessons a group had on a day (from lesson registers), to tell single lessons from a day away."""
    return f"{rt.keys.prefix}:t:{tenant.id}:held:{group}:{day}"


def on_notices(rt: Runtime, tenant: Tenant, events: list[dict[str, Any]], found: Consequences) -> None:
    """Keep each notice's dates and reason code (never its text), stop the watch on the days it covers, and act on
    a notice that reports school refusal."""
    for event in events:
        add_notice(rt, tenant, event["student_id"], event["from_date"], event["to_date"],
                   event.get("reason_code", ""), found)
        if event.get("reason_code") == "school_refusal":
            refusal(rt, tenant, event["student_id"], notice_key(event["from_date"], event["to_date"]),
                    local_date(rt, tenant, event["timestamp"]), "notice", found)


def add_notice(rt, tenant, student: str, from_date: str, to_date: str, code: str, found: Consequences) -> None:
    notices_key = rt.keys.notices(tenant.id, student)
    field = notice_key(from_date, to_date)
    found.writes.append(lambda pipe: pipe.hset(notices_key, field, code))
    found.add(notice_missing.on_notice(student, from_date, to_date))


def refusal(rt, tenant: Tenant, student: str, source: str, reported_on: date, via: str, found: Consequences):
    settings = tenant.plan[school_refusal.RULE_ID]
    key = rt.keys.pupil(tenant.id, student)
    raw_state, group = rt.redis.hmget(key, STATE + school_refusal.RULE_ID, "g")
    contact = teacher(rt, tenant, found.adapter, settings["responsible"], group.decode() if group else None, student)
    before = state_of(tenant, student, school_refusal.RULE_ID, raw_state)
    actions, state = school_refusal.evaluate(
        tenant.id, student, source, reported_on, via, before, settings, tenant.calendar, tenant.language, contact,
    )
    found.add(actions)
    save_state(rt, tenant, student, school_refusal.RULE_ID, state, found)


def on_message_absence_notice(rt: Runtime, tenant: Tenant, event: dict[str, Any], found: Consequences) -> None:
    """A guardian's message classified as an absence notice covers the day it was sent and the next school day
    (messages say "i dag" or, in the evening, "i morgen"); its text is not kept."""
    sent = local_date(rt, tenant, event["created_at"])
    last = tenant.calendar.add_school_days(sent, 1)
    for student in event["student_ids"]:
        add_notice(rt, tenant, student, sent.isoformat(), last.isoformat(), "", found)


def on_message_school_refusal(rt: Runtime, tenant: Tenant, event: dict[str, Any], found: Consequences) -> None:
    for student in event["student_ids"]:
        refusal(rt, tenant, student, event["message_id"], local_date(rt, tenant, event["created_at"]), "message", found)


def on_enrolled(rt: Runtime, tenant: Tenant, events: list[dict[str, Any]], found: Consequences) -> None:
    settings = tenant.plan[prevention.NEW_STUDENT]
    for event in events:
        key = rt.keys.pupil(tenant.id, event["student_id"])
        found.writes.append(lambda pipe, k=key, g=event["group_id"]: pipe.hset(k, "g", g))
        contact = teacher(rt, tenant, found.adapter, settings["responsible"], event["group_id"], event["student_id"])
        found.add(prevention.new_student(
            tenant.id, event["student_id"], event["group_id"], date.fromisoformat(event["date"]), settings,
            tenant.calendar, tenant.language, contact,
        ))


# --- deadlines ----------------------------------------------------------------------------------------------------


def load_day(rt: Runtime, tenant: Tenant, student: str, day: str, rule_id: str):
    """What a deadline on one pupil's day re-reads: the day's record, the group, the rule's state, the notices."""
    keys = rt.keys
    with rt.redis.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.pupil(tenant.id, student), f"d:{day}", "g", STATE + rule_id)
        pipe.hgetall(keys.notices(tenant.id, student))
        (record, group, raw_state), notices = pipe.execute()
    state = state_of(tenant, student, rule_id, raw_state)
    return decode_day(record), group.decode() if group else None, state, decode_hash(notices)


def fire_notice_missing(rt: Runtime, tenant: Tenant, payload: dict[str, Any], found: Consequences) -> None:
    student, day = payload["student_id"], payload["date"]
    record, group, before, notices = load_day(rt, tenant, student, day, notice_missing.RULE_ID)
    settings = tenant.plan[notice_missing.RULE_ID]
    actions, state = notice_missing.on_deadline(
        tenant.id, student, day, record, notices,
        teacher(rt, tenant, payload.get("adapter"), settings["responsible"], group, student),
        settings, tenant.calendar, tenant.language, payload.get("step", ""), local_date(rt, tenant), before,
    )
    found.add(actions)
    if state != before:
        save_state(rt, tenant, student, notice_missing.RULE_ID, state, found)


def fire_single_lessons(rt: Runtime, tenant: Tenant, payload: dict[str, Any], found: Consequences) -> None:
    student, day = payload["student_id"], payload["date"]
    record, group, before, notices = load_day(rt, tenant, student, day, single_lessons.RULE_ID)
    held_ids = rt.redis.smembers(lessons_held_key(rt, tenant, group, day)) if group else set()
    held = {lesson_key({"id": lesson.decode()}) for lesson in held_ids}  # as the day record keys them
    settings = tenant.plan[single_lessons.RULE_ID]
    actions, state = single_lessons.evaluate(
        tenant.id, student, day, record, held, notices, before, settings, tenant.calendar, tenant.language,
        teacher(rt, tenant, payload.get("adapter"), settings["responsible"], group, student),
    )
    found.add(actions)
    save_state(rt, tenant, student, single_lessons.RULE_ID, state, found)


def fire_routine(rt: Runtime, tenant: Tenant, payload: dict[str, Any], found: Consequences) -> None:
    """A calendar routine fell due: one task per group of the directory (and the principal's for the review)."""
    rule_id, occurrence = payload["rule_id"], payload["occurrence"]
    settings = tenant.plan[rule_id]
    if not settings["enabled"]:
        return
    adapter = payload.get("adapter")
    groups = {g: teacher(rt, tenant, adapter, settings["responsible"], g, None) for g in tenant.directory.groups}
    found.add(prevention.group_tasks(
        tenant.id, rule_id, occurrence, date.fromisoformat(payload["due"]), groups,
        teacher(rt, tenant, adapter, "principal", None, None), settings, tenant.language,
    ))
    done_key = routines_key(rt, tenant)
    found.writes.append(lambda pipe: pipe.hset(done_key, f"{rule_id}|{occurrence}", "done"))


def routines_key(rt: Runtime, tenant: Tenant) -> str:
    return f"{rt.keys.prefix}:t:{tenant.id}:routines"


def schedule_routines(rt: Runtime) -> int:
    """Put each tenant's calendar routines on the due set, once; the scheduler calls this now and then."""
    scheduled = 0
    for tenant in rt.config.tenants.values():
        if not tenant.adapters:
            continue
        found = Consequences(tenant.id, next(iter(tenant.adapters)))
        done = {f.decode() for f in rt.redis.hkeys(routines_key(rt, tenant))}
        pending = [s for s in prevention.schedules(tenant.plan, tenant.calendar, local_date(rt, tenant))
                   if s.id not in done]
        if pending:
            found.add(pending)
            found.write(rt, nx=True)
            scheduled += len(pending)
    return scheduled


# --- task updates: the platform tells how a task ended ------------------------------------------------------------


def completed_on(rt: Runtime, tenant: Tenant, event: dict[str, Any]) -> date:
    """When the meeting took place: ``completed_at`` if given, else the update's own timestamp."""
    return local_date(rt, tenant, event.get("completed_at") or event["timestamp"])


def load_states(rt: Runtime, tenant: Tenant, student: str, rule_ids: Iterable[str]) -> dict[str, dict]:
    rule_ids = list(rule_ids)
    raw = rt.redis.hmget(rt.keys.pupil(tenant.id, student), [STATE + r for r in rule_ids])
    return {rule_id: state_of(tenant, student, rule_id, value) for rule_id, value in zip(rule_ids, raw)}


def conversation_done(rt, tenant: Tenant, event: dict, info: dict, found: Consequences) -> None:
    """A pattern or school-refusal conversation ended: close it and, when it was held, start the persistence watch;
    if external bodies are now involved, the leadership's meeting follows."""
    if info["kind"] != "task" or event["status"] == "open":
        return
    student, rule_id = info["student_id"], info["rule_id"]
    states = load_states(rt, tenant, student, [rule_id, persistent.RULE_ID])
    state = followup.close(states[rule_id], event["external_ref"])
    if event["status"] == "completed":
        held_on = completed_on(rt, tenant, event)
        state["closed_on"] = held_on.isoformat()
        save_state(rt, tenant, student, persistent.RULE_ID,
                   persistent.meeting_held(states[persistent.RULE_ID], held_on, event.get("outcome")), found)
        external_involved(rt, tenant, event, info, held_on, found)
    save_state(rt, tenant, student, rule_id, state, found)


def meeting_done(rt, tenant: Tenant, event: dict, info: dict, found: Consequences) -> None:
    """A persistence meeting was held: watch again from it (unless resolved), and the external route if chosen."""
    if info["kind"] != "task" or event["status"] == "open":
        return
    student = info["student_id"]
    state = followup.close(load_states(rt, tenant, student, [persistent.RULE_ID])[persistent.RULE_ID],
                           event["external_ref"])
    if event["status"] == "completed":
        held_on = completed_on(rt, tenant, event)
        state = persistent.meeting_held(state, held_on, event.get("outcome"))
        external_involved(rt, tenant, event, info, held_on, found)
    save_state(rt, tenant, student, persistent.RULE_ID, state, found)


def external_involved(rt, tenant: Tenant, event: dict, info: dict, held_on: date, found: Consequences) -> None:
    if event.get("outcome") != "external_involved":
        return
    settings = tenant.plan[external_meeting.RULE_ID]
    found.add(external_meeting.evaluate(
        tenant.id, info["student_id"], event["external_ref"], held_on, settings, tenant.calendar, tenant.language,
        teacher(rt, tenant, found.adapter, settings["responsible"], None, info["student_id"]),
    ))


def task_closed(rt, tenant: Tenant, event: dict, info: dict, found: Consequences) -> None:
    """Follow-ups with one open task per pupil: once it is done, the next occurrence opens a new task."""
    if info["kind"] != "task" or event["status"] == "open":
        return
    student, rule_id = info["student_id"], info["rule_id"]
    before = load_states(rt, tenant, student, [rule_id])[rule_id]
    state = followup.close(before, event["external_ref"])
    if state != before:
        save_state(rt, tenant, student, rule_id, state, found)


# Classified guardian messages the absence plan acts on: category -> handler(rt, tenant, message event, found).
# The escalation capability classifies ``message.created`` and hands these categories over here.
MESSAGE_HANDLERS = {
    "absence_notice": on_message_absence_notice,
    "school_refusal": on_message_school_refusal,
}

EVENT_HANDLERS = {
    "attendance.register": on_attendance,
    "attendance.marked": on_attendance,
    "absence.notice": on_notices,
    "student.enrolled": on_enrolled,
}
DEADLINE_HANDLERS = {
    notice_missing.RULE_ID: fire_notice_missing,
    single_lessons.RULE_ID: fire_single_lessons,
    prevention.REVIEW: fire_routine,
    prevention.TALK: fire_routine,
}
TASK_HANDLERS = {
    pattern.RULE_ID: conversation_done,
    school_refusal.RULE_ID: conversation_done,
    persistent.RULE_ID: meeting_done,
    single_lessons.RULE_ID: task_closed,
    notice_missing.RULE_ID: task_closed,
    external_meeting.RULE_ID: task_closed,
}
