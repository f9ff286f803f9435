"""The escalation ladder (trappen): who holds a guardian's case, and how it climbs — only as far as it must.

The seed, in capitals: "saker skal alltid søkes løst på lavest mulig nivå – løft saken når det er nødvendig", and
"da bør det være en enighet/blitt snakket om før neste nivå kobles inn". So a case starts at the lowest level of its
track and moves up one level at a time, and only on an explicit escalation that carries the record of that talk.
Time never moves it: a missed deadline reminds the level's owner, a second miss (the grace period, counted from
the missed deadline, passing too) tells the level above as supervisor, and the case stays where it is.

Track B's parents' line is the one place where the level is not staff: the class parent rep (trinnkontakt) and FAU
are parents who volunteer, with no duty of confidentiality. So they get no task, no deadline and no reminder: the
level's start sends them an **invitation from the contact teacher** (an alert, ``escalation.invitation``) that names
no pupil, group, case or date, and leaves ``student_id`` and ``case_id`` empty (the contract requires ``student_id``
on an alert; ``null`` is how the connector already writes what is about no one pupil, as the prevention routines'
tasks do). The level's task, its deadlines and its time-outs are the contact teacher's, who invited them: a missed
deadline reminds the contact teacher, a second miss alerts the principal (:func:`owner`, :func:`supervisor`). The
parents' line still starts only when a school-line task is updated with ``outcome: involve_parents`` (DOMAIN §2).

A case is plain JSON data (see :func:`new_case`); the functions here update the case they are given and return the
effects (actions to send, deadlines to set or drop). They read no clock, Redis or HTTP: the caller passes the
school's calendar, the people holding each role and the dates found in the events.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Mapping, Protocol

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from connector.contract.actions import Action, Party, external_ref
from connector.rules import classify
from connector.rules.calendar import SchoolCalendar
from connector.rules.effects import Cancel, Schedule
from connector.rules.triggers import Triggers
from connector.rules.texts import long_date, render

RULE_LEVEL_TASK = "escalation.level_task"
RULE_REMINDER = "escalation.reminder"
RULE_SUPERVISOR = "escalation.supervisor_alert"
RULE_ESCALATED = "escalation.escalated"
RULE_ACTIVITY_PLAN = "escalation.activity_plan"
RULE_FEEDBACK = "escalation.feedback"
RULE_RESOLVED = "escalation.resolved"
RULE_INVITATION = "escalation.invitation"  # the parents' line: the volunteers' invitation, with no pupil data
INTAKE = "escalation.intake"  # plan section: keyword overrides for the message classification

OBLIGATIONS = ("ack", "feedback")
GUARDIAN_SIDE = frozenset({"guardian", "student"})
PARENT_ROLES = frozenset({"class_parent_rep", "parents_council"})


# --- Settings ------------------------------------------------------------------------------------------------------


class LadderSettings(Schema):
    enabled = fields.Boolean()
    # "The level acknowledges within 2 school days and gives the guardian feedback within 5" (DOMAIN §2).
    acknowledge_school_days = fields.Integer(validate=validate.Range(min=0, max=30))
    feedback_school_days = fields.Integer(validate=validate.Range(min=0, max=60))
    # After a miss, how long the owner has before the level above is told, counted from the missed deadline.
    second_miss_school_days = fields.Integer(validate=validate.Range(min=0, max=30))
    # Track B: the parents' line (class parent rep → FAU → principal) may be used. It starts only when a school-line
    # task is updated with ``outcome: involve_parents``, and then runs beside the school line.
    parents_line = fields.Boolean()


class IntakeSettings(Schema):
    """A school's own keyword rules on top of ``keywords.yaml``; checked by compiling them, so a bad phrase is a
    configuration error and not a surprise at the first message."""

    rules = fields.List(fields.Dict())
    disabled = fields.List(fields.String())
    ignore = fields.List(fields.String())
    words = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))

    @validates_schema
    def _compiles(self, data, **kwargs):
        try:
            classify.load_rules(data)  # compiled once: the worker then finds the same plan compiled
        except classify.RuleError as exc:
            raise ValidationError(str(exc)) from None


PLAN = {
    RULE_LEVEL_TASK: (
        {"enabled": True, "acknowledge_school_days": 2, "feedback_school_days": 5, "second_miss_school_days": 2,
         "parents_line": True},
        LadderSettings,
    ),
    INTAKE: ({"rules": [], "disabled": [], "ignore": [], "words": {}}, IntakeSettings),
}
TRIGGERS = {
    RULE_LEVEL_TASK: Triggers(task_updated="level_task"),
    RULE_ACTIVITY_PLAN: Triggers(task_updated="activity_plan"),
    RULE_REMINDER: Triggers(deadline="case"),
}


# --- The ladder as data --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    key: str  # names the level in texts and in the case history
    roles: tuple[str, ...]  # who holds it: the first role someone holds, else the first role as a role


CONTACT_TEACHER = Level("contact_teacher", ("contact_teacher",))
SCHOOL_ENVIRONMENT = Level("school_environment", ("social_teacher", "school_environment_team"))
CONTACT_WITH_SOCIAL = Level("contact_and_social_teacher", ("contact_teacher",))
NEAREST_LEADER = Level("nearest_leader", ("nearest_leader",))
PRINCIPAL = Level("principal", ("principal",))
SCHOOL_OWNER = Level("school_owner", ("school_owner",))
CLASS_PARENT_REP = Level("class_parent_rep", ("class_parent_rep",))
PARENTS_COUNCIL = Level("parents_council", ("parents_council",))

# track -> line -> levels, lowest first. "staff" tracks are the §12 immediate routes (rules/environment.py).
LADDERS: dict[str, dict[str, tuple[Level, ...]]] = {
    "A": {"school": (CONTACT_TEACHER, SCHOOL_ENVIRONMENT, NEAREST_LEADER, PRINCIPAL)},
    "B": {
        "school": (CONTACT_WITH_SOCIAL, NEAREST_LEADER, PRINCIPAL),
        "parents": (CLASS_PARENT_REP, PARENTS_COUNCIL, PRINCIPAL),
    },
    "staff": {"school": (PRINCIPAL,)},
    "staff_leadership": {"school": (SCHOOL_OWNER,)},
}
CASE_CATEGORIES = ("own_child_case", "several_children_case", "school_environment", "staff_involved")


def track_of(category: str, accused: str | None = None) -> str:
    if category == "several_children_case":
        return "B"
    if category == "staff_involved":
        return "staff_leadership" if accused == classify.ACCUSED_LEADERSHIP else "staff"
    return "A"


def route_of(category: str) -> str:
    """``ladder`` climbs from the bottom; ``environment`` and ``staff`` are the §12 routes that start higher."""
    return {"school_environment": "environment", "staff_involved": "staff"}.get(category, "ladder")


def levels(case: Mapping, line: str) -> tuple[Level, ...]:
    return LADDERS[case["track"]][line]


def volunteer(level: Level) -> bool:
    """A level held by parents who volunteer (class parent rep, FAU): not staff, no duty of confidentiality."""
    return bool(set(level.roles) & PARENT_ROLES)


def owner_level(case: Mapping, line: str, index: int) -> Level:
    """Who answers for a level's task and deadlines: its holder, except at a volunteer level, where the contact
    teacher who invited them does."""
    level = levels(case, line)[index]
    return CONTACT_TEACHER if volunteer(level) else level


def supervisor(case: Mapping, line: str, index: int) -> Level | None:
    """The level above as supervisor: the next level of the line; above the principal, the school owner. A volunteer
    never supervises and is never supervised: above a volunteer level (its owner is the contact teacher) it is the
    principal."""
    ladder = levels(case, line)
    if volunteer(ladder[index]):
        return PRINCIPAL
    if index + 1 < len(ladder):
        return ladder[index + 1]
    return SCHOOL_OWNER if ladder[index] == PRINCIPAL else None


# --- Context -------------------------------------------------------------------------------------------------------


class People(Protocol):
    def get(self, role: str) -> str | None: ...


@dataclass(frozen=True)
class Context:
    """What a rule may know besides the case: the tenant's plan, calendar and language, who holds each role, and
    the school's date today — used only to give a reminded person real time, never to judge when something
    happened (that comes from the events)."""

    tenant_id: str
    plan: Mapping[str, Mapping[str, Any]]
    calendar: SchoolCalendar
    language: str
    people: People
    today: date

    @property
    def settings(self) -> Mapping[str, Any]:
        return self.plan[RULE_LEVEL_TASK]


def party(level: Level, ctx: Context) -> Party:
    for role in level.roles:
        user = ctx.people.get(role)
        if user:
            return Party(role, user)
    return Party(level.roles[0])


def owner(case: Mapping, line: str, index: int, ctx: Context) -> Party:
    """The person who gets the level's task, reminders and refusals (see :func:`owner_level`)."""
    return party(owner_level(case, line, index), ctx)


