"""Every call ``send`` makes, shaped as Canvas documents it; Canvas's error shapes, throttling and pagination; and
why a retried action never makes a second planner note or message."""
from __future__ import annotations

import json
import logging

import pytest
import requests
import responses
from responses import matchers

from connector.engine import outbox
from connector.contract.actions import Action, Party
from connector.adapters.canvas.conftest import CANVAS, TOKEN, calls_to, fixture, query

REF_TASK = "sf1-3f1c9a0d2b7e44c1a9d0e6b5f4a3c2d1e0f9a8b7"  # the marker in outbound/list_planner_notes__with_marker
REF_ALERT = "sf1-a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"  # the marker in outbound/get_conversation__sent_with_marker
NOTES = f"{CANVAS}/api/v1/planner_notes"
CONVERSATIONS = f"{CANVAS}/api/v1/conversations"
OBSERVERS = f"{CANVAS}/api/v1/users/1002/observers"


def task(assignee: str | None = "3001", ref: str = REF_TASK) -> Action:
    return Action(
        kind="task", external_ref=ref, rule_id="absence.notice_missing", student_id="1002",
        title="Følg opp fravær uten melding 23. nov",
        body="Hvorfor: fraværet 23. november mangler skriftlig melding.",
        assignee=Party("contact_teacher", assignee), due_date="2026-11-30",
    )


def alert(assignee: Party = Party("guardian"), ref: str = REF_ALERT) -> Action:
    return Action(
        kind="alert", external_ref=ref, rule_id="absence.notice_missing", student_id="1002",
        title="Fraværet 23. nov mangler skriftlig melding",
        body="Hei! Vi har ikke mottatt skriftlig melding om fraværet mandag 23. november 2026 (hele dagen).",
        assignee=assignee, severity="warning",
    )


def note(visibility: str) -> Action:
    return Action(kind="note", external_ref="sf1-note", rule_id="escalation.feedback", student_id="1002",
                  title="Tilbakemelding gitt", body="Foresatte har fått tilbakemelding.", visibility=visibility)


@pytest.fixture
def canvas_settings():
    """Most tests here write tasks as planner notes: a school whose staff have the planner (a student enrolment in a
    staff-room course) says so; the default for staff, an Inbox message, has its own tests below."""
    return {"staff_tasks": "planner_note"}


def sent_to(user: str, answer: list) -> dict:
    """A mocked "sent conversations with this user" list, told apart by its ``filter[]``."""
    return dict(method=responses.GET, url=CONVERSATIONS, json=answer, match=[matchers.query_param_matcher(
        {"scope": "sent", "filter[]": f"user_{user}", "per_page": "100"})])


def body_of(call) -> dict:
    return json.loads(call.request.body)


# --- tasks: planner notes ----------------------------------------------------------------------------------------


def test_task_becomes_a_planner_note_in_the_assignees_own_planner(canvas, platform):
    platform.add(responses.GET, NOTES, json=fixture("outbound/list_planner_notes__empty"))
    platform.add(responses.POST, NOTES, json=fixture("outbound/create_planner_note"), status=201)
    result = canvas.send(task())
    assert (result.outcome, result.remote_id) == ("done", "planner_note/234")
    (listed,) = calls_to(platform, "GET", "/api/v1/planner_notes")
    assert query(listed) == {"start_date": ["2026-11-29"], "end_date": ["2026-12-01"], "per_page": ["100"],
                             "as_user_id": ["3001"]}
    (created,) = calls_to(platform, "POST", "/api/v1/planner_notes")
    assert query(created) == {"as_user_id": ["3001"]}  # masquerading: the note is the teacher's own
    assert body_of(created) == {
        "title": "Følg opp fravær uten melding 23. nov",
        "details": f"Hvorfor: fraværet 23. november mangler skriftlig melding.\n\nRef: {REF_TASK}",
        "todo_date": "2026-11-30",
    }
    assert created.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert created.request.headers["Content-Type"] == "application/json"


def test_planner_note_written_before_a_crash_is_found_and_not_written_again(canvas, platform):
    platform.add(responses.GET, NOTES, json=fixture("outbound/list_planner_notes__with_marker"))
    result = canvas.send(task())
    assert (result.outcome, result.remote_id) == ("done", "planner_note/234")
    assert calls_to(platform, "POST", "/api/v1/planner_notes") == []


