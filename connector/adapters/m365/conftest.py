"""How Microsoft Graph's change notifications reach the door: the fixture is the ``changeNotificationCollection``
Graph POSTs as JSON; what proves its origin (``clientState``) is inside it, so nothing is signed.

The adapter (named ``teams`` at tenant ``skole-a``) is configured by the ``teams`` fixture in ``tests.py``.
``declared`` is the adapter's ``notifications.NOTIFICATION_TYPES``: the kinds of notification Graph posts."""
from __future__ import annotations

from datetime import datetime, timezone

from connector.adapters.m365.notifications import NOTIFICATION_TYPES
from tests.webhook_support import Door, Fixture, register


def graph_notification(fixture: Fixture, request, content_type: str = "application/json") -> tuple[bytes, dict]:
    return fixture.read_bytes(), {"content-type": content_type}


register(Door("m365", instance="teams", wrap=graph_notification, needs=("teams",),
              declared=lambda: NOTIFICATION_TYPES,
              sent_at=lambda fixture: datetime.now(timezone.utc)))  # the adapter stamps what arrives with the wall clock
