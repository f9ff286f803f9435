"""Replays the Microsoft 365 adapter's fixtures (Graph's documented notifications and answers) through the real
door, worker and outbox; only Microsoft's HTTP endpoints (login and Graph) are mocked."""
from __future__ import annotations

import copy
import hashlib
import json
import logging
from datetime import datetime, timezone
from pathlib import Path

import pytest
import responses
from marshmallow import ValidationError
from responses import matchers

from connector.engine import outbox, routing as processing
from connector.contract.actions import Action, Party, external_ref
from connector.adapters.m365.activity import chain_id
from connector.adapters.base import PlatformRefused
from connector.adapters.m365.adapter import PROTECTED_API, PrepareFailed
from connector.adapters.m365.notifications import message_path
from connector.adapters.m365.settings import M365Settings
from connector.engine.directory import resolve
from tests.support import add_adapter, door_clock_at, queued_jobs, run_worker
from tests.webhook_support import load

FIXTURES = Path(__file__).parent / "fixtures"
TENANT = "84bd8158-6d4d-4958-8b9f-9d6445542f95"
CLIENT_ID = "535fb089-9ff3-47b6-9bfb-4f1264799865"
APP_ID = "fe4a8eba-2a31-4737-8e33-e5fae6fee194"
PLAN = "xqQg5FS2LkCp935s-FIFm2QAFkHM"
BUCKET = "hsOf2dhOJkqyYYZEtdzDe2QAIUCR"
CLASS_7A = "7e4ec76c-8276-43ef-ba10-9aaa197cb212"
TEACHER = "87d349ed-44d7-43e1-9a83-5f2406dee5bd"  # the one teacher in education_class_teachers.json
AUTHOR = "8ea0e38b-efb3-4757-924a-5f94061cf8c2"  # the writer in the chat_message__*.json fixtures
CLIENT_STATE = "secretClientValue"  # the clientState in the inbound fixtures
GRAPH = "https://graph.microsoft.com/v1.0"
LOGIN = f"https://login.microsoftonline.com/{TENANT}"
OPENID_URL = f"{LOGIN}/v2.0/.well-known/openid-configuration"
TOKEN_URL = f"{LOGIN}/oauth2/v2.0/token"
CHAT_ID = "19:8ea0e38b-efb3-4757-924a-5f94061cf8c2_97f62344-57dc-409c-88ad-c4af14158ff5@unq.gbl.spaces"
CHAT_PATH = f"/chats/{CHAT_ID}/messages/1612289765949"
TEACHERS_URL = f"{GRAPH}/education/classes/{CLASS_7A}/teachers"
CHANNEL_PATH = ("/teams/fbe2bf47-16c8-47cf-b4a5-4b9b187c508b/channels/19:4a95f7d8db4c4e7fae857bcebe0623e6@thread.tacv2"
                "/messages/1612293113399")


def answer(name: str) -> dict:
    return json.loads((FIXTURES / "outbound" / f"{name}.json").read_text())


TOKEN = answer("token__client_credentials")["access_token"]


def configure(rt, **extra) -> None:
    add_adapter(rt, "skole-a", "teams", "m365", {
        "tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret": {"env": "SKOLE_A_M365_SECRET"},
        "client_states": [{"env": "SKOLE_A_M365_STATE"}, {"env": "SKOLE_A_M365_STATE_NEXT"}],
        "teams_app_id": APP_ID, "planner_plan_id": PLAN, "planner_bucket_id": BUCKET,
        "education_classes": {"7A": CLASS_7A}, "timeout_seconds": 2, **extra,
    })


@pytest.fixture
def teams(rt, monkeypatch):
    """Tenant ``skole-a`` gets an ``m365`` adapter named ``teams``, with secrets from the environment."""
    monkeypatch.setenv("SKOLE_A_M365_SECRET", "client-secret-not-in-logs")
    monkeypatch.setenv("SKOLE_A_M365_STATE", "rotated-out-client-state")
    monkeypatch.setenv("SKOLE_A_M365_STATE_NEXT", CLIENT_STATE)
    configure(rt)
    return rt.adapter("skole-a", "teams")


def login(platform, token: str = "token__client_credentials", status: int = 200):
    platform.add(responses.GET, OPENID_URL, json=answer("openid_configuration"))
    platform.add(responses.POST, TOKEN_URL, json=answer(token), status=status)


def post_notification(client, body: bytes, content_type: str = "application/json"):
    """A notification a test wrote or changed; an unchanged fixture goes through the shared ``replay``. The adapter
    stamps a notification with the time it arrives (the wall clock); the door's clock agrees."""
    with door_clock_at(client, datetime.now(timezone.utc)):
        return client.post("/webhooks/skole-a/teams", data=body, content_type=content_type)


def notification(name: str) -> dict:
    return load("m365", name).json()


def queued_events(rt) -> list[dict]:
    (job,) = queued_jobs(rt)
    return job.args[3]


def calls_to(platform, fragment: str) -> list:
    return [call for call in platform.calls if fragment in call.request.url]


# --- every fixture is replayed ---------------------------------------------------------------------------------

REPLAYED = {
    "change_notification__channel_message_created": CHANNEL_PATH,
    "change_notification__chat_message_created_with_resource_data": CHAT_PATH,
}
LIFECYCLE = {  # fixture -> the lifecycle event it carries, for the subscriptions' upkeep
    "lifecycle_notification__reauthorization_required": ("reauthorizationRequired",
                                                         "e3898f08-5cd0-4a6a-80fc-6addbfb73b7b"),
    "lifecycle_notification__subscription_removed": ("subscriptionRemoved", "7f105c7d-2dc5-4530-97cd-4e7ae6534c07"),
    "lifecycle_notification__missed": ("missed", "7f105c7d-2dc5-4530-97cd-4e7ae6534c07"),
}
OUTBOUND = {  # answer fixture -> the call it is Graph's (or the login endpoint's) answer to
    "openid_configuration": "GET {authority}/v2.0/.well-known/openid-configuration (msal, once per process)",
    "token__client_credentials": "POST {authority}/oauth2/v2.0/token",
    "token__invalid_scope": "POST {authority}/oauth2/v2.0/token, refused",
    "chat_message__chat": "GET /chats/{id}/messages/{id}",
    "chat_message__channel": "GET /teams/{id}/channels/{id}/messages/{id}",
    "chat_message__channel_reply": "GET /teams/{id}/channels/{id}/messages/{id}/replies/{id}",
    "education_user__teacher": "GET /education/users/{id}",
    "education_class_teachers": "GET /education/classes/{id}/teachers",
    "planner_plan_tasks": "GET /planner/plans/{id}/tasks",
    "planner_task__created": "POST /planner/tasks",
    "planner_task_details": "GET /planner/tasks/{id}/details",
    "graph_error__throttled": "any Graph call, 429",
    "graph_error__authorization_request_denied": "any Graph call, 403",
    "graph_error__example": "any Graph call, the documented error body",
    "graph_error__protected_api": "GET a Teams message, 403: the protected-API approval is missing",
    "subscription__created": "POST /subscriptions",
    "subscription__renewed": "PATCH /subscriptions/{id}",
    "channel_messages_delta": "GET /teams/{id}/channels/{id}/messages/delta?$filter=lastModifiedDateTime gt ...",
    "subscription_list": "GET /subscriptions (check-adapter)",
    "planner_plan": "GET /planner/plans/{id} (check-adapter)",
}


