"""Microsoft Graph change notifications as they reach the door: the validation handshake, the ``clientState``
check, and which notifications become (still incomplete) internal events.

Graph sends no signature on notifications without resource data; ``clientState`` (a secret chosen when the
subscription was made) is what proves a notification came from Graph, so it is compared in constant time.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping
from urllib.parse import quote

from connector.adapters.base import SUBSCRIPTION_LIFECYCLE, InboundError

MAX_VALIDATION_TOKEN = 4096
CHAT_MESSAGE = "chatmessage"
# What Graph posts to the door, in the words its documentation uses (and the fixtures are named after): change
# notifications (a new chat or channel message becomes ``message.created``; other changes are counted as ignored) and
# lifecycle notifications (``reauthorizationRequired``, ``subscriptionRemoved``, ``missed``: each becomes a
# ``subscription.lifecycle`` event for the subscriptions' upkeep; another lifecycle event is counted as ignored).
NOTIFICATION_TYPES = ("change_notification", "lifecycle_notification")
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")
# The message a notification points at, in the OData key form Graph's Teams notifications use.
CHANNEL_MESSAGE = re.compile(
    r"/?teams\('(?P<team>[^']+)'\)/channels\('(?P<channel>[^']+)'\)/messages\('(?P<message>[^']+)'\)"
    r"(?:/replies\('(?P<reply>[^']+)'\))?"
)
CHAT_MESSAGE_PATH = re.compile(r"/?chats\('(?P<chat>[^']+)'\)/messages\('(?P<message>[^']+)'\)")


def validation_token(query: Mapping[str, str]) -> str | None:
    """The token to echo for Graph's subscription handshake, or ``None`` when this is not one.

    Graph sends ``POST <notificationUrl>?validationToken=...`` and waits up to 10 seconds for ``200``, ``text/plain``
    and the URL-decoded token as the whole body. A token with control characters, or an absurdly long one, is
    not echoed: Graph never sends one, and echoing anything into a response is what a reflection attack wants.
    """
    token = query.get("validationToken")
    if token is None:
        return None
    if not token or len(token) > MAX_VALIDATION_TOKEN or any(ord(ch) < 32 or ord(ch) == 127 for ch in token):
        return None
    return token


@dataclass
class Parsed:
    delivery_id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def load_collection(body: bytes) -> list[dict[str, Any]]:
    """The ``value`` array of a ``changeNotificationCollection``; 400/422 for anything else."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InboundError(400, "malformed_json", "The body is not valid JSON.") from None
    if not isinstance(document, dict) or not isinstance(document.get("value"), list) or not document["value"]:
        raise InboundError(422, "invalid_notification", "Expected a changeNotificationCollection.",
                           {"value": ["Missing or empty list of change notifications."]})
    bad = {f"value.{i}": ["Not an object."] for i, item in enumerate(document["value"]) if not isinstance(item, dict)}
    if bad:
        raise InboundError(422, "invalid_notification", "Every change notification must be an object.", bad)
    return document["value"]


def check_origin(notifications: Iterable[dict[str, Any]], client_states: list[str], tenant_id: str) -> None:
    """Every notification must carry one of the configured client states, and the school's Entra tenant."""
    for notification in notifications:
        given = notification.get("clientState")
        if not isinstance(given, str) or not any(
            hmac.compare_digest(given.encode(), secret.encode()) for secret in client_states
        ):
            raise InboundError(401, "invalid_client_state", "A change notification's clientState does not match.")
        tenant = notification.get("tenantId")
        if tenant is not None and str(tenant).lower() != tenant_id.lower():
            raise InboundError(401, "wrong_tenant", "A change notification comes from another Microsoft 365 tenant.")


def kind_of(notification: dict[str, Any]) -> str:
    """What a notification is about, as a short name an admin can read in the ignored-types counter."""
    if notification.get("lifecycleEvent"):
        return f"lifecycle.{notification['lifecycleEvent']}"[:100]
    data = notification.get("resourceData") if isinstance(notification.get("resourceData"), dict) else {}
    odata_type = str(data.get("@odata.type") or notification.get("@odata.type") or "unknown")
    entity = odata_type.rsplit(".", 1)[-1]
    return f"{entity[:1].lower()}{entity[1:]}.{notification.get('changeType', 'unknown')}"[:100]


def message_path(resource: str) -> str | None:
    """The Graph path that reads the message a notification names; ``None`` if the resource is not a message."""
    match = CHANNEL_MESSAGE.fullmatch(resource)
    if match:
        ids = {key: quote(value, safe=":@") for key, value in match.groupdict().items() if value}
        path = f"/teams/{ids['team']}/channels/{ids['channel']}/messages/{ids['message']}"
        return path + (f"/replies/{ids['reply']}" if "reply" in ids else "")
    match = CHAT_MESSAGE_PATH.fullmatch(resource)
    if match:
        return f"/chats/{quote(match['chat'], safe=':@')}/messages/{quote(match['message'], safe=':@')}"
    return None


def delivery_id(notifications: Iterable[dict[str, Any]]) -> str:
    """Graph has no delivery id; a redelivery carries the same notifications, so their identity is the key.

    A lifecycle notification also counts its subscription's expiry: Graph repeats ``reauthorizationRequired`` until
    the subscription is renewed (which moves the expiry), and a repeat must not be taken for a redelivery."""
    keys = ("subscriptionId", "changeType", "resource", "lifecycleEvent")
    parts = sorted(
        "\x1f".join(str(n.get(key, "")) for key in keys
                     + (("subscriptionExpirationDateTime",) if n.get("lifecycleEvent") else ()))
        for n in notifications
    )
    return "m365-" + hashlib.sha256("\x1e".join(parts).encode()).hexdigest()[:40]


def parse(notifications: list[dict[str, Any]], now: float) -> Parsed:
    """New chat and channel messages become ``message.created`` events to be completed by ``prepare``, lifecycle
    notifications ``subscription.lifecycle`` events; every other notification (edits, deletions, other resources)
    is named in ``ignored``."""
    parsed = Parsed(delivery_id(notifications))
    timestamp = datetime.fromtimestamp(now, timezone.utc).isoformat()
    for index, notification in enumerate(notifications):
        kind = kind_of(notification)
        if notification.get("lifecycleEvent") in LIFECYCLE_EVENTS and notification.get("subscriptionId"):
            parsed.events.append({"type": SUBSCRIPTION_LIFECYCLE, "timestamp": timestamp,
                                  "lifecycle": notification["lifecycleEvent"],
                                  "subscription_id": str(notification["subscriptionId"])[:100]})
            continue
        if kind.lower() != f"{CHAT_MESSAGE}.created":
            parsed.ignored.append(kind)
            continue
        resource = str(notification.get("resource") or "")
        path = message_path(resource)
        if path is None:
            raise InboundError(422, "invalid_notification", "A chatMessage notification names no message.",
                               {f"value.{index}.resource": ["Not a channel or chat message path."]})
        parsed.events.append({"type": "message.created", "timestamp": timestamp, "m365_message": path})
    return parsed
