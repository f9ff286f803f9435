"""Replays every Moodle fixture through the real webhook door, the worker and the REST client, and checks the exact
result: the internal event, or the form fields Moodle receives. Only Moodle's HTTP API is mocked."""
from __future__ import annotations

import hmac
import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
from marshmallow import ValidationError
from responses import matchers

from connector.engine import outbox, scheduler
from connector.contract.actions import Action, Party, external_ref
from connector.adapters.moodle.events import EVENT_NAMES
from connector.adapters.moodle.settings import MoodleSettings
from connector.adapters.moodle.webservice import MoodleError
from tests.support import SECRET, add_adapter, queued_jobs, run_worker
from tests.webhook_support import load

FIXTURES = Path(__file__).parent / "fixtures"
OUTBOUND = FIXTURES / "outbound"
INBOUND = sorted(p for p in FIXTURES.iterdir() if p.is_file())
REST = "https://moodle.test/webservice/rest/server.php"
WEBHOOK = "/webhooks/skole-a/moodle"
WS_TOKEN = "ws-token-not-in-logs"
HOOK_TOKEN = "lw-token-for-tests-only"  # the token inside the inbound fixtures
REF = "sf1-5d41402abc4b2a76b9719d911017c592aabbccdd"  # the external_ref inside the outbound fixtures
OSLO_MIDNIGHT_FRIDAY = datetime(2026, 11, 26, 23, 0, tzinfo=timezone.utc)


# --- harness ---------------------------------------------------------------------------------------------------


@pytest.fixture
def moodle_settings():
    """Override in a test (parametrize) to give the adapter other settings."""
    return {}


@pytest.fixture
def moodle(rt, monkeypatch, moodle_settings):
    monkeypatch.setenv("MOODLE_WS_TOKEN", WS_TOKEN)
    monkeypatch.setenv("MOODLE_WEBHOOK_TOKEN", HOOK_TOKEN)
    monkeypatch.setenv("MOODLE_RELAY_SECRET", SECRET)
    add_adapter(rt, "skole-a", "moodle", "moodle", {
        "base_url": "https://moodle.test",
        "ws_token": {"env": "MOODLE_WS_TOKEN"},
        "webhook_tokens": [{"env": "MOODLE_WEBHOOK_TOKEN"}],
        "webhook_secrets": [{"env": "MOODLE_RELAY_SECRET"}],
        "timeout_seconds": 2,
        **moodle_settings,
    })
    return rt.adapter("skole-a", "moodle")


def outbound(name: str):
    return json.loads((OUTBOUND / f"{name}.json").read_text())


def answer(platform, function: str, fixture: str | None = None, body=None, status: int = 200, headers=None):
    platform.add(
        responses.POST, REST, json=outbound(fixture) if fixture else body, status=status, headers=headers,
        match=[matchers.query_param_matcher({"wsfunction": function, "moodlewsrestformat": "json"})],
    )


def calls(platform, function: str | None = None) -> list[dict[str, str]]:
    """Form fields of each call to ``function`` (all calls when ``None``), as Moodle's REST server reads them."""
    found = []
    for call in platform.calls:
        query = dict(parse_qsl(urlsplit(call.request.url).query))
        if function is None or query.get("wsfunction") == function:
            found.append(dict(parse_qsl(call.request.body)))
    return found


def functions(platform) -> list[str]:
    return [dict(parse_qsl(urlsplit(c.request.url).query)).get("wsfunction") for c in platform.calls]


def queued_events(rt) -> list[dict]:
    (job,) = queued_jobs(rt)
    return job.args[3]


def action(kind: str, **changes) -> Action:
    fields = dict(
        kind=kind, external_ref=REF, rule_id="absence.notice_missing", student_id="12",
        title="Følg opp fravær uten melding 23. nov", body="Hvorfor: ...",
        assignee=Party("contact_teacher", "3") if kind != "note" else None,
        due_date="2026-11-30" if kind == "task" else None,
    )
    fields.update(changes)
    return Action(**fields)


# --- every fixture is used -------------------------------------------------------------------------------------

