"""What the Canvas tests share: a test RSA key set standing in for Instructure's, JWT signing as Live Events does,
a ``canvas`` adapter instance for tenant ``skole-a`` beside its ``generic`` one, and the Canvas door for the shared
``replay`` (each inbound fixture holds a Live Event's claims; a replay signs them with the current key).

Only Canvas's HTTP API and the JWKS endpoint are mocked (``platform``); Redis, the door and the worker are real.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import responses
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from connector.adapters.canvas.live_events import ALL_EVENT_TYPES
from tests.support import add_adapter, door_clock_at
from tests.webhook_support import Door, Fixture, register

CANVAS = "https://skole.instructure.com"
JWKS_URL = "https://keys.example.test/main/jwks"
ROOT_ACCOUNT = "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"
TOKEN = "canvas-token-not-in-logs"
FIXTURES = Path(__file__).parent / "fixtures"
KIDS = ("kid-previous", "kid-current", "kid-next")


def fixture(name: str) -> Any:
    """An inbound fixture (the claims a Live Event JWT carries) or, with ``outbound/``, a Canvas API answer."""
    path = FIXTURES / (name if "." in name.rsplit("/", 1)[-1] else f"{name}.json")
    return path.read_text() if path.suffix == ".txt" else json.loads(path.read_text())


def public_jwk(private_key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


def sign(claims: dict[str, Any], key: rsa.RSAPrivateKey, kid: str = "kid-current", **headers: Any) -> bytes:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, **headers}).encode()


def query(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def calls_to(platform, method: str, path: str) -> list:
    return [c for c in platform.calls if c.request.method == method and urlsplit(c.request.url).path == path]


@pytest.fixture(scope="session")
def rsa_keys() -> dict[str, rsa.RSAPrivateKey]:
    """Previous, current and next key, as Instructure's endpoint publishes them (generated once per run)."""
    return {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048) for kid in KIDS}


@pytest.fixture
def jwks(rsa_keys) -> dict[str, Any]:
    return {"keys": [public_jwk(key, kid) for kid, key in rsa_keys.items()]}


@pytest.fixture
def canvas_settings() -> dict[str, Any]:
    """Override in a test module for other settings (the static key set, sections as groups ...)."""
    return {}


@pytest.fixture
def canvas(rt, platform, monkeypatch, jwks, canvas_settings):
    """Tenant ``skole-a``'s Canvas adapter, with Instructure's key set served by the mocked JWKS endpoint."""
    monkeypatch.setenv("SKOLE_A_CANVAS_TOKEN", TOKEN)
    platform.add(responses.GET, JWKS_URL, json=jwks)
    settings = {
        "base_url": CANVAS,
        "api_token": {"env": "SKOLE_A_CANVAS_TOKEN"},
        "root_account_uuid": ROOT_ACCOUNT,
        "jwks_url": JWKS_URL,
        "timeout_seconds": 2,
        **canvas_settings,
    }
    add_adapter(rt, "skole-a", "canvas", "canvas", settings)
    return rt.adapter("skole-a", "canvas")


def live_event(claims: dict[str, Any], rsa_keys: dict[str, rsa.RSAPrivateKey], kid: str = "kid-current",
               content_type: str | None = "application/jwt", key: rsa.RSAPrivateKey | None = None,
               body: bytes | None = None, **jwt_headers: Any) -> tuple[bytes, dict[str, str]]:
    """The body and headers an HTTPS data stream with 'Sign Payload' posts: the claims as a JWT signed with ``kid``'s
    key (or ``key``, claiming ``kid``); ``body`` replaces the JWT with anything at all."""
    data = body if body is not None else sign(claims, key or rsa_keys[kid], kid, **jwt_headers)
    return data, ({"content-type": content_type} if content_type else {})


def sent_at(claims: Any) -> str | None:
    """When a Live Event happened (``metadata.event_time``): the door is asked at that time."""
    stamp = (claims.get("metadata") or {}).get("event_time") if isinstance(claims, dict) else None
    return stamp if isinstance(stamp, str) else None


def signed_fixture(fixture: Fixture, request, **options: Any) -> tuple[bytes, dict[str, str]]:
    return live_event(fixture.json(), request.getfixturevalue("rsa_keys"), **options)


register(Door("canvas", instance="canvas", wrap=signed_fixture, needs=("canvas",), declared=lambda: ALL_EVENT_TYPES,
              sent_at=lambda fixture: sent_at(fixture.json())))


@pytest.fixture
def deliver(client, rsa_keys, canvas):
    """POST claims a test made (a fixture's, changed) to the Canvas door as Canvas would; an unchanged fixture goes
    through the shared ``replay`` instead."""

    def post(claims: dict[str, Any], **options: Any):
        data, headers = live_event(claims, rsa_keys, **options)
        with door_clock_at(client, sent_at(claims)):  # a Live Event is posted when it happened
            return client.post("/webhooks/skole-a/canvas", data=data, headers=headers)

    return post


def timed(claims: dict[str, Any], **offsets: int) -> dict[str, Any]:
    """Claims with registered time claims relative to now (``exp=-10`` means ten seconds ago)."""
    now = int(time.time())
    return {**claims, **{name: now + offset for name, offset in offsets.items()}}