def test_marker_on_a_later_page_of_planner_notes_is_found(canvas, platform):
    first, second = fixture("outbound/list_planner_notes__with_marker")
    following = f"{NOTES}?page=2&per_page=100&as_user_id=3001"
    window = {"start_date": "2026-11-29", "end_date": "2026-12-01", "per_page": "100", "as_user_id": "3001"}
    platform.add(responses.GET, NOTES, json=[first], headers={"link": f'<{following}>; rel="next", <{NOTES}>; rel="first"'},
                 match=[matchers.query_param_matcher(window)])
    platform.add(responses.GET, NOTES, json=[second], match=[matchers.query_param_matcher(
        {"page": "2", "per_page": "100", "as_user_id": "3001"})])
    result = canvas.send(task())
    assert (result.outcome, result.remote_id) == ("done", "planner_note/234")
    assert len(calls_to(platform, "GET", "/api/v1/planner_notes")) == 2
    assert calls_to(platform, "POST", "/api/v1/planner_notes") == []


def test_timeout_after_canvas_wrote_the_note_is_retried_without_a_second_note(canvas, platform):
    platform.add(responses.GET, NOTES, json=fixture("outbound/list_planner_notes__empty"))
    platform.add(responses.POST, NOTES, body=requests.Timeout("read timed out"))
    first = canvas.send(task())
    assert first.outcome == "retry"
    platform.replace(responses.GET, NOTES, json=fixture("outbound/list_planner_notes__with_marker"))
    second = canvas.send(task())
    assert (second.outcome, second.remote_id) == ("done", "planner_note/234")
    assert len(calls_to(platform, "POST", "/api/v1/planner_notes")) == 1


def test_task_without_a_canvas_user_to_assign_is_a_dead_letter_without_calls(canvas, platform):
    for assignee in (None, "u-kl-7a"):
        result = canvas.send(task(assignee=assignee))
        assert result.outcome == "dead" and "planner notes are personal" in result.reason
    assert len(platform.calls) == 0


class TestTasksForStaffByDefault:
    """Canvas turns the planner on only for users with a student enrolment and for observers
    (``ApplicationController#planner_enabled?``): a teacher would never see a planner note. By default a task for
    staff is an Inbox message from the service account, with the due date; a pupil's task stays a planner note."""

    @pytest.fixture
    def canvas_settings(self):
        return {}

    def test_task_for_a_teacher_is_an_inbox_message_with_its_due_date(self, canvas, platform):
        platform.add(**sent_to("3001", []))
        platform.add(responses.POST, CONVERSATIONS, json=fixture("outbound/create_conversation"), status=201)
        result = canvas.send(task())
        assert (result.outcome, result.remote_id) == ("done", "conversation/62")
        assert calls_to(platform, "GET", "/api/v1/planner_notes") == []
        (created,) = calls_to(platform, "POST", "/api/v1/conversations")
        assert "as_user_id" not in created.request.url  # no masquerading needed: the service account writes
        assert body_of(created) == {
            "recipients": ["3001"], "subject": "Følg opp fravær uten melding 23. nov",
            "body": f"Hvorfor: fraværet 23. november mangler skriftlig melding.\n\nFrist: 30.11.2026\n\nRef: {REF_TASK}",
            "force_new": True, "group_conversation": False,
        }

    @pytest.mark.parametrize("language,line", [("nn", "Frist: 30.11.2026"), ("en", "Due: 30 November 2026")])
    def test_the_due_line_follows_the_configured_language(self, canvas, platform, language, line):
        canvas.settings = {**canvas.settings, "language": language}
        platform.add(**sent_to("3001", []))
        platform.add(responses.POST, CONVERSATIONS, json=fixture("outbound/create_conversation"), status=201)
        canvas.send(task())
        (created,) = calls_to(platform, "POST", "/api/v1/conversations")
        assert f"\n\n{line}\n\nRef: {REF_TASK}" in body_of(created)["body"]

    def test_task_message_sent_before_a_crash_is_found_by_its_ref_and_not_sent_again(self, canvas, platform):
        sent = fixture("outbound/list_sent_conversations")
        sent[0]["subject"] = "Følg opp fravær uten melding 23. nov"
        opened = fixture("outbound/get_conversation__sent_with_marker")
        opened["subject"] = sent[0]["subject"]
        opened["messages"][0]["body"] = opened["messages"][0]["body"].replace(REF_ALERT, REF_TASK)
        platform.add(**sent_to("3001", sent))
        platform.add(responses.GET, f"{CONVERSATIONS}/61", json=opened)
        result = canvas.send(task())
        assert (result.outcome, result.remote_id) == ("done", "conversation/61")
        assert calls_to(platform, "POST", "/api/v1/conversations") == []

    def test_task_for_a_pupil_stays_a_planner_note_where_canvas_shows_it(self, canvas, platform):
        platform.add(responses.GET, NOTES, json=fixture("outbound/list_planner_notes__empty"))
        platform.add(responses.POST, NOTES, json=fixture("outbound/create_planner_note"), status=201)
        pupil_task = task()
        pupil_task = Action(**{**pupil_task.__dict__, "assignee": Party("student", "1002")})
        assert canvas.send(pupil_task).remote_id == "planner_note/234"
        assert query(calls_to(platform, "POST", "/api/v1/planner_notes")[0]) == {"as_user_id": ["1002"]}
        assert calls_to(platform, "POST", "/api/v1/conversations") == []

    def test_teacher_outside_the_address_book_is_a_dead_letter_saying_so(self, canvas, platform, rt):
        """Canvas's ``render_error('recipients', 'invalid')``: the teacher is not among the people the service
        account may message. Retrying cannot help; the dead letter tells the admin what to change."""
        platform.add(**sent_to("3001", []))
        platform.add(responses.POST, CONVERSATIONS, json=fixture("outbound/error__invalid_recipients"), status=400)
        with rt.redis.pipeline() as pipe:
            outbox.add(pipe, rt, "skole-a", "canvas", [task()], rt.clock.now().timestamp())
            pipe.execute()
        assert outbox.send(rt, "skole-a", REF_TASK) == "dead"
        (letter,) = outbox.dead_letters(rt)
        assert letter["status"] == 400 and letter["attempts"] == 1
        assert letter["reason"] == ("Canvas HTTP 400: recipients: invalid: user 3001 is not in the service account's "
                                    "address book; let the account message them (see the canvas README), then retry")


