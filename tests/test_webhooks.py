"""The intake door, per the contract: signatures, every error code, dedupe, one job per delivery."""
from __future__ import annotations

import json
import time
from datetime import date, datetime, timezone

import pytest

from tests.support import (
    OTHER_TENANT_SECRET,
    ROTATED_SECRET,
    SECRET,
    envelope,
    post_event,
    queued_jobs,
    signed_headers,
)

REGISTER = {
    "date": "2026-11-23",
    "group_id": "7A",
    "marks": [
        {"student_id": "s-1", "status": "present", "documented": False},
        {"student_id": "s-2", "status": "absent", "documented": False},
        {"student_id": "s-3", "status": "late", "documented": True, "minutes": 10},
    ],
}


def post_raw(client, body: bytes, headers: dict, tenant: str = "skole-a", adapter: str = "generic"):
    return client.post(f"/webhooks/{tenant}/{adapter}", data=body, headers=headers)


def test_valid_signature_is_queued_as_one_job_with_202(client, rt):
    response = post_event(client, "attendance.register", REGISTER)
    assert response.status_code == 202
    assert response.get_json() == {"accepted": 1}
    jobs = queued_jobs(rt)
    assert len(jobs) == 1
    tenant, adapter, _marker, events = jobs[0].args
    assert (tenant, adapter) == ("skole-a", "generic")
    assert [m["student_id"] for m in events[0]["marks"]] == ["s-1", "s-2", "s-3"]


def test_signature_with_rotated_secret_passes(client, rt):
    assert post_event(client, "attendance.register", REGISTER, secret=ROTATED_SECRET).status_code == 202


def test_any_one_of_several_signatures_passes(client, rt):
    body = envelope("attendance.register", REGISTER)
    headers = signed_headers(body, "msg_multi")
    good = headers["webhook-signature"]
    headers["webhook-signature"] = f"v1,{'A' * 43}= v2,unknown {good}"
    assert post_raw(client, body, headers).status_code == 202


