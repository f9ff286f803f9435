"""The OneRoster adapter takes no webhooks: its platform is polled (``connector poll``), so its door registers no
event types and its fixtures are all in ``fixtures/outbound/`` (the service's answers to the poller's calls)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from tests.oneroster_server import FakeOneRoster, settings
from tests.support import add_adapter
from tests.webhook_support import Door, register

TENANT = "skole-a"


def _polled(fixture, request, **options):
    raise AssertionError("the oneroster_no adapter is polled; nothing is posted to its door")


register(Door("oneroster_no", instance="vigilo", wrap=_polled, declared=None))


@pytest.fixture
def server():
    with FakeOneRoster() as fake:
        yield fake


@pytest.fixture
def vigilo(rt, server, monkeypatch):
    """Tenant skole-a reads Vigilo through OnEdHub (the fake) and writes through its generic adapter."""
    monkeypatch.setenv("ONEROSTER_TEST_SECRET", "fake-oneroster-secret-not-in-logs")
    add_adapter(rt, TENANT, "vigilo", "oneroster_no", settings(server))
    tenant = replace(rt.config.tenants[TENANT], actions_adapter="generic")
    rt.config = replace(rt.config, tenants={**rt.config.tenants, TENANT: tenant})
    return rt
