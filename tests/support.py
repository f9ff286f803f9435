"""Shared fixtures: a real Redis (its own database number and a key prefix per test), a fixed clock, signing.

Each test gets a fresh prefix and queue name, and removes only the keys that contain them: the suite can run on a
Redis server that other things use, and never flushes it.
"""
from __future__ import annotations

import base64
import json
import os
import time
import uuid
from contextlib import contextmanager
from datetime import date, datetime, timezone

import pytest
import responses
from redis import Redis
from rq.serializers import JSONSerializer

from connector import create_app

from connector.engine import runtime
from connector.adapters.generic.adapter import GenericSettings
from connector.engine.clock import FixedClock
from connector.config.schema import AdapterConfig, Config, Directory, Tenant
from connector.rules.calendar import SchoolCalendar, SchoolYear
from connector.rules.plan import merge_plan
from connector.engine.runtime import Runtime
from connector.contract.signatures import sign
from connector.engine.rq_compat import ConnectorWorker

pytest_plugins = ["tests.webhook_support"]  # ``replay``: an adapter's fixtures through the real door

REDIS_URL = os.environ.get("CONNECTOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
PLATFORM = "https://platform.test/api"
SECRET = "whsec_" + base64.b64encode(b"skoleflyt-test-secret-0001").decode()
ROTATED_SECRET = "whsec_" + base64.b64encode(b"skoleflyt-test-secret-0002").decode()
OTHER_TENANT_SECRET = "whsec_" + base64.b64encode(b"another-school-secret-003").decode()

SCHOOL_YEAR = SchoolYear(
    first_day=date(2026, 8, 13),
    last_day=date(2027, 6, 18),
    breaks=(
        (date(2026, 9, 28), date(2026, 10, 2)),
        (date(2026, 11, 6), date(2026, 11, 6)),
        (date(2026, 12, 21), date(2027, 1, 4)),
        (date(2027, 2, 22), date(2027, 2, 26)),
        (date(2027, 3, 22), date(2027, 3, 30)),
        (date(2027, 5, 7), date(2027, 5, 7)),
    ),
    name="2026-27",
)


def make_tenant(tenant_id: str, secret_vars: list[str], token_var: str, language: str = "nb", plan=None) -> Tenant:
    settings = GenericSettings().load(
        {
            "webhook_secrets": [{"env": name} for name in secret_vars],
            "base_url": PLATFORM,
            "api_token": {"env": token_var},
            "timeout_seconds": 2,
        }
    )
    return Tenant(
        id=tenant_id,
        name=f"Skole {tenant_id}",
        language=language,
        calendar=SchoolCalendar([SCHOOL_YEAR]),
        adapters={"generic": AdapterConfig("generic", "generic", settings)},
        directory=Directory(
            roles={"principal": "u-rektor", "nearest_leader": "u-leder"},
            groups={"7A": {"contact_teacher": "u-kl-7a"}, "7B": {"contact_teacher": "u-kl-7b"}},
        ),
        plan=merge_plan(plan),
    )


def cleanup(redis: Redis, token: str) -> None:
    keys = list(redis.scan_iter(match=f"*{token}*", count=1000))
    if keys:
        redis.delete(*keys)
    redis.srem("rq:queues", f"rq:queue:{token}")


@pytest.fixture
def redis_client():
    client = Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except Exception as exc:  # the suite is about a real Redis: say so plainly instead of 100 errors
        pytest.exit(f"Redis at {REDIS_URL} does not answer ({exc}); .ci/run starts one", returncode=3)
    yield client
    client.close()


@pytest.fixture
def clock():
    return FixedClock(datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc))  # Monday 09:00 in Oslo