def test_wrong_signature_is_401_and_nothing_is_kept(client, rt):
    body = envelope("attendance.register", REGISTER)
    headers = signed_headers(body)
    headers["webhook-signature"] = signed_headers(body + b" ", headers["webhook-id"])["webhook-signature"]
    response = post_raw(client, body, headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_signature"
    assert queued_jobs(rt) == []
    assert list(rt.redis.scan_iter(match=f"{rt.token}*")) == []


def test_other_tenants_secret_is_401(client, rt):
    response = post_event(client, "attendance.register", REGISTER, secret=OTHER_TENANT_SECRET)
    assert response.status_code == 401


@pytest.mark.parametrize("offset", [-301, 301])
def test_stale_or_future_timestamp_is_401(client, rt, offset):
    response = post_event(client, "attendance.register", REGISTER, timestamp=int(time.time()) + offset)
    assert response.status_code == 401
    assert "timestamp" in response.get_json()["message"]


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_401_naming_it(client, rt, header):
    body = envelope("attendance.register", REGISTER)
    headers = signed_headers(body)
    del headers[header]
    response = post_raw(client, body, headers)
    assert response.status_code == 401
    assert header in response.get_json()["message"]


@pytest.mark.parametrize(
    "signature", ["garbage", "v1,", "v1,@@@not-base64@@@", "v1", ",,,", "v1,AAAA v1,BBBB", "\u00e6\u00f8\u00e5"]
)
def test_malformed_signature_header_is_401_not_500(client, rt, signature):
    body = envelope("attendance.register", REGISTER)
    headers = signed_headers(body)
    headers["webhook-signature"] = signature
    assert post_raw(client, body, headers).status_code == 401


def test_malformed_timestamp_header_is_401(client, rt):
    body = envelope("attendance.register", REGISTER)
    headers = signed_headers(body)
    headers["webhook-timestamp"] = "yesterday"
    assert post_raw(client, body, headers).status_code == 401


def test_unknown_tenant_or_adapter_is_404(client, rt):
    body = envelope("attendance.register", REGISTER)
    assert post_raw(client, body, signed_headers(body), tenant="no-such-school").status_code == 404
    response = post_raw(client, body, signed_headers(body), adapter="moodle")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_malformed_json_is_400(client, rt):
    body = b'{"type": "attendance.register", "data": {'
    response = post_raw(client, body, signed_headers(body))
    assert response.status_code == 400
    assert response.get_json()["error"] == "malformed_json"


def signed_by_hand(body: bytes, msg_id: str) -> dict:
    """Headers for ``body`` signed over its raw bytes with HMAC-SHA256, as the contract says, without our helpers."""
    import base64
    import hashlib
    import hmac

    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    stamp = str(int(time.time()))
    mac = hmac.new(key, msg_id.encode() + b"." + stamp.encode() + b"." + body, hashlib.sha256).digest()
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


@pytest.mark.parametrize("body", [
    '{"type": "attendance.register", "data": {"group_id": "7A \u00e6\u00f8\u00e5"}}'.encode("latin-1"),
    b'{"type": "\xff\xfe"}',
    '{"type": "attendance.register"}'.encode("utf-16"),
    b'{"type": "\xed\xa0\x80"}',  # a surrogate encoded as if it were UTF-8, which it is not
])
def test_correctly_signed_body_that_is_not_utf8_is_400_not_401(client, rt, body):
    """The signature covers the raw bytes, so a signed latin-1 body is authentic; it is malformed, not forged."""
    response = post_raw(client, body, signed_by_hand(body, "msg_latin"))
    assert response.status_code == 400
    assert response.get_json()["error"] == "malformed_json"
    assert "UTF-8" in response.get_json()["message"]
    assert queued_jobs(rt) == []


def test_the_signature_over_raw_bytes_is_the_reference_package_s_for_utf8_bodies(client, rt):
    from datetime import datetime, timezone

    from standardwebhooks.webhooks import Webhook

    from connector.contract.signatures import sign

    body = envelope("attendance.register", dict(REGISTER, group_id="7\u00c5"))
    stamp = int(time.time())
    reference = Webhook(SECRET).sign("msg_ref", datetime.fromtimestamp(stamp, tz=timezone.utc), body.decode())
    assert sign(body, "msg_ref", stamp, SECRET) == reference
    assert signed_by_hand(body, "msg_ref")["webhook-signature"] == reference
    assert post_raw(client, body, signed_by_hand(body, "msg_ref")).status_code == 202


def test_not_json_content_type_is_415(client, rt):
    body = envelope("attendance.register", REGISTER)
    headers = signed_headers(body)
    headers["content-type"] = "text/plain"
    assert post_raw(client, body, headers).status_code == 415


def test_body_over_the_limit_is_413(client, rt):
    body = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    response = post_raw(client, body, signed_headers(body))
    assert response.status_code == 413
    assert response.get_json()["error"] == "too_large"


def test_schema_errors_are_422_naming_each_field(client, rt):
    data = {
        "date": "23.11.2026",
        "marks": [
            {"student_id": "s-1", "status": "sick", "documented": False},
            {"status": "absent", "documented": "no"},
        ],
    }
    response = post_event(client, "attendance.register", data)
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "invalid_event"
    assert set(body["fields"]) == {
        "data.date",
        "data.group_id",
        "data.marks.0.status",
        "data.marks.1.student_id",
        "data.marks.1.documented",
    }
    assert queued_jobs(rt) == []


def test_envelope_errors_are_422(client, rt):
    body = json.dumps({"type": "attendance.marked", "timestamp": "not a time"}).encode()
    response = post_raw(client, body, signed_headers(body))
    assert response.status_code == 422
    assert set(response.get_json()["fields"]) == {"timestamp", "data"}


def test_json_array_body_is_422(client, rt):
    body = b"[1, 2]"
    assert post_raw(client, body, signed_headers(body)).status_code == 422


def test_notice_to_date_before_from_date_is_422(client, rt):
    data = {"student_id": "s-1", "from_date": "2026-11-23", "to_date": "2026-11-20", "reason": "syk"}
    response = post_event(client, "absence.notice", data)
    assert response.status_code == 422
    assert "data.to_date" in response.get_json()["fields"]


def test_unknown_event_type_is_202_ignored_and_counted(client, rt):
    response = post_event(client, "grade.published", {"anything": 1})
    assert response.status_code == 202
    assert response.get_json() == {"accepted": 0, "ignored": "grade.published"}
    assert queued_jobs(rt) == []
    assert rt.redis.hget(rt.keys.ignored, "grade.published") == b"1"


def test_redelivery_is_202_and_changes_nothing(client, rt):
    first = post_event(client, "attendance.register", REGISTER, msg_id="msg_same")
    again = post_event(client, "attendance.register", REGISTER, msg_id="msg_same")
    assert first.status_code == again.status_code == 202
    assert again.get_json() == {"accepted": 0, "duplicate": True}
    assert len(queued_jobs(rt)) == 1


def test_redelivery_after_the_job_ran_is_still_a_duplicate(client, rt):
    from tests.support import run_worker

    post_event(client, "attendance.register", REGISTER, msg_id="msg_done")
    run_worker(rt)
    assert queued_jobs(rt) == []
    again = post_event(client, "attendance.register", REGISTER, msg_id="msg_done")
    assert again.get_json() == {"accepted": 0, "duplicate": True}
    assert queued_jobs(rt) == []


def test_same_webhook_id_for_another_tenant_is_not_a_duplicate(client, rt):
    assert post_event(client, "attendance.register", REGISTER, msg_id="msg_x").get_json() == {"accepted": 1}
    response = post_event(
        client, "attendance.register", REGISTER, tenant="skole-b", msg_id="msg_x", secret=OTHER_TENANT_SECRET
    )
    assert response.get_json() == {"accepted": 1}


def test_fields_outside_the_contract_are_not_queued(client, rt):
    data = dict(REGISTER, marks=[{"student_id": "s-9", "status": "absent", "documented": False, "name": "Kari"}])
    assert post_event(client, "attendance.register", data).status_code == 202
    (job,) = queued_jobs(rt)
    assert "Kari" not in json.dumps(job.args)


def test_healthz_and_readyz(client, rt):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_readyz_is_503_when_redis_is_down(rt):
    from redis import Redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from connector import create_app
    from connector.engine.runtime import Runtime

    down = Runtime(rt.config, Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)), clock=rt.clock)
    response = create_app(runtime=down).test_client().get("/readyz")
    assert response.status_code == 503


