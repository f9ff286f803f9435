"""Guardians' cases: message intake, the escalation ladder and the §12 routes — the I/O around the pure rules.

A guardian's ``message.created`` is classified (``rules/classify.py``); absence notices and school refusal are
handed to the absence plan, case categories open or continue a case (``rules/escalation.py``,
``rules/environment.py``). Messages from staff to guardians are the "feedback given" signal; ``task.updated`` on a
case's tasks acknowledges, escalates or resolves. README.md, "Escalation ladder", says what counts as what.

A case is one JSON value in Redis, written in the same transaction as the actions and deadlines it caused. While a
job works on a case it holds the case's lock, released by that transaction, or at once if the job fails before it:
two workers handling a task update and a deadline of the same case cannot overwrite each other's change. A job that
cannot get the lock fails and is retried (deliveries by RQ, deadlines by the due set's lease). The layout and the
locks are ``store.cases``'s; what a message, an update or a deadline means for a case is this module's.

The message body is never queued, stored or logged: the door classifies it (``engine.reading``) and the job gets
only the category, the rule that matched and the confidence; the case keeps the message ids, the category and the
rule. A task's note arrives as ``noted`` (whether there is one) and the update's digest.
"""
from __future__ import annotations

import logging
import threading
import weakref
from datetime import date, datetime
from typing import Any

from connector.engine import absence
from connector.config.schema import Tenant
from connector.engine.consequences import Consequences, kept_until
from connector.engine.directory import LOOK_UP, People
from connector.engine.reading import update_key
from connector.store import cases as stored
from connector.store.cases import CaseBusy  # noqa: F401 - what a job raises when another holds its case
from connector.store.keys import digest
from connector.rules import classify, environment, escalation, read_message
from connector.rules.triggers import declared
from connector.engine.runtime import Runtime

log = logging.getLogger(__name__)

SEEN_LIMIT = 500  # ids of events already applied to a case; enough for any case's life, bounded all the same


def case_id_for(tenant_id: str, message_id: str) -> str:
    """Derived from the message that opened it, so a redelivered or retried message finds its case again."""
    return "c-" + digest(tenant_id, message_id, length=12)


# --- Loading and committing ----------------------------------------------------------------------------------------

# One checkout of cases per ``Consequences``, that is per job: its transaction writes the cases and gives the locks
# back; a job that ends without committing gives them back at once (``Consequences.release``).
_sessions: "weakref.WeakKeyDictionary[Consequences, stored.Checkout]" = weakref.WeakKeyDictionary()
_sessions_guard = threading.Lock()


def _session(rt: Runtime, tenant: Tenant, found: Consequences) -> stored.Checkout:
    with _sessions_guard:
        session = _sessions.get(found)
        if session is None:
            session = _sessions[found] = stored.Checkout(rt.redis, rt.keys, tenant.id,
                                                         expire_at=kept_until(rt, tenant.id))
            found.writes.append(session.write)
            found.releases.append(session.release)
    return session


def _checkout(rt: Runtime, tenant: Tenant, found: Consequences, case_id: str) -> dict | None:
    return _session(rt, tenant, found).case(case_id)


def _adopt(found: Consequences, case: dict) -> None:
    """A new case, checked out (and locked) under its id just before: committed with the job."""
    _sessions[found].adopt(case)


def _hold_pupils(rt: Runtime, tenant: Tenant, found: Consequences, pupils: list[str]) -> None:
    """Whether a guardian's message opens a case depends on the pupils' open cases, so they are held until the job
    commits (``store.cases``): two messages at the same instant open one case, and the second joins it."""
    _session(rt, tenant, found).hold_pupils(pupils)


def _open_cases(rt: Runtime, tenant: Tenant, pupils: list[str], found: Consequences) -> list[dict]:
    """The pupils' open cases, oldest first."""
    ids = _session(rt, tenant, found).open_case_ids(pupils)
    cases = [case for case in (_checkout(rt, tenant, found, case_id) for case_id in ids)
             if case is not None and case["status"] == "open"]
    return sorted(cases, key=lambda case: (case["opened_on"], case["id"]))


def _first_time(case: dict, event_key: str) -> bool:
    """Whether this event is new to the case (and remember it): a redelivery or a retried job changes nothing."""
    if event_key in case["seen"]:
        return False
    case["seen"] = (case["seen"] + [event_key])[-SEEN_LIMIT:]
    return True


def load_case(rt: Runtime, tenant_id: str, case_id: str) -> dict | None:
    return stored.load(rt.redis, rt.keys, tenant_id, case_id)


# --- Context for the rules -----------------------------------------------------------------------------------------


def _context(rt: Runtime, tenant: Tenant, found: Consequences, case: dict) -> escalation.Context:
    return escalation.Context(
        tenant_id=tenant.id,
        plan=tenant.plan,
        calendar=tenant.calendar,
        language=tenant.language,
        people=People(rt, tenant, found.adapter or None, LOOK_UP, case["pupils"][0]),
        today=tenant.calendar.local_date(rt.clock.now()),
    )


