"""Completing a ``conversation_message_created`` Live Event, which carries ids only, from the Conversations API.

Canvas shows a conversation only to its participants, so the message is read *as its author* (masquerading with
``as_user_id``; the author always participates) and with ``auto_mark_as_read=false``, so reading it changes nothing
anyone sees. The text, the subject and the recipients live only in the job; nothing here logs them.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from marshmallow import ValidationError

from connector.adapters.canvas.api import CanvasApi, CanvasError
from connector.adapters.canvas.live_events import PENDING
from connector.adapters.canvas.roster import Roster, RosterCache
from connector.contract.events import load_event

log = logging.getLogger(__name__)


def _course_of(conversation: dict[str, Any]) -> str | None:
    code = str(conversation.get("context_code") or "")
    prefix, _, number = code.partition("_")
    return number if prefix == "course" and number.isdigit() else None


def _message(conversation: dict[str, Any], message_id: str) -> dict[str, Any] | None:
    for message in conversation.get("messages") or ():
        if isinstance(message, dict) and str(message.get("id")) == message_id:
            return message
    return None


class MessageReader:
    def __init__(self, api: CanvasApi, rosters: RosterCache, own_user_id: Callable[[], str | None]):
        self.api = api
        self.rosters = rosters
        self.own_user_id = own_user_id

    def complete(self, tenant: str, event: dict[str, Any]) -> dict[str, Any] | None:
        """The full ``message.created``, or ``None`` when there is nothing to act on (said at info, by id only)."""
        ids = event[PENDING]
        author, message_id = ids["author_id"], ids["message_id"]
        if author == self.own_user_id():
            log.info("tenant=%s: Canvas message %s is the connector's own; not handled", tenant, message_id)
            return None
        try:
            conversation = self.api.get(
                f"/api/v1/conversations/{ids['conversation_id']}",
                {"auto_mark_as_read": "false", "include_participant_contexts": "false"}, as_user=author,
            )
        except CanvasError as exc:
            if exc.status == 404:
                log.info("tenant=%s: Canvas message %s can no longer be read (deleted); not handled",
                         tenant, message_id)
                return None
            raise
        message = _message(conversation, message_id) if isinstance(conversation, dict) else None
        if message is None:
            log.info("tenant=%s: Canvas message %s is not in its conversation any more; not handled",
                     tenant, message_id)
            return None
        course = _course_of(conversation)
        roster = self.rosters.get("course", course) if course else Roster([], {})  # no course: roles unknown
        recipients = [str(u) for u in message.get("participating_user_ids") or () if str(u) != author]
        pupils = set(roster.pupils_of(author))
        for user in recipients:
            pupils.update(roster.pupils_of(user))
        data: dict[str, Any] = {
            "message_id": message_id,
            "sender": {"id": author, "role": roster.role_of(author)},
            "recipients": [{"id": u, "role": roster.role_of(u)} for u in recipients],
            "student_ids": sorted(pupils),
            "created_at": ids["created_at"],
            "body": str(message.get("body") or ""),
        }
        if conversation.get("subject"):
            data["subject"] = str(conversation["subject"])
        try:
            return load_event({"type": "message.created", "timestamp": event["timestamp"], "data": data})
        except ValidationError as exc:
            log.warning("tenant=%s: Canvas message %s does not fit message.created (%s); not handled",
                        tenant, message_id, ", ".join(sorted(exc.messages)))
            return None