def test_redis_down_at_intake_is_503_not_202(rt):
    from redis import Redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from connector import create_app
    from connector.engine.runtime import Runtime

    down = Runtime(rt.config, Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)), clock=rt.clock)
    response = post_event(create_app(runtime=down).test_client(), "attendance.register", REGISTER)
    assert response.status_code == 503


def test_redis_down_for_an_ignored_event_type_is_503_not_500(rt):
    """Counting an ignored type is a Redis write too: the sender must hear "retry", not a crash."""
    from redis import Redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from connector import create_app
    from connector.engine.runtime import Runtime

    down = Runtime(rt.config, Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)), clock=rt.clock)
    response = post_event(create_app(runtime=down).test_client(), "grade.published", {"anything": 1})
    assert response.status_code == 503
    assert response.get_json()["error"] == "unavailable"


def test_wrong_method_and_unknown_path_are_json(client, rt):
    assert client.get("/webhooks/skole-a/generic").status_code == 405
    response = client.get("/nowhere")
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,                      # nesting deeper than the parser's recursion
    b'{"type": "attendance.register", "timestamp": "2026-11-23T08:00:00Z", "data": {"date": "2026-11-23", '
    b'"group_id": "7A", "marks": [{"student_id": "s", "status": "late", "documented": false, "minutes": NaN}]}}',
    b'{"type": "attendance.register", "timestamp": 1795472759, "data": []}',
    b'{"type": ["attendance.register"], "timestamp": "2026-11-23T08:00:00Z", "data": {}}',
    b'{"type": "absence.notice", "timestamp": "2026-11-23T08:00:00Z", "data": {"student_id": "s\\u0000", '
    b'"from_date": "2026-02-30", "to_date": "2026-11-23", "reason": null}}',
])
def test_hostile_bodies_get_a_4xx_never_a_500(client, rt, body):
    response = post_raw(client, body, signed_headers(body))
    assert 400 <= response.status_code < 500
    assert response.get_json()["error"]
    assert queued_jobs(rt) == []


# --- time windows (CONTRACT.md, "Time"): the clock is Monday 2026-11-23 09:00 in Oslo -----------------------------


def refused_fields(response) -> dict:
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"] == "invalid_event"
    return response.get_json()["fields"]