def _day(tenant: Tenant, moment: str) -> date:
    """The school's date of a moment given in an event (never the time the event arrived)."""
    return tenant.calendar.local_date(datetime.fromisoformat(moment))


# --- message.created -----------------------------------------------------------------------------------------------


def on_messages(rt: Runtime, tenant: Tenant, events: list[dict[str, Any]], found: Consequences) -> None:
    for event in events:
        if event["sender"]["role"] == "guardian":
            _intake(rt, tenant, event, found)
        elif any(recipient["role"] == "guardian" for recipient in event["recipients"]):
            _feedback(rt, tenant, event, found)


def _intake(rt: Runtime, tenant: Tenant, event: dict[str, Any], found: Consequences) -> None:
    read = event["reading"]  # what the door read from the text (``engine.reading``); the text was not queued
    result = classify.Classification(category=read["category"], rule_id=read["rule"], accused=read["accused"],
                                     confidence=read["confidence"])
    request_rule = read["request"]
    message_id = event["message_id"]
    if result.confidence == classify.WEAK:
        # Only a hint (a typo, a dialect form, a weak rule): a person reads the message before anything opens.
        settings = tenant.plan[read_message.RULE_ID]
        if not settings["enabled"]:
            log.info("tenant=%s message=%s: may be %s (rule %s, weak); reading tasks are switched off in the plan",
                     tenant.id, message_id, result.category, result.rule_id)
            return
        pupils, responsible = event["student_ids"], settings["responsible"]
        teacher = People(rt, tenant, found.adapter or None, LOOK_UP, pupils[0]).get(responsible) if pupils \
            else tenant.directory.lookup(responsible, None)
        found.add([read_message.task(
            tenant_id=tenant.id, message_id=message_id, sent_on=_day(tenant, event["created_at"]),
            category=result.category, pupils=pupils, teacher=teacher, calendar=tenant.calendar,
            language=tenant.language, settings=settings)])
        log.info("tenant=%s message=%s: may be %s (rule %s, weak); %s reads it", tenant.id,
                 message_id, result.category, result.rule_id, responsible)
        return
    if result.category in ("absence_notice", "school_refusal"):
        handler = absence.MESSAGE_HANDLERS.get(result.category)
        if handler is None:
            log.info("tenant=%s message=%s: %s (rule %s) is for the absence plan, which does not take messages yet",
                     tenant.id, message_id, result.category, result.rule_id)
        else:
            handler(rt, tenant, event, found)
        return
    if not tenant.plan[escalation.RULE_LEVEL_TASK]["enabled"]:
        log.info("tenant=%s message=%s: cases are switched off in the plan", tenant.id, message_id)
        return
    pupils = event["student_ids"]
    if not pupils:
        log.info("tenant=%s message=%s: %s names no pupil; no case", tenant.id, message_id, result.category)
        return
    day = _day(tenant, event["created_at"])
    _hold_pupils(rt, tenant, found, pupils)
    open_cases = _open_cases(rt, tenant, pupils, found)
    same = [case for case in open_cases if case["category"] == result.category]
    # A new report under the law's routes is never swallowed as a request to lift some other open case.
    new_duty = result.category in ("school_environment", "staff_involved") and not same
    if request_rule and open_cases and not new_duty:
        case = (same or open_cases)[-1]
        if _first_time(case, f"m:{message_id}"):
            case["messages"].append(message_id)
            found.add(escalation.on_guardian_request(case, day, message_id, request_rule,
                                                     _context(rt, tenant, found, case)))
            log.info("tenant=%s message=%s: guardian asks to lift case %s (rule %s)",
                     tenant.id, message_id, case["id"], request_rule)
        return
    if result.category not in escalation.CASE_CATEGORIES:
        log.info("tenant=%s message=%s: %s (rule %s); nothing to do", tenant.id, message_id, result.category,
                 result.rule_id)
        return
    if same:
        case = same[-1]
        if _first_time(case, f"m:{message_id}"):
            case["messages"].append(message_id)
            escalation.log(case, day, "message", message=message_id, rule=result.rule_id)
        return
    case_id = case_id_for(tenant.id, message_id)
    if _checkout(rt, tenant, found, case_id) is not None:
        return  # this message opened its case before (since closed): a redelivery or a retried job
    case = escalation.new_case(case_id, result.category, result.rule_id, result.accused, pupils,
                               event["sender"]["id"], message_id, day)
    _adopt(found, case)
    ctx = _context(rt, tenant, found, case)
    opener = escalation.open_case if case["route"] == "ladder" else environment.open_case
    found.add(opener(case, ctx, day))
    log.info("tenant=%s message=%s: opened case %s (%s, rule %s, track %s)", tenant.id, message_id, case_id,
             result.category, result.rule_id, case["track"])