def test_ledger_stops_an_action_sent_once_from_reaching_canvas_again(canvas, platform, rt):
    platform.add(responses.GET, NOTES, json=fixture("outbound/list_planner_notes__empty"))
    platform.add(responses.POST, NOTES, json=fixture("outbound/create_planner_note"), status=201)
    with rt.redis.pipeline() as pipe:
        outbox.add(pipe, rt, "skole-a", "canvas", [task()], rt.clock.now().timestamp())
        pipe.execute()
    assert outbox.send(rt, "skole-a", REF_TASK) == "done"
    assert outbox.send(rt, "skole-a", REF_TASK) == "skipped"
    assert len(platform.calls) == 2  # one list, one create
    assert outbox.written(rt, "skole-a", REF_TASK) == b"planner_note/234"


# --- alerts and notes: conversations -----------------------------------------------------------------------------


def test_alert_to_a_named_teacher_is_a_new_private_conversation(canvas, platform):
    platform.add(**sent_to("3001", []))
    platform.add(responses.POST, CONVERSATIONS, json=fixture("outbound/create_conversation"), status=201)
    result = canvas.send(alert(Party("contact_teacher", "3001")))
    assert (result.outcome, result.remote_id) == ("done", "conversation/62")
    (created,) = calls_to(platform, "POST", "/api/v1/conversations")
    assert body_of(created) == {
        "recipients": ["3001"],
        "subject": "Fraværet 23. nov mangler skriftlig melding",
        "body": "Hei! Vi har ikke mottatt skriftlig melding om fraværet mandag 23. november 2026 (hele dagen)."
                f"\n\nRef: {REF_ALERT}",
        "force_new": True,
        "group_conversation": False,
    }
    assert "as_user_id" not in created.request.url  # sent by the connector's own account


def test_alert_to_guardians_reaches_each_observer_once_even_after_a_crash_between_them(canvas, platform):
    """Guardian 5001 got the message before the crash (found by its marker); only 5002 is written to now."""
    platform.add(responses.GET, OBSERVERS, json=fixture("outbound/list_observers"))
    platform.add(**sent_to("5001", fixture("outbound/list_sent_conversations")))
    platform.add(responses.GET, f"{CONVERSATIONS}/61", json=fixture("outbound/get_conversation__sent_with_marker"))
    platform.add(**sent_to("5002", []))
    platform.add(responses.POST, CONVERSATIONS, json=fixture("outbound/create_conversation"), status=201)
    result = canvas.send(alert())
    assert (result.outcome, result.remote_id) == ("done", "conversation/61,62")
    (created,) = calls_to(platform, "POST", "/api/v1/conversations")
    assert body_of(created)["recipients"] == ["5002"]
    assert calls_to(platform, "GET", "/api/v1/conversations/58") == []  # another subject: never opened
    (opened,) = calls_to(platform, "GET", "/api/v1/conversations/61")
    assert query(opened)["auto_mark_as_read"] == ["false"]


