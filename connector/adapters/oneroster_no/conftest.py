"""The OneRoster adapter takes no webhooks: its platform is polled (``connector poll``), so its door registers no
event types and its fixtures are all in ``fixtures/outbound/`` (the service's answers to the poller's calls)."""
from __future__ import annotations

from tests.webhook_support import Door, register


def _polled(fixture, request, **options):
    raise AssertionError("the oneroster_no adapter is polled; nothing is posted to its door")


register(Door("oneroster_no", instance="vigilo", wrap=_polled, declared=None))
