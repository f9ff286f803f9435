"""The absence action plan's I/O: reads what its rules need from a pupil's compact history and writes back.

Each handler reads a bounded window of a pupil's days (never the whole history), so the cost of a mark does not
grow with how long the school has used the connector, and writes every consequence of a delivery in one
transaction: day records, rule states, deadlines and actions.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any, Iterable

from connector.config.schema import Tenant
from connector.engine.consequences import Consequences
from connector.engine.directory import People, resolve
from connector.rules import (
    absence_limit,
    followup,
    external_meeting,
    notice_dates,
    notice_missing,
    pattern,
    persistent,
    prevention,
    school_refusal,
    single_lessons,
)
from connector.rules.context import Context
from connector.rules.triggers import DayFacts, declared
from connector.rules.history import (
    HISTORY,
    absence_lessons,
    decode_day,
    encode_day,
    lesson_key,
    mark_code,
    notice_key,
    retention_cutoff,
)
from connector.engine.runtime import Runtime
from connector.store import due
from connector.store.pupils import GROUP, TRIMMED, day_field, state_field

log = logging.getLogger(__name__)

HELD_TTL_SECONDS = 14 * 24 * 3600


def marks_of(event: dict[str, Any]) -> list[dict[str, Any]]:
    """A register's marks, or a single mark, each with its own date, group and lesson."""
    if event["type"] == "attendance.register":
        shared = {"date": event["date"], "group_id": event["group_id"], "lesson": event.get("lesson")}
        return [{**shared, **mark} for mark in event["marks"]]
    return [event]


def state_of(tenant: Tenant, student: str, rule_id: str, raw: str | None) -> dict[str, Any]:
    return followup.unpack(raw, tenant=tenant.id, rule_id=rule_id, student_id=student)


def save_state(tenant: Tenant, student: str, rule_id: str, state: dict, found: Consequences) -> None:
    packed = followup.pack(state, tenant=tenant.id, rule_id=rule_id, student_id=student)
    found.pupils.set_state(student, rule_id, packed)


def local_date(rt: Runtime, tenant: Tenant, moment: str | None = None) -> date:
    """The school's date of an event's timestamp, or of now."""
    when = datetime.fromisoformat(moment) if moment else rt.clock.now()
    return tenant.calendar.local_date(when)


def context(rt: Runtime, tenant: Tenant, adapter: str | None, student: str | None, group: str | None,
            today: date | None = None) -> Context:
    """What the rules judge a pupil with (or a group's routine, ``student`` None): who holds a role is asked only
    when a rule writes to that person."""
    return Context(tenant.id, student, tenant.plan, tenant.calendar, tenant.language,
                   today or local_date(rt, tenant), People(rt, tenant, adapter or None, group, student))


JUDGED_STATES = (pattern.RULE_ID, persistent.RULE_ID)


def window_dates(tenant: Tenant, day: date, today: date) -> list[date]:
    """The days the pattern and persistence rules read when ``day`` changed: every window it falls in, up to
    ``today`` (see ``pattern.judged_days``), and the persistence watch around it."""
    plan, calendar = tenant.plan, tenant.calendar
    dates = set(pattern.read_window(day, plan[pattern.RULE_ID], calendar, today))
    watch = plan[persistent.RULE_ID]["watch_school_days"]
    dates.update(calendar.school_days(calendar.add_school_days(day, -watch), min(
        calendar.add_school_days(day, watch), max(today, day))))
    return sorted(dates)


def limit_fields(tenant: Tenant, mark: dict[str, Any]) -> tuple[str, str] | None:
    """The absence limit's counter and level fields a lesson mark may move (upper secondary, when switched on)."""
    warning = tenant.plan[absence_limit.WARNING]
    subject = (mark.get("lesson") or {}).get("subject")
    if not subject or subject not in warning["planned_hours"]:
        return None
    if not (warning["enabled"] or tenant.plan[absence_limit.REACHED]["enabled"]):
        return None
    year, term = absence_limit.term_of(date.fromisoformat(mark["date"]), tenant.calendar)
    return f"h:{year}:{subject}", f"L:{year}:{term}:{subject}"