# --- The case as data ----------------------------------------------------------------------------------------------


def new_case(
    case_id: str, category: str, rule_id: str, accused: str | None, pupils: list[str], guardian: str | None,
    message_id: str, opened_on: date,
) -> dict[str, Any]:
    """A case as stored: ids, dates and codes only — never a message's text."""
    return {
        "id": case_id,
        "category": category,
        "rule": rule_id,
        "route": route_of(category),
        "track": track_of(category, accused),
        "accused": accused if category == "staff_involved" else None,
        "pupils": list(pupils),
        "guardian": guardian,
        "messages": [message_id],
        "opened_on": opened_on.isoformat(),
        "status": "open",
        "closed_on": None,
        "lines": {},
        "history": [],
        "seen": [f"m:{message_id}"],
    }


def log(case: dict, day: date, step: str, line: str | None = None, **details: Any) -> None:
    entry: dict[str, Any] = {"on": day.isoformat(), "step": step}
    if line is not None:
        state = case["lines"][line]
        entry.update(line=line, level=levels(case, line)[state["level"]].key)
    entry.update({k: v for k, v in details.items() if v is not None})
    case["history"].append(entry)


def deadline_id(case_id: str, line: str, index: int, obligation: str) -> str:
    return f"escalation|{case_id}|{line}|{index}|{obligation}"