def _feedback(rt: Runtime, tenant: Tenant, event: dict[str, Any], found: Consequences) -> None:
    """A message from staff (or the parents' representatives) to a guardian about a pupil with an open case."""
    if not event["student_ids"]:
        return
    day = _day(tenant, event["created_at"])
    for case in _open_cases(rt, tenant, event["student_ids"], found):
        if _first_time(case, f"m:{event['message_id']}"):
            found.add(escalation.on_feedback(case, event["sender"]["role"], day, event["message_id"],
                                             _context(rt, tenant, found, case)))


# --- task.updated and deadlines ------------------------------------------------------------------------------------


def _update_key(event: dict[str, Any]) -> str:
    """Stable per update (no text is kept: only a digest, made where the note was read), so a redelivered update
    is recognised."""
    return update_key(event)


def _case_of(rt: Runtime, tenant: Tenant, found: Consequences, case_id: str | None, what: str) -> dict | None:
    case = _checkout(rt, tenant, found, case_id) if case_id else None
    if case is None:
        log.warning("tenant=%s: %s for case %s, which does not exist", tenant.id, what, case_id)
    return case


def on_level_task_updated(rt: Runtime, tenant: Tenant, event: dict, info: dict, found: Consequences) -> None:
    """The task of a level (the ladder's, or a §12 route's investigation): acknowledge, escalate, resolve."""
    case = _case_of(rt, tenant, found, info.get("case_id"), "task.updated")
    if case is None:
        return
    key = _update_key(event)
    if not _first_time(case, f"u:{key}"):
        return
    update = {"status": event["status"], "outcome": event.get("outcome"), "noted": event["noted"], "key": key,
              "day": _day(tenant, event.get("completed_at") or event["timestamp"])}
    found.add(escalation.on_level_update(case, info["line"], info["level"], update,
                                         _context(rt, tenant, found, case)))


def on_activity_plan_updated(rt: Runtime, tenant: Tenant, event: dict, info: dict, found: Consequences) -> None:
    """An activity plan's task was completed or cancelled: recorded in the case's history."""
    case = _case_of(rt, tenant, found, info.get("case_id"), "task.updated")
    if case is None or event["status"] == "open" or not _first_time(case, f"u:{_update_key(event)}"):
        return
    day = _day(tenant, event.get("completed_at") or event["timestamp"])
    escalation.log(case, day, f"activity_plan_{event['status']}", rule=info["rule_id"])


def fire_deadline(rt: Runtime, tenant: Tenant, payload: dict, found: Consequences) -> None:
    case = _case_of(rt, tenant, found, payload.get("case_id"), "deadline")
    if case is not None:
        found.add(escalation.on_deadline(case, payload, _context(rt, tenant, found, case)))


EVENT_HANDLERS = {"message.created": on_messages}
# What each rule declares (``TRIGGERS``, see ``rules.triggers``), in the words this capability handles.
TASK_HANDLERS = {rule_id: {"level_task": on_level_task_updated, "activity_plan": on_activity_plan_updated}[
                     triggers.task_updated]
                 for rule_id, (_, triggers) in declared().items()
                 if triggers.task_updated in ("level_task", "activity_plan")}
DEADLINE_HANDLERS = {rule_id: fire_deadline for rule_id, (_, triggers) in declared().items()
                     if triggers.deadline == "case"}


# --- For people: ``connector cases show`` --------------------------------------------------------------------------


def describe(case: dict) -> list[str]:
    """The case as an admin reads it: what it is, where it stands on each line, and every step so far."""
    lines = [
        f"case {case['id']}: {case['status']}" + (f" (closed {case['closed_on']})" if case["closed_on"] else ""),
        f"category: {case['category']} (rule {case['rule']})",
        f"route: {case['route']}, track {case['track']}" + (f", accused: {case['accused']}" if case["accused"] else ""),
        f"opened: {case['opened_on']} by guardian {case['guardian'] or '-'}",
        f"pupils: {', '.join(case['pupils'])}",
        f"messages: {', '.join(case['messages'])}",
    ]
    for name, state in case["lines"].items():
        ladder = escalation.levels(case, name)
        level = ladder[state["level"]]
        feedback = ", ".join(state["feedback"]) or "none yet"
        lines.append(
            f"line {name}: {state['status']} at level {state['level'] + 1}/{len(ladder)} {level.key} since "
            f"{state['since']}; acknowledged {state['acknowledged'] or 'not yet'} (due {state['due']['ack']}); "
            f"feedback {feedback} (due {state['due']['feedback']})"
        )
    lines.append("history:")
    for entry in case["history"]:
        where = f"{entry['line']}/{entry['level']}" if "line" in entry else ""
        details = " ".join(f"{k}={v}" for k, v in entry.items() if k not in ("on", "step", "line", "level"))
        lines.append(f"  {entry['on']}  {entry['step']:<24} {where:<32} {details}".rstrip())
    return lines