@pytest.mark.parametrize("event_type, data", [
    ("attendance.register", dict(REGISTER, date="2026-11-24")),
    ("attendance.marked", {"student_id": "s-1", "date": "2026-11-24", "status": "absent", "documented": False}),
])
def test_an_attendance_mark_dated_after_today_is_422_naming_the_date_and_nothing_is_queued(client, rt, event_type,
                                                                                           data):
    assert refused_fields(post_event(client, event_type, data)) == {"data.date": [ANY_TEXT]}
    assert queued_jobs(rt) == []
    assert post_event(client, event_type, dict(data, date="2026-11-23")).status_code == 202


class AnyText(str):
    def __eq__(self, other):
        return isinstance(other, str) and bool(other)

    __hash__ = str.__hash__


ANY_TEXT = AnyText("any message")


def test_today_is_the_date_in_oslo_not_in_utc(client, rt):
    rt.clock.set(datetime(2026, 11, 23, 23, 30, tzinfo=timezone.utc))  # 00:30 on Tuesday in Oslo
    assert post_event(client, "attendance.register", dict(REGISTER, date="2026-11-24")).status_code == 202
    rt.clock.set(datetime(2026, 11, 23, 22, 59, tzinfo=timezone.utc))  # 23:59 on Monday in Oslo
    assert "data.date" in refused_fields(post_event(client, "attendance.register", dict(REGISTER, date="2026-11-24")))


def test_a_mark_before_the_previous_school_year_is_422(client, rt):
    # the test calendar knows 2026-27 only, so the previous school year starts on 1 August 2025
    assert "data.date" in refused_fields(post_event(client, "attendance.register", dict(REGISTER, date="2025-07-31")))
    assert post_event(client, "attendance.register", dict(REGISTER, date="2025-08-01")).status_code == 202


def test_the_previous_school_year_starts_on_its_first_day_when_the_calendar_has_it():
    from connector.rules.calendar import SchoolCalendar, SchoolYear
    from connector.contract.events import previous_school_year_start

    calendar = SchoolCalendar([SchoolYear(date(2025, 8, 18), date(2026, 6, 19)), SchoolYear(date(2026, 8, 13),
                                                                                             date(2027, 6, 18))])
    assert previous_school_year_start(date(2026, 11, 23), calendar) == date(2025, 8, 18)
    assert previous_school_year_start(date(2026, 7, 1), calendar) == date(2024, 8, 1)  # in July 2025-26 is current
    assert previous_school_year_start(date(2026, 8, 1), calendar) == date(2025, 8, 18)
    assert previous_school_year_start(date(2026, 11, 23), None) == date(2025, 8, 1)


def test_a_notice_more_than_a_year_ahead_or_before_the_previous_school_year_is_422(client, rt):
    notice = {"student_id": "s-1", "from_date": "2026-11-24", "to_date": "2027-11-23", "reason": "Permisjon"}
    assert post_event(client, "absence.notice", notice).status_code == 202  # to_date a year from today: the limit
    assert refused_fields(post_event(client, "absence.notice", dict(notice, to_date="2027-11-24"))) == {
        "data.to_date": [ANY_TEXT]}
    assert refused_fields(post_event(client, "absence.notice", dict(notice, from_date="9999-12-30",
                                                                    to_date="9999-12-31"))) == {
        "data.from_date": [ANY_TEXT], "data.to_date": [ANY_TEXT]}
    assert refused_fields(post_event(client, "absence.notice", dict(notice, from_date="2025-07-31"))) == {
        "data.from_date": [ANY_TEXT]}
    assert len(queued_jobs(rt)) == 1


def test_a_message_created_more_than_a_day_in_the_future_is_422(client, rt):
    message = {"message_id": "m-1", "sender": {"id": "g-1", "role": "guardian"}, "recipients": [],
               "student_ids": ["s-1"], "created_at": "2026-11-24T08:00:00Z"}
    assert post_event(client, "message.created", message).status_code == 202  # exactly a day ahead
    assert refused_fields(post_event(client, "message.created", dict(message, created_at="2026-11-24T08:00:01Z"))) == {
        "data.created_at": [ANY_TEXT]}
    assert "data.created_at" in refused_fields(
        post_event(client, "message.created", dict(message, created_at="0001-01-01T00:00:00+01:00")))