def on_attendance(rt: Runtime, tenant: Tenant, events: list[dict[str, Any]], found: Consequences) -> None:
    """Apply a delivery's marks to the pupils' days and judge what changed, all committed together.

    The pupils are read once (their days, the windows their absences fall in, their rule states, their notices),
    the new days are worked out here, and they are written in the job's one transaction with every consequence:
    a job that dies before it has written nothing, so its retry judges the same marks again.
    """
    marks = [mark for event in events for mark in marks_of(event)]
    if not marks:
        return
    calendar, plan = tenant.calendar, tenant.plan
    today = local_date(rt, tenant)
    cutoff = retention_cutoff(today, calendar.years, plan[HISTORY]["retention_school_years"]).isoformat()
    wants: dict[str, set[str]] = {}
    windows: dict[str, list[str]] = {}  # a register's marks share their day: its window's fields are worked out once
    states = [state_field(r) for r in JUDGED_STATES]
    for mark in marks:
        fields = wants.setdefault(mark["student_id"], {GROUP})
        fields.add(day_field(mark["date"]))
        if mark["status"] != "present":
            fields.update(states)
            window = windows.get(mark["date"])
            if window is None:
                window = windows[mark["date"]] = [
                    day_field(d.isoformat()) for d in window_dates(tenant, date.fromisoformat(mark["date"]), today)]
            fields.update(window)
        limit = limit_fields(tenant, mark)
        if limit:
            fields.update(limit)
    pupils = found.pupils.read(wants, cutoff, notices_of={m["student_id"] for m in marks if m["status"] != "present"})

    before: dict[tuple[str, str], dict[str, str]] = {}
    after: dict[tuple[str, str], dict[str, str]] = {}
    held: dict[tuple[str, str], set[str]] = {}
    groups: dict[str, str] = {}
    for mark in marks:
        student, day = mark["student_id"], mark["date"]
        key = (student, day)
        if key not in after:
            before[key] = decode_day(pupils[student].get(day_field(day)))
            after[key] = dict(before[key])
        code = mark_code(mark["status"], mark["documented"], mark.get("lesson"), mark.get("minutes"))
        lesson = lesson_key(mark.get("lesson"))
        if code:
            after[key][lesson] = code
        else:
            after[key].pop(lesson, None)
        if mark.get("group_id"):
            groups[student] = mark["group_id"]
        if mark.get("lesson") and mark.get("group_id"):  # the platform's ids: numeric ones pack tightly in a set
            held.setdefault((mark["group_id"], day), set()).add(str(mark["lesson"]["id"]))
    touched = set()
    for student, group in groups.items():
        if pupils[student].group != group:
            found.pupils.set_group(student, group)
            touched.add(student)
    touched.update(student for (student, day), record in after.items() if record != before[(student, day)])
    for student, pupil in pupils.items():  # once a school year per pupil stored; nothing for one never stored
        stored = pupil.stale or any(v for f, v in pupil.fields.items() if f != TRIMMED)
        if pupil.get(TRIMMED) != cutoff and (stored or student in touched):
            stale_notices = [key for key in pupil.notices if key.rpartition("|")[2] < cutoff]
            found.pupils.trim(student, pupil.stale, cutoff, stale_notices)
    for (group, day), lessons in held.items():
        found.pupils.add_members(rt.keys.held(tenant.id, group, day), lessons, HELD_TTL_SECONDS)
    changed = {key: record for key, record in after.items() if record != before[key]}
    if not changed:
        return
    contexts = {student: context(rt, tenant, found.adapter, student, groups.get(student) or pupils[student].group, today)
                for student in {student for student, _ in changed}}
    for (student, day), record in changed.items():
        found.pupils.set_day(student, day, encode_day(record))
        found.add(notice_missing.on_day_changed(contexts[student], day, record, pupils[student].notices))
        found.add(single_lessons.on_day_changed(contexts[student], day, record))
    judge_windows(tenant, pupils, changed, contexts, found)
    count_limit_minutes(tenant, pupils, before, changed, contexts, found)


