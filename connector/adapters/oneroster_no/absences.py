"""One absence record of the Absence Service as the contract's attendance marks, and nothing more.

The record's fields are read here and only here (``FIELDS``), so what the README says is verified and what is not
stays in one place. Of a record only ids, dates, the type code and whether it is documented are read: its comment is
health data (a child's illness, a family's matters) and is never copied into an event, a log line or Redis.

An absence becomes one ``attendance.marked`` per weekday it covers: a whole day (no class affected) on the day's
own key, a part of a day (a class, a lesson) on a key of its own, the record's ``sourcedId`` as the lesson's id. So a
later edit of the same record lands on the same place, exactly as a late mark does for a webhook platform: a changed
type or documentation rewrites the day, ``status: tobedeleted`` marks it ``present`` (the absence is gone), and a
moved date clears the days it no longer covers. For that, what a record covered when it was last queued is
remembered (``Seen``: its ``dateLastModified``, first and last day and whether it was a whole day; ids and dates only).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Mapping

from connector.contract.terms import OSLO

FIELDS = {
    "id": "sourcedId",
    "status": "status",  # "active" or "tobedeleted" (OneRoster 1.2's base status)
    "modified": "dateLastModified",
    "student": "student",  # a GUIDRef {sourcedId, type, href}
    "classes": "classesAffected",  # a GUIDRef or a list of them (docs.onedhub.io integration guide)
    "start": ("startTime", "startDate"),
    "end": ("endTime", "endDate"),
    "type": "absenceType",
    "documented": ("documented", "documentation"),
}
MAX_DAYS = 62  # a longer record is cut here: an absence of more than a term is a case for people, not a mark a day
NOT_DOCUMENTED = frozenset({"", "none", "false", "no", "undocumented", "udokumentert", "ikke dokumentert"})

# The built-in reading of type codes (lower case); a school adds or overrides its platform's own in the settings.
# ``None`` for documented: read the record's documentation field.
DEFAULT_TYPES: dict[str, tuple[str, bool | None]] = {
    "absent": ("absent", None), "absence": ("absent", None), "fravær": ("absent", None), "fravaer": ("absent", None),
    "documented": ("absent", True), "dokumentert": ("absent", True),
    "undocumented": ("absent", False), "udokumentert": ("absent", False),
    "late": ("late", None), "tardy": ("late", None), "forsentkomming": ("late", None), "forsent": ("late", None),
    "leftearly": ("left_early", None), "left_early": ("left_early", None), "earlydeparture": ("left_early", None),
}


@dataclass(frozen=True)
class Seen:
    """What one record covered when it was last queued (``store.polls`` keeps it packed)."""

    modified: str
    first: str
    last: str
    whole_day: bool

    def pack(self) -> str:
        return f"{self.modified}|{self.first}|{self.last}|{int(self.whole_day)}"

    @classmethod
    def unpack(cls, raw: str | bytes | None) -> "Seen | None":
        if not raw:
            return None
        text = raw.decode() if isinstance(raw, bytes) else raw
        try:
            modified, first, last, whole = text.split("|")
        except ValueError:
            return None
        return cls(modified, first, last, whole == "1")


@dataclass(frozen=True)
class Mapped:
    events: list[dict[str, Any]]
    seen: Seen | None  # None: the record could not be read (``problem`` says why)
    problem: str | None = None
    unknown_type: str | None = None


class BadRecord(ValueError):
    pass


def record_id(record: Mapping[str, Any]) -> str | None:
    value = record.get(FIELDS["id"])
    return value if isinstance(value, str) and 0 < len(value) <= 200 and value.isprintable() else None


def modified_at(record: Mapping[str, Any]) -> datetime | None:
    """``dateLastModified`` as an aware datetime (UTC when the server gives no zone), or ``None``."""
    value = record.get(FIELDS["modified"])
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=OSLO)


def to_marks(record: Mapping[str, Any], previous: Seen | None,
             types: Mapping[str, tuple[str, bool | None]] = DEFAULT_TYPES) -> Mapped:
    """The events one record (new, edited or deleted) gives, and what to remember of it."""
    try:
        rid, moment = _required(record)
        student = _ref_id(record.get(FIELDS["student"]), "student")
        first, last, minutes = _span(record)
    except BadRecord as exc:
        return Mapped([], None, problem=str(exc))
    whole_day = not _refs(record.get(FIELDS["classes"]))
    days = _weekdays(first, last)
    stamp = moment.isoformat()
    stamp_key = record[FIELDS["modified"]]
    deleted = str(record.get(FIELDS["status"], "active")).lower() == "tobedeleted"
    events: list[dict[str, Any]] = []
    unknown = None
    if deleted:
        cleared = set(days)
    else:
        status, documented, unknown = _reading(record, types)
        for day in days:
            events.append(_mark(stamp, student, day, status, documented, None if whole_day else rid,
                                minutes if status != "absent" else None))
        cleared = set()
    if previous is not None:
        old_days = _weekdays(date.fromisoformat(previous.first), date.fromisoformat(previous.last))
        if previous.whole_day != whole_day:
            stale = [(day, previous.whole_day) for day in old_days]
        else:
            stale = [(day, whole_day) for day in old_days if day not in days]
        for day, was_whole in stale:
            events.append(_mark(stamp, student, day, "present", False, None if was_whole else rid, None))
    for day in sorted(cleared):
        events.append(_mark(stamp, student, day, "present", False, None if whole_day else rid, None))
    seen = Seen(stamp_key, first.isoformat(), last.isoformat(), whole_day)
    return Mapped(events, seen, unknown_type=unknown)


def _required(record: Mapping[str, Any]) -> tuple[str, datetime]:
    rid = record_id(record)
    if rid is None:
        raise BadRecord("no usable sourcedId")
    moment = modified_at(record)
    if moment is None:
        raise BadRecord("no usable dateLastModified")
    return rid, moment


def _refs(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value] if value else []
    return [item["sourcedId"] for item in items if isinstance(item, dict) and isinstance(item.get("sourcedId"), str)]


def _ref_id(value: Any, what: str) -> str:
    ids = _refs(value) if isinstance(value, (dict, list)) else [value] if isinstance(value, str) else []
    ident = ids[0] if ids else None
    if not ident or len(ident) > 200 or not ident.isprintable():
        raise BadRecord(f"no usable {what}")
    return ident


def _moment(record: Mapping[str, Any], names: tuple[str, ...]) -> tuple[date, datetime | None]:
    for name in names:
        value = record.get(name)
        if not isinstance(value, str) or not value:
            continue
        if len(value) == 10:
            try:
                return date.fromisoformat(value), None
            except ValueError:
                raise BadRecord(f"{name} is no date") from None
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise BadRecord(f"{name} is no date-time") from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=OSLO)
        return moment.astimezone(OSLO).date(), moment
    raise BadRecord(f"no {' or '.join(names)}")


def _span(record: Mapping[str, Any]) -> tuple[date, date, int | None]:
    first, start = _moment(record, FIELDS["start"])
    try:
        last, end = _moment(record, FIELDS["end"])
    except BadRecord:
        last, end = first, None
    if last < first:
        raise BadRecord("ends before it starts")
    last = min(last, first + timedelta(days=MAX_DAYS - 1))
    minutes = None
    if start is not None and end is not None and first == last:
        span = int((end - start).total_seconds() // 60)
        minutes = span if 0 < span <= 24 * 60 else None
    return first, last, minutes


def _weekdays(first: date, last: date) -> list[str]:
    """Monday to Friday: a weekend is no school day anywhere (holidays are the rules' calendar's business)."""
    days, day = [], first
    while day <= last:
        if day.weekday() < 5:
            days.append(day.isoformat())
        day += timedelta(days=1)
    return days


def _reading(record: Mapping[str, Any], types: Mapping[str, tuple[str, bool | None]]):
    raw = record.get(FIELDS["type"])
    code = raw.strip().lower() if isinstance(raw, str) else ""
    known = types.get(code)
    status, documented = known if known else ("absent", None)
    if documented is None:
        documented = _documented(record)
    unknown = None if known or not code else (code if len(code) <= 50 and code.isprintable() else "(unreadable)")
    return status, documented, unknown


def _documented(record: Mapping[str, Any]) -> bool:
    for name in FIELDS["documented"]:
        value = record.get(name)
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return value.strip().lower() not in NOT_DOCUMENTED
        if isinstance(value, (dict, list)) and value:
            return True  # a reference to a document (a doctor's note): documented
    return False


def _mark(stamp: str, student: str, day: str, status: str, documented: bool, lesson_id: str | None,
          minutes: int | None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "attendance.marked", "timestamp": stamp, "student_id": student, "date": day,
                             "status": status, "documented": documented}
    if lesson_id is not None:
        event["lesson"] = {"id": lesson_id}
    if minutes is not None:
        event["minutes"] = minutes
    return event
