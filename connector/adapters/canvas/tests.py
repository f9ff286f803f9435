"""Replays every Canvas Live Event fixture, signed as Canvas signs it, through the real webhook door; and the ways
the door refuses what Canvas did not send."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
from pathlib import Path

import jwt
import pytest
import responses
from cryptography.hazmat.primitives.asymmetric import rsa

from connector.adapters.canvas.conftest import (
    FIXTURES, JWKS_URL, ROOT_ACCOUNT, TOKEN, fixture, public_jwk, sign, timed,
)
from connector.adapters.canvas.live_events import ALL_EVENT_TYPES, PENDING
from tests.support import queued_jobs

HERE = Path(__file__).parent

REPLAYED = {
    "conversation_message_created": {
        "type": "message.created",
        "timestamp": "2026-11-23T18:30:01.385000+00:00",
        PENDING: {"message_id": "45", "conversation_id": "53", "author_id": "5001",
                  "created_at": "2026-11-23T18:30:00+00:00"},
    },
    "enrollment_created__student": {
        "type": "student.enrolled",
        "timestamp": "2027-01-11T07:30:00+00:00",
        "student_id": "2040",
        "group_id": "565",
        "date": "2027-01-11",
    },
}
IGNORED = {
    "conversation_created": "conversation_created",
    "enrollment_created__teacher": "enrollment_created:TeacherEnrollment",
}


def queued_events(rt) -> list[dict]:
    return [event for job in queued_jobs(rt) for event in job.args[3]]


def jwks_fetches(platform) -> int:
    return sum(1 for c in platform.calls if c.request.url == JWKS_URL)


# --- the fixtures ------------------------------------------------------------------------------------------------


def test_every_handled_event_type_has_a_fixture_and_every_fixture_is_replayed_by_a_test():
    inbound = {p.stem for p in FIXTURES.glob("*.json")}
    assert inbound == set(REPLAYED) | set(IGNORED)
    assert {name.split("__")[0] for name in REPLAYED} == set(ALL_EVENT_TYPES)
    sources = "".join(p.read_text() for p in HERE.glob("test*.py"))
    for answer in (FIXTURES / "outbound").iterdir():
        assert re.search(rf"outbound/{re.escape(answer.stem)}\b", sources), f"{answer.name} is replayed by no test"


@pytest.mark.parametrize("name", sorted(REPLAYED))
def test_signed_fixture_becomes_exactly_this_internal_event(replay, rt, name):
    assert replay("canvas", name, expect_answer={"accepted": 1}) == [REPLAYED[name]]
    assert queued_events(rt) == [REPLAYED[name]]


@pytest.mark.parametrize("name", sorted(IGNORED))
def test_event_type_not_handled_is_answered_202_logged_at_info_and_counted(replay, rt, caplog, name):
    with caplog.at_level(logging.INFO):
        replay("canvas", name, expect_status=202, expect_answer={"accepted": 0, "ignored": IGNORED[name]})
    assert queued_jobs(rt) == []
    assert rt.redis.hget(rt.keys.ignored, IGNORED[name]) == b"1"
    assert any(IGNORED[name] in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)


def test_message_event_carries_ids_only_so_no_text_waits_in_the_queue(replay, rt):
    replay("canvas", "conversation_message_created")
    (job,) = queued_jobs(rt)
    assert "body" not in json.dumps(job.args[3]) and "subject" not in json.dumps(job.args[3])


def test_global_ids_in_event_bodies_become_the_local_ids_of_the_rest_api(deliver, rt):
    claims = fixture("conversation_message_created")
    claims["body"].update(author_id="21070000000005001", conversation_id="21070000000000053")
    deliver(claims)
    (event,) = queued_events(rt)
    assert (event[PENDING]["author_id"], event[PENDING]["conversation_id"]) == ("5001", "53")


def test_pupil_enrollment_is_grouped_by_section_when_configured(replay, rt, canvas):
    canvas.settings = {**canvas.settings, "group_by": "section"}
    (event,) = replay("canvas", "enrollment_created__student")
    assert queued_events(rt) == [event]
    assert event["group_id"] == "4811"


def test_redelivered_event_is_accepted_once(replay, rt):
    replay("canvas", "conversation_message_created", expect_answer={"accepted": 1})
    replay("canvas", "conversation_message_created",  # the same event, signed again
           expect_answer={"accepted": 0, "duplicate": True})
    assert len(queued_jobs(rt)) == 1


def test_any_media_type_is_accepted_because_canvas_does_not_document_its_own(deliver):
    for content_type in ("application/jwt", "text/plain", None):
        claims = fixture("conversation_message_created")
        claims["body"]["message_id"] = str(len(content_type or "x"))
        assert deliver(claims, content_type=content_type).status_code == 202


# --- signatures --------------------------------------------------------------------------------------------------


def test_unsigned_live_event_json_is_refused_401_with_the_setting_to_change(deliver):
    response = deliver({}, body=json.dumps(fixture("conversation_message_created")).encode(),
                       content_type="application/json")
    assert response.status_code == 401
    assert response.get_json()["error"] == "unsigned_event"
    assert "Sign Payload" in response.get_json()["message"]


@pytest.mark.parametrize("body", [b"", b"not a jwt", b"a.b", b"\xff\xfe.x.y"])
def test_body_that_is_not_a_jwt_is_refused_401(deliver, body):
    response = deliver({}, body=body)
    assert (response.status_code, response.get_json()["error"]) == (401, "invalid_signature")


def test_signature_by_a_key_not_in_the_key_set_is_refused_401(replay):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    replay("canvas", "conversation_message_created", key=stranger,  # claims kid-current, wrong key
           expect_status=401, expect_error="invalid_signature")


def test_tampered_claims_are_refused_401(deliver, rsa_keys):
    token = sign(fixture("conversation_message_created"), rsa_keys["kid-current"]).decode()
    head, _, tail = token.split(".")
    other = sign(fixture("conversation_created"), rsa_keys["kid-current"]).decode().split(".")[1]
    response = deliver({}, body=f"{head}.{other}.{tail}".encode())
    assert (response.status_code, response.get_json()["error"]) == (401, "invalid_signature")


def test_hs256_token_keyed_with_the_public_key_is_refused_401(deliver, jwks):
    """The algorithm-confusion attack: an attacker signs with HMAC, using the published public key as the secret
    (built by hand: pyjwt itself refuses to make such a token)."""
    def part(data) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=")

    signed = part({"alg": "HS256", "kid": "kid-current", "typ": "JWT"}) + b"." + part(
        fixture("conversation_message_created"))
    secret = json.dumps(jwks["keys"][1]).encode()
    mac = base64.urlsafe_b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).rstrip(b"=")
    response = deliver({}, body=signed + b"." + mac)
    assert (response.status_code, response.get_json()["error"]) == (401, "invalid_signature")


def test_unsigned_alg_none_token_is_refused_401(deliver):
    token = jwt.encode(fixture("conversation_message_created"), None, algorithm="none", headers={"kid": "kid-current"})
    response = deliver({}, body=token.encode())
    assert (response.status_code, response.get_json()["error"]) == (401, "invalid_signature")


def test_token_without_kid_is_refused_401(deliver, rsa_keys):
    token = jwt.encode(fixture("conversation_message_created"), rsa_keys["kid-current"], algorithm="RS256")
    response = deliver({}, body=token.encode())
    assert (response.status_code, response.get_json()["error"]) == (401, "invalid_signature")


def test_expired_token_is_refused_401(deliver):
    response = deliver(timed(fixture("conversation_message_created"), exp=-600, iat=-1200))
    assert (response.status_code, response.get_json()["error"]) == (401, "expired_token")


def test_token_within_its_lifetime_is_accepted(deliver):
    response = deliver(timed(fixture("conversation_message_created"), exp=300, iat=-5))
    assert response.status_code == 202


def test_event_signed_by_instructure_for_another_school_is_refused_403(deliver):
    """Instructure signs every customer's events with the same keys: the root account is what says 'ours'."""
    claims = fixture("conversation_message_created")
    claims["metadata"]["root_account_uuid"] = "AnotherSchoolsRootAccountUuid000000000000"
    response = deliver(claims)
    assert (response.status_code, response.get_json()["error"]) == (403, "foreign_account")