PENDING_42 = {"sessionid": 42, "courseid": 7}
REPLAYED = {
    "attendance_taken": [{"type": "attendance.register", "timestamp": "2026-11-23T08:31:07+00:00", "moodle": PENDING_42}],
    "attendance_taken__form_encoded": [
        {"type": "attendance.register", "timestamp": "2026-11-23T08:31:07+00:00", "moodle": PENDING_42}
    ],
    "attendance_taken__legacy_fields": [
        {"type": "attendance.register", "timestamp": "2026-11-23T08:40:12+00:00",
         "moodle": {"sessionid": 43, "courseid": 7}}
    ],
    "attendance_taken_by_student": [
        {"type": "attendance.marked", "timestamp": "2026-11-23T08:29:00+00:00",
         "moodle": {"sessionid": 42, "courseid": 7, "studentid": 12}}
    ],
    "role_assigned__student": [
        {"type": "student.enrolled", "timestamp": "2026-11-22T18:00:00+00:00", "student_id": "15", "group_id": "7",
         "date": "2026-11-22"}
    ],
}
SIGNED = {
    "attendance_taken__signed": [
        {"type": "attendance.register", "timestamp": "2026-11-23T09:10:00+00:00",
         "moodle": {"sessionid": 44, "courseid": 7}}
    ],
}
IGNORED = {"course_viewed": "\\core\\event\\course_viewed", "role_assigned__teacher": "\\core\\event\\role_assigned"}


def test_every_declared_event_type_has_a_fixture_and_every_fixture_is_replayed():
    names = {p.stem for p in INBOUND}
    assert names == set(REPLAYED) | set(SIGNED) | set(IGNORED)
    declared = set(EVENT_NAMES)
    replayed = {json.loads(p.read_text()).get("eventname") for p in INBOUND if p.suffix == ".json"}
    assert declared <= replayed


def test_every_outbound_fixture_is_used_by_a_test():
    source = Path(__file__).read_text()
    unused = [p.stem for p in OUTBOUND.glob("*.json") if f'"{p.stem}"' not in source]
    assert unused == []


# --- inbound: local_webhooks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REPLAYED))
def test_fixture_becomes_exactly_this_queued_event(replay, rt, name):
    assert replay("moodle", name, expect_answer={"accepted": len(REPLAYED[name])}) == REPLAYED[name]
    assert queued_events(rt) == REPLAYED[name]


@pytest.mark.parametrize("name", sorted(SIGNED))
def test_standard_webhooks_signed_variant_needs_no_token_in_the_body(replay, rt, name):
    assert replay("moodle", name) == SIGNED[name]
    assert queued_events(rt) == SIGNED[name]


@pytest.mark.parametrize("name", sorted(IGNORED))
def test_event_type_not_handled_is_answered_202_logged_and_counted(replay, rt, caplog, name):
    caplog.set_level(logging.INFO)
    assert replay("moodle", name, expect_status=202, expect_answer={"accepted": 0, "ignored": IGNORED[name]}) == []
    assert queued_jobs(rt) == []
    assert rt.redis.hget(rt.keys.ignored, IGNORED[name]) == b"1"
    assert any(r.levelno == logging.INFO and repr(IGNORED[name]) in r.getMessage() for r in caplog.records)


def test_form_encoded_and_json_posts_of_one_event_are_one_delivery(replay, rt):
    """The plugin's 2019 task posts form fields, its release posts JSON; a switch between them must not double."""
    replay("moodle", "attendance_taken", expect_answer={"accepted": 1})
    replay("moodle", "attendance_taken__form_encoded", expect_answer={"accepted": 0, "duplicate": True})
    assert len(queued_jobs(rt)) == 1


def test_json_under_a_form_header_is_read_as_json(replay, rt):
    """Choosing the form content type in local_webhooks sends the same JSON under a form header; before, the adapter
    read it as form fields, found no token, and answered 401 to every event."""
    as_json = replay("moodle", "attendance_taken", expect_answer={"accepted": 1})
    rt.queue.empty()  # the job goes; no worker ran, so no delivery marker stands in the way
    under_form = replay("moodle", "attendance_taken", content_type="application/x-www-form-urlencoded",
                        expect_answer={"accepted": 1})
    assert under_form == as_json


def test_redelivered_event_is_queued_once(replay, rt):
    replay("moodle", "attendance_taken", expect_status=202)
    assert replay("moodle", "attendance_taken", expect_answer={"accepted": 0, "duplicate": True}) == []
    assert len(queued_jobs(rt)) == 1


def event_with(name: str, **changes) -> bytes:
    body = load("moodle", name).json()
    body.update(changes)
    return json.dumps(body).encode()