def test_every_inbound_and_outbound_fixture_is_replayed_by_a_test():
    assert {p.stem for p in FIXTURES.glob("*.json")} == set(REPLAYED) | set(LIFECYCLE)
    assert {p.stem for p in (FIXTURES / "outbound").glob("*.json")} == set(OUTBOUND)
    source = Path(__file__).read_text()
    for name in OUTBOUND:
        assert source.count(f'"{name}"') >= 2, f"outbound fixture {name} is not used by any test"


# --- in: the door ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(REPLAYED))
def test_new_message_notification_is_queued_as_a_message_to_read_in_the_worker(replay, rt, name):
    (event,) = replay("m365", name, expect_status=202, expect_answer={"accepted": 1})
    assert queued_events(rt) == [event]
    assert event.pop("timestamp")
    assert event == {"type": "message.created", "m365_message": REPLAYED[name]}


@pytest.mark.parametrize("name", sorted(LIFECYCLE))
def test_lifecycle_notification_is_queued_for_the_subscriptions_upkeep(replay, rt, name):
    lifecycle, subscription_id = LIFECYCLE[name]
    (event,) = replay("m365", name, expect_status=202, expect_answer={"accepted": 1})
    assert event.pop("timestamp")
    assert event == {"type": "subscription.lifecycle", "lifecycle": lifecycle, "subscription_id": subscription_id}


def test_lifecycle_event_graph_may_add_later_is_answered_202_logged_and_counted(client, rt, teams, caplog):
    caplog.set_level(logging.INFO)
    novel = notification("lifecycle_notification__missed")
    novel["value"][0]["lifecycleEvent"] = "somethingNew"
    response = post_notification(client, json.dumps(novel).encode())
    assert response.get_json() == {"accepted": 0, "ignored": "lifecycle.somethingNew"}
    assert queued_jobs(rt) == []
    assert rt.redis.hget(rt.keys.ignored, "lifecycle.somethingNew") == b"1"
    assert "ignored event type 'lifecycle.somethingNew'" in caplog.text


def test_repeated_reauthorization_challenge_is_not_taken_for_a_redelivery(client, rt, teams):
    """Graph repeats ``reauthorizationRequired`` until the subscription is renewed, which moves its expiry."""
    challenge = notification("lifecycle_notification__reauthorization_required")
    assert post_notification(client, json.dumps(challenge).encode()).get_json() == {"accepted": 1}
    assert post_notification(client, json.dumps(challenge).encode()).get_json() == {"accepted": 0, "duplicate": True}
    challenge["value"][0]["subscriptionExpirationDateTime"] = "2019-09-18T01:52:45.9696658+00:00"
    assert post_notification(client, json.dumps(challenge).encode()).get_json() == {"accepted": 1}


def test_edited_message_is_ignored_not_dropped_silently(client, rt, teams):
    edited = notification("change_notification__channel_message_created")
    edited["value"][0]["changeType"] = "updated"
    response = post_notification(client, json.dumps(edited).encode())
    assert response.get_json() == {"accepted": 0, "ignored": "chatMessage.updated"}
    assert rt.redis.hget(rt.keys.ignored, "chatMessage.updated") == b"1"


def test_redelivered_notification_is_queued_once(replay, rt):
    replay("m365", "change_notification__channel_message_created", expect_answer={"accepted": 1})
    replay("m365", "change_notification__channel_message_created", expect_answer={"accepted": 0, "duplicate": True})
    assert len(queued_jobs(rt)) == 1


@pytest.mark.parametrize("client_state", ["someone-elses-state", None])
def test_wrong_or_missing_client_state_is_refused_401(client, rt, teams, client_state):
    forged = notification("change_notification__channel_message_created")
    forged["value"][0]["clientState"] = client_state
    response = post_notification(client, json.dumps(forged).encode())
    assert (response.status_code, response.get_json()["error"]) == (401, "invalid_client_state")
    assert queued_jobs(rt) == []


def test_notification_from_another_tenant_is_refused_401(client, rt, teams):
    foreign = notification("change_notification__channel_message_created")
    foreign["value"][0]["tenantId"] = "00000000-0000-0000-0000-000000000000"
    assert post_notification(client, json.dumps(foreign).encode()).status_code == 401


def test_client_state_being_rotated_in_is_accepted_beside_the_old_one(replay, rt, teams, monkeypatch):
    monkeypatch.setenv("SKOLE_A_M365_STATE", CLIENT_STATE)
    monkeypatch.setenv("SKOLE_A_M365_STATE_NEXT", "the-next-client-state")
    replay("m365", "change_notification__channel_message_created", expect_status=202)


@pytest.mark.parametrize("body,content_type,status,code", [
    (b"{}", "text/xml", 415, "unsupported_media_type"),
    (b"{not json", "application/json", 400, "malformed_json"),
    (b'{"value": []}', "application/json", 422, "invalid_notification"),
    (b"", "text/plain; charset=utf-8", 400, "validation_not_answered"),
])
def test_bodies_graph_never_sends_are_refused_with_their_status(client, rt, teams, body, content_type, status, code):
    response = post_notification(client, body, content_type)
    assert (response.status_code, response.get_json()["error"]) == (status, code)


def test_chat_message_notification_naming_no_message_is_refused_422_with_the_field(client, rt, teams):
    unaddressed = notification("change_notification__channel_message_created")
    unaddressed["value"][0]["resource"] = "teams('x')/channels('y')"
    response = post_notification(client, json.dumps(unaddressed).encode())
    assert (response.status_code, response.get_json()["fields"]) == (422, {"value.0.resource": [
        "Not a channel or chat message path."]})


def test_validation_handshake_echoes_the_token_and_nothing_else(teams):
    assert teams.validation_response({"validationToken": "Validation: Testing client application reachability"}) \
        == "Validation: Testing client application reachability"
    assert teams.validation_response({}) is None
    assert teams.validation_response({"validationToken": "a\nb"}) is None
    assert teams.validation_response({"validationToken": "x" * 5000}) is None


def test_reply_resource_reads_the_reply():
    resource = ("teams('d29828b8-c04d-4e2a-b2f6-07da6982f0f0')"
                "/channels('19:f127a8c55ad949d1a238464d22f0f99e@thread.skype')"
                "/messages('1565045424600')/replies('1565047490246')")
    assert message_path(resource) == ("/teams/d29828b8-c04d-4e2a-b2f6-07da6982f0f0/channels/"
                                      "19:f127a8c55ad949d1a238464d22f0f99e@thread.skype/messages/1565045424600"
                                      "/replies/1565047490246")


# --- in: the worker (prepare) ----------------------------------------------------------------------------------

def mock_author(platform, role_fixture: dict | None = None, status: int = 200):
    platform.add(responses.GET, f"{GRAPH}/education/users/{AUTHOR}", status=status,
                 json=role_fixture or answer("education_user__teacher"),
                 match=[matchers.query_param_matcher({"$select": "id,primaryRole"})])