def judge_windows(tenant: Tenant, pupils: dict, changed: dict, contexts: dict[str, Context],
                  found: Consequences) -> None:
    """The pattern and persistence rules, for each pupil over every window a changed day with absence falls in,
    oldest window first, on the pupil's days as they are after this delivery."""
    plan, calendar = tenant.plan, tenant.calendar
    by_pupil: dict[str, list[date]] = {}
    for (student, day), record in changed.items():
        the_day = date.fromisoformat(day)
        if absence_lessons(record) and calendar.is_school_day(the_day):  # a weekend's marks are kept, not judged
            by_pupil.setdefault(student, []).append(the_day)
    for student, days in by_pupil.items():
        pupil = pupils[student]
        records = {field[2:]: decode_day(raw) for field, raw in pupil.fields.items()
                   if field.startswith("d:") and raw}
        for (who, day), record in changed.items():
            if who == student:
                records[day] = record
        loaded = {rule: state_of(tenant, student, rule, pupil.get(state_field(rule))) for rule in JUDGED_STATES}
        states = dict(loaded)
        ctx = contexts[student]
        ends = sorted({end for day in days
                       for end in pattern.judged_days(day, plan[pattern.RULE_ID], calendar, ctx.today)
                       if end == day or absence_lessons(records.get(end.isoformat(), {}))})
        for end in ends:
            watched = persistent.watching(states[persistent.RULE_ID], end, plan[persistent.RULE_ID], calendar)
            actions, states[pattern.RULE_ID] = pattern.evaluate(ctx, end, records, states[pattern.RULE_ID], watched)
            found.add(actions)
        for day in sorted(days):
            actions, states[persistent.RULE_ID] = persistent.evaluate(ctx, day, records, states[persistent.RULE_ID])
            found.add(actions)
        for rule_id, state in states.items():
            if state != loaded[rule_id]:
                save_state(tenant, student, rule_id, state, found)


def count_limit_minutes(tenant: Tenant, pupils: dict, before: dict, changed: dict, contexts: dict[str, Context],
                        found: Consequences) -> None:
    """Keep each pupil's undocumented minutes per subject (upper secondary) and act on the thresholds reached.

    The counters move by ``HINCRBY`` in the delivery's transaction, read in the same checkout, so they stay exact
    under concurrent jobs. What was acted on is kept per term (``L:<year>:<term>:<subject>``), and every change
    compares the total with it: a threshold is acted on once, and one missed is caught by the next change.
    """
    warning, reached = tenant.plan[absence_limit.WARNING], tenant.plan[absence_limit.REACHED]
    if not (warning["enabled"] or reached["enabled"]):
        return
    changes: dict[tuple[str, str, str], int] = {}
    for (student, day), new in changed.items():
        for subject, delta in absence_limit.minutes_delta(before[(student, day)], new, warning["lesson_minutes"]).items():
            if subject in warning["planned_hours"]:
                changes[(student, day, subject)] = changes.get((student, day, subject), 0) + delta
    calendar = tenant.calendar
    totals: dict[tuple[str, str], int] = {}
    for (student, day, subject), delta in changes.items():
        year, term = absence_limit.term_of(date.fromisoformat(day), calendar)
        total_field, level_field = f"h:{year}:{subject}", f"L:{year}:{term}:{subject}"
        pupil = pupils[student]
        if (student, total_field) not in totals:
            totals[(student, total_field)] = int(pupil.get(total_field) or 0)
        totals[(student, total_field)] += delta
        found.pupils.add(student, total_field, delta)
        actions, acted = absence_limit.crossings(
            contexts[student], date.fromisoformat(day), subject, totals[(student, total_field)],
            float(pupil.get(level_field) or 0),
        )
        if actions:
            found.add(actions)
            found.pupils.set_field(student, level_field, acted)
            pupil.fields[level_field] = acted


