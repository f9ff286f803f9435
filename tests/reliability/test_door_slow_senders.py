"""Slow senders never close the door: the real ``connector web`` (gunicorn, as deployed) over a socket.

Before: a request declaring a longer body than it sent held a sync gunicorn worker for 30 s and then got an HTML
500, and two such clients made ``/healthz`` wait 30 s. Now gevent workers wait for each connection apart and the
door bounds the wait for a body (``webhooks.views.BODY_SECONDS``).
"""
from __future__ import annotations

import json
import socket
import time

import pytest

from tests.reliability.door_support import door, envelope, read_response, signed, today_oslo  # noqa: F401

pytestmark = [pytest.mark.reliability]


def absent_mark(student: str) -> dict:
    return {"student_id": student, "date": today_oslo(), "status": "absent", "documented": False, "group_id": "7A"}


def head(path: str, headers: dict[str, str], length: int) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {length}",
             *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


@pytest.mark.timeout(60)
def test_twenty_stalled_senders_leave_deliveries_and_healthz_answered_within_a_second(door):
    body = envelope("attendance.marked", absent_mark("p-slow-ok"))
    stalled = []
    try:
        for n in range(20):  # half stall after their headers, half after half a body; none ever finishes
            part = body[: len(body) // 2] if n % 2 else b""
            stalled.append(door.raw(head("/webhooks/skole-a/generic", signed(body), len(body)) + part))
        for n in range(10):
            started = time.monotonic()
            status, _, _ = door.request("GET", "/healthz", timeout=5)
            assert status == 200 and time.monotonic() - started < 1.0
            one = envelope("attendance.marked", absent_mark(f"p-slow-{n}"))
            started = time.monotonic()
            status, headers, answer = door.post(one, signed(one), timeout=5)
            took = time.monotonic() - started
            assert (status, json.loads(answer)) == (202, {"accepted": 1}) and took < 1.0, (status, answer, took)
    finally:
        for sock in stalled:
            sock.close()
    assert door.queued() == 10  # the stalled ones queued nothing


@pytest.mark.timeout(30)
def test_a_body_shorter_than_its_length_gets_a_json_400_at_once_when_the_sender_closes(door):
    body = envelope("attendance.marked", absent_mark("p-short"))
    before = door.queued()
    sock = door.raw(head("/webhooks/skole-a/generic", signed(body), len(body) + 100) + body)
    try:
        sock.shutdown(socket.SHUT_WR)  # the sender is done, 100 bytes short
        started = time.monotonic()
        status, headers, answer = read_response(sock, timeout=5)
    finally:
        sock.close()
    assert time.monotonic() - started < 1.0
    assert status == 400 and headers["content-type"].startswith("application/json")
    assert json.loads(answer)["error"] == "incomplete_body"
    assert door.queued() == before


@pytest.mark.timeout(40)
def test_a_stalled_body_gets_a_json_400_after_the_bounded_wait_not_an_html_500(door):
    from connector.webhooks.views import BODY_SECONDS

    body = envelope("attendance.marked", absent_mark("p-stalled"))
    before = door.queued()
    sock = door.raw(head("/webhooks/skole-a/generic", signed(body), len(body)) + body[:10])
    try:
        started = time.monotonic()
        status, headers, answer = read_response(sock, timeout=BODY_SECONDS + 10)
        waited = time.monotonic() - started
    finally:
        sock.close()
    assert status == 400 and headers["content-type"].startswith("application/json")
    assert json.loads(answer)["error"] == "incomplete_body"
    assert BODY_SECONDS - 1 <= waited <= BODY_SECONDS + 3
    assert door.queued() == before


@pytest.mark.timeout(40)
def test_a_sender_dripping_a_byte_at_a_time_is_cut_off_at_the_bound_too(door):
    from connector.webhooks.views import BODY_SECONDS

    body = envelope("attendance.marked", absent_mark("p-drip"))
    sock = door.raw(head("/webhooks/skole-a/generic", signed(body), len(body)))
    started = time.monotonic()
    try:
        sock.settimeout(0.5)
        answer = b""
        for byte in body:  # one byte every 0.5 s: each arrives well within any per-read timeout
            try:
                sock.sendall(bytes([byte]))
            except OSError:  # the door answered and closed
                break
            try:
                answer = sock.recv(65536)
            except socket.timeout:
                continue
            break
        status_line = answer.split(b"\r\n", 1)[0]
    finally:
        sock.close()
    assert status_line.startswith(b"HTTP/1.1 400"), answer
    assert b"incomplete_body" in answer
    assert time.monotonic() - started <= BODY_SECONDS + 3
