"""What Moodle posts, and what the connector makes of it.

The ``local_webhooks`` plugin (valentineus/moodle-webhooks) posts ``\\core\\event\\base::get_data()`` of each event it
is subscribed to, with the service's ``token`` added to the same object: as JSON (release 4.0.0-rc.2,
``classes/task/process_events_task.php``; older builds also add ``host`` and ``extra``) or, from the 2019 ``notify``
task, as PHP form fields (``other[sessionid]=42``). A relay may instead sign the same event object per Standard
Webhooks; then the headers carry the proof and the body needs no token.

``EVENT_MAPPER`` is the one list of the events this adapter understands. An attendance event carries only ids (no
pupil's status: ``attendance_taken`` has ``other.sessionid`` and nothing else), so it becomes a *pending* internal
event that ``prepare`` completes in the worker with mod_attendance's web services.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import datetime, timezone
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from connector.adapters.base import InboundError

ATTENDANCE_TAKEN = "\\mod_attendance\\event\\attendance_taken"
ATTENDANCE_TAKEN_BY_STUDENT = "\\mod_attendance\\event\\attendance_taken_by_student"
ROLE_ASSIGNED = "\\core\\event\\role_assigned"
CONTEXT_COURSE = 50
PENDING = "moodle"  # key of a pending event's ids; ``prepare`` replaces the whole event
ENVELOPE_ONLY = ("token", "host", "extra")  # what local_webhooks adds to the event; not part of the event
FORM = "application/x-www-form-urlencoded"
_BRACKETS = re.compile(r"\[([^\[\]]*)\]")


class FieldErrors(Exception):
    def __init__(self, fields: Mapping[str, list[str]]):
        super().__init__(", ".join(sorted(fields)))
        self.fields = dict(fields)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json(media: str) -> bool:
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def php_form(body: bytes) -> dict[str, Any]:
    """PHP's reading of ``a[b][c]=v`` form fields as nested mappings (what Moodle's curl class sends)."""
    result: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False):
        head = key.split("[", 1)[0]
        path = [head, *_BRACKETS.findall(key[len(head):])]
        node = result
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = value
    return result


def parse_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    media = media_type(content_type)
    try:
        if is_json(media) or (media == FORM and body.lstrip()[:1] == b"{"):
            # The plugin's form-encoded content type sends the same JSON under a form header: a form field never
            # starts with "{", so the body says which it is.
            data = json.loads(body)
        elif media == FORM:
            data = php_form(body)
        else:
            raise InboundError(415, "unsupported_media_type",
                               "The body must be JSON or form fields, as the local_webhooks plugin posts it.")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InboundError(400, "malformed_body", "The body is not valid JSON or form data.") from None
    if not isinstance(data, dict):
        raise InboundError(422, "invalid_event", "The body must be a JSON object.", {"_schema": ["Not an object."]})
    return data


def token_matches(given: Any, tokens: list[str]) -> bool:
    """Constant-time comparison against every configured token (all are compared, whatever matches first)."""
    if not isinstance(given, str) or not given:
        return False
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given.encode(), token.encode())
    return matched


def delivery_id(event: Mapping[str, Any]) -> str:
    """local_webhooks sends no delivery id, but a redelivered event is the same event: the same name, ids, ``other``
    and ``timecreated``. Values are compared as text, because the JSON and the form variants type them differently."""
    identity = {k: _as_text(v) for k, v in event.items() if k not in ENVELOPE_ONLY}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"moodle-{digest[:40]}"


def _as_text(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return {str(i): _as_text(v) for i, v in enumerate(value)}
    return "" if value is None or value is False else str(value)


def integer(event: Mapping[str, Any], *path: str, minimum: int = 1) -> int:
    """An id from the event, given as a number or as digits (the form variant and old Moodle versions send text)."""
    value: Any = event
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    if isinstance(value, bool):
        value = None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value < minimum:
        raise FieldErrors({".".join(path): [f"Expected an integer id (at least {minimum})."]})
    return value


def timestamp(event: Mapping[str, Any]) -> str:
    return datetime.fromtimestamp(integer(event, "timecreated"), tz=timezone.utc).isoformat()


def local_date(event: Mapping[str, Any], zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(integer(event, "timecreated"), tz=zone).date().isoformat()


def _session_ids(event: Mapping[str, Any]) -> dict[str, int]:
    errors: dict[str, list[str]] = {}
    ids: dict[str, int] = {}
    for name, path in (("sessionid", ("other", "sessionid")), ("courseid", ("courseid",))):
        try:
            ids[name] = integer(event, *path)
        except FieldErrors as exc:
            errors.update(exc.fields)
    try:
        timestamp(event)
    except FieldErrors as exc:
        errors.update(exc.fields)
    if errors:
        raise FieldErrors(errors)
    return ids


def attendance_taken(event: Mapping[str, Any], settings: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """A teacher took (or changed) a session's register: the whole register, fetched in ``prepare``."""
    ids = _session_ids(event)
    return [{"type": "attendance.register", "timestamp": timestamp(event), PENDING: ids}]


def attendance_taken_by_student(event: Mapping[str, Any], settings: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """A pupil marked their own attendance: one mark, the acting user's, fetched in ``prepare``."""
    ids = _session_ids(event)
    ids["studentid"] = integer(event, "userid")
    return [{"type": "attendance.marked", "timestamp": timestamp(event), PENDING: ids}]


def role_assigned(event: Mapping[str, Any], settings: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """A pupil got the student role in a course; any other role, or a role outside a course, is not an enrolment."""
    if integer(event, "contextlevel") != CONTEXT_COURSE or integer(event, "objectid") not in settings["student_role_ids"]:
        return None
    return [{
        "type": "student.enrolled",
        "timestamp": timestamp(event),
        "student_id": str(integer(event, "relateduserid")),
        "group_id": str(integer(event, "courseid")),
        "date": local_date(event, ZoneInfo(settings["timezone"])),
    }]


EVENT_MAPPER: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], list[dict[str, Any]] | None]] = {
    ATTENDANCE_TAKEN: attendance_taken,
    ATTENDANCE_TAKEN_BY_STUDENT: attendance_taken_by_student,
    ROLE_ASSIGNED: role_assigned,
}
EVENT_NAMES = tuple(EVENT_MAPPER)
