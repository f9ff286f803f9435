"""The reference contract's event schemas (``shared/CONTRACT.md``), which are also the connector's internal events.

Loading returns plain JSON-ready dicts (dates stay ISO strings) holding only the fields the contract names: a
platform that sends more (a pupil's name, say) has it dropped here, before anything is queued.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Iterable, Protocol

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from connector.contract.terms import CATEGORIES, OSLO

STATUSES = ("present", "absent", "late", "left_early")
REASON_CODES = ("illness", "medical", "family", "school_refusal", "other")
TASK_STATUSES = ("open", "completed", "cancelled")
OUTCOMES = ("resolved", "escalate", "involve_parents", "external_involved", "no_action")

MAX_MARKS = 5000


class IsoDate(fields.String):
    """A ``YYYY-MM-DD`` date, kept as its string so the event stays JSON as it travels through the queue."""

    def _deserialize(self, value, attr, data, **kwargs):
        return iso_date(super()._deserialize(value, attr, data, **kwargs))


def iso_date(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat() if len(text) == 10 else _bad_date()
    except ValueError:
        raise ValidationError("Not a valid date (YYYY-MM-DD).") from None


def _bad_date():
    raise ValueError


class IsoDateTime(fields.String):
    """An RFC 3339 timestamp with its offset; a time without a zone cannot be placed on a school day."""

    def _deserialize(self, value, attr, data, **kwargs):
        return iso_datetime(super()._deserialize(value, attr, data, **kwargs))


def iso_datetime(text: str) -> str:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValidationError("Not a valid RFC 3339 timestamp.") from None
    if moment.tzinfo is None:
        raise ValidationError("Timestamp needs a time-zone offset (e.g. Z or +01:00).")
    return moment.isoformat()


# Ids end up in Redis keys, log lines and URLs: no control characters (C0, DEL, C1, and the line and paragraph
# separators, which some log viewers break lines on), so one cannot forge a log line. No string of an event may hold
# a lone surrogate (JSON's "\ud800" escape gives one): it cannot be encoded as UTF-8, so the job would fail on it
# at every try. Both refused at the door, 422 naming the field.
_NOT_IN_IDS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_SURROGATES = re.compile("[\ud800-\udfff]")


def _clean_id(value: str) -> None:
    if _NOT_IN_IDS.search(value):
        raise ValidationError("Must not contain control characters or lone surrogates.")


def _clean_text(value: str) -> None:
    if _SURROGATES.search(value):
        raise ValidationError("Must not contain lone surrogates (text must be encodable as UTF-8).")


def _id(max_length: int = 200, **kwargs) -> fields.String:
    return fields.String(validate=[validate.Length(min=1, max=max_length), _clean_id], **kwargs)


def _text(max_length: int, **kwargs) -> fields.String:
    return fields.String(validate=[validate.Length(max=max_length), _clean_text], **kwargs)


class _Strict(Schema):
    class Meta:
        unknown = EXCLUDE


class LessonSchema(_Strict):
    id = _id(required=True)
    subject = _text(200)
    start = _text(40)
    end = _text(40)


class MarkSchema(_Strict):
    student_id = _id(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    documented = fields.Boolean(required=True, truthy={True}, falsy={False})
    reason = _text(2000)
    minutes = fields.Integer(validate=validate.Range(min=0, max=24 * 60), strict=True)


class RegisterSchema(_Strict):
    date = IsoDate(required=True)
    group_id = _id(required=True)
    marks = fields.List(fields.Nested(MarkSchema), required=True, validate=validate.Length(max=MAX_MARKS))
    lesson = fields.Nested(LessonSchema, allow_none=True)


class MarkedSchema(MarkSchema):
    date = IsoDate(required=True)
    group_id = _id()
    lesson = fields.Nested(LessonSchema, allow_none=True)


class NoticeSchema(_Strict):
    student_id = _id(required=True)
    from_date = IsoDate(required=True)
    to_date = IsoDate(required=True)
    reason = _text(5000, required=True)
    reason_code = fields.String(validate=validate.OneOf(REASON_CODES))
    guardian_id = _id()
    channel = _text(50)

    @validates_schema
    def _range(self, data, **kwargs):
        if "from_date" in data and "to_date" in data and data["to_date"] < data["from_date"]:
            raise ValidationError("Must not be before from_date.", "to_date")


class PartySchema(_Strict):
    id = _id(required=True)
    role = _id(50, required=True)


class MessageSchema(_Strict):
    message_id = _id(required=True)
    sender = fields.Nested(PartySchema, required=True)
    recipients = fields.List(fields.Nested(PartySchema), required=True)
    student_ids = fields.List(_id(), required=True)
    created_at = IsoDateTime(required=True)
    body = _text(100_000)
    subject = _text(1000)
    category = fields.String(validate=validate.OneOf(CATEGORIES))


class TaskUpdatedSchema(_Strict):
    external_ref = _id(required=True)
    status = fields.String(required=True, validate=validate.OneOf(TASK_STATUSES))
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))
    completed_at = IsoDateTime()
    note = _text(10_000)


class EnrolledSchema(_Strict):
    student_id = _id(required=True)
    group_id = _id(required=True)
    date = IsoDate(required=True)


EVENT_SCHEMAS: dict[str, Schema] = {
    "attendance.register": RegisterSchema(),
    "attendance.marked": MarkedSchema(),
    "absence.notice": NoticeSchema(),
    "message.created": MessageSchema(),
    "task.updated": TaskUpdatedSchema(),
    "student.enrolled": EnrolledSchema(),
}
EVENT_TYPES = tuple(EVENT_SCHEMAS)


class EnvelopeSchema(_Strict):
    type = _id(100, required=True)  # an ignored type is counted in Redis and logged
    timestamp = IsoDateTime(required=True)
    data = fields.Dict(required=True)


ENVELOPE = EnvelopeSchema()


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Marshmallow's nested error dict as ``{"data.marks.3.status": [...]}``: one line per field for the sender."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_errors(value, path))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = messages
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


_STATUSES = frozenset(STATUSES)


def quick_marks(marks: Any) -> list[dict[str, Any]] | None:
    """A register's marks checked in plain Python, for the morning burst: marshmallow costs ~15 µs a mark.

    Accepts only what ``MarkSchema`` accepts and returns what it returns; anything else, valid or not, is ``None``
    and goes to marshmallow, which also writes the error messages (``test_quick_marks_agree_with_marshmallow``).
    """
    if type(marks) is not list or len(marks) > MAX_MARKS:
        return None
    clean = []
    for mark in marks:
        if type(mark) is not dict:
            return None
        student, status, documented = mark.get("student_id"), mark.get("status"), mark.get("documented")
        if type(student) is not str or not 0 < len(student) <= 200 or status not in _STATUSES:
            return None
        if not student.isprintable():  # printable has no control character or surrogate; else marshmallow decides
            return None
        if type(documented) is not bool:
            return None
        out = {"student_id": student, "status": status, "documented": documented}
        if "reason" in mark:
            if not _text_ok(mark["reason"], 2000):
                return None
            out["reason"] = mark["reason"]
        if "minutes" in mark:
            if type(mark["minutes"]) is not int or not 0 <= mark["minutes"] <= 24 * 60:
                return None
            out["minutes"] = mark["minutes"]
        clean.append(out)
    return clean


class _RegisterHead(RegisterSchema):
    """A register without its marks, which ``quick_marks`` checks."""

    marks = fields.Raw(load_default=None)


_REGISTER_HEAD = _RegisterHead()


def _id_ok(value: Any, limit: int = 200) -> bool:
    """What ``_id`` accepts, or less: an id that is not printable (a space other than " ", say) goes to marshmallow."""
    return type(value) is str and 0 < len(value) <= limit and value.isprintable()


def _text_ok(value: Any, limit: int) -> bool:
    """What ``_text`` accepts: ASCII text needs no search for surrogates, and most text is ASCII."""
    return type(value) is str and len(value) <= limit and (value.isascii() or not _SURROGATES.search(value))


def quick_register_head(data: dict[str, Any]) -> dict[str, Any] | None:
    """``_RegisterHead.load`` in plain Python (marshmallow costs ~20 µs for these few fields), for a register whose
    date, group and lesson are all well formed; anything else is ``None`` and goes to marshmallow, as in
    ``quick_marks``. The keys come in the schema's order, so the queued job's bytes are the same either way."""
    day, group = data.get("date"), data.get("group_id")
    if type(day) is not str or not _id_ok(group):
        return None
    try:
        head = {"date": iso_date(day), "group_id": group, "marks": None}  # the caller puts the checked marks here
    except ValidationError:
        return None
    if "lesson" in data:
        lesson = data["lesson"]
        if lesson is not None:
            if type(lesson) is not dict or not _id_ok(lesson.get("id")):
                return None
            lesson = {name: lesson[name] for name in ("id", "subject", "start", "end") if name in lesson}
            if not all(_text_ok(lesson[name], limit) for name, limit in _LESSON_LIMITS if name in lesson):
                return None
        head["lesson"] = lesson
    return head


_LESSON_LIMITS = (("subject", 200), ("start", 40), ("end", 40))


def quick_envelope(envelope: dict[str, Any]) -> dict[str, Any] | None:
    """``ENVELOPE.load`` in plain Python for a well-formed envelope (type, timestamp, data); else ``None``."""
    kind, stamp, data = envelope.get("type"), envelope.get("timestamp"), envelope.get("data")
    if not _id_ok(kind, 100) or type(stamp) is not str or type(data) is not dict:
        return None
    try:
        return {"type": kind, "timestamp": iso_datetime(stamp), "data": data}
    except ValidationError:
        return None


def load_data(event_type: str, data: Any, quick: bool = True) -> dict[str, Any]:
    """One event's ``data`` validated by its schema (a register by the quick paths when they allow)."""
    schema = EVENT_SCHEMAS[event_type]
    if quick and event_type == "attendance.register" and type(data) is dict:
        marks = quick_marks(data.get("marks"))
        if marks is not None:
            head = quick_register_head(data) or _REGISTER_HEAD.load(data)
            head["marks"] = marks
            return head
    return schema.load(data)