@pytest.mark.parametrize("token", ["wrong-token", "", None, 12345])
def test_wrong_or_missing_token_is_401(client, rt, moodle, token):
    body = event_with("attendance_taken", token=token)
    response = client.post(WEBHOOK, data=body, headers={"content-type": "application/json"})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"
    assert queued_jobs(rt) == []


def test_token_is_compared_in_constant_time(replay, rt, moodle, monkeypatch):
    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append(1) or real(a, b))
    replay("moodle", "attendance_taken", expect_status=202)
    assert compared


def test_bad_signature_is_401_even_with_the_right_token_in_the_body(replay, rt):
    replay("moodle", "attendance_taken", signed=True, secret="whsec_" + "QW5vdGhlclNlY3JldEZvclRlc3Rz",
           expect_status=401, expect_error="invalid_signature")


@pytest.mark.parametrize("moodle_settings", [{"webhook_secrets": []}])
def test_signed_delivery_is_401_when_no_secret_is_configured(replay, rt, moodle):
    replay("moodle", "attendance_taken__signed", expect_status=401)


def test_stale_signature_timestamp_is_401(replay, rt):
    replay("moodle", "attendance_taken__signed", timestamp=int(datetime.now(timezone.utc).timestamp()) - 3600,
           expect_status=401)