@pytest.fixture
def env_secrets(monkeypatch):
    monkeypatch.setenv("SKOLE_A_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("SKOLE_A_WEBHOOK_SECRET_NEXT", ROTATED_SECRET)
    monkeypatch.setenv("SKOLE_A_API_TOKEN", "token-a-not-in-logs")
    monkeypatch.setenv("SKOLE_B_WEBHOOK_SECRET", OTHER_TENANT_SECRET)
    monkeypatch.setenv("SKOLE_B_API_TOKEN", "token-b-not-in-logs")


@pytest.fixture
def tenant_plan():
    """Override in a test module to give tenant ``skole-a`` other plan settings."""
    return None


@pytest.fixture
def rt(redis_client, clock, env_secrets, tenant_plan):
    token = f"test{uuid.uuid4().hex[:10]}"
    config = Config(
        tenants={
            "skole-a": make_tenant(
                "skole-a", ["SKOLE_A_WEBHOOK_SECRET", "SKOLE_A_WEBHOOK_SECRET_NEXT"], "SKOLE_A_API_TOKEN",
                plan=tenant_plan,
            ),
            "skole-b": make_tenant("skole-b", ["SKOLE_B_WEBHOOK_SECRET"], "SKOLE_B_API_TOKEN", language="nn"),
        },
        key_prefix=token,
        queue_name=token,
    )
    runtime_ = Runtime(config, redis_client, clock=clock)
    runtime_.token = token
    runtime.install(runtime_)
    yield runtime_
    runtime.install(None)
    cleanup(redis_client, token)


@pytest.fixture
def client(rt):
    return create_app(runtime=rt).test_client()


@pytest.fixture
def platform():
    """The remote platform's HTTP API, and nothing else, mocked: every other URL fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def signed_headers(body: bytes, msg_id: str | None = None, secret: str = SECRET, timestamp: int | None = None):
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(body, msg_id, timestamp, secret),
    }


def envelope(event_type: str, data: dict, timestamp: str = "2026-11-23T08:00:00Z") -> bytes:
    return json.dumps({"type": event_type, "timestamp": timestamp, "data": data}).encode()


@contextmanager
def door_clock_at(client, moment: str | datetime | None):
    """The door sees the clock at ``moment`` (when that is later than the clock), and processing the clock as it was.

    For a test whose clock stands still while its story moves on (a task completed on Thursday, posted while the
    clock says Monday): the door refuses anything dated more than a day ahead of its clock, as a platform's clock
    would not be, so the event is let in at its own time; the rules then run at the test's clock, as before.
    """
    clock = client.application.extensions["connector"].clock
    before = clock.now()
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment is not None and moment > before:
        clock.set(moment)
    try:
        yield
    finally:
        clock.set(before)


def post_event(client, event_type: str, data: dict, tenant: str = "skole-a", msg_id: str | None = None, **kw):
    """Sign and post one event. Its envelope's ``timestamp`` is the usual Monday morning, or the runtime clock's now
    when the clock stands before that: the door refuses an envelope from more than a day in the future."""
    now = client.application.extensions["connector"].clock.now()
    standard = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
    stamp = "2026-11-23T08:00:00Z" if now >= standard else now.isoformat()
    body = envelope(event_type, data, stamp)
    return client.post(f"/webhooks/{tenant}/generic", data=body, headers=signed_headers(body, msg_id, **kw))


def run_worker(rt: Runtime) -> None:
    """Run every queued job in this process (the production worker does not fork either)."""
    worker = ConnectorWorker([rt.queue], connection=rt.redis, serializer=JSONSerializer, name=f"{rt.token}-worker")
    worker.work(burst=True)


def queued_jobs(rt: Runtime) -> list:
    return rt.queue.get_jobs()


def add_adapter(rt: Runtime, tenant_id: str, name: str, adapter_type: str, raw_settings: dict) -> None:
    """Give a test tenant one more adapter instance (say a ``moodle`` beside ``generic``), validated by the
    adapter type's own settings schema exactly as the configuration loader does."""
    from dataclasses import replace

    from connector.adapters import adapter_types

    settings = adapter_types()[adapter_type].config_schema().load(raw_settings)
    tenant = rt.config.tenants[tenant_id]
    tenant = replace(tenant, adapters={**tenant.adapters, name: AdapterConfig(name, adapter_type, settings)})
    rt.config = replace(rt.config, tenants={**rt.config.tenants, tenant_id: tenant})
    rt._adapters.pop((tenant_id, name), None)
