"""How Microsoft Graph's change notifications reach the door: the fixture is the ``changeNotificationCollection``
Graph POSTs as JSON; what proves its origin (``clientState``) is inside it, so nothing is signed.

The adapter (named ``teams`` at tenant ``skole-a``) is configured by the ``teams`` fixture in ``tests.py``.
``declared`` is ``None``: the adapter keeps no list of the notification types it understands (``notifications.parse``
accepts ``chatMessage.created`` in a condition), so the declared-types check has nothing to read here."""
from __future__ import annotations

from datetime import datetime, timezone

from tests.webhook_support import Door, Fixture, register


def graph_notification(fixture: Fixture, request, content_type: str = "application/json") -> tuple[bytes, dict]:
    return fixture.read_bytes(), {"content-type": content_type}


register(Door("m365", instance="teams", wrap=graph_notification, needs=("teams",), declared=None,
              sent_at=lambda fixture: datetime.now(timezone.utc)))  # the adapter stamps what arrives with the wall clock