def test_chat_message_becomes_exactly_this_message_created(teams, platform):
    login(platform)
    platform.add(responses.GET, GRAPH + CHAT_PATH, json=answer("chat_message__chat"))
    mock_author(platform)
    (event,) = teams.prepare([{"type": "message.created", "timestamp": "x", "m365_message": CHAT_PATH}])
    assert event == {
        "type": "message.created",
        "timestamp": "2021-02-02T18:19:52.105Z",
        "message_id": f"{CHAT_ID}/1612289992105",
        "sender": {"id": AUTHOR, "role": "staff"},
        "recipients": [],
        "student_ids": [],
        "created_at": "2021-02-02T18:19:52.105Z",
        "body": "test",
    }
    assert calls_to(platform, CHAT_PATH)[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_channel_message_html_is_read_as_text_and_an_image_only_message_has_no_body(teams, platform):
    login(platform)
    platform.add(responses.GET, GRAPH + CHANNEL_PATH, json=answer("chat_message__channel"))
    reply_path = CHANNEL_PATH + "/replies/1613671348387"
    platform.add(responses.GET, GRAPH + reply_path, json=answer("chat_message__channel_reply"))
    mock_author(platform)
    image, reply = teams.prepare([
        {"type": "message.created", "timestamp": "x", "m365_message": CHANNEL_PATH},
        {"type": "message.created", "timestamp": "x", "m365_message": reply_path},
    ])
    assert "body" not in image
    assert image["message_id"] == "19:4a95f7d8db4c4e7fae857bcebe0623e6@thread.tacv2/1614618259349"
    assert reply["body"] == "Test"
    assert len(calls_to(platform, "/education/users/")) == 1  # the author's role is cached


def test_pupil_writing_or_mentioned_is_who_the_message_is_about(teams, platform):
    message = answer("chat_message__chat")
    pupil = "ab88234e-0874-477c-9638-d144296ed04f"
    message["mentions"] = [{"id": 0, "mentionText": "Pupil", "mentioned": {
        "user": {"id": pupil, "displayName": "X", "userIdentityType": "aadUser"}}}]
    login(platform)
    platform.add(responses.GET, GRAPH + CHAT_PATH, json=message)
    student = dict(answer("education_user__teacher"), id=pupil, primaryRole="student")
    mock_author(platform, student, status=404)  # a guest without an education profile
    platform.add(responses.GET, f"{GRAPH}/education/users/{pupil}", json=student)
    (event,) = teams.prepare([{"type": "message.created", "timestamp": "x", "m365_message": CHAT_PATH}])
    assert event["sender"] == {"id": AUTHOR, "role": "unknown"}
    assert event["recipients"] == [{"id": pupil, "role": "student"}]
    assert event["student_ids"] == [pupil]


def test_message_deleted_before_it_was_read_is_skipped(teams, platform):
    login(platform)
    platform.add(responses.GET, GRAPH + CHAT_PATH, json=answer("graph_error__example"), status=404)
    assert teams.prepare([{"type": "message.created", "timestamp": "x", "m365_message": CHAT_PATH}]) == []


def test_message_written_by_an_app_is_skipped(teams, platform):
    message = answer("chat_message__chat")
    message["from"]["user"] = None
    login(platform)
    platform.add(responses.GET, GRAPH + CHAT_PATH, json=message)
    assert teams.prepare([{"type": "message.created", "timestamp": "x", "m365_message": CHAT_PATH}]) == []


def test_throttled_message_read_raises_so_the_job_is_retried(teams, platform):
    login(platform)
    platform.add(responses.GET, GRAPH + CHAT_PATH, json=answer("graph_error__throttled"), status=429,
                 headers={"Retry-After": "10"})
    with pytest.raises(PrepareFailed, match="429 TooManyRequests/429"):
        teams.prepare([{"type": "message.created", "timestamp": "x", "m365_message": CHAT_PATH}])


def test_protected_api_refusal_raises_platform_refused_not_a_retry(teams, platform):
    login(platform)
    platform.add(responses.GET, GRAPH + CHAT_PATH, json=answer("graph_error__protected_api"), status=403)
    with pytest.raises(PlatformRefused) as refused:
        teams.prepare([{"type": "message.created", "timestamp": "x", "m365_message": CHAT_PATH}])
    assert refused.value.reason_code == PROTECTED_API == "protected_api_not_approved"
    assert "teams-protected-apis" in refused.value.hint


def test_other_403_on_a_message_read_is_still_a_retried_failure(teams, platform):
    """Only the protected-API refusal ends the job; a missing permission may be granted while RQ retries."""
    login(platform)
    platform.add(responses.GET, GRAPH + CHAT_PATH, json=answer("graph_error__authorization_request_denied"),
                 status=403)
    with pytest.raises(PrepareFailed, match="403 Authorization_RequestDenied"):
        teams.prepare([{"type": "message.created", "timestamp": "x", "m365_message": CHAT_PATH}])


def test_protected_api_refusal_ends_the_jobs_flags_readyz_logs_once_and_clears_on_success(
        replay, client, rt, teams, platform, caplog):
    """Two deliveries refused (Graph's 403 for a protected API): no retry loop, the events dropped, one ERROR line,
    ``/readyz`` names the adapter without failing; a later successful read clears the flag."""
    caplog.set_level(logging.INFO)
    login(platform)
    refusal = answer("graph_error__protected_api")
    platform.add(responses.GET, GRAPH + CHAT_PATH, json=refusal, status=403)
    platform.add(responses.GET, GRAPH + CHANNEL_PATH, json=refusal, status=403)

    replay("m365", "change_notification__chat_message_created_with_resource_data", expect_answer={"accepted": 1})
    run_worker(rt)
    replay("m365", "change_notification__channel_message_created", expect_answer={"accepted": 1})
    run_worker(rt)

    assert rt.queue.failed_job_registry.count == 0 and queued_jobs(rt) == []
    assert rt.queue.scheduled_job_registry.count == 0  # no RQ retry waiting either (jobs keep no result)
    assert len(calls_to(platform, "/messages/")) == 2  # each read once: nothing retried
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "tenant=skole-a adapter=teams" in errors[0].getMessage()
    assert PROTECTED_API in errors[0].getMessage()
    dropped = [r.getMessage() for r in caplog.records if "dropped, not retried" in r.getMessage()]
    assert dropped == [f"tenant=skole-a adapter=teams: 1 event(s) dropped, not retried: {PROTECTED_API}"] * 2
    assert "Invoked API" not in caplog.text and "Resource Specific Consent" not in caplog.text

    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["status"] == "ok"
    assert ready.get_json()["detail"] == {"adapters": {"skole-a/teams": PROTECTED_API}}

    platform.replace(responses.GET, GRAPH + CHAT_PATH, json=answer("chat_message__chat"))
    mock_author(platform)
    later = notification("change_notification__chat_message_created_with_resource_data")
    later["value"][0]["subscriptionId"] = "a later subscription"
    assert post_notification(client, json.dumps(later).encode()).get_json() == {"accepted": 1}
    run_worker(rt)
    assert rt.queue.failed_job_registry.count == 0
    assert "detail" not in client.get("/readyz").get_json()
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1


# --- directory -------------------------------------------------------------------------------------------------

def test_class_with_one_teacher_answers_contact_teacher_and_is_cached(teams, platform):
    login(platform)
    platform.add(responses.GET, TEACHERS_URL, json=answer("education_class_teachers"))
    assert teams.lookup_role("contact_teacher", "7A") == TEACHER
    assert teams.lookup_role("contact_teacher", "7A") == TEACHER
    assert len(calls_to(platform, "/teachers")) == 1


def test_unmapped_group_or_other_role_falls_back_to_the_configured_directory(rt, teams, platform):
    assert teams.lookup_role("contact_teacher", "7B") is None
    assert teams.lookup_role("principal") is None
    assert resolve(rt, rt.tenant("skole-a"), "teams", "contact_teacher", "7B") == "u-kl-7b"
    assert len(platform.calls) == 0


def test_class_with_several_teachers_leaves_the_choice_to_the_directory(teams, platform):
    teachers = answer("education_class_teachers")
    teachers["value"].append(dict(teachers["value"][0], id="ab88234e-0874-477c-9638-d144296ed04f"))
    login(platform)
    platform.add(responses.GET, TEACHERS_URL, json=teachers)
    assert teams.lookup_role("contact_teacher", "7A") is None


# --- out: alerts -----------------------------------------------------------------------------------------------

def alert(to: Party | None = Party("contact_teacher", TEACHER), ref: str = "sf1-alert0001") -> Action:
    return Action(kind="alert", external_ref=ref, rule_id="absence.notice_missing", student_id="s-1002",
                  title="Fraværet 23. nov mangler skriftlig melding", body="Tekst " * 40, assignee=to,
                  severity="warning")


def activity_url(user: str = TEACHER) -> str:
    return f"{GRAPH}/users/{user}/teamwork/sendActivityNotification"


def test_alert_is_an_activity_notification_shaped_as_documented(teams, platform):
    login(platform)
    platform.add(responses.POST, activity_url(), status=204)
    result = teams.send(alert())
    assert (result.outcome, result.status) == ("done", 204)
    (call,) = calls_to(platform, "sendActivityNotification")
    assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(call.request.body) == {
        "topic": {"source": "text", "value": "Skoleflyt",
                  "webUrl": f"https://teams.microsoft.com/l/app/{APP_ID}?tenantId={TENANT}"},
        "activityType": "skoleflytAlert",
        "chainId": chain_id("sf1-alert0001"),
        "previewText": {"content": ("Tekst " * 40)[:150]},
        "templateParameters": [{"name": "title", "value": "Fraværet 23. nov mangler skriftlig melding"}],
    }
    assert result.remote_id == f"chain-{chain_id('sf1-alert0001')}"


def test_resent_alert_carries_the_same_chain_id_so_teams_replaces_it(teams, platform):
    login(platform)
    platform.add(responses.POST, activity_url(), status=204)
    teams.send(alert())
    teams.send(alert())
    first, second = (json.loads(c.request.body)["chainId"] for c in calls_to(platform, "sendActivityNotification"))
    assert first == second != chain_id("sf1-another-alert")
    assert 0 < first < 2 ** 63


def test_token_is_fetched_once_and_reused_until_it_nears_expiry(teams, platform):
    login(platform)
    platform.add(responses.POST, activity_url(), status=204)
    for n in range(3):
        assert teams.send(alert(ref=f"sf1-{n}")).outcome == "done"
    assert len(calls_to(platform, "/oauth2/v2.0/token")) == 1
    token_call = calls_to(platform, "/oauth2/v2.0/token")[0].request.body
    assert "grant_type=client_credentials" in token_call
    assert "scope=https%3A%2F%2Fgraph.microsoft.com%2F.default" in token_call


def test_refused_token_dead_letters_without_calling_graph_or_logging_secrets(teams, platform, caplog):
    caplog.set_level(logging.DEBUG)
    login(platform, "token__invalid_scope", status=400)
    result = teams.send(alert())
    assert (result.outcome, result.reason) == ("dead", "token refused (invalid_scope)")
    assert calls_to(platform, "graph.microsoft.com/v1.0") == []
    assert "client-secret-not-in-logs" not in caplog.text


def test_token_never_appears_in_a_log_line(teams, platform, caplog):
    caplog.set_level(logging.DEBUG)
    login(platform)
    platform.add(responses.POST, activity_url(), json=answer("graph_error__authorization_request_denied"), status=403)
    teams.send(alert())
    assert TOKEN not in caplog.text and TOKEN[:40] not in caplog.text
    assert "client-secret-not-in-logs" not in caplog.text


def test_graph_refusing_the_token_retries_with_a_fresh_one(teams, platform):
    login(platform)
    platform.add(responses.POST, activity_url(), json=answer("graph_error__example"), status=401)
    assert teams.send(alert()).outcome == "retry"
    platform.replace(responses.POST, activity_url(), status=204)
    assert teams.send(alert()).outcome == "done"
    assert len(calls_to(platform, "/oauth2/v2.0/token")) == 2


@pytest.mark.parametrize("retry_after,seconds", [("10", 10.0), ("2.128", 3.0)])
def test_throttled_alert_waits_for_retry_after(teams, platform, retry_after, seconds):
    login(platform)
    platform.add(responses.POST, activity_url(), json=answer("graph_error__throttled"), status=429,
                 headers={"Retry-After": retry_after})
    result = teams.send(alert())
    assert (result.outcome, result.retry_after, result.reason) == ("retry", seconds, "HTTP 429 (TooManyRequests/429)")


@pytest.mark.parametrize("status,fixture,outcome,reason", [
    (403, "graph_error__authorization_request_denied", "dead", "HTTP 403 (Authorization_RequestDenied)"),
    (404, "graph_error__example", "dead", "HTTP 404 (invalidRange)"),
    (409, "graph_error__example", "dead", "HTTP 409 (invalidRange)"),  # two Teams apps share the app registration
    (500, "graph_error__example", "retry", "HTTP 500 (invalidRange)"),
    (503, "graph_error__example", "retry", "HTTP 503 (invalidRange)"),
])
def test_graph_error_answers_are_classified_and_named_by_code(teams, platform, status, fixture, outcome, reason):
    login(platform)
    platform.add(responses.POST, activity_url(), json=answer(fixture), status=status)
    result = teams.send(alert())
    assert (result.outcome, result.reason) == (outcome, reason)


def test_guardian_alert_is_a_dead_letter_with_its_reason_and_no_call(teams, platform):
    result = teams.send(alert(Party("guardian")))
    assert (result.outcome, result.reason) == (
        "dead", "guardians are not Microsoft 365 users; send this reminder another way")
    assert len(platform.calls) == 0


def test_guardian_alert_is_skipped_when_the_school_reaches_guardians_elsewhere(rt, teams, platform):
    configure(rt, guardian_alerts="skip")
    result = rt.adapter("skole-a", "teams").send(alert(Party("guardian")))
    assert (result.outcome, result.remote_id) == ("done", "skipped:guardian")
    assert len(platform.calls) == 0


def test_alert_for_a_role_nobody_holds_is_a_dead_letter_naming_the_role(teams, platform):
    result = teams.send(alert(Party("nearest_leader")))
    assert (result.outcome, result.reason) == (
        "dead", "no Microsoft 365 user for role nearest_leader: add it to the tenant's directory")


def test_note_is_a_dead_letter_because_m365_has_no_place_for_it(teams, platform):
    note = Action(kind="note", external_ref="sf1-note", rule_id="escalation.feedback", student_id="s-1", title="",
                  body="Notat")
    assert teams.send(note).outcome == "dead"
    assert len(platform.calls) == 0


# --- out: Planner tasks ----------------------------------------------------------------------------------------

def task(ref: str = "sf1-3f1c9a0d2b7e44c1a9d0", assignee: str | None = TEACHER) -> Action:
    return Action(kind="task", external_ref=ref, rule_id="absence.notice_missing", student_id="s-1002",
                  title="Følg opp fravær uten melding 23. nov", body="Hvorfor: ...", assignee=Party("contact_teacher",
                  assignee), due_date="2026-11-30", priority="normal")


def mock_planner(platform, tasks: dict | None = None):
    created = answer("planner_task__created")
    platform.add(responses.GET, f"{GRAPH}/planner/plans/{PLAN}/tasks", json=tasks or answer("planner_plan_tasks"))
    platform.add(responses.POST, f"{GRAPH}/planner/tasks", json=created, status=201)
    platform.add(responses.GET, f"{GRAPH}/planner/tasks/{created['id']}/details", json=answer("planner_task_details"))
    platform.add(responses.PATCH, f"{GRAPH}/planner/tasks/{created['id']}/details", status=204)
    return created["id"]


def test_task_is_a_planner_task_with_its_text_in_the_details(teams, platform):
    login(platform)
    task_id = mock_planner(platform)
    result = teams.send(task())
    assert (result.outcome, result.remote_id, result.status) == ("done", task_id, 201)
    (create,) = [c for c in platform.calls if c.request.method == "POST" and c.request.url.endswith("/planner/tasks")]
    assert json.loads(create.request.body) == {
        "planId": PLAN,
        "bucketId": BUCKET,
        "title": "Følg opp fravær uten melding 23. nov [sf1-3f1c9a0d2b7e]",
        "assignments": {TEACHER: {"@odata.type": "#microsoft.graph.plannerAssignment", "orderHint": " !"}},
        "priority": 5,
        "dueDateTime": "2026-11-30T11:00:00Z",  # noon in Oslo
    }
    (patch,) = [c for c in platform.calls if c.request.method == "PATCH"]
    assert patch.request.headers["If-Match"] == answer("planner_task_details")["@odata.etag"]
    assert json.loads(patch.request.body) == {
        "description": "Hvorfor: ...\n\nRef: sf1-3f1c9a0d2b7e44c1a9d0", "previewType": "description"}


def test_task_already_in_the_plan_is_not_created_again(teams, platform):
    """A worker that died after Planner created the task but before the ledger noted it: the tag finds it."""
    tasks = answer("planner_plan_tasks")
    tasks["value"].append(dict(copy.deepcopy(tasks["value"][0]), id="Q7SNdWp5ekeJTpRRSCcZ3pUAD6kV", hasDescription=True,
                               title="Følg opp fravær uten melding 23. nov [sf1-3f1c9a0d2b7e]"))
    login(platform)
    mock_planner(platform, tasks)
    result = teams.send(task())
    assert (result.outcome, result.remote_id) == ("done", "Q7SNdWp5ekeJTpRRSCcZ3pUAD6kV")
    assert [c.request.method for c in platform.calls if "/planner/" in c.request.url] == ["GET"]


def test_task_found_without_its_text_gets_the_text_not_a_twin(teams, platform):
    tasks = answer("planner_plan_tasks")
    tasks["value"][0].update(title="Følg opp fravær uten melding 23. nov [sf1-3f1c9a0d2b7e]", hasDescription=False)
    login(platform)
    task_id = mock_planner(platform, tasks)
    assert teams.send(task()).remote_id == task_id
    assert [c.request.method for c in platform.calls if "/planner/" in c.request.url] == ["GET", "GET", "PATCH"]


def test_plan_search_follows_next_links(teams, platform):
    first = {"value": [], "@odata.nextLink": f"{GRAPH}/planner/plans/{PLAN}/tasks?$skiptoken=page2"}
    second = answer("planner_plan_tasks")
    second["value"][0].update(title="x [sf1-3f1c9a0d2b7e]", hasDescription=True)
    login(platform)
    platform.add(responses.GET, f"{GRAPH}/planner/plans/{PLAN}/tasks", json=second,
                 match=[matchers.query_param_matcher({"$skiptoken": "page2"})])
    platform.add(responses.GET, f"{GRAPH}/planner/plans/{PLAN}/tasks", json=first,
                 match=[matchers.query_param_matcher({})])
    assert teams.send(task()).remote_id == second["value"][0]["id"]


def test_details_changed_in_between_is_retried_and_finished_next_time(teams, platform):
    login(platform)
    task_id = mock_planner(platform)
    platform.replace(responses.PATCH, f"{GRAPH}/planner/tasks/{task_id}/details", json=answer("graph_error__example"),
                     status=412)
    assert teams.send(task()).outcome == "retry"


def test_task_without_an_entra_object_id_is_a_dead_letter(teams, platform):
    result = teams.send(task(assignee="u-kl-7a"))
    assert (result.outcome, result.reason) == (
        "dead", "no Entra object id for role contact_teacher: Planner assigns tasks by object id")
    assert len(platform.calls) == 0


def test_throttled_plan_search_waits_for_retry_after(teams, platform):
    login(platform)
    platform.add(responses.GET, f"{GRAPH}/planner/plans/{PLAN}/tasks", json=answer("graph_error__throttled"),
                 status=429, headers={"Retry-After": "7"})
    result = teams.send(task())
    assert (result.outcome, result.retry_after) == ("retry", 7.0)


def test_retried_action_does_not_call_graph_twice(rt, teams, platform):
    """The outbox's ledger: once an alert is done, a second attempt for the same external_ref sends nothing."""
    login(platform)
    platform.add(responses.POST, activity_url(), status=204)
    with rt.redis.pipeline() as pipe:
        outbox.add(pipe, rt, "skole-a", "teams", [alert()], rt.clock.now().timestamp())
        pipe.execute()
    assert outbox.send(rt, "skole-a", "sf1-alert0001") == "done"
    with rt.redis.pipeline() as pipe:
        outbox.add(pipe, rt, "skole-a", "teams", [alert()], rt.clock.now().timestamp())
        pipe.execute()
    assert outbox.send(rt, "skole-a", "sf1-alert0001") == "skipped"
    assert len(calls_to(platform, "sendActivityNotification")) == 1


# --- end to end ------------------------------------------------------------------------------------------------

def test_teams_message_reaches_the_contact_teachers_activity_feed_end_to_end(replay, rt, teams, platform, monkeypatch):
    """No rule acts on ``message.created`` yet (the classifier comes with the escalation ladder), so a stand-in
    handler alerts the class's contact teacher. Everything else is the real path: Graph's notification at the
    door, the job, ``prepare`` reading the message and its author's role from Graph, the role lookup, the outbox,
    and the activity notification out."""
    def alert_contact_teacher(rt_, tenant, events, found):
        for event in events:
            found.add([Action(
                kind="alert",
                external_ref=external_ref(tenant.id, "absence.school_refusal", event["sender"]["id"],
                                          event["message_id"], "alert"),
                rule_id="absence.school_refusal", student_id=event["sender"]["id"], title="Ny melding",
                body="En melding trenger oppfølging.", severity="warning",
                assignee=Party("contact_teacher", resolve(rt_, tenant, "teams", "contact_teacher", "7A")),
            )])

    monkeypatch.setitem(processing.EVENT_HANDLERS, "message.created", [alert_contact_teacher])
    login(platform)
    platform.add(responses.GET, GRAPH + CHAT_PATH, json=answer("chat_message__chat"))
    mock_author(platform)
    platform.add(responses.GET, TEACHERS_URL, json=answer("education_class_teachers"))
    platform.add(responses.POST, activity_url(TEACHER), status=204)

    replay("m365", "change_notification__chat_message_created_with_resource_data", expect_answer={"accepted": 1})
    run_worker(rt)

    (call,) = calls_to(platform, "sendActivityNotification")
    assert call.request.url == activity_url(TEACHER)
    assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
    ref = external_ref("skole-a", "absence.school_refusal", AUTHOR, f"{CHAT_ID}/1612289992105", "alert")
    body = json.loads(call.request.body)
    assert (body["chainId"], body["templateParameters"]) == (chain_id(ref), [{"name": "title", "value": "Ny melding"}])
    assert outbox.written(rt, "skole-a", ref) == f"chain-{chain_id(ref)}".encode()


# --- settings --------------------------------------------------------------------------------------------------

def test_settings_refuse_inline_secrets_and_values_teams_or_planner_would_refuse():
    with pytest.raises(ValidationError) as refused:
        M365Settings().load({
            "tenant_id": "skole.example.no", "client_id": "my-app", "client_secret": "inline-secret",
            "client_states": [], "teams_app_id": APP_ID, "topic_web_url": "https://example.org/skoleflyt",
            "education_classes": {"7A": "not-a-guid"},
        })
    assert set(refused.value.messages) == {
        "tenant_id", "client_id", "client_secret", "client_states", "topic_web_url", "education_classes"}


def test_numeric_group_names_from_yaml_map_to_their_class():
    settings = M365Settings().load({
        "tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret": {"env": "X"}, "client_states": [{"env": "Y"}],
        "teams_app_id": APP_ID, "education_classes": {10: CLASS_7A},
    })
    assert settings["education_classes"] == {"10": CLASS_7A}


def test_graph_validation_handshake_is_answered_through_the_webhook_door(client, rt, teams):
    """Graph creates a subscription only after this echo: 200, text/plain, the decoded token, within 10 s."""
    response = client.post("/webhooks/skole-a/teams?validationToken=Validation%3A%20Testing%20client%20application",
                           data=b"", headers={"Content-Type": "text/plain; charset=utf-8"})
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == "Validation: Testing client application"
    assert queued_jobs(rt) == []


def test_a_handshake_token_with_control_characters_is_not_echoed(client, rt, teams):
    response = client.post("/webhooks/skole-a/teams?validationToken=bad%0Atoken", data=b"",
                           headers={"Content-Type": "text/plain"})
    assert response.status_code == 400


# --- subscriptions: created from configuration, renewed, reauthorized, recreated, what was missed read back ----------
# Graph's documented shapes: subscription-post-subscriptions.md and subscription-update.md (the subscription object),
# change-notifications-lifecycle-events.md (the lifecycle notifications and what to answer them with),
# chatmessage-delta.md (a channel's messages by delta, filtered on lastModifiedDateTime).

TEAM = "fbe2bf47-16c8-47cf-b4a5-4b9b187c508b"
CHANNEL = "19:4a95f7d8db4c4e7fae857bcebe0623e6@thread.tacv2"
CHANNEL_MESSAGES = f"/teams/{TEAM}/channels/{CHANNEL}/messages"
DOOR = "https://connector.skole.example/webhooks/skole-a/teams"
SUBSCRIPTION_ID = answer("subscription__created")["id"]
AT_CREATION = datetime(2026, 11, 30, 23, 0, tzinfo=timezone.utc)  # subscription__created.json expires 23:55


@pytest.fixture
def subscribing(rt, teams, clock):
    """The ``teams`` adapter configured to keep one channel's subscription, with the clock at its creation."""
    configure(rt, subscriptions=[CHANNEL_MESSAGES], notification_url=DOOR)
    clock.set(AT_CREATION)
    return rt.adapter("skole-a", "teams")


def upkeep_due(rt) -> float | None:
    from connector.store import due
    return due.upkeep_due_at(rt.redis, rt.keys, "skole-a", "teams")


def stored_subscriptions(rt) -> dict:
    from connector.store import subscriptions as stored
    return stored.records(rt.redis, rt.keys, "skole-a", "teams")


def sweep_and_work(rt) -> None:
    from connector.engine import scheduler
    scheduler.sweep(rt)
    run_worker(rt)


def create_subscription(rt, platform) -> None:
    from connector.engine import subscriptions
    login(platform)
    platform.add(responses.GET, f"{GRAPH}/subscriptions", json={"value": []})  # none of ours to adopt
    platform.add(responses.POST, f"{GRAPH}/subscriptions", json=answer("subscription__created"), status=201)
    assert subscriptions.schedule(rt) == 1
    sweep_and_work(rt)


def test_subscriptions_are_created_from_configuration_with_both_urls_and_our_client_state(rt, subscribing, platform):
    create_subscription(rt, platform)
    listed, call = calls_to(platform, "/subscriptions")
    assert (listed.request.method, call.request.method) == ("GET", "POST")
    assert json.loads(call.request.body) == {
        "changeType": "created", "resource": CHANNEL_MESSAGES, "includeResourceData": False,
        "notificationUrl": DOOR, "lifecycleNotificationUrl": DOOR, "clientState": "rotated-out-client-state",
        "expirationDateTime": "2026-11-30T23:55:00.000Z",
    }
    expires = datetime(2026, 11, 30, 23, 55, tzinfo=timezone.utc).timestamp()
    made_with = hashlib.sha256(f"{DOOR}\x1frotated-out-client-state".encode()).hexdigest()[:16]
    assert stored_subscriptions(rt) == {CHANNEL_MESSAGES: {
        "id": SUBSCRIPTION_ID, "expires": expires, "since": AT_CREATION.timestamp(), "config": made_with}}
    assert "rotated-out-client-state" not in json.dumps(stored_subscriptions(rt))  # a digest, never the secret
    assert upkeep_due(rt) == expires - 55 * 60 / 3  # renewed while a third of its life is left


def test_a_second_schedule_does_not_move_the_renewal_already_planned(rt, subscribing, platform):
    from connector.engine import subscriptions
    create_subscription(rt, platform)
    planned = upkeep_due(rt)
    subscriptions.schedule(rt)
    assert upkeep_due(rt) == planned
    assert len(calls_to(platform, "/subscriptions")) == 2  # the list (nothing to adopt) and the create


def test_subscription_is_renewed_before_it_expires(rt, subscribing, platform, clock):
    create_subscription(rt, platform)
    platform.add(responses.PATCH, f"{GRAPH}/subscriptions/{SUBSCRIPTION_ID}", json=answer("subscription__renewed"))
    clock.set(datetime(2026, 11, 30, 23, 30, tzinfo=timezone.utc))
    sweep_and_work(rt)
    assert len(calls_to(platform, "/subscriptions")) == 2  # not due yet: 25 minutes of 55 are left
    clock.set(datetime(2026, 11, 30, 23, 40, tzinfo=timezone.utc))
    sweep_and_work(rt)
    renewal = calls_to(platform, "/subscriptions")[-1].request
    assert (renewal.method, json.loads(renewal.body)) == ("PATCH", {"expirationDateTime": "2026-12-01T00:35:00.000Z"})
    renewed = datetime(2026, 12, 1, 0, 40, tzinfo=timezone.utc).timestamp()  # what Graph answered is kept
    assert stored_subscriptions(rt)[CHANNEL_MESSAGES]["expires"] == renewed
    assert upkeep_due(rt) == renewed - 55 * 60 / 3


def lifecycle(client, rt, event: str) -> None:
    """Graph posts a lifecycle notification for our subscription to the door, and the worker takes it."""
    signal = notification(f"lifecycle_notification__{event}")
    signal["value"][0]["subscriptionId"] = SUBSCRIPTION_ID
    assert post_notification(client, json.dumps(signal).encode()).get_json() == {"accepted": 1}
    run_worker(rt)


def test_reauthorization_required_renews_the_subscription_at_once(client, rt, subscribing, platform, clock):
    from connector.store import subscriptions as stored
    create_subscription(rt, platform)
    platform.add(responses.PATCH, f"{GRAPH}/subscriptions/{SUBSCRIPTION_ID}", json=answer("subscription__renewed"))
    clock.set(datetime(2026, 11, 30, 23, 5, tzinfo=timezone.utc))  # long before the renewal would be due
    lifecycle(client, rt, "reauthorization_required")
    assert stored.signals(rt.redis, rt.keys, "skole-a", "teams") == {SUBSCRIPTION_ID: "reauthorizationRequired"}
    assert upkeep_due(rt) == clock.now().timestamp()
    sweep_and_work(rt)
    assert [call.request.method for call in calls_to(platform, "/subscriptions")] == ["GET", "POST", "PATCH"]
    assert stored.signals(rt.redis, rt.keys, "skole-a", "teams") == {}
    assert stored_subscriptions(rt)[CHANNEL_MESSAGES]["expires"] == datetime(
        2026, 12, 1, 0, 40, tzinfo=timezone.utc).timestamp()


def missed_read(platform) -> None:
    platform.add(responses.GET, f"{GRAPH}{CHANNEL_MESSAGES}/delta", json=answer("channel_messages_delta"),
                 match=[matchers.query_param_matcher(
                     {"$filter": "lastModifiedDateTime gt 2026-11-30T22:55:00.000Z"})])


def test_subscription_removed_is_created_again_and_what_was_posted_meanwhile_is_read(
        client, rt, subscribing, platform, clock, caplog):
    """Graph's answer to ``subscriptionRemoved``: a new subscription, then a sync of what came meanwhile. The
    message posted meanwhile is queued as a delivery of its own; one only edited meanwhile is not new."""
    caplog.set_level(logging.INFO)
    create_subscription(rt, platform)
    clock.set(datetime(2026, 11, 30, 23, 20, tzinfo=timezone.utc))
    lifecycle(client, rt, "subscription_removed")
    missed_read(platform)
    from connector.engine import scheduler
    scheduler.sweep(rt)
    (upkeep_job,) = queued_jobs(rt)
    upkeep_job.perform()
    assert [call.request.method for call in calls_to(platform, "/subscriptions")] == ["GET", "POST", "GET", "POST"]
    assert stored_subscriptions(rt)[CHANNEL_MESSAGES]["since"] == clock.now().timestamp()
    deliveries = [job for job in queued_jobs(rt) if job.func_name.endswith("process_delivery")]
    assert [job.args[3][0]["m365_message"] for job in deliveries] == [f"{CHANNEL_MESSAGES}/1606515483514"]
    assert "1 message(s) posted while notifications were missing; 1 queued" in caplog.text
    assert "HelloWorld" not in caplog.text and "Test" not in [r.getMessage() for r in caplog.records]


def test_missed_reads_back_what_graph_did_not_notify_and_keeps_the_subscription(client, rt, subscribing, platform,
                                                                                clock):
    create_subscription(rt, platform)
    clock.set(datetime(2026, 11, 30, 23, 20, tzinfo=timezone.utc))
    lifecycle(client, rt, "missed")
    missed_read(platform)
    from connector.engine import subscriptions
    assert subscriptions.upkeep(rt, "skole-a", "teams") == 1
    assert subscriptions.upkeep(rt, "skole-a", "teams") == 0  # the signal was acted on once
    assert [call.request.method for call in calls_to(platform, "/subscriptions")] == ["GET", "POST"]
    assert len(calls_to(platform, "/delta")) == 1


def test_missed_messages_are_queued_once_however_often_they_are_read_back(rt, subscribing, platform, clock):
    from connector.engine import subscriptions
    from connector.store import subscriptions as stored
    create_subscription(rt, platform)
    missed_read(platform)
    for _ in range(2):
        stored.signal(rt.redis, rt.keys, "skole-a", "teams", SUBSCRIPTION_ID, "missed")
        subscriptions.upkeep(rt, "skole-a", "teams")
    assert len([job for job in queued_jobs(rt) if job.func_name.endswith("process_delivery")]) == 1


def test_tenant_wide_resources_cannot_be_read_back_and_the_upkeep_says_so(rt, teams, platform, clock, caplog):
    from connector.engine import subscriptions
    from connector.store import subscriptions as stored
    configure(rt, subscriptions=["/chats/getAllMessages"], notification_url=DOOR)
    clock.set(AT_CREATION)
    create_subscription(rt, platform)
    stored.signal(rt.redis, rt.keys, "skole-a", "teams", SUBSCRIPTION_ID, "missed")
    subscriptions.upkeep(rt, "skole-a", "teams")
    assert "cannot_fetch_missed:/chats/getAllMessages" in caplog.text
    assert calls_to(platform, "getAllMessages?") == [] and calls_to(platform, "/delta") == []


def test_a_refused_subscription_is_tried_again_soon_and_named_in_the_log(rt, subscribing, platform, caplog):
    login(platform)
    platform.add(responses.GET, f"{GRAPH}/subscriptions", json={"value": []})
    platform.add(responses.POST, f"{GRAPH}/subscriptions", json=answer("graph_error__protected_api"), status=403)
    from connector.engine import subscriptions
    subscriptions.schedule(rt)
    sweep_and_work(rt)
    assert stored_subscriptions(rt) == {}
    assert upkeep_due(rt) == AT_CREATION.timestamp() + 120
    assert f"{CHANNEL_MESSAGES}: create: HTTP 403 (protected_api_not_approved)" in caplog.text
    assert rt.redis.hgetall(rt.keys.adapter_health) == {b"skole-a/teams": b"protected_api_not_approved"}


def test_an_expired_subscription_is_created_again_after_an_outage(rt, subscribing, platform, clock):
    create_subscription(rt, platform)
    missed_read_after = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    clock.set(missed_read_after)
    platform.add(responses.GET, f"{GRAPH}{CHANNEL_MESSAGES}/delta", json=answer("channel_messages_delta"))
    sweep_and_work(rt)
    assert [call.request.method for call in calls_to(platform, "/subscriptions")] == ["GET", "POST", "GET", "POST"]
    assert len(calls_to(platform, "/delta")) == 1


def test_a_read_back_that_fails_keeps_the_new_subscription_and_is_tried_again(rt, subscribing, platform, clock):
    from connector.engine import subscriptions
    from connector.store import subscriptions as stored
    create_subscription(rt, platform)
    removed_at = stored_subscriptions(rt)[CHANNEL_MESSAGES]["since"]
    clock.set(datetime(2026, 11, 30, 23, 20, tzinfo=timezone.utc))
    stored.signal(rt.redis, rt.keys, "skole-a", "teams", SUBSCRIPTION_ID, "subscriptionRemoved")
    platform.add(responses.GET, f"{GRAPH}{CHANNEL_MESSAGES}/delta", json=answer("graph_error__throttled"), status=429)
    subscriptions.upkeep(rt, "skole-a", "teams")
    record = stored_subscriptions(rt)[CHANNEL_MESSAGES]
    assert (record["id"], record["missed_since"]) == (SUBSCRIPTION_ID, removed_at)  # made anew, and remembered
    assert upkeep_due(rt) == clock.now().timestamp() + 120
    platform.replace(responses.GET, f"{GRAPH}{CHANNEL_MESSAGES}/delta", json=answer("channel_messages_delta"))
    assert subscriptions.upkeep(rt, "skole-a", "teams") == 1
    assert "missed_since" not in stored_subscriptions(rt)[CHANNEL_MESSAGES]
    assert [call.request.method for call in calls_to(platform, "/subscriptions")] == ["GET", "POST", "GET", "POST"]


def test_a_rotated_client_state_replaces_the_subscription_new_one_first(rt, subscribing, platform, monkeypatch):
    """The admin puts a new clientState first in client_states (the old one stays second while notifications with
    it may still arrive): the next round makes a subscription with the new state, then deletes the old one."""
    from connector.engine import subscriptions
    create_subscription(rt, platform)
    monkeypatch.setenv("SKOLE_A_M365_STATE", "the-new-client-state")
    replacement = {**answer("subscription__created"), "id": "0b4cfe3b-2b32-46a0-8a6d-2c0c1a0b1c2d"}
    platform.replace(responses.POST, f"{GRAPH}/subscriptions", json=replacement, status=201)
    platform.add(responses.DELETE, f"{GRAPH}/subscriptions/{SUBSCRIPTION_ID}", status=204)
    subscriptions.upkeep(rt, "skole-a", "teams")
    made = [call.request for call in calls_to(platform, "/subscriptions")][2:]
    assert [(r.method, r.url.rsplit("/", 1)[-1]) for r in made] == [
        ("POST", "subscriptions"), ("DELETE", SUBSCRIPTION_ID)]
    assert json.loads(made[0].body)["clientState"] == "the-new-client-state"
    assert stored_subscriptions(rt)[CHANNEL_MESSAGES]["id"] == replacement["id"]


def test_a_signal_that_comes_while_an_upkeep_runs_is_not_left_waiting_for_the_next_renewal(
        rt, subscribing, platform, clock, monkeypatch):
    from connector.engine import subscriptions
    from connector.store import subscriptions as stored
    create_subscription(rt, platform)
    keep = subscribing.keep_subscriptions

    def keep_while_graph_signals(records, signals, now):
        stored.signal(rt.redis, rt.keys, "skole-a", "teams", SUBSCRIPTION_ID, "reauthorizationRequired")
        return keep(records, signals, now)

    monkeypatch.setattr(subscribing, "keep_subscriptions", keep_while_graph_signals)
    clock.set(datetime(2026, 11, 30, 23, 5, tzinfo=timezone.utc))
    subscriptions.upkeep(rt, "skole-a", "teams")
    assert upkeep_due(rt) == clock.now().timestamp()  # not 23:36, when the renewal would be due
    assert stored.signals(rt.redis, rt.keys, "skole-a", "teams") == {SUBSCRIPTION_ID: "reauthorizationRequired"}


def test_a_subscription_graph_still_has_is_adopted_not_made_twice(rt, subscribing, platform):
    """A run that died after Graph made the subscription but before it was stored (or a lost store): the app's own
    subscription to the same resource at our door is renewed and kept, so notifications do not come twice."""
    from connector.engine import subscriptions
    login(platform)
    platform.add(responses.GET, f"{GRAPH}/subscriptions", json=answer("subscription_list"))
    platform.add(responses.PATCH, f"{GRAPH}/subscriptions/{SUBSCRIPTION_ID}", json=answer("subscription__renewed"))
    subscriptions.upkeep(rt, "skole-a", "teams")
    assert [call.request.method for call in calls_to(platform, "/subscriptions")] == ["GET", "PATCH"]
    assert stored_subscriptions(rt)[CHANNEL_MESSAGES]["id"] == SUBSCRIPTION_ID


def test_a_resource_taken_out_of_the_configuration_loses_its_subscription(rt, subscribing, platform):
    from connector.engine import subscriptions
    create_subscription(rt, platform)
    configure(rt, subscriptions=[], notification_url=DOOR)
    platform.add(responses.DELETE, f"{GRAPH}/subscriptions/{SUBSCRIPTION_ID}", status=204)
    subscriptions.upkeep(rt, "skole-a", "teams")
    assert calls_to(platform, "/subscriptions")[-1].request.method == "DELETE"
    assert stored_subscriptions(rt) == {}
    assert upkeep_due(rt) is None


def test_two_upkeeps_at_once_create_one_subscription(rt, subscribing, platform):
    from connector.engine import subscriptions
    from connector.store import subscriptions as stored
    assert stored.lock(rt.redis, rt.keys, "skole-a", "teams", "another-job", 60)
    subscriptions.upkeep(rt, "skole-a", "teams")
    assert calls_to(platform, "/subscriptions") == []
    assert upkeep_due(rt) == AT_CREATION.timestamp() + 30


@pytest.mark.parametrize("extra,field", [
    ({"subscriptions": [CHANNEL_MESSAGES]}, "notification_url"),
    ({"subscriptions": ["/users/x/messages"], "notification_url": DOOR}, "subscriptions"),
    ({"subscriptions": [CHANNEL_MESSAGES], "notification_url": "http://insecure.example/hook"}, "notification_url"),
])
def test_subscription_settings_an_admin_can_get_wrong_are_named(extra, field):
    with pytest.raises(ValidationError) as refused:
        M365Settings().load({
            "tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret": {"env": "X"},
            "client_states": [{"env": "Y"}], "teams_app_id": APP_ID, **extra})
    assert field in refused.value.messages


# --- connector check-adapter: the app registration's token, permissions and approvals, before the first event --------


def healthy_graph(platform) -> None:
    login(platform)
    platform.add(responses.GET, f"{GRAPH}/subscriptions", json=answer("subscription_list"))
    platform.add(responses.GET, f"{GRAPH}{CHANNEL_MESSAGES}",
                 json={"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(chatMessage)",
                       "value": [answer("chat_message__channel")]})  # a list of chatMessage: channel-list-messages.md
    platform.add(responses.GET, f"{GRAPH}/planner/plans/{PLAN}", json=answer("planner_plan"))


def test_check_adapter_on_a_ready_app_registration(rt, subscribing, platform):
    healthy_graph(platform)
    findings = subscribing.check()
    assert [(f.ok, f.what) for f in findings] == [
        (True, "token"), (True, "GET /subscriptions"), (True, CHANNEL_MESSAGES), (True, "Planner plan"),
        (True, "TeamsActivity.Send")]
    assert "1 subscription(s)" in findings[1].detail
    assert {call.request.method for call in platform.calls if GRAPH in call.request.url} == {"GET"}
    (read,) = calls_to(platform, CHANNEL_MESSAGES)
    assert "%24top=1" in read.request.url or "$top=1" in read.request.url


def test_check_adapter_names_the_missing_protected_api_approval(rt, subscribing, platform):
    healthy_graph(platform)
    platform.replace(responses.GET, f"{GRAPH}{CHANNEL_MESSAGES}", json=answer("graph_error__protected_api"), status=403)
    by_what = {f.what: f for f in subscribing.check()}
    assert not by_what[CHANNEL_MESSAGES].ok
    assert "not approved this app for the protected Teams APIs" in by_what[CHANNEL_MESSAGES].detail


def test_check_adapter_names_a_permission_without_admin_consent(rt, subscribing, platform):
    healthy_graph(platform)
    denied = answer("graph_error__authorization_request_denied")
    platform.replace(responses.GET, f"{GRAPH}{CHANNEL_MESSAGES}", json=denied, status=403)
    platform.replace(responses.GET, f"{GRAPH}/planner/plans/{PLAN}", json=denied, status=403)
    by_what = {f.what: f for f in subscribing.check()}
    assert "grant the application permission ChannelMessage.Read.All" in by_what[CHANNEL_MESSAGES].detail
    assert "Tasks.ReadWrite.All" in by_what["Planner plan"].detail and not by_what["Planner plan"].ok


def test_check_adapter_names_a_refused_client_secret_and_stops_there(rt, subscribing, platform):
    login(platform, token="token__invalid_scope", status=400)
    (finding,) = subscribing.check()
    assert (finding.ok, finding.what) == (False, "token")
    assert "token refused (invalid_scope)" in finding.detail and "client_secret" in finding.detail
    assert "client-secret-not-in-logs" not in finding.detail