@pytest.mark.parametrize("event_type, data, field", [
    ("student.enrolled", {"student_id": "s-9", "group_id": "7A", "date": "0001-01-01"}, "data.date"),
    ("student.enrolled", {"student_id": "s-9", "group_id": "7A", "date": "9999-12-31"}, "data.date"),
    ("task.updated", {"external_ref": "r-1", "status": "completed", "completed_at": "9999-12-31T23:59:59-01:00"},
     "data.completed_at"),
    ("task.updated", {"external_ref": "r-1", "status": "completed", "completed_at": "0001-01-01T00:00:00+01:00"},
     "data.completed_at"),
])
def test_enrolment_dates_and_completion_times_far_out_are_422(client, rt, event_type, data, field):
    assert refused_fields(post_event(client, event_type, data)) == {field: [ANY_TEXT]}
    assert queued_jobs(rt) == []


def test_an_enrolment_may_be_sent_ahead_and_a_task_completed_within_the_window(client, rt):
    enrolled = {"student_id": "s-9", "group_id": "7A", "date": "2027-08-19"}  # next school year's first day
    assert post_event(client, "student.enrolled", enrolled).status_code == 202
    update = {"external_ref": "r-1", "status": "completed", "completed_at": "2026-11-20T14:00:00+01:00"}
    assert post_event(client, "task.updated", update).status_code == 202


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-11-24T08:00:01Z",
                                   "2025-07-31T21:59:59Z"])
def test_an_envelope_timestamp_outside_the_window_is_422(client, rt, stamp):
    body = envelope("attendance.register", REGISTER, timestamp=stamp)
    assert refused_fields(post_raw(client, body, signed_headers(body))) == {"timestamp": [ANY_TEXT]}
    assert queued_jobs(rt) == []


def test_every_adapters_events_are_judged_at_the_door(client, rt, monkeypatch):
    """A stand-in for a platform adapter that turns one delivery into two events, one still to be completed by its
    ``prepare`` (no date yet): the door judges what is there, naming each event by its place."""
    from connector.adapters.base import Inbound
    from connector.adapters.generic.adapter import GenericAdapter

    events = [{"type": "attendance.marked", "timestamp": "2026-11-23T08:00:00+00:00", "pending": {"id": 1}},
              {"type": "attendance.register", "timestamp": "2026-11-23T08:00:00+00:00", "date": "2026-12-01",
               "group_id": "7A", "marks": []}]
    monkeypatch.setattr(GenericAdapter, "receive", lambda self, body, headers: Inbound("d-1", events=events))
    assert refused_fields(post_event(client, "attendance.register", REGISTER)) == {"events.1.data.date": [ANY_TEXT]}
    assert queued_jobs(rt) == []


# --- ids and text: no lone surrogates anywhere, no control characters in ids -------------------------------------

MARKED = {"student_id": "s-1", "date": "2026-11-23", "status": "absent", "documented": False}
NOTICE = {"student_id": "s-1", "from_date": "2026-11-23", "to_date": "2026-11-23", "reason": "Syk"}
MESSAGE = {"message_id": "m-1", "sender": {"id": "g-1", "role": "guardian"},
           "recipients": [{"id": "u-1", "role": "contact_teacher"}], "student_ids": ["s-1"],
           "created_at": "2026-11-23T08:00:00Z"}