def test_signed_claims_without_metadata_or_body_are_422_naming_the_fields(deliver):
    response = deliver({"event": "something"})
    assert response.status_code == 422
    assert set(response.get_json()["fields"]) == {"metadata", "body"}


def test_signed_event_with_a_bad_id_is_422_naming_the_field(deliver):
    claims = fixture("conversation_message_created")
    claims["body"]["message_id"] = "forty-five"
    response = deliver(claims)
    assert (response.status_code, response.get_json()["fields"]) == (422, {"body.message_id": ["Expected a Canvas id."]})


def test_refusals_log_no_token_and_no_content(replay, caplog):
    with caplog.at_level(logging.DEBUG):
        replay("canvas", "conversation_message_created", key=rsa.generate_private_key(65537, 2048),
               expect_status=401)
    assert TOKEN not in caplog.text and "foresatt.testesen" not in caplog.text


# --- the key set -------------------------------------------------------------------------------------------------


def test_key_set_is_fetched_once_and_cached_across_deliveries(deliver, platform):
    for message_id in ("45", "46", "47"):
        claims = fixture("conversation_message_created")
        claims["body"]["message_id"] = message_id
        assert deliver(claims).status_code == 202
    assert jwks_fetches(platform) == 1
    (fetch,) = [c for c in platform.calls if c.request.url == JWKS_URL]
    assert "Authorization" not in fetch.request.headers  # the Canvas token never goes to the key host


