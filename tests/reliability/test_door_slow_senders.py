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


def whole_answer(sock: socket.socket, start: bytes) -> bytes:
    """``start`` and what follows of one answer, until its ``Content-Length`` is in."""
    sock.settimeout(2)
    data = start
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < int(
            next((line.split(b":", 1)[1] for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n")
                  if line.lower().startswith(b"content-length:")), b"0")):
        more = sock.recv(65536)
        if not more:
            break
        data += more
    return data


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
def test_stalled_and_dripping_bodies_get_a_json_400_at_the_bound_not_an_html_500(door):
    """Both wait out ``BODY_SECONDS`` side by side: one sends 10 bytes and stalls, one drips a byte every 0.3 s
    (each within any per-read timeout: only a bound on the whole body stops it)."""
    from connector.webhooks.views import BODY_SECONDS

    body = envelope("attendance.marked", absent_mark("p-stalled"))
    before = door.queued()
    started = time.monotonic()
    stalled = door.raw(head("/webhooks/skole-a/generic", signed(body), len(body)) + body[:10])
    dripping = door.raw(head("/webhooks/skole-a/generic", signed(body), len(body)))
    answers: dict[str, bytes] = {}
    try:
        dripping.settimeout(0.3)
        for byte in body:
            try:
                answers["dripping"] = dripping.recv(65536)  # the answer, if it came in the last 0.3 s
                break
            except socket.timeout:
                pass
            try:
                dripping.sendall(bytes([byte]))
            except socket.timeout:
                continue
            except OSError:  # the door answered and closed as this byte went: its answer is waiting to be read
                dripping.settimeout(2)
                try:
                    answers["dripping"] = dripping.recv(65536)
                except OSError:  # reset: the answer was lost with the connection
                    pass
                break
        dripped = time.monotonic() - started
        if "dripping" in answers:  # the rest of the answer (its body may come in a segment of its own)
            answers["dripping"] = whole_answer(dripping, answers["dripping"])
        status, headers, answer = read_response(stalled, timeout=BODY_SECONDS + 10)
        waited = time.monotonic() - started
    finally:
        stalled.close()
        dripping.close()
    assert status == 400 and headers["content-type"].startswith("application/json")
    assert json.loads(answer)["error"] == "incomplete_body"
    assert BODY_SECONDS - 1 <= waited <= BODY_SECONDS + 3
    drip_answer = answers.get("dripping", b"")
    assert drip_answer.startswith(b"HTTP/1.1 400") and b"incomplete_body" in drip_answer, drip_answer
    assert b"application/json" in drip_answer.lower()
    assert dripped <= BODY_SECONDS + 3
    assert door.queued() == before
