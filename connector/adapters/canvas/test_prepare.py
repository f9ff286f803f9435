"""``prepare`` completes a message event from the Conversations API; ``lookup_role`` reads a group's roster. Both
replay Canvas's recorded answers."""
from __future__ import annotations

import logging

import pytest
import responses
from responses import matchers

from connector.adapters.canvas.api import Throttled
from connector.adapters.canvas.conftest import CANVAS, calls_to, fixture, query
from connector.engine.directory import resolve
from tests.support import queued_jobs

SELF = f"{CANVAS}/api/v1/users/self"
CONVERSATION = f"{CANVAS}/api/v1/conversations/53"
ROSTER = f"{CANVAS}/api/v1/courses/565/enrollments"
TEXT = "Hei, hun har vondt i magen og blir hjemme i morgen."


def serve_roster(platform, url: str = ROSTER, edit=lambda enrollments: enrollments) -> None:
    """The course roster in two pages joined by a ``Link: rel="next"`` header, as Canvas pages it."""
    following = f"{url}?page=2&per_page=100&state%5B%5D=active"
    platform.add(responses.GET, url, json=edit(fixture("outbound/list_course_enrollments")),
                 headers={"Link": f'<{url}?page=1&per_page=100>; rel="current", <{following}>; rel="next"'},
                 match=[matchers.query_param_matcher({"per_page": "100", "state[]": "active"})])
    platform.add(responses.GET, url, json=edit(fixture("outbound/list_course_enrollments__page2")),
                 match=[matchers.query_param_matcher({"page": "2", "per_page": "100", "state[]": "active"})])


@pytest.fixture
def pending(replay, rt):
    """The message event as the door queued it: ids only."""
    events = replay("canvas", "conversation_message_created", expect_status=202)
    (job,) = queued_jobs(rt)
    assert job.args[3] == events
    return events


def serve_message(platform, conversation=None) -> None:
    platform.add(responses.GET, SELF, json=fixture("outbound/get_user_self"))
    platform.add(responses.GET, CONVERSATION, json=conversation or fixture("outbound/get_conversation"))
    serve_roster(platform)


# --- prepare -------------------------------------------------------------------------------------------------------


def test_message_is_completed_with_its_text_roles_and_pupil_read_as_its_author(canvas, platform, pending):
    serve_message(platform)
    assert canvas.prepare(pending) == [{
        "type": "message.created",
        "timestamp": "2026-11-23T18:30:01.385000+00:00",
        "message_id": "45",
        "sender": {"id": "5001", "role": "guardian"},
        "recipients": [{"id": "3001", "role": "contact_teacher"}],
        "student_ids": ["1002"],
        "created_at": "2026-11-23T18:30:00+00:00",
        "body": TEXT,
        "subject": "Fravær i morgen",
    }]
    (read,) = calls_to(platform, "GET", "/api/v1/conversations/53")
    assert query(read) == {"as_user_id": ["5001"], "auto_mark_as_read": ["false"],
                           "include_participant_contexts": ["false"]}
    assert len(calls_to(platform, "GET", "/api/v1/courses/565/enrollments")) == 2  # both pages


def test_message_text_is_never_logged(canvas, platform, pending, caplog):
    serve_message(platform)
    with caplog.at_level(logging.DEBUG):
        canvas.prepare(pending)
    assert TEXT not in caplog.text and "Fravær i morgen" not in caplog.text


def test_the_connectors_own_message_is_not_handled(canvas, platform, pending, caplog):
    own = {**fixture("outbound/get_user_self"), "id": 5001}
    platform.add(responses.GET, SELF, json=own)
    with caplog.at_level(logging.INFO):
        assert canvas.prepare(pending) == []
    assert calls_to(platform, "GET", "/api/v1/conversations/53") == []
    assert "connector's own" in caplog.text


def test_message_deleted_before_it_was_read_is_dropped_at_info(canvas, platform, pending, caplog):
    platform.add(responses.GET, SELF, json=fixture("outbound/get_user_self"))
    platform.add(responses.GET, CONVERSATION, json=fixture("outbound/error__not_found"), status=404)
    with caplog.at_level(logging.INFO):
        assert canvas.prepare(pending) == []
    assert "Canvas message 45" in caplog.text