def load_event(envelope: dict[str, Any], quick: bool = True) -> dict[str, Any] | None:
    """Validate one envelope; the internal event, or ``None`` for a type this version does not know.

    Raises ``ValidationError`` with messages keyed by the envelope's own field names (``data.marks.0.status``).
    """
    head = (quick and type(envelope) is dict and quick_envelope(envelope)) or ENVELOPE.load(envelope)
    if head["type"] not in EVENT_SCHEMAS:
        return None
    try:
        data = load_data(head["type"], head["data"], quick)
    except ValidationError as exc:
        raise ValidationError({"data": exc.messages}) from None
    return {"type": head["type"], "timestamp": head["timestamp"], **data}


# --- Time windows: the dates the door refuses (CONTRACT.md, "Time") -------------------------------------------------


class SchoolYears(Protocol):
    """What the windows need of a school's calendar (``rules.calendar.SchoolCalendar`` has it): its years, each with
    a ``first_day``."""

    years: tuple

# Which fields are judged, and how: "past" (no later than today, a mark cannot be of tomorrow), "year" (no later
# than a year from today: notices and enrolments are sent ahead) or "instant" (an RFC 3339 time no later than a day
# from now, clocks and zones being what they are). Every one of them no earlier than the first day of the previous
# school year. The envelope's ``timestamp`` is judged as an instant for every event type.
WINDOWS: dict[str, tuple[tuple[str, str], ...]] = {
    "attendance.register": (("date", "past"),),
    "attendance.marked": (("date", "past"),),
    "absence.notice": (("from_date", "year"), ("to_date", "year")),
    "message.created": (("created_at", "instant"),),
    "task.updated": (("completed_at", "instant"),),
    "student.enrolled": (("date", "year"),),
}
AHEAD = timedelta(days=1)  # how far into the future an instant may lie


