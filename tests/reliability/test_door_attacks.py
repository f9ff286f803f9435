"""Attacks at the real door (``connector web`` over a socket): each answered with the contract's code, as JSON, and
none reaching a worker (the deployment's queue stays as it was). The same checks run in-process in
``tests/test_webhooks.py``; these prove them through gunicorn, its parser and the served app."""
from __future__ import annotations

import base64
import http.client
import json
import time

import pytest

from tests.reliability.door_support import door, envelope, signed, today_oslo  # noqa: F401
from tests.support import OTHER_TENANT_SECRET

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(60)]


def mark(student: str = "p-attack") -> dict:
    return {"student_id": student, "date": today_oslo(), "status": "absent", "documented": False, "group_id": "7A"}


def refused(door, status: int, code: str | None, body: bytes, headers: dict, path: str = "/webhooks/skole-a/generic"):
    """POST, then: the status, a JSON error body with ``code``, and nothing queued."""
    before = door.queued()
    got, response_headers, answer = door.request("POST", path, body, headers)
    assert got == status, answer
    assert response_headers["content-type"].startswith("application/json"), answer
    error = json.loads(answer)
    assert set(error) >= {"error", "message"}
    if code is not None:
        assert error["error"] == code
    assert door.queued() == before
    return error


def test_a_delivery_without_a_signature_is_401(door):
    body = envelope("attendance.marked", mark())
    headers = signed(body)
    del headers["webhook-signature"]
    refused(door, 401, "invalid_signature", body, headers)


@pytest.mark.parametrize("offset", [-301, -3600, 301, 86400])
def test_stale_and_future_timestamps_are_401(door, offset):
    body = envelope("attendance.marked", mark())
    refused(door, 401, "invalid_signature", body, signed(body, timestamp=int(time.time()) + offset))


def test_a_replayed_webhook_id_with_a_changed_body_is_401_and_a_re_signed_one_a_harmless_duplicate(door):
    body = envelope("attendance.marked", mark("p-replay"))
    headers = signed(body)
    before = door.queued()
    assert door.post(body, headers)[0] == 202
    assert door.queued() == before + 1
    changed = body.replace(b'"documented": false', b'"documented": true')
    assert changed != body
    refused(door, 401, "invalid_signature", changed, headers)  # captured headers, another body
    resigned = signed(changed, msg_id=headers["webhook-id"])  # the sender's key, the same id: a redelivery
    status, _, answer = door.post(changed, resigned)
    assert (status, json.loads(answer)) == (202, {"accepted": 0, "duplicate": True})
    assert door.queued() == before + 1


def test_another_tenants_secret_on_this_tenants_url_is_401(door):
    body = envelope("attendance.marked", mark())
    refused(door, 401, "invalid_signature", body, signed(body, secret=OTHER_TENANT_SECRET))
    assert door.post(body, signed(body, secret=OTHER_TENANT_SECRET), tenant="skole-b")[0] == 202  # its own door


def _mangled(signature: str) -> dict[str, str]:
    scheme, _, mac = signature.partition(",")
    return {
        "truncated": f"{scheme},{mac[:-4]}",
        "padded": f"{scheme},{mac}AAAA",
        "padding_only": f"{scheme},{mac}==",
        "bit_flipped": f"{scheme},{base64.b64encode(bytes([base64.b64decode(mac)[0] ^ 1]) + base64.b64decode(mac)[1:]).decode()}",
        "wrong_version": f"v2,{mac}",
        "no_version": mac,
        "many_wrong": " ".join([f"{scheme},{mac[:-4]}AAA="] * 100),
        "trailing_bits": f"{scheme},{mac[:-2]}{'B' if mac[-2] == 'A' else chr(ord(mac[-2]) + 1)}=",
        "empty": "",
    }


@pytest.mark.parametrize("how", list(_mangled("v1,QUJD")))
def test_truncated_padded_duplicated_and_mangled_signatures_are_401(door, how):
    body = envelope("attendance.marked", mark())
    headers = signed(body)
    headers["webhook-signature"] = _mangled(headers["webhook-signature"])[how]
    refused(door, 401, "invalid_signature", body, headers)


def test_headers_over_gunicorns_limit_are_refused_before_the_app_and_queue_nothing(door):
    """gunicorn refuses a header line over 8190 bytes itself, with its own (HTML) 431: the one answer of the door
    that is not JSON, as the app never sees the request."""
    body = envelope("attendance.marked", mark())
    headers = signed(body)
    headers["webhook-signature"] = " ".join([headers["webhook-signature"]] * 500)
    before = door.queued()
    assert door.post(body, headers)[0] == 431
    assert door.queued() == before


