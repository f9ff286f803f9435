"""The reference contract's event schemas (``shared/CONTRACT.md``), which are also the connector's internal events.

Loading returns plain JSON-ready dicts (dates stay ISO strings) holding only the fields the contract names: a
platform that sends more (a pupil's name, say) has it dropped here, before anything is queued.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from connector.contract.terms import CATEGORIES

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


def _id(**kwargs) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=200), **kwargs)


class _Strict(Schema):
    class Meta:
        unknown = EXCLUDE


class LessonSchema(_Strict):
    id = _id(required=True)
    subject = fields.String(validate=validate.Length(max=200))
    start = fields.String(validate=validate.Length(max=40))
    end = fields.String(validate=validate.Length(max=40))


class MarkSchema(_Strict):
    student_id = _id(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    documented = fields.Boolean(required=True, truthy={True}, falsy={False})
    reason = fields.String(validate=validate.Length(max=2000))
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
    reason = fields.String(required=True, validate=validate.Length(max=5000))
    reason_code = fields.String(validate=validate.OneOf(REASON_CODES))
    guardian_id = _id()
    channel = fields.String(validate=validate.Length(max=50))

    @validates_schema
    def _range(self, data, **kwargs):
        if "from_date" in data and "to_date" in data and data["to_date"] < data["from_date"]:
            raise ValidationError("Must not be before from_date.", "to_date")


class PartySchema(_Strict):
    id = _id(required=True)
    role = fields.String(required=True, validate=validate.Length(min=1, max=50))


class MessageSchema(_Strict):
    message_id = _id(required=True)
    sender = fields.Nested(PartySchema, required=True)
    recipients = fields.List(fields.Nested(PartySchema), required=True)
    student_ids = fields.List(_id(), required=True)
    created_at = IsoDateTime(required=True)
    body = fields.String(validate=validate.Length(max=100_000))
    subject = fields.String(validate=validate.Length(max=1000))
    category = fields.String(validate=validate.OneOf(CATEGORIES))


class TaskUpdatedSchema(_Strict):
    external_ref = _id(required=True)
    status = fields.String(required=True, validate=validate.OneOf(TASK_STATUSES))
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))
    completed_at = IsoDateTime()
    note = fields.String(validate=validate.Length(max=10_000))


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
    type = fields.String(required=True, validate=validate.Length(min=1, max=100))
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
        if type(documented) is not bool:
            return None
        out = {"student_id": student, "status": status, "documented": documented}
        if "reason" in mark:
            if type(mark["reason"]) is not str or len(mark["reason"]) > 2000:
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


def _id_ok(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= 200


def _text_ok(value: Any, limit: int) -> bool:
    return type(value) is str and len(value) <= limit


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
    if type(kind) is not str or not 0 < len(kind) <= 100 or type(stamp) is not str or type(data) is not dict:
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