def on_notices(rt: Runtime, tenant: Tenant, events: list[dict[str, Any]], found: Consequences) -> None:
    """Keep each notice's dates and reason code (never its text), stop the watch on the days it covers, close what
    a late one covers, and act on a notice that reports school refusal."""
    covered: dict[str, set[date]] = {}
    codes: dict[str, set[str]] = {}
    for event in events:
        student = event["student_id"]
        add_notice(rt, tenant, student, event["from_date"], event["to_date"], event.get("reason_code", ""), found)
        first = date.fromisoformat(event["from_date"])
        last = min(date.fromisoformat(event["to_date"]), first + timedelta(days=notice_missing.MAX_NOTICE_SPAN_DAYS))
        covered.setdefault(student, set()).update(tenant.calendar.school_days(first, last))
        codes.setdefault(student, set()).add(event.get("reason_code", ""))
        if event.get("reason_code") == "school_refusal":
            refusal(rt, tenant, student, notice_key(event["from_date"], event["to_date"]),
                    local_date(rt, tenant, event["timestamp"]), "notice", found)
    late_notices(rt, tenant, covered, codes, found)


def add_notice(rt, tenant, student: str, from_date: str, to_date: str, code: str, found: Consequences) -> None:
    found.pupils.add_notice(student, notice_key(from_date, to_date), code)
    found.add(notice_missing.on_notice(student, from_date, to_date))


def refusal(rt, tenant: Tenant, student: str, source: str, reported_on: date, via: str, found: Consequences):
    pupil = found.pupils.read({student: [state_field(school_refusal.RULE_ID), GROUP]})[student]
    before = state_of(tenant, student, school_refusal.RULE_ID, pupil.get(state_field(school_refusal.RULE_ID)))
    actions, state = school_refusal.evaluate(
        context(rt, tenant, found.adapter, student, pupil.group), source, reported_on, via, before)
    found.add(actions)
    save_state(tenant, student, school_refusal.RULE_ID, state, found)


def late_notices(rt, tenant: Tenant, covered: dict[str, set[date]], codes: dict[str, set[str]],
                 found: Consequences) -> None:
    """Notices that came after the reminder and the contact teacher's task: a note on the open task saying which of
    its days the guardians reported, and the follow-up closed once all are (``notice_missing.on_late_notice``)."""
    field = state_field(notice_missing.RULE_ID)
    pupils = found.pupils.read({student: [field, GROUP] for student in covered}, notices_of=())
    for student, days in covered.items():
        pupil = pupils[student]
        before = state_of(tenant, student, notice_missing.RULE_ID, pupil.get(field))
        if not followup.is_open(before):
            continue
        actions, state = notice_missing.on_late_notice(
            context(rt, tenant, found.adapter, student, pupil.group), sorted(days), before, codes.get(student, ()))
        found.add(actions)
        if state != before:
            save_state(tenant, student, notice_missing.RULE_ID, state, found)


def on_message_absence_notice(rt: Runtime, tenant: Tenant, event: dict[str, Any], found: Consequences) -> None:
    """A guardian's message classified as an absence notice is the notice for the school days it reports ("i går",
    "fredag og mandag", "hele uka", read by ``rules.notice_dates`` on the day it was sent; with no date in it, the
    send day and the next school day). The door read those dates (``engine.reading``); the text was never queued."""
    days = [date.fromisoformat(day) for day in event["reading"]["days"]]
    ranges = notice_dates.as_ranges(days, tenant.calendar)
    for student in event["student_ids"]:
        for first, last in ranges:
            add_notice(rt, tenant, student, first.isoformat(), last.isoformat(), "", found)
    late_notices(rt, tenant, {student: set(days) for student in event["student_ids"]}, {}, found)


def on_message_school_refusal(rt: Runtime, tenant: Tenant, event: dict[str, Any], found: Consequences) -> None:
    for student in event["student_ids"]:
        refusal(rt, tenant, student, event["message_id"], local_date(rt, tenant, event["created_at"]), "message", found)