def test_sent_conversations_older_than_the_lookback_are_not_searched(canvas, platform):
    from datetime import datetime, timezone

    canvas.conversations.now = lambda: datetime(2027, 3, 1, tzinfo=timezone.utc)  # months after the fixture
    platform.add(responses.GET, OBSERVERS, json=fixture("outbound/list_observers")[:1])
    platform.add(**sent_to("5001", fixture("outbound/list_sent_conversations")))
    platform.add(responses.POST, CONVERSATIONS, json=fixture("outbound/create_conversation"), status=201)
    assert canvas.send(alert()).outcome == "done"
    assert calls_to(platform, "GET", "/api/v1/conversations/61") == []


def test_guardian_alert_for_a_pupil_without_observers_in_canvas_is_a_dead_letter(canvas, platform):
    platform.add(responses.GET, OBSERVERS, json=[])
    result = canvas.send(alert())
    assert result.outcome == "dead" and "no Canvas recipient" in result.reason
    assert calls_to(platform, "POST", "/api/v1/conversations") == []


def test_note_for_guardians_goes_to_the_observers(canvas, platform):
    platform.add(responses.GET, OBSERVERS, json=fixture("outbound/list_observers"))
    platform.add(responses.GET, CONVERSATIONS, json=[])
    platform.add(responses.POST, CONVERSATIONS, json=fixture("outbound/create_conversation"), status=201)
    assert canvas.send(note("guardians")).outcome == "done"
    assert [body_of(c)["recipients"] for c in calls_to(platform, "POST", "/api/v1/conversations")] == [["5001"], ["5002"]]


class TestStaffNotes:
    @pytest.fixture
    def canvas_settings(self):
        return {"note_recipients": [4001]}

    def test_staff_note_goes_to_the_configured_note_recipients(self, canvas, platform):
        platform.add(responses.GET, CONVERSATIONS, json=[])
        platform.add(responses.POST, CONVERSATIONS, json=fixture("outbound/create_conversation"), status=201)
        assert canvas.send(note("staff")).outcome == "done"
        (created,) = calls_to(platform, "POST", "/api/v1/conversations")
        assert body_of(created)["recipients"] == ["4001"]


def test_staff_note_without_configured_recipients_is_a_dead_letter(canvas, platform):
    result = canvas.send(note("staff"))
    assert result.outcome == "dead"
    assert len(platform.calls) == 0


# --- Canvas's answers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("answer,status,headers,outcome,says", [
    ("outbound/error__invalid_access_token", 401, {"WWW-Authenticate": 'Bearer realm="canvas-lms"'}, "dead",
     "Invalid access token."),
    ("outbound/error__unauthorized", 401, {}, "dead", "user not authorized to perform that action"),
    ("outbound/error__invalid_as_user_id", 401, {}, "dead", "Invalid as_user_id"),
    ("outbound/error__not_found", 404, {}, "dead", "The specified resource does not exist."),
    ("outbound/error__feature_disabled", 403, {}, "dead", "Feature disabled"),
])
def test_canvas_error_shapes_become_dead_letters_that_say_why(canvas, platform, answer, status, headers, outcome,
                                                              says):
    platform.add(responses.GET, NOTES, json=fixture(answer), status=status, headers=headers)
    result = canvas.send(task())
    assert (result.outcome, result.status) == (outcome, status)
    assert says in result.reason


def test_refused_recipients_are_a_dead_letter_naming_the_field(canvas, platform):
    platform.add(**sent_to("3001", []))
    platform.add(responses.POST, CONVERSATIONS, json=fixture("outbound/error__invalid_recipients"), status=400)
    result = canvas.send(alert(Party("contact_teacher", "3001")))
    assert (result.outcome, result.status) == ("dead", 400)
    assert "recipients: invalid" in result.reason


@pytest.mark.parametrize("status,headers,retry_after", [(500, {}, None), (502, {}, None),
                                                        (503, {"Retry-After": "120"}, 120.0)])
def test_canvas_outages_are_retried(canvas, platform, status, headers, retry_after):
    platform.add(responses.GET, NOTES, body="<html>Service unavailable</html>", status=status, headers=headers)
    result = canvas.send(task())
    assert (result.outcome, result.retry_after) == ("retry", retry_after)


