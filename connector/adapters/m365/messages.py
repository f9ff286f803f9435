"""A Teams ``chatMessage`` (as Graph's GET returns it) turned into the contract's ``message.created``.

Only ids, roles, times and the text travel on; display names never leave this module, and the text only lives
inside the job, as for every other adapter.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any, Callable

MAX_BODY = 100_000
MAX_SUBJECT = 1000
WHITESPACE = re.compile(r"[ \t\r\f\v]+")


class _Text(HTMLParser):
    BREAKS = {"br", "p", "div", "li", "tr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.BREAKS:
            self.parts.append("\n")

    def handle_data(self, data):
        self.parts.append(data)


def plain_text(body: dict[str, Any] | None) -> str:
    """Teams sends ``html`` for most messages; the rules read words, so tags go and line breaks stay."""
    if not isinstance(body, dict) or not isinstance(body.get("content"), str):
        return ""
    content = body["content"]
    if str(body.get("contentType", "")).lower() == "html":
        parser = _Text()
        parser.feed(content)
        parser.close()
        content = "".join(parser.parts)
    lines = (WHITESPACE.sub(" ", line).strip() for line in content.split("\n"))
    return "\n".join(line for line in lines if line)[:MAX_BODY]


def sender_id(message: dict[str, Any]) -> str | None:
    """The Entra object id of the person who wrote it; ``None`` for apps, bots and system events."""
    user = (message.get("from") or {}).get("user") if isinstance(message.get("from"), dict) else None
    if not isinstance(user, dict) or user.get("userIdentityType", "aadUser") != "aadUser":
        return None
    return str(user["id"]) if user.get("id") else None


def mentioned_ids(message: dict[str, Any]) -> list[str]:
    seen: dict[str, None] = {}
    for mention in message.get("mentions") or []:
        user = ((mention or {}).get("mentioned") or {}).get("user") if isinstance(mention, dict) else None
        if isinstance(user, dict) and user.get("id"):
            seen.setdefault(str(user["id"]))
    return list(seen)


def container_id(message: dict[str, Any]) -> str:
    channel = message.get("channelIdentity") if isinstance(message.get("channelIdentity"), dict) else {}
    return str(message.get("chatId") or channel.get("channelId") or "")


def message_created(message: dict[str, Any], role_of: Callable[[str], str]) -> dict[str, Any] | None:
    """The internal event, or ``None`` when the message is not a person writing (``systemEventMessage``, bots).

    ``role_of`` names a user's role (``student``, ``staff`` or ``unknown``). The pupils a message is about are
    the pupil who wrote it and the pupils it @mentions; the recipients known from the message itself are the
    people it @mentions (Graph does not list a chat's members in the message).
    """
    author = sender_id(message)
    if message.get("messageType", "message") != "message" or author is None:
        return None
    sender = {"id": author, "role": role_of(author)}
    recipients = [{"id": user, "role": role_of(user)} for user in mentioned_ids(message) if user != author]
    students = [party["id"] for party in [sender, *recipients] if party["role"] == "student"]
    event: dict[str, Any] = {
        "type": "message.created",
        "timestamp": message["createdDateTime"],
        "message_id": f"{container_id(message)}/{message['id']}"[-200:],
        "sender": sender,
        "recipients": recipients,
        "student_ids": list(dict.fromkeys(students)),
        "created_at": message["createdDateTime"],
    }
    text = plain_text(message.get("body"))
    if text:
        event["body"] = text
    if message.get("subject"):
        event["subject"] = str(message["subject"])[:MAX_SUBJECT]
    return event