def on_enrolled(rt: Runtime, tenant: Tenant, events: list[dict[str, Any]], found: Consequences) -> None:
    for event in events:
        found.pupils.set_group(event["student_id"], event["group_id"])
        ctx = context(rt, tenant, found.adapter, event["student_id"], event["group_id"])
        found.add(prevention.new_student(ctx, event["group_id"], date.fromisoformat(event["date"])))


# --- deadlines ----------------------------------------------------------------------------------------------------


def load_day(tenant: Tenant, student: str, day: str, rule_id: str, found: Consequences):
    """What a deadline on one pupil's day re-reads: the day's record, the group, the rule's state, the notices."""
    pupil = found.pupils.read({student: [day_field(day), GROUP, state_field(rule_id)]})[student]
    state = state_of(tenant, student, rule_id, pupil.get(state_field(rule_id)))
    return decode_day(pupil.get(day_field(day))), pupil.group, state, pupil.notices


def fire_pupil_day(rt: Runtime, tenant: Tenant, payload: dict[str, Any], found: Consequences) -> None:
    """A ``pupil_day`` deadline (``rules.triggers``): the rule judges the pupil's day again as it is stored now."""
    rule_id, student, day = payload["rule_id"], payload["student_id"], payload["date"]
    module, _ = declared()[rule_id]
    record, group, before, notices = load_day(tenant, student, day, rule_id, found)
    held = frozenset()
    if getattr(module, "READS_LESSONS_HELD", False) and group:
        held_ids = found.pupils.members(rt.keys.held(tenant.id, group, day))
        held = frozenset(lesson_key({"id": lesson}) for lesson in held_ids)  # as the day record keys them
    actions, state = module.on_deadline(context(rt, tenant, payload.get("adapter"), student, group), day,
                                        DayFacts(record, notices, held), before, payload.get("step", ""))
    found.add(actions)
    if state != before:
        save_state(tenant, student, rule_id, state, found)


def fire_routine(rt: Runtime, tenant: Tenant, payload: dict[str, Any], found: Consequences) -> None:
    """A calendar routine fell due: one task per group of the directory (and the principal's for the review)."""
    rule_id, occurrence = payload["rule_id"], payload["occurrence"]
    settings = tenant.plan[rule_id]
    if not settings["enabled"]:
        return
    adapter = payload.get("adapter")
    groups = {g: resolve(rt, tenant, adapter, settings["responsible"], g, None) for g in tenant.directory.groups}
    found.add(prevention.group_tasks(context(rt, tenant, adapter, None, None), rule_id, occurrence,
                                     date.fromisoformat(payload["due"]), groups))
    found.writes.append(lambda pipe: due.routine_scheduled(pipe, rt.keys, tenant.id, rule_id, occurrence))


def schedule_routines(rt: Runtime) -> int:
    """Put each tenant's calendar routines on the due set, once; the scheduler calls this now and then."""
    scheduled = 0
    for tenant in rt.config.tenants.values():
        if not tenant.adapters:
            continue
        found = Consequences.start(rt, tenant.id, next(iter(tenant.adapters)))
        found.routine = True
        done = due.routines_scheduled(rt.redis, rt.keys, tenant.id)
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


def load_states(tenant: Tenant, student: str, rule_ids: Iterable[str], found: Consequences) -> dict[str, dict]:
    rule_ids = list(rule_ids)
    pupil = found.pupils.read({student: [state_field(r) for r in rule_ids]})[student]
    return {rule_id: state_of(tenant, student, rule_id, pupil.get(state_field(rule_id))) for rule_id in rule_ids}