def open_lines(case: Mapping) -> list[str]:
    return [name for name, state in case["lines"].items() if state["status"] == "open"]


def parents_line_usable(case: Mapping, ctx: "Context") -> bool:
    """Track B's parents' line exists for this case and the school uses it (the ``parents_line`` setting)."""
    return "parents" in LADDERS[case["track"]] and bool(ctx.settings["parents_line"])


# --- Texts ---------------------------------------------------------------------------------------------------------


def text(ctx: Context, text_id: str, **values: Any) -> str:
    return render(ctx.language, text_id, **values)


def level_name(ctx: Context, level: Level) -> str:
    return text(ctx, f"escalation.level.{level.key}")


# The roles DOMAIN.md names; a sender with another role (the platform's own) is shown by its code.
NAMED_ROLES = ("contact_teacher", "subject_teacher", "social_teacher", "school_environment_team", "resource_person",
               "nearest_leader", "principal", "school_owner", "class_parent_rep", "parents_council")


def role_name(ctx: Context, role: str) -> str:
    return text(ctx, f"escalation.role.{role}") if role in NAMED_ROLES else role


def case_values(case: Mapping, ctx: Context, line: str | None = None) -> dict[str, str]:
    values = {
        "case_id": case["id"],
        "pupils": ", ".join(case["pupils"]),
        "reported_on": long_date(date.fromisoformat(case["opened_on"]), ctx.language),
        "category_name": text(ctx, f"escalation.category.{case['category']}"),
    }
    if line is not None:
        state = case["lines"][line]
        ladder = levels(case, line)
        level = ladder[state["level"]]
        values.update(
            level_name=level_name(ctx, level),
            owner_name=text(ctx, f"escalation.owner.{level.key}") if volunteer(level) else level_name(ctx, level),
            level_number=str(state["level"] + 1),
            level_count=str(len(ladder)),
            track_name=text(ctx, f"escalation.track.{case['track']}.{line}"),
        )
    return values


def note(case: Mapping, ctx: Context, rule_id: str, occurrence: str, body: str) -> Action:
    return Action(
        kind="note",
        external_ref=external_ref(ctx.tenant_id, rule_id, case["id"], occurrence, "note"),
        rule_id=rule_id,
        student_id=case["pupils"][0],
        title="",
        body=body,
        visibility="staff",
        case_id=case["id"],
    )