TASK = {"external_ref": "r-1", "status": "completed"}
ENROLLED = {"student_id": "s-1", "group_id": "7A", "date": "2026-11-23"}
LESSON = {"id": "L1", "subject": "Norsk", "start": "08:30", "end": "09:15"}
IDS = [  # (event type, data, where the bad value goes, the field the 422 names)
    ("attendance.register", REGISTER, ("group_id",), "data.group_id"),
    ("attendance.register", REGISTER, ("marks", 1, "student_id"), "data.marks.1.student_id"),
    ("attendance.register", dict(REGISTER, lesson=LESSON), ("lesson", "id"), "data.lesson.id"),
    ("attendance.marked", MARKED, ("student_id",), "data.student_id"),
    ("attendance.marked", dict(MARKED, group_id="7A"), ("group_id",), "data.group_id"),
    ("absence.notice", NOTICE, ("student_id",), "data.student_id"),
    ("absence.notice", dict(NOTICE, guardian_id="g-1"), ("guardian_id",), "data.guardian_id"),
    ("message.created", MESSAGE, ("message_id",), "data.message_id"),
    ("message.created", MESSAGE, ("sender", "id"), "data.sender.id"),
    ("message.created", MESSAGE, ("sender", "role"), "data.sender.role"),
    ("message.created", MESSAGE, ("recipients", 0, "id"), "data.recipients.0.id"),
    ("message.created", MESSAGE, ("student_ids", 0), "data.student_ids.0"),
    ("task.updated", TASK, ("external_ref",), "data.external_ref"),
    ("student.enrolled", ENROLLED, ("student_id",), "data.student_id"),
    ("student.enrolled", ENROLLED, ("group_id",), "data.group_id"),
]
TEXTS = [
    ("attendance.register", REGISTER, ("marks", 0, "reason"), "data.marks.0.reason"),
    ("attendance.register", dict(REGISTER, lesson=LESSON), ("lesson", "subject"), "data.lesson.subject"),
    ("attendance.register", dict(REGISTER, lesson=LESSON), ("lesson", "end"), "data.lesson.end"),
    ("attendance.marked", dict(MARKED, reason="Tannlege"), ("reason",), "data.reason"),
    ("absence.notice", NOTICE, ("reason",), "data.reason"),
    ("absence.notice", dict(NOTICE, channel="app"), ("channel",), "data.channel"),
    ("message.created", dict(MESSAGE, body="Hei"), ("body",), "data.body"),
    ("message.created", dict(MESSAGE, subject="Fravær"), ("subject",), "data.subject"),
    ("task.updated", dict(TASK, note="Møte holdt"), ("note",), "data.note"),
]


def with_value(data: dict, where: tuple, value: str) -> dict:
    data = json.loads(json.dumps(data))
    inner = data
    for step in where[:-1]:
        inner = inner[step]
    inner[where[-1]] = (inner.get(where[-1], "") if isinstance(inner, dict) else inner[where[-1]]) + value
    return data


@pytest.mark.parametrize("event_type, data, where, field", IDS + TEXTS)
def test_a_lone_surrogate_in_any_id_or_text_is_422_naming_the_field(client, rt, event_type, data, where, field):
    """JSON's "\\ud800" escape is valid JSON but no UTF-8: queued, it would fail the job at every try."""
    response = post_event(client, event_type, with_value(data, where, "\ud800"))
    assert list(refused_fields(response)) == [field]
    assert queued_jobs(rt) == []
    assert post_event(client, event_type, with_value(data, where, "-ø")).status_code == 202


@pytest.mark.parametrize("control", ["\n", "\r", "\x00", "\x1b", "\x7f", "\u2028"])
@pytest.mark.parametrize("event_type, data, where, field", IDS)
def test_a_control_character_in_an_id_is_422_naming_the_field(client, rt, event_type, data, where, field, control):
    assert list(refused_fields(post_event(client, event_type, with_value(data, where, control)))) == [field]
    assert queued_jobs(rt) == []


def test_a_new_line_in_text_is_fine(client, rt):
    data = with_value(REGISTER, ("marks", 0, "reason"), "Tannlege\nkl. 10")
    assert post_event(client, "attendance.register", data).status_code == 202


@pytest.mark.parametrize("kind", ["grade.published\ud800", "grade.published\r\nINFO forged"])
def test_an_unknown_type_with_a_surrogate_or_control_character_is_422_not_counted(client, rt, kind):
    assert list(refused_fields(post_event(client, kind, {}))) == ["type"]
    assert rt.redis.hgetall(rt.keys.ignored) == {}


def test_an_adapters_ignored_type_that_is_no_utf8_is_counted_not_a_500(client, rt, monkeypatch):
    """Other adapters name an ignored event by what the platform sent (Moodle's eventname, say): a lone surrogate
    there must not crash the count."""
    from connector.adapters.base import Inbound
    from connector.adapters.generic.adapter import GenericAdapter

    monkeypatch.setattr(GenericAdapter, "receive", lambda self, body, headers: Inbound("d-1", ignored_type="x\ud800"))
    response = post_event(client, "attendance.register", REGISTER)
    assert response.status_code == 202
    assert response.get_json() == {"accepted": 0, "ignored": "x\ud800"}
    assert rt.redis.hgetall(rt.keys.ignored) == {b"x\\ud800": b"1"}