def test_message_in_a_conversation_without_a_course_has_unknown_roles(canvas, platform, pending):
    serve_message(platform, {**fixture("outbound/get_conversation"), "context_code": None})
    (event,) = canvas.prepare(pending)
    assert event["sender"] == {"id": "5001", "role": "other"} and event["student_ids"] == []


def test_throttled_canvas_makes_prepare_raise_so_the_job_runs_again_later(canvas, platform, pending):
    platform.add(responses.GET, SELF, body=fixture("outbound/error__rate_limit_exceeded.txt"), status=403,
                 content_type="text/plain; charset=utf-8")
    with pytest.raises(Throttled):
        canvas.prepare(pending)


def test_masquerading_refused_makes_prepare_raise_for_an_admin_to_see(canvas, platform, pending):
    platform.add(responses.GET, SELF, json=fixture("outbound/get_user_self"))
    platform.add(responses.GET, CONVERSATION, json=fixture("outbound/error__invalid_as_user_id"), status=401)
    with pytest.raises(RuntimeError, match="Invalid as_user_id"):
        canvas.prepare(pending)


def test_events_that_need_nothing_pass_through_prepare_untouched(canvas, platform):
    enrolled = {"type": "student.enrolled", "timestamp": "2027-01-11T07:30:00+00:00", "student_id": "2040",
                "group_id": "565", "date": "2027-01-11"}
    assert canvas.prepare([enrolled]) == [enrolled]
    assert len(platform.calls) == 0


# --- directory -----------------------------------------------------------------------------------------------------


def test_contact_teacher_of_a_group_is_the_courses_first_teacher(canvas, platform):
    serve_roster(platform)
    assert canvas.lookup_role("contact_teacher", group_id="565") == "3001"
    assert canvas.lookup_role("subject_teacher", group_id="565") == "3002"  # found on the second page


def test_roster_is_cached_until_its_ttl_runs_out(canvas, platform):
    serve_roster(platform)
    canvas.lookup_role("contact_teacher", group_id="565")
    canvas.lookup_role("subject_teacher", group_id="565")
    assert len(platform.calls) == 2
    later = canvas.rosters.clock() + 901
    canvas.rosters.clock = lambda: later
    canvas.lookup_role("contact_teacher", group_id="565")
    assert len(platform.calls) == 4


class TestCustomCourseRole:
    @pytest.fixture
    def canvas_settings(self):
        return {"roles": {"contact_teacher": ["Kontaktlærer"], "guardian": ["ObserverEnrollment"]}}

    def test_a_custom_role_names_the_contact_teacher_among_several_teachers(self, canvas, platform):
        def second_teacher_is_contact(enrollments):
            for enrollment in enrollments:
                if enrollment["user_id"] == 3002:
                    enrollment.update(type="TeacherEnrollment", role="Kontaktlærer", role_id=21)
            return enrollments

        serve_roster(platform, edit=second_teacher_is_contact)
        assert canvas.lookup_role("contact_teacher", group_id="565") == "3002"


class TestSectionsAsGroups:
    @pytest.fixture
    def canvas_settings(self):
        return {"group_by": "section"}

    def test_a_sections_roster_answers(self, canvas, platform):
        serve_roster(platform, url=f"{CANVAS}/api/v1/sections/4811/enrollments")
        assert canvas.lookup_role("contact_teacher", group_id="4811") == "3001"


def test_groups_and_roles_canvas_cannot_answer_go_to_the_configured_directory_without_a_call(canvas, platform, rt):
    assert canvas.lookup_role("contact_teacher", group_id="7A") is None  # not a Canvas id
    assert canvas.lookup_role("principal") is None  # not a course role
    assert resolve(rt, rt.tenant("skole-a"), "canvas", "contact_teacher", "7A") == "u-kl-7a"
    assert resolve(rt, rt.tenant("skole-a"), "canvas", "principal") == "u-rektor"
    assert len(platform.calls) == 0


def test_canvas_refusing_the_roster_falls_back_to_the_configured_directory(canvas, platform, rt):
    platform.add(responses.GET, ROSTER, json=fixture("outbound/error__unauthorized"), status=401)
    tenant = rt.tenant("skole-a")
    assert resolve(rt, tenant, "canvas", "nearest_leader", "565") == "u-leder"  # not mapped: no call
    assert resolve(rt, tenant, "canvas", "contact_teacher", "565") == tenant.directory.lookup("contact_teacher", "565")
    assert len(calls_to(platform, "GET", "/api/v1/courses/565/enrollments")) == 1