def alert(case: Mapping, ctx: Context, rule_id: str, occurrence: str, to: Party, title: str, body: str,
          severity: str = "warning") -> Action:
    return Action(
        kind="alert",
        external_ref=external_ref(ctx.tenant_id, rule_id, case["id"], occurrence, "alert"),
        rule_id=rule_id,
        student_id=case["pupils"][0],
        assignee=to,
        title=title,
        body=body,
        severity=severity,
        case_id=case["id"],
    )


def task(case: Mapping, ctx: Context, rule_id: str, line: str, index: int, to: Party, title: str, body: str,
         due: date, priority: str = "normal") -> Action:
    """A task about a level of a case; ``extra`` lets a later ``task.updated`` find the case, line and level."""
    return Action(
        kind="task",
        external_ref=external_ref(ctx.tenant_id, rule_id, case["id"], f"{line}:{index}", "task"),
        rule_id=rule_id,
        student_id=case["pupils"][0],
        assignee=to,
        title=title,
        body=body,
        due_date=due.isoformat(),
        priority=priority,
        case_id=case["id"],
        extra={"line": line, "level": index},
    )


# --- Levels --------------------------------------------------------------------------------------------------------


def _last_day(ctx: Context, start: date, school_days: int) -> date:
    return ctx.calendar.add_school_days(start, school_days)


def _schedule(case: Mapping, ctx: Context, line: str, index: int, obligation: str, last_day: date, miss: int):
    """Due at midnight after the last school day of the deadline: the whole day counts."""
    return Schedule(
        deadline_id(case["id"], line, index, obligation),
        ctx.calendar.start_of_day(last_day + timedelta(days=1)),
        {"rule_id": RULE_REMINDER, "case_id": case["id"], "line": line, "level": index, "obligation": obligation,
         "miss": miss, "due": last_day.isoformat()},
    )


def cancel_level(case: Mapping, line: str) -> list[Cancel]:
    index = case["lines"][line]["level"]
    return [Cancel(deadline_id(case["id"], line, index, obligation)) for obligation in OBLIGATIONS]


def start_level(
    case: dict, line: str, index: int, day: date, ctx: Context, *, why: str, level_task: Action | None = None,
    ack_school_days: int | None = None,
) -> list:
    """Hand the case to a level on ``day``: its task, its two deadlines, and on track A's second level the
    activity plan. ``level_task`` replaces the ladder's own task (the §12 routes' investigation task)."""
    settings = ctx.settings
    ack_days = settings["acknowledge_school_days"] if ack_school_days is None else ack_school_days
    ack_last = _last_day(ctx, day, ack_days)
    feedback_last = _last_day(ctx, day, settings["feedback_school_days"])
    case["lines"][line] = {
        "level": index, "since": day.isoformat(), "status": "open", "acknowledged": None, "feedback": [],
        "talk": None, "request": None, "paused": False,
        "due": {"ack": ack_last.isoformat(), "feedback": feedback_last.isoformat()},
        "misses": {"ack": 0, "feedback": 0},
    }
    level = levels(case, line)[index]
    holder = owner(case, line, index, ctx)
    effects: list = [
        _schedule(case, ctx, line, index, "ack", ack_last, 0),
        _schedule(case, ctx, line, index, "feedback", feedback_last, 0),
    ]
    if level_task is None:
        duties = text(ctx, f"escalation.duties.{case['track']}.{line}.{level.key}")
        if line == "school" and "parents" not in case["lines"] and parents_line_usable(case, ctx):
            duties += " " + text(ctx, "escalation.involve_parents.hint")
        values = {
            **case_values(case, ctx, line),
            "why": why,
            "duties": duties,
            "ack_due": long_date(ack_last, ctx.language),
            "feedback_due": long_date(feedback_last, ctx.language),
        }
        which = "escalation.invited_task" if volunteer(level) else "escalation.level_task"
        level_task = task(
            case, ctx, RULE_LEVEL_TASK, line, index, holder,
            text(ctx, f"{which}.title", **values), text(ctx, f"{which}.body", **values), feedback_last,
        )
    effects.append(level_task)
    if volunteer(level):
        effects.append(invitation(case, ctx, line, index, level))
    if case["track"] == "A" and level == SCHOOL_ENVIRONMENT and case["route"] == "ladder":
        effects.append(_activity_plan(case, ctx, line, index, holder, day, feedback_last))
    return effects


