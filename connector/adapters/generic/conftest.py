"""How the generic adapter's fixtures reach the door: each is the body a Standard Webhooks sender posts, signed with
tenant ``skole-a``'s secret, and named after the contract's event type (``attendance_register__lesson``)."""
from __future__ import annotations

from connector.contract.events import EVENT_TYPES
from tests.webhook_support import Door, register, standard_webhooks

register(Door(
    "generic", instance="generic", wrap=standard_webhooks,
    declared=lambda: [event_type.replace(".", "_") for event_type in EVENT_TYPES],
    sent_at=lambda fixture: fixture.json()["timestamp"],
))