def test_a_200_that_is_not_json_is_retried_not_trusted(canvas, platform):
    platform.add(responses.GET, NOTES, body="<html>Planned maintenance</html>", content_type="text/html")
    result = canvas.send(task())
    assert result.outcome == "retry" and "no JSON" in result.reason
    assert calls_to(platform, "POST", "/api/v1/planner_notes") == []


def test_dead_letters_log_no_token(canvas, platform, caplog, rt):
    platform.add(responses.GET, NOTES, json=fixture("outbound/error__invalid_access_token"), status=401)
    with rt.redis.pipeline() as pipe:
        outbox.add(pipe, rt, "skole-a", "canvas", [task()], rt.clock.now().timestamp())
        pipe.execute()
    with caplog.at_level(logging.DEBUG):
        assert outbox.send(rt, "skole-a", REF_TASK) == "dead"
    assert TOKEN not in caplog.text
    assert "mangler skriftlig melding" not in caplog.text  # nor the text that was to be written


# --- throttling ------------------------------------------------------------------------------------------------


def rate_limited(platform, method, url):
    platform.add(method, url, body=fixture("outbound/error__rate_limit_exceeded.txt"), status=403,
                 headers={"X-Rate-Limit-Remaining": "0.0"}, content_type="text/plain; charset=utf-8")


def test_rate_limit_exceeded_is_retried_later_not_a_dead_letter(canvas, platform):
    rate_limited(platform, responses.GET, NOTES)
    result = canvas.send(task())
    assert (result.outcome, result.status, result.retry_after) == ("retry", 403, 30.0)


def test_while_throttled_the_adapter_makes_no_calls_at_all(canvas, platform):
    rate_limited(platform, responses.GET, NOTES)
    canvas.send(task())
    calls = len(platform.calls)
    result = canvas.send(alert(Party("contact_teacher", "3001")))
    assert result.outcome == "retry" and 0 < result.retry_after <= 30
    assert len(platform.calls) == calls


def test_after_the_pause_calls_go_out_again(canvas, platform):
    rate_limited(platform, responses.GET, NOTES)
    canvas.send(task())
    platform.replace(responses.GET, NOTES, json=fixture("outbound/list_planner_notes__with_marker"))
    later = canvas.api.clock() + 31
    canvas.api.clock = lambda: later
    assert canvas.send(task()).outcome == "done"


def test_low_remaining_quota_pauses_before_the_next_call(canvas, platform):
    platform.add(responses.GET, NOTES, json=[], headers={"X-Rate-Limit-Remaining": "10.0", "X-Request-Cost": "2.5"})
    result = canvas.send(task())
    assert (result.outcome, result.retry_after) == ("retry", pytest.approx(4.0, abs=0.1))  # (50 - 10) / 10 a second
    assert result.status is None  # Canvas refused nothing: the adapter paused first
    assert calls_to(platform, "POST", "/api/v1/planner_notes") == []


# --- pagination --------------------------------------------------------------------------------------------------


def test_next_link_to_another_host_is_not_followed_with_the_token(canvas, platform):
    platform.add(responses.GET, NOTES, json=[], headers={"Link": '<https://evil.example/api/v1/planner_notes?page=2>; rel="next"'})
    result = canvas.send(task())
    assert result.outcome == "dead" and "another host" in result.reason
    assert all(c.request.url.startswith(CANVAS) for c in platform.calls)


def test_alert_to_the_pupil_goes_to_the_pupils_own_canvas_user(canvas, platform):
    platform.add(**sent_to("1002", []))
    platform.add(responses.POST, CONVERSATIONS, json=fixture("outbound/create_conversation"), status=201)
    assert canvas.send(alert(Party("student"))).outcome == "done"
    (created,) = calls_to(platform, "POST", "/api/v1/conversations")
    assert body_of(created)["recipients"] == ["1002"]


def test_case_note_without_a_title_is_sent_under_its_first_line(canvas, platform):
    canvas.settings = {**canvas.settings, "note_recipients": ["4001"]}
    platform.add(responses.GET, CONVERSATIONS, json=[])
    platform.add(responses.POST, CONVERSATIONS, json=fixture("outbound/create_conversation"), status=201)
    untitled = Action(kind="note", external_ref="sf1-note-2", rule_id="absence.pattern", student_id="1002",
                      title="", body="Mønster funnet: fravær hver mandag.\nSe saken.", visibility="staff")
    assert canvas.send(untitled).outcome == "done"
    (created,) = calls_to(platform, "POST", "/api/v1/conversations")
    assert body_of(created)["subject"] == "Mønster funnet: fravær hver mandag."
