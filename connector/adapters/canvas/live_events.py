"""From a verified Live Event (``{"metadata": {...}, "body": {...}}``) to the connector's internal events.

``EVENT_FUNCTION_MAPPER`` is the one list of what this adapter understands; every other ``event_name`` is answered
``202`` as ignored. Canvas ids in event bodies may be global ids (shard * 10^13 + local id); they are turned into
the local ids the REST API uses, so a pupil has the same id whichever way Canvas mentions them.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Callable, Mapping

from marshmallow import ValidationError

from connector.contract.terms import OSLO
from connector.contract.events import flatten_errors, load_event

SHARD_FACTOR = 10**13
PENDING = "canvas"  # key of the ids a pending event carries from ``receive`` to ``prepare``
ENROLLED_STATES = ("active", "invited", "creation_pending")


class EventRejected(Exception):
    """A signed event whose content cannot be used; ``fields`` name what is missing or wrong."""

    def __init__(self, fields: dict[str, list[str]]):
        super().__init__(", ".join(sorted(fields)))
        self.fields = fields


def local_id(value: Any, field: str) -> str:
    text = str(value).strip() if value is not None and not isinstance(value, bool) else ""
    if not text.isdigit():
        raise EventRejected({f"body.{field}": ["Expected a Canvas id."]})
    return str(int(text) % SHARD_FACTOR)


def content_digest(metadata: Mapping[str, Any], body: Mapping[str, Any]) -> str:
    """Same event, same digest: Canvas re-sends the same metadata and body, whatever JWT wraps them."""
    raw = json.dumps({"metadata": metadata, "body": body}, sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def _internal(event_type: str, timestamp: str, data: dict[str, Any]) -> dict[str, Any]:
    try:
        event = load_event({"type": event_type, "timestamp": timestamp, "data": data})
    except ValidationError as exc:
        raise EventRejected(flatten_errors(exc.messages)) from None
    assert event is not None
    return event


def _time(value: Any, field: str) -> str:
    text = str(value or "")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise EventRejected({field: ["Not a valid ISO 8601 time."]}) from None
    if moment.tzinfo is None:
        raise EventRejected({field: ["Time has no zone."]})
    return moment.isoformat()


class Mapped:
    """One Live Event's translation: a dedupe id and events, or the name it is ignored under."""

    def __init__(self, delivery_id: str, events: list[dict[str, Any]] | None = None, ignored: str | None = None):
        self.delivery_id = delivery_id
        self.events = events or []
        self.ignored = ignored


def conversation_message_created(metadata: Mapping[str, Any], body: Mapping[str, Any], group_by: str) -> Mapped:
    """Carries ids only: the text, the recipients and the pupils are fetched in ``prepare`` (see messages.py).
    The message's own id is unique per event, so it is the dedupe key."""
    message_id = local_id(body.get("message_id"), "message_id")
    pending = {
        "type": "message.created",
        "timestamp": _time(metadata.get("event_time"), "metadata.event_time"),
        PENDING: {
            "message_id": message_id,
            "conversation_id": local_id(body.get("conversation_id"), "conversation_id"),
            "author_id": local_id(body.get("author_id"), "author_id"),
            "created_at": _time(body.get("created_at"), "body.created_at"),
        },
    }
    return Mapped(f"conversation_message_created:{message_id}", [pending])


def enrollment_created(metadata: Mapping[str, Any], body: Mapping[str, Any], group_by: str) -> Mapped:
    """A pupil's enrollment in a course (or its section, when groups are sections) is ``student.enrolled``, dated
    by when Canvas created it, in Oslo. Other enrollment types are not events the plan acts on."""
    enrollment_id = local_id(body.get("enrollment_id"), "enrollment_id")
    delivery_id = f"enrollment_created:{enrollment_id}"
    kind = str(body.get("type") or "")
    if kind != "StudentEnrollment" or body.get("workflow_state") not in ENROLLED_STATES:
        return Mapped(delivery_id, ignored=f"enrollment_created:{kind or 'unknown'}")
    group_field = "course_id" if group_by == "course" else "course_section_id"
    created = datetime.fromisoformat(_time(body.get("created_at"), "body.created_at"))
    event = _internal("student.enrolled", _time(metadata.get("event_time"), "metadata.event_time"), {
        "student_id": local_id(body.get("user_id"), "user_id"),
        "group_id": local_id(body.get(group_field), group_field),
        "date": created.astimezone(OSLO).date().isoformat(),
    })
    return Mapped(delivery_id, [event])


EVENT_FUNCTION_MAPPER: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any], str], Mapped]] = {
    "conversation_message_created": conversation_message_created,
    "enrollment_created": enrollment_created,
}
ALL_EVENT_TYPES = tuple(EVENT_FUNCTION_MAPPER)


def envelope(claims: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Live Event's two parts, checked before anything else is read from them."""
    metadata, body = claims.get("metadata"), claims.get("body")
    problems = {}
    if not isinstance(metadata, dict):
        problems["metadata"] = ["Missing or not an object."]
    if not isinstance(body, dict):
        problems["body"] = ["Missing or not an object."]
    if problems:
        raise EventRejected(problems)
    return metadata, body


def translate(metadata: Mapping[str, Any], body: Mapping[str, Any], group_by: str) -> Mapped:
    name = metadata.get("event_name")
    if not isinstance(name, str) or not name:
        raise EventRejected({"metadata.event_name": ["Missing."]})
    handler = EVENT_FUNCTION_MAPPER.get(name)
    if handler is None:
        return Mapped(f"{name[:100]}:{content_digest(metadata, body)}", ignored=name[:100])
    return handler(metadata, body, group_by)