def test_body_that_is_not_json_is_400(client, rt, moodle):
    response = client.post(WEBHOOK, data=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400


def test_other_media_type_is_415(replay, rt):
    replay("moodle", "attendance_taken", content_type="text/plain", expect_status=415)


def test_event_without_name_is_422_naming_the_field(client, rt, moodle):
    response = client.post(WEBHOOK, data=event_with("attendance_taken", eventname=None),
                           headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert set(response.get_json()["fields"]) == {"eventname"}


def test_attendance_event_without_session_is_422_naming_the_field(client, rt, moodle):
    response = client.post(WEBHOOK, data=event_with("attendance_taken", other={"grouptype": 0}, courseid="x"),
                           headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert set(response.get_json()["fields"]) == {"other.sessionid", "courseid"}


# --- worker: the register fetched from mod_attendance -----------------------------------------------------------

REGISTER_42 = {
    "type": "attendance.register",
    "timestamp": "2026-11-23T08:31:07+00:00",
    "date": "2026-11-23",
    "group_id": "7",
    "lesson": {"id": "attendance-session-42", "start": "09:25", "end": "10:10"},
    "marks": [
        {"student_id": "11", "status": "present", "documented": False},
        {"student_id": "12", "status": "absent", "documented": False},
        {"student_id": "13", "status": "absent", "documented": True},
        {"student_id": "14", "status": "late", "documented": False},
    ],
}


def test_attendance_taken_becomes_one_register_with_every_pupils_status(replay, rt, moodle, platform):
    answer(platform, "mod_attendance_get_session", "mod_attendance_get_session")
    events = replay("moodle", "attendance_taken")
    assert moodle.prepare(events) == [REGISTER_42]
    (call,) = calls(platform, "mod_attendance_get_session")
    assert call == {"wstoken": WS_TOKEN, "sessionid": "42"}


def test_prepared_register_carries_no_name_and_no_remark(replay, rt, moodle, platform):
    answer(platform, "mod_attendance_get_session", "mod_attendance_get_session")
    events = replay("moodle", "attendance_taken")
    text = json.dumps(moodle.prepare(events), ensure_ascii=False)
    assert "Elev" not in text and "Tannlege" not in text


def test_pupil_marking_themself_becomes_one_mark(replay, rt, moodle, platform):
    answer(platform, "mod_attendance_get_session", "mod_attendance_get_session")
    events = replay("moodle", "attendance_taken_by_student")
    assert moodle.prepare(events) == [{
        "type": "attendance.marked", "timestamp": "2026-11-23T08:29:00+00:00", "student_id": "12",
        "status": "absent", "documented": False, "date": "2026-11-23", "group_id": "7",
        "lesson": {"id": "attendance-session-42", "start": "09:25", "end": "10:10"},
    }]


@pytest.mark.parametrize("moodle_settings", [{"statuses": {
    "T": {"status": "present", "documented": False}, "F": {"status": "absent", "documented": False},
    "S": {"status": "late", "documented": False}, "G": {"status": "absent", "documented": True},
}}])
def test_renamed_acronyms_follow_the_configured_mapping_and_group_sessions_name_the_group(replay, rt, moodle, platform):
    answer(platform, "mod_attendance_get_session", "mod_attendance_get_session__renamed_statuses")
    events = replay("moodle", "attendance_taken__legacy_fields")
    (register,) = moodle.prepare(events)
    assert register["group_id"] == "7:12"
    assert register["lesson"] == {"id": "attendance-session-43", "start": "10:10", "end": "10:55"}
    assert register["marks"] == [
        {"student_id": "21", "status": "present", "documented": False},
        {"student_id": "22", "status": "absent", "documented": False},
        {"student_id": "23", "status": "late", "documented": False},
        {"student_id": "24", "status": "absent", "documented": True},
    ]


def test_unmapped_acronym_is_read_by_its_grade_and_named_in_a_warning(replay, rt, moodle, platform, caplog):
    """Full grade means the pupil was there; anything less is absence without a notice, never silently present."""
    answer(platform, "mod_attendance_get_session", "mod_attendance_get_session__renamed_statuses")
    events = replay("moodle", "attendance_taken__legacy_fields")
    caplog.set_level(logging.WARNING)
    (register,) = moodle.prepare(events)
    assert register["marks"] == [
        {"student_id": "21", "status": "present", "documented": False},
        {"student_id": "22", "status": "absent", "documented": False},
        {"student_id": "23", "status": "absent", "documented": False},
        {"student_id": "24", "status": "absent", "documented": False},
    ]
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    for acronym in ("'T'", "'F'", "'S'", "'G'"):
        assert acronym in warned


def test_session_deleted_before_the_worker_ran_drops_its_event(replay, rt, moodle, platform):
    answer(platform, "mod_attendance_get_session", "exception__invalidrecord")
    events = replay("moodle", "attendance_taken")
    assert moodle.prepare(events) == []


@pytest.mark.parametrize("fixture,outcome", [("exception__sitemaintenance", "retry"),
                                             ("exception__accessexception", "dead")])
def test_moodle_error_while_fetching_the_session_fails_the_job_for_rq_to_retry(replay, rt, moodle, platform, fixture,
                                                                             outcome):
    answer(platform, "mod_attendance_get_session", fixture)
    events = replay("moodle", "attendance_taken")
    with pytest.raises(MoodleError) as raised:
        moodle.prepare(events)
    assert raised.value.outcome == outcome


def test_complete_events_pass_through_prepare_without_a_call(replay, rt, moodle, platform):
    events = replay("moodle", "role_assigned__student")
    assert moodle.prepare(events) == REPLAYED["role_assigned__student"]
    assert len(platform.calls) == 0


# --- directory -------------------------------------------------------------------------------------------------


def test_contact_teacher_is_the_courses_editing_teacher(rt, moodle, platform):
    answer(platform, "core_enrol_get_enrolled_users", "core_enrol_get_enrolled_users")
    assert moodle.lookup_role("contact_teacher", "7", "12") == "3"
    (call,) = calls(platform, "core_enrol_get_enrolled_users")
    assert call == {"wstoken": WS_TOKEN, "courseid": "7", "options[0][name]": "userfields",
                    "options[0][value]": "id,roles", "options[1][name]": "sortby", "options[1][value]": "id"}


def test_role_lookup_is_cached_until_its_ttl(rt, moodle, platform):
    answer(platform, "core_enrol_get_enrolled_users", "core_enrol_get_enrolled_users")
    now = [1000.0]
    moodle.directory.clock = lambda: now[0]
    assert moodle.lookup_role("contact_teacher", "7") == "3"
    assert moodle.lookup_role("contact_teacher", "7") == "3"
    assert len(platform.calls) == 1
    now[0] += 3601
    assert moodle.lookup_role("contact_teacher", "7") == "3"
    assert len(platform.calls) == 2


def test_group_without_a_teacher_falls_back_to_the_course(rt, moodle, platform):
    answer(platform, "core_enrol_get_enrolled_users", "core_enrol_get_enrolled_users__group_without_teacher")
    answer(platform, "core_enrol_get_enrolled_users", "core_enrol_get_enrolled_users")
    assert moodle.lookup_role("contact_teacher", "7:12") == "3"
    group_call, course_call = calls(platform, "core_enrol_get_enrolled_users")
    assert group_call["options[2][name]"] == "groupid" and group_call["options[2][value]"] == "12"
    assert "options[2][name]" not in course_call


@pytest.mark.parametrize("role,group", [("principal", "7"), ("contact_teacher", "7A"), ("contact_teacher", None)])
def test_roles_and_groups_moodle_cannot_answer_go_to_the_configured_directory(rt, moodle, platform, role, group):
    assert moodle.lookup_role(role, group) is None
    assert len(platform.calls) == 0


# --- outbound: the calls' exact shapes -------------------------------------------------------------------------


def accept_message(platform):
    answer(platform, "core_webservice_get_site_info", "core_webservice_get_site_info")
    answer(platform, "core_message_get_conversation_between_users", "exception__errorconversationdoesnotexist")
    answer(platform, "core_message_send_instant_messages", "core_message_send_instant_messages")


@pytest.mark.parametrize("kind", ["task", "alert"])
def test_task_and_alert_are_an_instant_message_to_the_assignee(rt, moodle, platform, kind):
    accept_message(platform)
    result = moodle.send(action(kind))
    assert (result.outcome, result.remote_id) == ("done", "4712")
    assert functions(platform) == ["core_webservice_get_site_info", "core_message_get_conversation_between_users",
                                   "core_message_send_instant_messages"]
    (lookup,) = calls(platform, "core_message_get_conversation_between_users")
    assert lookup == {"wstoken": WS_TOKEN, "userid": "2", "otheruserid": "3", "includecontactrequests": "0",
                      "includeprivacyinfo": "0", "messagelimit": "50", "messageoffset": "0",
                      "newestmessagesfirst": "1"}
    (sent,) = calls(platform, "core_message_send_instant_messages")
    assert sent == {
        "wstoken": WS_TOKEN,
        "messages[0][touserid]": "3",
        "messages[0][text]": f"Følg opp fravær uten melding 23. nov\n\nHvorfor: ...\n\nskoleflyt: {REF}",
        "messages[0][textformat]": "2",
        "messages[0][clientmsgid]": REF,
    }


def test_the_token_travels_in_the_body_never_in_the_url(rt, moodle, platform):
    accept_message(platform)
    moodle.send(action("alert"))
    for call in platform.calls:
        assert WS_TOKEN not in call.request.url
        assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert dict(parse_qsl(urlsplit(call.request.url).query))["moodlewsrestformat"] == "json"


def test_note_is_a_site_note_about_the_pupil(rt, moodle, platform):
    answer(platform, "core_notes_get_course_notes", "core_notes_get_course_notes__none")
    answer(platform, "core_notes_create_notes", "core_notes_create_notes")
    result = moodle.send(action("note", title="", body="Samtale med foresatte gjennomført."))
    assert (result.outcome, result.remote_id) == ("done", "316")
    (lookup,) = calls(platform, "core_notes_get_course_notes")
    assert lookup == {"wstoken": WS_TOKEN, "courseid": "1", "userid": "12"}
    (created,) = calls(platform, "core_notes_create_notes")
    assert created == {
        "wstoken": WS_TOKEN,
        "notes[0][userid]": "12",
        "notes[0][publishstate]": "site",
        "notes[0][courseid]": "1",
        "notes[0][text]": f"Samtale med foresatte gjennomført.\n\nskoleflyt: {REF}",
        "notes[0][format]": "2",
        "notes[0][clientnoteid]": REF,
    }


def test_note_for_guardians_is_refused_without_a_call(rt, moodle, platform):
    result = moodle.send(action("note", visibility="guardians"))
    assert result.outcome == "dead" and "guardians" in result.reason
    assert len(platform.calls) == 0


def test_overlong_body_is_cut_but_keeps_its_marker(rt, moodle, platform):
    accept_message(platform)
    moodle.send(action("alert", body="ø" * 5000))
    (sent,) = calls(platform, "core_message_send_instant_messages")
    text = sent["messages[0][text]"]
    assert len(text.encode()) <= 4096 and text.endswith(f"skoleflyt: {REF}")


# --- guardians -------------------------------------------------------------------------------------------------


def test_guardian_alert_is_a_dead_letter_by_default_because_moodle_has_no_guardian_link(rt, moodle, platform):
    result = moodle.send(action("alert", assignee=Party("guardian")))
    assert result.outcome == "dead" and "guardian" in result.reason
    assert len(platform.calls) == 0


@pytest.mark.parametrize("moodle_settings", [{"guardian_alerts": "student"}])
def test_guardian_alert_can_go_to_the_pupil_instead(rt, moodle, platform):
    accept_message(platform)
    assert moodle.send(action("alert", assignee=Party("guardian"))).outcome == "done"
    (sent,) = calls(platform, "core_message_send_instant_messages")
    assert sent["messages[0][touserid]"] == "12"


@pytest.mark.parametrize("moodle_settings", [{"guardian_alerts": "skip"}])
def test_guardian_alert_can_be_skipped_on_purpose_and_says_so(rt, moodle, platform, caplog):
    caplog.set_level(logging.INFO)
    assert moodle.send(action("alert", assignee=Party("guardian"))).outcome == "done"
    assert len(platform.calls) == 0
    assert any("guardian_alerts: skip" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("assignee", [Party("contact_teacher", "u-kl-7a"), Party("principal"), None])
def test_recipient_that_is_no_moodle_user_is_a_dead_letter_without_a_call(rt, moodle, platform, assignee):
    assert moodle.send(action("task", assignee=assignee)).outcome == "dead"
    assert len(platform.calls) == 0


# --- Moodle's error shapes, auth failures, throttling ----------------------------------------------------------


@pytest.mark.parametrize("fixture,outcome", [
    ("exception__invalidtoken", "dead"),
    ("exception__accessexception", "dead"),
    ("exception__sitemaintenance", "retry"),
])
def test_exception_answered_as_http_200_is_detected(rt, moodle, platform, fixture, outcome):
    answer(platform, "core_webservice_get_site_info", fixture)
    result = moodle.send(action("task"))
    assert result.outcome == outcome
    assert result.reason == "core_webservice_get_site_info: Moodle " + " ".join(
        outbound(fixture)[k] for k in ("exception", "errorcode"))


def test_refused_message_is_a_dead_letter_whose_reason_quotes_nothing_from_moodle(rt, moodle, platform):
    answer(platform, "core_webservice_get_site_info", "core_webservice_get_site_info")
    answer(platform, "core_message_get_conversation_between_users", "exception__errorconversationdoesnotexist")
    answer(platform, "core_message_send_instant_messages", "core_message_send_instant_messages__failed")
    result = moodle.send(action("alert", assignee=Party("contact_teacher", "999")))
    assert result.outcome == "dead"
    assert "999" not in result.reason and "msgid -1" in result.reason


def test_refused_note_is_a_dead_letter(rt, moodle, platform):
    answer(platform, "core_notes_get_course_notes", "core_notes_get_course_notes__none")
    answer(platform, "core_notes_create_notes", "core_notes_create_notes__failed")
    result = moodle.send(action("note", student_id="999"))
    assert result.outcome == "dead" and "noteid -1" in result.reason


@pytest.mark.parametrize("status,outcome", [(401, "dead"), (403, "dead"), (404, "dead"), (500, "retry"),
                                            (502, "retry")])
def test_http_errors_in_front_of_moodle_are_classified(rt, moodle, platform, status, outcome):
    answer(platform, "core_notes_get_course_notes", body={"error": "x"}, status=status)
    result = moodle.send(action("note"))
    assert (result.outcome, result.status) == (outcome, status)


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_waits_for_retry_after(rt, moodle, platform, status):
    answer(platform, "core_notes_get_course_notes", body={"error": "slow down"}, status=status,
           headers={"Retry-After": "120"})
    result = moodle.send(action("note"))
    assert (result.outcome, result.retry_after) == ("retry", 120.0)


def test_timeout_is_retried(rt, moodle, platform):
    platform.add(responses.POST, REST, body=requests.Timeout("slow"))
    assert moodle.send(action("note")).outcome == "retry"


def test_answer_that_is_not_json_is_retried(rt, moodle, platform):
    platform.add(responses.POST, REST, body="<html>maintenance</html>", status=200)
    assert moodle.send(action("note")).outcome == "retry"


# --- idempotency -----------------------------------------------------------------------------------------------


def test_message_sent_before_a_crash_is_found_and_not_sent_again(rt, moodle, platform):
    answer(platform, "core_webservice_get_site_info", "core_webservice_get_site_info")
    answer(platform, "core_message_get_conversation_between_users", "core_message_get_conversation_between_users")
    result = moodle.send(action("task"))
    assert (result.outcome, result.remote_id) == ("done", "4712")
    assert calls(platform, "core_message_send_instant_messages") == []


def test_note_written_before_a_crash_is_found_and_not_written_again(rt, moodle, platform):
    answer(platform, "core_notes_get_course_notes", "core_notes_get_course_notes")
    result = moodle.send(action("note"))
    assert (result.outcome, result.remote_id) == ("done", "316")
    assert calls(platform, "core_notes_create_notes") == []


def test_message_by_someone_else_with_the_marker_text_does_not_count(rt, moodle, platform):
    conversation = outbound("core_message_get_conversation_between_users")
    for message in conversation["messages"]:
        message["useridfrom"] = 3
    answer(platform, "core_webservice_get_site_info", "core_webservice_get_site_info")
    answer(platform, "core_message_get_conversation_between_users", body=conversation)
    answer(platform, "core_message_send_instant_messages", "core_message_send_instant_messages")
    assert moodle.send(action("task")).outcome == "done"
    assert len(calls(platform, "core_message_send_instant_messages")) == 1


def queue_action(rt, act: Action) -> None:
    with rt.redis.pipeline(transaction=True) as pipe:
        outbox.add(pipe, rt, "skole-a", "moodle", [act], rt.clock.now().timestamp())
        pipe.execute()


def test_retried_action_does_not_call_moodle_twice(rt, moodle, platform):
    """First attempt: Moodle wrote the message but the answer was lost; second: found by its marker; after that the
    ledger stops every further attempt before any call."""
    answer(platform, "core_webservice_get_site_info", "core_webservice_get_site_info")
    answer(platform, "core_message_get_conversation_between_users", "exception__errorconversationdoesnotexist")
    answer(platform, "core_message_get_conversation_between_users", "core_message_get_conversation_between_users")
    platform.add(responses.POST, REST, body=requests.ConnectionError("reset"),
                 match=[matchers.query_param_matcher({"wsfunction": "core_message_send_instant_messages",
                                                      "moodlewsrestformat": "json"})])
    queue_action(rt, action("task"))
    assert outbox.send(rt, "skole-a", REF) == "retry"
    assert outbox.send(rt, "skole-a", REF) == "done"
    assert outbox.send(rt, "skole-a", REF) == "skipped"
    assert len(calls(platform, "core_message_send_instant_messages")) == 1
    assert outbox.written(rt, "skole-a", REF) == b"4712"


# --- secrets and names stay out of logs ------------------------------------------------------------------------


def test_no_token_and_no_name_in_any_log_line_or_queued_job(client, replay, rt, moodle, platform, caplog):
    caplog.set_level(logging.DEBUG)
    client.post(WEBHOOK, data=event_with("attendance_taken", token="guessed-token-123"),
                headers={"content-type": "application/json"})
    replay("moodle", "attendance_taken")
    jobs = json.dumps([job.args for job in queued_jobs(rt)])
    answer(platform, "mod_attendance_get_session", "mod_attendance_get_session")
    moodle.prepare(queued_events(rt))
    answer(platform, "core_webservice_get_site_info", "exception__invalidtoken")
    moodle.send(action("task"))
    for secret in (WS_TOKEN, HOOK_TOKEN, "guessed-token-123", "Elev", "Lærer"):
        assert secret not in caplog.text
        assert secret not in jobs


# --- settings --------------------------------------------------------------------------------------------------


def test_settings_need_a_way_to_authenticate_webhooks():
    with pytest.raises(ValidationError) as raised:
        MoodleSettings().load({"base_url": "https://moodle.test", "ws_token": {"env": "X"}})
    assert "webhook_tokens" in raised.value.messages


def test_settings_refuse_an_unknown_time_zone_and_an_unknown_role():
    with pytest.raises(ValidationError) as raised:
        MoodleSettings().load({"base_url": "https://moodle.test", "ws_token": {"env": "X"},
                               "webhook_tokens": [{"env": "Y"}], "timezone": "Europe/Olso",
                               "roles": {"kontaktlaerer": ["editingteacher"]}})
    assert {"timezone", "roles"} <= set(raised.value.messages)


def test_configured_statuses_are_merged_over_the_defaults():
    settings = MoodleSettings().load({"base_url": "https://moodle.test", "ws_token": {"env": "X"},
                                      "webhook_tokens": [{"env": "Y"}],
                                      "statuses": {"F": {"status": "absent", "documented": False}}})
    assert set(settings["statuses"]) == {"P", "L", "E", "A", "F"}
    assert settings["statuses"]["E"] == {"status": "absent", "documented": True}


# --- end to end ------------------------------------------------------------------------------------------------


def at(rt, moment: datetime) -> None:
    rt.clock.set(moment)
    scheduler.sweep(rt)
    run_worker(rt)


def test_register_taken_in_moodle_ends_as_a_message_task_to_the_courses_teacher(replay, rt, moodle, platform):
    """attendance_taken -> the session's statuses from mod_attendance -> pupil 12 absent without a notice -> three
    school days later the contact teacher (found in Moodle) gets the task as a message; the guardians' reminder (a
    school that asks for one for single lessons too) cannot be delivered in Moodle and waits in the dead letters."""
    from dataclasses import replace

    from connector.rules.plan import merge_plan

    tenant = replace(rt.config.tenants["skole-a"],
                     plan=merge_plan({"absence.notice_missing": {"remind_guardians_for_lessons": True}}))
    rt.config = replace(rt.config, tenants={**rt.config.tenants, "skole-a": tenant})
    answer(platform, "mod_attendance_get_session", "mod_attendance_get_session")
    answer(platform, "core_enrol_get_enrolled_users", "core_enrol_get_enrolled_users")
    accept_message(platform)
    task_ref = external_ref("skole-a", "absence.notice_missing", "12", "2026-11-23", "task")
    alert_ref = external_ref("skole-a", "absence.notice_missing", "12", "2026-11-23", "alert")

    def task_messages():
        return [c for c in calls(platform, "core_message_send_instant_messages")
                if c["messages[0][clientmsgid]"] == task_ref]

    replay("moodle", "attendance_taken", expect_status=202)
    run_worker(rt)
    assert functions(platform)[0] == "mod_attendance_get_session"
    at(rt, datetime(2026, 11, 26, 22, 59, tzinfo=timezone.utc))  # Thursday 23:59 in Oslo: still in time
    assert task_messages() == []

    at(rt, OSLO_MIDNIGHT_FRIDAY)
    (sent,) = task_messages()
    assert sent["messages[0][touserid]"] == "3"
    assert sent["messages[0][textformat]"] == "2"
    assert sent["messages[0][text]"].startswith("Følg opp fravær uten melding 23. nov\n\n")
    assert sent["messages[0][text]"].endswith(f"\n\nskoleflyt: {task_ref}")
    assert "Frist: " in sent["messages[0][text]"]  # the task's due date is in its text: messages have no due field
    assert calls(platform, "core_enrol_get_enrolled_users")[0]["courseid"] == "7"
    assert outbox.written(rt, "skole-a", task_ref) == b"4712"
    (letter,) = [d for d in outbox.dead_letters(rt) if d["action"]["external_ref"] == alert_ref]
    assert letter["action"]["assignee"] == {"role": "guardian"}
    assert "guardian" in letter["reason"]


# --- connector check-adapter: what the token can do, before the first event -------------------------------------------


def test_check_adapter_on_a_healthy_moodle_says_ready_and_names_the_service_user(moodle, platform):
    answer(platform, "core_webservice_get_site_info", "core_webservice_get_site_info")
    findings = moodle.check()
    assert all(finding.ok for finding in findings)
    assert [finding.what for finding in findings] == [
        "token and REST web services", "functions of the external service", "enablenotes", "messaging",
        "capabilities"]
    assert "user id 2" in findings[0].detail and "Moodle 4.5" in findings[0].detail
    assert functions(platform) == ["core_webservice_get_site_info"]  # read-only: nothing else is called


def test_check_adapter_names_missing_functions_and_features(moodle, platform):
    info = outbound("core_webservice_get_site_info")
    info["functions"] = [f for f in info["functions"]
                         if f["name"] not in ("mod_attendance_get_session", "core_notes_create_notes")]
    info["advancedfeatures"] = [{"name": "enablenotes", "value": 0}, {"name": "messaging", "value": 1}]
    answer(platform, "core_webservice_get_site_info", body=info)
    by_what = {finding.what: finding for finding in moodle.check()}
    listed = by_what["functions of the external service"]
    assert not listed.ok
    assert listed.detail.startswith("missing: mod_attendance_get_session, core_notes_create_notes. Add them")
    assert "Attendance plugin" in listed.detail
    assert not by_what["enablenotes"].ok and "Enable notes" in by_what["enablenotes"].detail
    assert by_what["messaging"].ok


@pytest.mark.parametrize("fixture,says", [
    ("exception__invalidtoken", "Moodle does not accept ws_token"),
    ("exception__accessexception", "Authorised users"),
])
def test_check_adapter_explains_a_refused_token(moodle, platform, fixture, says):
    answer(platform, "core_webservice_get_site_info", fixture)
    (finding,) = moodle.check()
    assert not finding.ok and says in finding.detail
    assert WS_TOKEN not in finding.detail