def test_a_valid_signature_among_duplicates_passes_as_the_contract_says(door):
    body = envelope("attendance.marked", mark("p-dup-sig"))
    headers = signed(body)
    headers["webhook-signature"] = " ".join([headers["webhook-signature"]] * 3)
    assert door.post(body, headers)[0] == 202


@pytest.mark.parametrize("path", [
    "/webhooks/..%2F..%2Fetc%2Fpasswd/generic",
    "/webhooks/skole-a/..%2Fgeneric",
    "/webhooks/skole-a/..%2F..%2Fskole-b%2Fgeneric",
    "/webhooks/%2E%2E/generic",
    "/webhooks/skole-a%00/generic",
    "/webhooks/skole-a/generic%0d%0aX-Injected:%201",
    "/webhooks/skole-a/generic/../generic",
    "/webhooks/SKOLE-A/generic",
])
def test_path_traversal_in_tenant_and_adapter_names_is_404(door, path):
    body = envelope("attendance.marked", mark())
    refused(door, 404, None, body, signed(body), path=path)


def test_an_oversized_body_is_413_whether_declared_or_sent(door):
    body = envelope("attendance.marked", {**mark(), "reason": "x" * (1024 * 1024 + 10)})
    refused(door, 413, "too_large", body, signed(body))


def test_an_oversized_chunked_body_is_413(door):
    body = envelope("attendance.marked", {**mark(), "reason": "x" * (1024 * 1024 + 10)})
    before = door.queued()
    conn = http.client.HTTPConnection("127.0.0.1", door.web_port, timeout=10)
    try:
        conn.request("POST", "/webhooks/skole-a/generic", body=iter([body[i:i + 65536] for i in range(0, len(body), 65536)]),
                     headers=signed(body), encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 413 and json.loads(response.read())["error"] == "too_large"
    finally:
        conn.close()
    assert door.queued() == before


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deeply_nested_json_is_400(door, depth):
    body = (b'{"type": "attendance.marked", "timestamp": "2026-11-30T08:00:00Z", "data": '
            + b"[" * depth + b"]" * depth + b"}")
    refused(door, 400, "malformed_json", body, signed(body))


@pytest.mark.parametrize("raw", [b"\xff\xfe{}", b'{"type": "attendance.marked", "data": "\xc3\x28"}',
                                 "{}".encode("utf-16"), b'{"a": "\xed\xa0\x80"}'])
def test_a_signed_body_that_is_not_utf8_is_400(door, raw):
    refused(door, 400, "malformed_json", raw, signed(raw))


def test_duplicate_json_keys_are_400(door):
    body = (b'{"type": "attendance.marked", "timestamp": "2026-11-30T08:00:00Z", "data": {"student_id": "p-a", '
            b'"student_id": "p-b", "date": "' + today_oslo().encode() + b'", "status": "absent", "documented": false}}')
    refused(door, 400, "malformed_json", body, signed(body))


def test_a_register_of_ten_thousand_marks_is_refused_with_json(door):
    marks = [{"student_id": f"p{n}", "status": "absent", "documented": False} for n in range(10_000)]
    body = envelope("attendance.register", {"date": today_oslo(), "group_id": "7A", "marks": marks})
    assert len(body) < 1024 * 1024  # under the size limit: the schema's bound refuses it
    error = refused(door, 422, "invalid_event", body, signed(body))
    assert "data.marks" in error["fields"]


def test_not_json_is_415(door):
    body = b"student_id=p1&status=absent"
    refused(door, 415, "unsupported_media_type", body, signed(body, content_type="application/x-www-form-urlencoded"))


@pytest.mark.parametrize("control", ["\n", "\r\n", "\x1b[2J", "\u2028", "\x00"])
def test_control_characters_in_ids_are_422_and_forge_no_log_line(door, control):
    forged = "2026-11-30 08:00:00,000 INFO connector.engine.cases: FORGED"
    message_id = f"m-1{control}{forged}"
    data = {"message_id": message_id, "sender": {"id": "g-1", "role": "guardian"},
            "recipients": [{"id": "u-kl-7a", "role": "contact_teacher"}], "student_ids": ["p-log"],
            "created_at": "2026-11-30T08:00:00Z", "category": "other"}
    body = envelope("message.created", data)
    error = refused(door, 422, "invalid_event", body, signed(body))
    assert "data.message_id" in error["fields"]
    time.sleep(0.2)  # the log line is written before the answer; give the file system a moment
    log = door.log("web").read_text(encoding="utf-8", errors="replace")
    assert not any(line.startswith(forged) or "FORGED" in line for line in log.splitlines())
