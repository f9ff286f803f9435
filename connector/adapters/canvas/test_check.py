"""``connector check-adapter`` for Canvas: read-only calls against the shapes Canvas documents (the Accounts API's
Account object, a course from the Courses API, the enrolment and planner-note answers already replayed in
test_outbound), the healthy case and each right the service account can lack."""
from __future__ import annotations

import responses
from responses import matchers

from connector.adapters.canvas.conftest import CANVAS, ROOT_ACCOUNT, TOKEN, fixture, query

SELF = f"{CANVAS}/api/v1/users/self"
ACCOUNTS = f"{CANVAS}/api/v1/accounts"
COURSES = f"{CANVAS}/api/v1/accounts/1/courses"
ENROLLMENTS = f"{CANVAS}/api/v1/courses/565/enrollments"
NOTES = f"{CANVAS}/api/v1/planner_notes"


def healthy(platform) -> None:
    platform.add(responses.GET, SELF, json=fixture("outbound/get_user_self"))
    platform.add(responses.GET, ACCOUNTS, json=fixture("outbound/list_accounts"))
    platform.add(responses.GET, COURSES, json=fixture("outbound/list_account_courses"))
    enrolments = fixture("outbound/list_course_enrollments")
    platform.add(responses.GET, ENROLLMENTS, json=[e for e in enrolments if e["type"] == "StudentEnrollment"],
                 match=[matchers.query_param_matcher({"type[]": "StudentEnrollment"}, strict_match=False)])
    platform.add(responses.GET, ENROLLMENTS, json=enrolments)
    platform.add(responses.GET, NOTES, json=fixture("outbound/list_planner_notes__empty"))


def test_a_service_account_with_every_right_is_ready(canvas, platform):
    healthy(platform)
    findings = canvas.check()
    assert [(f.ok, f.what) for f in findings] == [
        (True, "api_token"), (True, "root_account_uuid"), (True, "enrolments"),
        (True, "acting as a user and the planner")]
    assert {call.request.method for call in platform.calls} == {"GET"}  # nothing is written
    notes = [call for call in platform.calls if call.request.url.startswith(NOTES)]
    assert query(notes[0])["as_user_id"] == ["1002"]  # a pupil of the course: Canvas shows pupils the planner
    assert all(TOKEN not in f.detail for f in findings)


def test_a_token_canvas_does_not_accept_is_named(canvas, platform):
    platform.add(responses.GET, SELF, json=fixture("outbound/error__invalid_access_token"), status=401)
    (finding,) = canvas.check()
    assert (finding.ok, finding.what) == (False, "GET /api/v1/users/self")
    assert "does not accept api_token" in finding.detail


def test_a_root_account_uuid_that_is_not_the_configured_one_is_named(canvas, platform):
    healthy(platform)
    accounts = fixture("outbound/list_accounts")
    accounts[0]["uuid"] = "AnotherRootAccountUuid0000000000000000000"
    platform.replace(responses.GET, ACCOUNTS, json=accounts)
    by_what = {f.what: f for f in canvas.check()}
    assert not by_what["root_account_uuid"].ok
    assert "AnotherRootAccountUuid" in by_what["root_account_uuid"].detail and ROOT_ACCOUNT not in by_what[
        "root_account_uuid"].detail
    assert "403 foreign_account" in by_what["root_account_uuid"].detail


def test_an_account_without_admin_rights_is_named(canvas, platform):
    platform.add(responses.GET, SELF, json=fixture("outbound/get_user_self"))
    platform.add(responses.GET, ACCOUNTS, json=[])
    findings = canvas.check()
    assert (findings[-1].ok, findings[-1].what) == (False, "account admin")


def test_a_role_without_users_view_list_is_named(canvas, platform):
    healthy(platform)
    platform.remove(responses.GET, ENROLLMENTS)
    platform.add(responses.GET, ENROLLMENTS, json=fixture("outbound/error__unauthorized"), status=401)
    finding = canvas.check()[-1]
    assert not finding.ok and "Users – view list" in finding.detail


def test_a_role_that_cannot_act_as_users_is_named(canvas, platform):
    healthy(platform)
    platform.replace(responses.GET, NOTES, json=fixture("outbound/error__invalid_as_user_id"), status=401)
    finding = canvas.check()[-1]
    assert (finding.ok, finding.what) == (False, "acting as a user")
    assert "Users – act as" in finding.detail


def test_the_student_planner_switched_off_is_named(canvas, platform):
    healthy(platform)
    platform.replace(responses.GET, NOTES, json=fixture("outbound/error__feature_disabled"), status=403)
    finding = canvas.check()[-1]
    assert (finding.ok, finding.what) == (False, "Student Planner")
