"""mod_attendance's session, as ``mod_attendance_get_session`` answers it, turned into the contract's events.

The answer holds the session (``sessdate``, ``duration``, ``groupid``), the instance's ``statuses`` (id, acronym,
description, grade) and the ``attendance_log`` (``studentid``, ``statusid``, ``remarks``). It also lists the
session's ``users`` with their names: those are never read here, so no name leaves this module.

Statuses are per attendance instance and localisable, so each log entry is translated through its status's
*acronym* and the tenant's mapping. For an acronym the mapping does not know, a warning names it and the status's
``grade`` decides, because the grade is mod_attendance's own, language-independent meaning of a status: the
instance's full grade (above zero) means the pupil attended, so it reads as present; anything less reads as absence
without a notice. Retrying instead would never succeed (it is configuration, not an outage) and would hold back the
whole register; reading every unknown status as present would hide absences the plan exists to follow up, and
reading every one as absent would, on a freshly localised instance, remind every guardian of the school. A status
below full grade read as absence is a visible, cheap-to-correct reminder; a hidden absence is neither.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

UNKNOWN = {"status": "absent", "documented": False}
ATTENDED = {"status": "present", "documented": False}


@dataclass
class Translation:
    """Marks of one session, and the acronyms (with their status ids) no mapping covered."""

    marks: list[dict[str, Any]] = field(default_factory=list)
    unknown: dict[str, str] = field(default_factory=dict)  # status id -> acronym ("?" for a hidden status)


def group_id(session: Mapping[str, Any]) -> str:
    """``"<courseid>"`` for a session for the whole course, ``"<courseid>:<groupid>"`` for a group's session."""
    course, group = int(session["courseid"]), int(session.get("groupid") or 0)
    return f"{course}:{group}" if group else str(course)


def lesson(session: Mapping[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    start = datetime.fromtimestamp(int(session["sessdate"]), tz=zone)
    end = datetime.fromtimestamp(int(session["sessdate"]) + int(session.get("duration") or 0), tz=zone)
    return {"id": f"attendance-session-{int(session['id'])}", "start": start.strftime("%H:%M"),
            "end": end.strftime("%H:%M")}


def session_date(session: Mapping[str, Any], zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(int(session["sessdate"]), tz=zone).date().isoformat()


def translate(session: Mapping[str, Any], mapping: Mapping[str, Mapping[str, Any]]) -> Translation:
    """One mark per log entry, ordered by pupil id; entries without a pupil id are skipped."""
    statuses = {str(status["id"]): status for status in session.get("statuses") or [] if isinstance(status, Mapping)}
    full_grade = max((_grade(status) for status in statuses.values()), default=0.0)
    lookup = {key.casefold(): value for key, value in mapping.items()}
    result = Translation()
    entries = sorted(session.get("attendance_log") or [], key=lambda entry: int(entry.get("studentid") or 0))
    for entry in entries:
        if not entry.get("studentid"):
            continue
        status_id = str(entry.get("statusid"))
        status = statuses.get(status_id, {})
        acronym = str(status.get("acronym") or "?")
        mapped = mapping.get(acronym) or lookup.get(acronym.casefold())
        if mapped is None:
            result.unknown[status_id] = acronym
            mapped = ATTENDED if full_grade > 0 and _grade(status) == full_grade else UNKNOWN
        result.marks.append({"student_id": str(int(entry["studentid"])), "status": mapped["status"],
                             "documented": bool(mapped["documented"])})
    return result


def _grade(status: Mapping[str, Any]) -> float:
    try:
        return float(status.get("grade") or 0)
    except (TypeError, ValueError):
        return 0.0


def warn_unknown(tenant: str, adapter: str, session_id: int, unknown: Mapping[str, str]) -> None:
    for status_id, acronym in sorted(unknown.items()):
        log.warning(
            "tenant=%s adapter=%s: attendance status %r (status id %s, session %s) is not under statuses:; "
            "read by its grade (full grade: present, else absent without a notice) until it is mapped",
            tenant, adapter, acronym, status_id, session_id,
        )


def register(session: Mapping[str, Any], event_time: str, translation: Translation, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "type": "attendance.register",
        "timestamp": event_time,
        "date": session_date(session, zone),
        "group_id": group_id(session),
        "lesson": lesson(session, zone),
        "marks": translation.marks,
    }


def marked(session: Mapping[str, Any], event_time: str, translation: Translation, student_id: str,
           zone: ZoneInfo) -> dict[str, Any] | None:
    """The pupil's own mark, or ``None`` when the log holds none for them (nothing to record)."""
    mark = next((m for m in translation.marks if m["student_id"] == student_id), None)
    if mark is None:
        return None
    return {
        "type": "attendance.marked",
        "timestamp": event_time,
        **mark,
        "date": session_date(session, zone),
        "group_id": group_id(session),
        "lesson": lesson(session, zone),
    }