def test_events_signed_with_the_previous_or_next_key_are_accepted_during_rotation(deliver):
    for index, kid in enumerate(("kid-previous", "kid-next")):
        claims = fixture("conversation_message_created")
        claims["body"]["message_id"] = str(100 + index)
        assert deliver(claims, kid=kid).status_code == 202


def test_a_key_rotated_in_since_the_last_fetch_is_found_by_one_refresh(replay, deliver, platform, jwks):
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    replay("canvas", "conversation_message_created", expect_status=202)
    platform.replace(responses.GET, JWKS_URL, json={"keys": jwks["keys"][1:] + [public_jwk(rotated, "kid-after")]})
    claims = fixture("conversation_message_created")
    claims["body"]["message_id"] = "46"
    assert deliver(claims, kid="kid-after", key=rotated).status_code == 202
    assert jwks_fetches(platform) == 2


def test_unknown_kid_is_refused_401_and_does_not_refetch_the_key_set_on_every_request(replay, platform, rsa_keys):
    for _ in range(3):
        replay("canvas", "conversation_message_created", kid="kid-unknown", key=rsa_keys["kid-current"],
               expect_status=401, expect_error="unknown_key")
    assert jwks_fetches(platform) == 2  # the first fetch, then one forced refresh; then pyjwt's cool-down holds


@pytest.mark.parametrize("answer", [dict(status=502, body="Bad Gateway"), dict(json={"keys": []}),
                                    dict(body="<html>maintenance</html>")])
def test_key_set_endpoint_down_or_garbled_is_answered_503_so_the_sender_retries(replay, canvas, platform, answer):
    platform.replace(responses.GET, JWKS_URL, **answer)
    replay("canvas", "conversation_message_created", expect_status=503, expect_error="keys_unavailable")


class TestStaticKeySet:
    """A JWKS pasted into the configuration: the JWKS endpoint is never asked."""

    @pytest.fixture
    def canvas_settings(self, jwks):
        return {"jwks": {"keys": jwks["keys"][:2]}}

    def test_event_signed_with_a_configured_key_is_accepted_without_fetching(self, replay, platform):
        replay("canvas", "conversation_message_created", expect_status=202)
        assert jwks_fetches(platform) == 0

    def test_event_signed_with_a_key_not_configured_is_refused_401(self, replay, platform):
        replay("canvas", "conversation_message_created", kid="kid-next", expect_status=401, expect_error="unknown_key")
        assert jwks_fetches(platform) == 0


class TestIssuerAndAudience:
    @pytest.fixture
    def canvas_settings(self):
        return {"jwt_issuer": "https://live-events.canvas.instructure.com", "jwt_audience": "skoleflyt"}

    def test_token_with_the_configured_issuer_and_audience_is_accepted(self, deliver):
        claims = {**fixture("conversation_message_created"), "iss": "https://live-events.canvas.instructure.com",
                  "aud": "skoleflyt"}
        assert deliver(claims).status_code == 202

    def test_token_from_another_issuer_is_refused_401(self, deliver):
        claims = {**fixture("conversation_message_created"), "iss": "https://evil.example", "aud": "skoleflyt"}
        assert deliver(claims).get_json()["error"] == "invalid_issuer"

    def test_token_for_another_audience_is_refused_401(self, deliver):
        claims = {**fixture("conversation_message_created"), "iss": "https://live-events.canvas.instructure.com",
                  "aud": "someone-else"}
        assert deliver(claims).get_json()["error"] == "invalid_audience"


def test_settings_refuse_a_pasted_key_set_that_is_not_one(rt):
    from connector.adapters.canvas.settings import CanvasSettings
    from marshmallow import ValidationError

    with pytest.raises(ValidationError) as exc:
        CanvasSettings().load({"base_url": "https://skole.instructure.com", "api_token": {"env": "X"},
                               "root_account_uuid": ROOT_ACCOUNT, "jwks": {"keys": [{"kty": "RSA"}]}})
    assert "jwks" in exc.value.messages