def previous_school_year_start(today: date, calendar: SchoolYears | None = None) -> date:
    """The first day of the school year before the one ``today`` belongs to (a Norwegian school year starts in
    August, so on 2026-11-23 that is the 2025-26 year): the school's own first day when its calendar has that year,
    else 1 August of it."""
    start = (today.year if today.month >= 8 else today.year - 1) - 1
    for year in calendar.years if calendar is not None else ():
        if year.first_day.year == start:
            return year.first_day
    return date(start, 8, 1)


def a_year_after(today: date) -> date:
    return today.replace(year=today.year + 1) if (today.month, today.day) != (2, 29) else date(today.year + 1, 2, 28)


def check_windows(events: Iterable[dict[str, Any]], now: datetime, calendar: SchoolYears | None = None) -> None:
    """Refuse events dated outside a sane window; the door calls it for every adapter's events after ``receive``.

    The window, with today the school's date (Europe/Oslo) of ``now`` and "the previous school year" as in
    ``previous_school_year_start``:

    - an attendance mark (``attendance.register`` and ``attendance.marked`` ``date``): from the first day of the
      previous school year to today;
    - a notice (``absence.notice`` ``from_date`` and ``to_date``) and an enrolment (``student.enrolled`` ``date``):
      from the first day of the previous school year to the same date a year from today (a notice more than a
      school year ahead is refused);
    - a message's ``created_at``, a task's ``completed_at`` and every envelope's ``timestamp``: from the start (Oslo
      midnight) of the previous school year's first day to 24 hours after ``now``.

    Raises ``ValidationError`` with messages keyed like the schema errors (``data.date``, ``timestamp``; with more
    than one event in a delivery, ``events.<n>.data.date``). Fields an event does not carry (a platform's event
    still to be completed by its ``prepare``) are not judged; a value that does not parse was refused before.
    """
    events = list(events)
    bounds, earliest_instant = _bounds(now.astimezone(OSLO).date(), calendar)
    latest_instant = now + AHEAD
    errors: dict[str, list[str]] = {}
    for n, event in enumerate(events):
        prefix = f"events.{n}." if len(events) > 1 else ""
        judged = (("timestamp", "instant", "timestamp"),) + tuple(
            (name, kind, f"data.{name}") for name, kind in WINDOWS.get(event.get("type"), ()))
        for name, kind, path in judged:
            value = event.get(name)
            if type(value) is not str:
                continue
            if kind == "instant":
                problem = _instant_outside(value, earliest_instant, latest_instant)
            else:
                problem = _date_outside(value, *bounds[kind])
            if problem:
                errors[prefix + path] = [problem]
    if errors:
        raise ValidationError(errors)


@lru_cache(maxsize=64)
def _bounds(today: date, calendar: SchoolYears | None) -> tuple[dict[str, tuple[date, date]], datetime]:
    """The day's windows, once a day per school: the door asks on every request. The earliest instant is in UTC,
    which compares faster than a time zone's."""
    earliest = previous_school_year_start(today, calendar)
    instant = datetime(earliest.year, earliest.month, earliest.day, tzinfo=OSLO).astimezone(timezone.utc)
    return {"past": (earliest, today), "year": (earliest, a_year_after(today))}, instant


def _date_outside(text: str, earliest: date, latest: date) -> str | None:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    if day < earliest:
        return f"Too early: must not be before {earliest.isoformat()} (the previous school year)."
    if day > latest:
        return f"Too late: must not be after {latest.isoformat()}."
    return None


def _instant_outside(text: str, earliest: datetime, latest: datetime) -> str | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    if moment < earliest:  # aware comparisons, no conversion: year 1 and 9999 compare without overflowing
        return f"Too early: must not be before {earliest.astimezone(OSLO).isoformat()} (the previous school year)."
    if moment > latest:
        return f"Too late: must not be more than a day in the future (after {latest.isoformat()})."
    return None