def invitation(case: Mapping, ctx: Context, line: str, index: int, level: Level) -> Action:
    """The volunteers' invitation, as from the contact teacher: no pupil, group, case or evidence in any field they
    see, no deadline and nothing that will remind them. Only the key, derived from the case, line and level (and
    hashed), ties it to the case, so a retried job sends it once."""
    values = {"as_role": text(ctx, f"escalation.invitation.as.{level.key}")}
    return Action(
        kind="alert",
        external_ref=external_ref(ctx.tenant_id, RULE_INVITATION, case["id"], f"{line}:{index}", "alert"),
        rule_id=RULE_INVITATION,
        student_id=None,
        assignee=party(level, ctx),
        title=text(ctx, "escalation.invitation.title", **values),
        body=text(ctx, "escalation.invitation.body", **values),
        severity="info",
    )


def _activity_plan(case: dict, ctx: Context, line: str, index: int, holder: Party, day: date, due: date) -> Action:
    """Track A, level 2: "en eventuell aktivitetsplan utarbeides i samarbeid med kontaktlærer og foresatt"."""
    values = {**case_values(case, ctx, line), "due_date": long_date(due, ctx.language)}
    log(case, day, "activity_plan_requested", line)
    return task(case, ctx, RULE_ACTIVITY_PLAN, line, index, holder,
                text(ctx, "escalation.activity_plan.title", **values),
                text(ctx, "escalation.activity_plan.body", **values), due)


def open_case(case: dict, ctx: Context, day: date) -> list:
    """A ladder case (track A or B) opens with one level task: the lowest level of the school line. Track B's
    parents' line starts later, and only if a school-line level asks for it (:func:`involve_parents`)."""
    line = "school"
    why = text(ctx, "escalation.why.created", **case_values(case, ctx))
    effects = start_level(case, line, 0, day, ctx, why=why)
    log(case, day, "created", line)
    effects.append(note(case, ctx, RULE_LEVEL_TASK, "created", text(
        ctx, "escalation.created.body", **case_values(case, ctx), holders=level_name(ctx, levels(case, line)[0]),
        rule=case["rule"], guardian=case["guardian"] or "-",
        messages=", ".join(case["messages"]), track_name=text(ctx, f"escalation.track.{case['track']}"),
    )))
    return effects


# --- What people do ------------------------------------------------------------------------------------------------


def _acknowledge(case: dict, line: str, day: date) -> list:
    state = case["lines"][line]
    if state["acknowledged"]:
        return []
    state["acknowledged"] = day.isoformat()
    log(case, day, "acknowledged", line)
    return [Cancel(deadline_id(case["id"], line, state["level"], "ack"))]


def on_level_update(case: dict, line: str, index: int, update: Mapping[str, Any], ctx: Context) -> list:
    """A ``task.updated`` for the task of level ``index`` on ``line``.

    ``update``: ``status``, ``outcome``, ``noted`` (whether the update has a note: the record of the talk; its
    text is not queued, kept nor quoted, the escalation note points to the task instead), ``day`` (the school's date
    of ``completed_at``, else of the event) and ``key`` (stable per update, for idempotency keys). An update for an
    earlier level's task changes nothing: the case moved on.
    """
    state = case["lines"].get(line)
    if case["status"] != "open" or state is None or state["status"] != "open" or state["level"] != index:
        return []
    day: date = update["day"]
    noted = bool(update.get("noted"))
    status, outcome = update["status"], update.get("outcome")
    effects = _acknowledge(case, line, day)
    if noted:
        state["talk"] = day.isoformat()
    if status == "cancelled":
        state["paused"] = True
        log(case, day, "task_cancelled", line)
        return effects + cancel_level(case, line)
    if outcome == "escalate":
        if noted:
            agreement = _agreement_noted(case, line, index, day, ctx)
            return effects + escalate(case, line, day, ctx, by="level", agreement=agreement)
        return effects + _refuse(case, line, day, ctx, update["key"], "escalation.not_escalated")
    if outcome == "involve_parents":
        return effects + involve_parents(case, line, day, ctx, update["key"])
    if outcome in ("resolved", "no_action") or (status == "completed" and outcome is None):
        return effects + resolve(case, line, day, ctx, outcome or "completed")
    if outcome == "external_involved":
        log(case, day, "external_involved", line)
    if noted and state["request"]:
        agreement = _agreement_noted(case, line, index, day, ctx)
        return effects + escalate(case, line, day, ctx, by="guardian", agreement=agreement)
    return effects


