"""Notes as Moodle *site* notes about the pupil (``core_notes_create_notes``, ``publishstate=site``).

A site note is shown to the pupil's teachers in every course (notes' ``publishstate_help``) and not to the pupil,
who lacks ``moodle/notes:view``; that is the "staff" visibility the contract asks for, without knowing the course.
Moodle has no note a guardian can see.

``clientnoteid`` is only echoed back, so the note ends with the same marker line as messages, and before writing,
the pupil's site notes are read (``core_notes_get_course_notes``) for a note already carrying it.
"""
from __future__ import annotations

from connector.contract.actions import Action
from connector.adapters.base import SendResult
from connector.adapters.moodle.messages import FORMAT_PLAIN, marker
from connector.adapters.moodle.webservice import WebService

SITE_COURSE_ID = 1  # Moodle's SITEID; a site note is stored under it whatever course is given


def note_text(action: Action) -> str:
    title = f"{action.title}\n\n" if action.title else ""
    return f"{title}{action.body}\n\n{marker(action.external_ref)}"


def find_written(ws: WebService, student: int, external_ref: str) -> int | None:
    answer = ws.call("core_notes_get_course_notes", courseid=SITE_COURSE_ID, userid=student) or {}
    for group in ("sitenotes", "coursenotes", "personalnotes"):
        for note in answer.get(group) or []:
            if marker(external_ref) in str(note.get("content") or ""):
                return int(note["id"])
    return None


def create(ws: WebService, student: int, action: Action) -> SendResult:
    function = "core_notes_create_notes"
    answer = ws.call(function, notes=[{
        "userid": student, "publishstate": "site", "courseid": SITE_COURSE_ID, "text": note_text(action),
        "format": FORMAT_PLAIN, "clientnoteid": action.external_ref,
    }])
    first = answer[0] if isinstance(answer, list) and answer and isinstance(answer[0], dict) else None
    if first is None:
        return SendResult("retry", status=200, reason=f"{function}: unexpected answer")
    noteid = int(first.get("noteid") or -1)
    if noteid > 0:
        return SendResult("done", remote_id=str(noteid), status=200)
    return SendResult("dead", status=200, reason=f"{function}: Moodle refused the note (noteid -1)")