def conversation_done(rt, tenant: Tenant, event: dict, info: dict, found: Consequences) -> None:
    """A pattern or school-refusal conversation ended: close it and, when it was held, start the persistence watch;
    if external bodies are now involved, the leadership's meeting follows."""
    if info["kind"] != "task" or event["status"] == "open":
        return
    student, rule_id = info["student_id"], info["rule_id"]
    states = load_states(tenant, student, [rule_id, persistent.RULE_ID], found)
    state = followup.close(states[rule_id], event["external_ref"])
    if event["status"] == "completed":
        held_on = completed_on(rt, tenant, event)
        state["closed_on"] = held_on.isoformat()
        watch = persistent.meeting_held(states[persistent.RULE_ID], held_on, event.get("outcome"))
        save_state(tenant, student, persistent.RULE_ID, judge_watch(rt, tenant, student, watch, found), found)
        external_involved(rt, tenant, event, info, held_on, found)
    save_state(tenant, student, rule_id, state, found)


def meeting_done(rt, tenant: Tenant, event: dict, info: dict, found: Consequences) -> None:
    """A persistence meeting was held: watch again from it (unless resolved), and the external route if chosen."""
    if info["kind"] != "task" or event["status"] == "open":
        return
    student = info["student_id"]
    state = followup.close(load_states(tenant, student, [persistent.RULE_ID], found)[persistent.RULE_ID],
                           event["external_ref"])
    if event["status"] == "completed":
        held_on = completed_on(rt, tenant, event)
        state = judge_watch(rt, tenant, student, persistent.meeting_held(state, held_on, event.get("outcome")), found)
        external_involved(rt, tenant, event, info, held_on, found)
    save_state(tenant, student, persistent.RULE_ID, state, found)


def judge_watch(rt, tenant: Tenant, student: str, state: dict, found: Consequences) -> dict:
    """A meeting reported late may start a watch over days already recorded: judge those now, as if the update
    had come first (the days after it would have been judged as they came), so a late update does not mean nothing.
    Returns the persistence state after judging."""
    settings, calendar = tenant.plan[persistent.RULE_ID], tenant.calendar
    if not state.get("meeting"):
        return state
    today = local_date(rt, tenant)
    days = [d for d in persistent.watch_days(date.fromisoformat(state["meeting"]), settings, calendar) if d <= today]
    if not days:
        return state
    pupil = found.pupils.read({student: [GROUP, *(day_field(d.isoformat()) for d in days)]})[student]
    records = {d.isoformat(): decode_day(pupil.get(day_field(d.isoformat()))) for d in days}
    if not any(absence_lessons(record) for record in records.values()):
        return state
    actions, state = persistent.evaluate(context(rt, tenant, found.adapter, student, pupil.group, today), days[-1],
                                         records, state)
    found.add(actions)
    return state


def external_involved(rt, tenant: Tenant, event: dict, info: dict, held_on: date, found: Consequences) -> None:
    if event.get("outcome") != "external_involved":
        return
    found.add(external_meeting.evaluate(
        context(rt, tenant, found.adapter, info["student_id"], None), event["external_ref"], held_on))


def task_closed(rt, tenant: Tenant, event: dict, info: dict, found: Consequences) -> None:
    """Follow-ups with one open task per pupil: once it is done, the next occurrence opens a new task."""
    if info["kind"] != "task" or event["status"] == "open":
        return
    student, rule_id = info["student_id"], info["rule_id"]
    before = load_states(tenant, student, [rule_id], found)[rule_id]
    state = followup.close(before, event["external_ref"])
    if state != before:
        save_state(tenant, student, rule_id, state, found)


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
# What each rule declares (``TRIGGERS``, see ``rules.triggers``), in the words this capability handles.
DEADLINE_KINDS = {"pupil_day": fire_pupil_day, "routine": fire_routine}
TASK_UPDATE_KINDS = {"conversation_held": conversation_done, "meeting_held": meeting_done,
                     "follow_up_closed": task_closed}
DEADLINE_HANDLERS = {rule_id: DEADLINE_KINDS[triggers.deadline] for rule_id, (_, triggers) in declared().items()
                     if triggers.deadline in DEADLINE_KINDS}
TASK_HANDLERS = {rule_id: TASK_UPDATE_KINDS[triggers.task_updated] for rule_id, (_, triggers) in declared().items()
                 if triggers.task_updated in TASK_UPDATE_KINDS}