def _agreement_noted(case: dict, line: str, index: int, day: date, ctx: Context) -> str:
    """Where the talk is recorded: the note on the level's task, of that day. Never the note's words: they are a
    teacher's free text about a child, shown by the platform to those allowed to read the task."""
    return text(ctx, "escalation.agreement.noted", level=level_name(ctx, levels(case, line)[index]),
                talk_date=long_date(day, ctx.language))


def on_guardian_request(case: dict, day: date, message_id: str, rule_id: str, ctx: Context) -> list:
    """The guardian asks for the case to be lifted. It moves only once the level has recorded the talk: at once if
    a note on the level's task already did, otherwise when the next one does (the level is told so)."""
    lines = open_lines(case)
    if case["status"] != "open" or not lines:
        return []
    line = "school" if "school" in lines else lines[0]
    state = case["lines"][line]
    log(case, day, "escalation_requested", line, message=message_id, rule=rule_id)
    if state["talk"] and state["talk"] >= state["since"]:
        agreement = text(ctx, "escalation.agreement.earlier",
                         talk_date=long_date(date.fromisoformat(state["talk"]), ctx.language))
        return escalate(case, line, day, ctx, by="guardian", agreement=agreement)
    state["request"] = {"message": message_id, "on": day.isoformat()}
    return _refuse(case, line, day, ctx, f"request:{message_id}", "escalation.guardian_request")


def involve_parents(case: dict, line: str, day: date, ctx: Context, key: str) -> list:
    """Track B: a school-line level brings in the class parent rep ("ved behov kobles ... trinnkontakt inn"), and the
    parents' line starts at its lowest level beside the school line — once: asked again, nothing starts twice.
    Where there is no parents' line to start (track A, the §12 routes, a school that does not use it), the level's
    owner is told so."""
    if "parents" in case["lines"]:
        return []
    if line != "school" or not parents_line_usable(case, ctx):
        log(case, day, "parents_line_refused", line,
            reason="not_used_by_school" if "parents" in LADDERS[case["track"]] else "no_parents_line")
        return _refuse(case, line, day, ctx, key, "escalation.no_parents_line")
    by = levels(case, line)[case["lines"][line]["level"]]
    values = {**case_values(case, ctx), "from_level": level_name(ctx, by), "involved_on": long_date(day, ctx.language),
              "to_level": level_name(ctx, levels(case, "parents")[0])}
    effects = start_level(case, "parents", 0, day, ctx, why=text(ctx, "escalation.why.parents_involved", **values))
    log(case, day, "line_started", "parents", by=by.key)
    effects.append(note(case, ctx, RULE_LEVEL_TASK, "parents",
                        text(ctx, "escalation.parents_involved.body", **values)))
    return effects


def _refuse(case: dict, line: str, day: date, ctx: Context, key: str, text_id: str) -> list:
    """Nothing moved (no record of the talk, the top of the ladder, no parents' line): tell the level's owner why
    and what to do."""
    state = case["lines"][line]
    values = case_values(case, ctx, line)
    if text_id == "escalation.not_escalated":
        log(case, day, "escalation_refused", line, reason="no_agreement_note")
    return [alert(case, ctx, RULE_LEVEL_TASK, f"{line}:{state['level']}:{key}", owner(case, line, state["level"], ctx),
                  text(ctx, f"{text_id}.title", **values), text(ctx, f"{text_id}.body", **values))]


def escalate(case: dict, line: str, day: date, ctx: Context, *, by: str, agreement: str) -> list:
    """One level up, never more. At the top there is no level above: the owner is told, the case stays."""
    state = case["lines"][line]
    ladder = levels(case, line)
    index = state["level"]
    if index + 1 >= len(ladder):
        log(case, day, "escalation_refused", line, reason="top_of_ladder")
        state["request"] = None
        return _refuse(case, line, day, ctx, f"top:{day.isoformat()}", "escalation.top_reached")
    from_level, to_level = ladder[index], ladder[index + 1]
    effects: list = cancel_level(case, line)
    values = {**case_values(case, ctx, line), "from_level": level_name(ctx, from_level),
              "to_level": level_name(ctx, to_level), "escalated_on": long_date(day, ctx.language),
              "agreement": agreement, "requested_by": text(ctx, f"escalation.requested_by.{by}")}
    log(case, day, "escalated", line, to=to_level.key, by=by, agreement_recorded=True)
    which = "escalation.escalated.body_invited" if volunteer(to_level) else "escalation.escalated.body"
    effects.append(note(case, ctx, RULE_ESCALATED, f"{line}:{index}->{index + 1}", text(ctx, which, **values)))
    holder = next((other for other in open_lines(case) if other != line
                   and levels(case, other)[case["lines"][other]["level"]] == to_level), None)
    if holder is not None:
        # Track B's two lines meet at the principal: the one arriving second joins the case already there.
        state["status"] = "joined"
        log(case, day, "joined", line, to=to_level.key, with_line=holder)
        return effects
    why = text(ctx, "escalation.why.escalated", **values)
    return effects + start_level(case, line, index + 1, day, ctx, why=why)


def resolve(case: dict, line: str, day: date, ctx: Context, how: str) -> list:
    """``resolved`` (or ``no_action``, or a completed task without an outcome) closes the whole case."""
    state = case["lines"][line]
    effects: list = []
    for name in open_lines(case):
        effects += cancel_level(case, name)
        case["lines"][name]["status"] = "closed"
    case["status"] = "resolved"
    case["closed_on"] = day.isoformat()
    feedback = bool(state["feedback"])
    log(case, day, "resolved", line, how=how, feedback_given=feedback)
    values = {**case_values(case, ctx, line), "closed_on": long_date(day, ctx.language),
              "how": text(ctx, f"escalation.how.{how}"),
              "feedback": text(ctx, f"escalation.feedback_state.{'given' if feedback else 'missing'}")}
    effects.append(note(case, ctx, RULE_RESOLVED, "case", text(ctx, "escalation.resolved.body", **values)))
    return effects


def accepts_feedback_from(line: str, role: str, level: Level | None = None) -> bool:
    """Who can give the guardian feedback for a line: on the school line any staff ("directly or through the levels
    below"); on the parents' line the class parent rep, FAU or the principal, and, at a volunteer level, the contact
    teacher who owns its deadlines (a reminder must ask for something its owner can do)."""
    if role in GUARDIAN_SIDE:
        return False
    if line == "parents":
        return role in PARENT_ROLES or role == "principal" or (
            role == "contact_teacher" and level is not None and volunteer(level))
    return role not in PARENT_ROLES


def on_feedback(case: dict, sender_role: str, day: date, message_id: str, ctx: Context) -> list:
    """A message to the guardian about the case's pupil is feedback to every open line that accepts the sender,
    if it was written on or after the day the line's level took the case."""
    if case["status"] != "open":
        return []
    effects: list = []
    for line in open_lines(case):
        state = case["lines"][line]
        level = levels(case, line)[state["level"]]
        if not accepts_feedback_from(line, sender_role, level) or day.isoformat() < state["since"]:
            continue
        effects += _acknowledge(case, line, day)
        state["feedback"].append(day.isoformat())
        effects.append(Cancel(deadline_id(case["id"], line, state["level"], "feedback")))
        log(case, day, "feedback", line, by=sender_role, message=message_id)
        values = {**case_values(case, ctx, line), "given_on": long_date(day, ctx.language),
                  "sender": role_name(ctx, sender_role)}
        effects.append(note(case, ctx, RULE_FEEDBACK, f"{line}:{state['level']}:{message_id}",
                            text(ctx, "escalation.feedback.body", **values)))
    return effects


# --- Deadlines -----------------------------------------------------------------------------------------------------


def on_deadline(case: dict, payload: Mapping[str, Any], ctx: Context) -> list:
    """A level's acknowledge or feedback deadline fell due. If it is still unmet: the first miss reminds the owner
    and sets a second deadline; the second tells the level above as supervisor. The case never moves here.

    The grace period counts from the missed deadline, not from the day the connector noticed (DOMAIN §2). When the
    events arrived late and the second deadline has passed too, it fires at once, in the same run, after the
    reminder: a case reported long after the fact gets its reminder and its supervisor alert together.
    """
    line, index, obligation, miss = payload["line"], payload["level"], payload["obligation"], payload["miss"]
    state = case["lines"].get(line)
    if case["status"] != "open" or state is None or state["status"] != "open" or state["level"] != index:
        return []
    if state["paused"] or (state["acknowledged"] if obligation == "ack" else state["feedback"]):
        return []
    due = date.fromisoformat(payload["due"])
    if miss == 0:
        new_last = _last_day(ctx, due, ctx.settings["second_miss_school_days"])
        effects = _first_miss(case, ctx, line, index, obligation, due, new_last)
        if new_last >= ctx.today:  # the whole of new_last still counts
            return effects + [_schedule(case, ctx, line, index, obligation, new_last, 1)]
        return effects + _second_miss(case, ctx, line, index, obligation, new_last)
    return _second_miss(case, ctx, line, index, obligation, due)


def _miss_values(case: Mapping, ctx: Context, line: str, obligation: str, due: date) -> dict[str, str]:
    return {**case_values(case, ctx, line), "due": long_date(due, ctx.language),
            "obligation": text(ctx, f"escalation.obligation.{obligation}"),
            "obligation_do": text(ctx, f"escalation.obligation_do.{obligation}")}


def _first_miss(case: dict, ctx: Context, line: str, index: int, obligation: str, due: date, new_last: date) -> list:
    """Remind the level's owner, with the new deadline ``new_last``."""
    state = case["lines"][line]
    state["misses"][obligation] = 1
    state["due"][obligation] = new_last.isoformat()
    above = supervisor(case, line, index)
    values = _miss_values(case, ctx, line, obligation, due)
    values.update(
        new_due=long_date(new_last, ctx.language),
        next_step=text(ctx, "escalation.next_step.supervisor", supervisor_name=level_name(ctx, above))
        if above else text(ctx, "escalation.next_step.none"),
    )
    occurrence = f"{line}:{index}:{obligation}"
    log(case, ctx.today, "reminded", line, obligation=obligation, due=due.isoformat())
    return [
        alert(case, ctx, RULE_REMINDER, occurrence, owner(case, line, index, ctx),
              text(ctx, "escalation.reminder.title", **values), text(ctx, "escalation.reminder.body", **values)),
        note(case, ctx, RULE_REMINDER, occurrence, text(ctx, "escalation.reminder.note", **values)),
    ]


def _second_miss(case: dict, ctx: Context, line: str, index: int, obligation: str, due: date) -> list:
    """The grace period ending ``due`` passed too: tell the level above as supervisor."""
    state = case["lines"][line]
    state["misses"][obligation] = 2
    above = supervisor(case, line, index)
    values = _miss_values(case, ctx, line, obligation, due)
    occurrence = f"{line}:{index}:{obligation}"
    if above is None:  # the school owner holds it: nobody above in the school's ladder, remind once more
        log(case, ctx.today, "reminded", line, obligation=obligation, due=due.isoformat())
        values.update(new_due=text(ctx, "escalation.asap"), next_step=text(ctx, "escalation.next_step.none"))
        return [
            alert(case, ctx, RULE_REMINDER, occurrence + ":again", owner(case, line, index, ctx),
                  text(ctx, "escalation.reminder.title", **values), text(ctx, "escalation.reminder.body", **values)),
            note(case, ctx, RULE_REMINDER, occurrence + ":again", text(ctx, "escalation.reminder.note", **values)),
        ]
    values["supervisor_name"] = level_name(ctx, above)
    log(case, ctx.today, "supervisor_alerted", line, obligation=obligation, supervisor=above.key, due=due.isoformat())
    return [
        alert(case, ctx, RULE_SUPERVISOR, occurrence, party(above, ctx),
              text(ctx, "escalation.supervisor_alert.title", **values),
              text(ctx, "escalation.supervisor_alert.body", **values)),
        note(case, ctx, RULE_SUPERVISOR, occurrence, text(ctx, "escalation.supervisor_alert.note", **values)),
    ]
