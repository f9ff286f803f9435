"""``connector check-adapter`` for Canvas: the service account's token and rights, read before the first event.

Every call is a GET: who the token is (``users/self``), which accounts it administers and whether the root
account's UUID is the configured one (Live Events from another one are refused), a course's enrolments (the
rosters the directory reads), and, acting as a pupil of that course, the planner (masquerading, and the Student
Planner feature). Conversations cannot be checked without sending one: the README says how to check the address
book by hand."""
from __future__ import annotations

from typing import Any, Mapping

from connector.adapters.base import Finding
from connector.adapters.canvas.api import CanvasApi, CanvasError, Throttled

ADMIN_ROLE = "give the service account an account admin role (the README's step 1)"


def _get(api: CanvasApi, path: str, params: Mapping[str, Any] | None = None, as_user: str | None = None) -> Any:
    return api.get(path, {"per_page": 1, **(params or {})}, as_user=as_user)


def _denied(exc: CanvasError) -> bool:
    return exc.status in (401, 403)


def check(api: CanvasApi, settings: Mapping[str, Any]) -> list[Finding]:
    try:
        return list(_check(api, settings))
    except Throttled as exc:
        return [Finding(False, "Canvas rate limit",
                        f"Canvas throttled the check; try again in {exc.retry_after:.0f} s")]


def _check(api: CanvasApi, settings: Mapping[str, Any]):
    try:
        me = api.get("/api/v1/users/self")
    except CanvasError as exc:
        yield Finding(False, "GET /api/v1/users/self",
                      "Canvas does not accept api_token: create a new access token for the service account"
                      if exc.status == 401 else f"{exc} (is base_url the school's Canvas?)")
        return
    yield Finding(True, "api_token", f"the service account is Canvas user {me.get('id')}")

    try:
        accounts = api.get("/api/v1/accounts", {"per_page": 100})
    except CanvasError as exc:
        yield Finding(False, "GET /api/v1/accounts", f"{exc}: {ADMIN_ROLE}")
        return
    if not accounts:
        yield Finding(False, "account admin", f"the service account administers no account: {ADMIN_ROLE}")
        return
    root = next((a for a in accounts if isinstance(a, dict) and a.get("root_account_id") is None), None)
    if root is None:
        yield Finding(False, "root_account_uuid", "the service account administers no root account, so the "
                      "configured root_account_uuid cannot be confirmed; Live Events name the root account")
    elif root.get("uuid") != settings["root_account_uuid"]:
        yield Finding(False, "root_account_uuid", f"the root account's UUID is {root.get('uuid')}, not the configured "
                      "one: every Live Event would be refused (403 foreign_account)")
    else:
        yield Finding(True, "root_account_uuid", f"matches root account {root.get('id')}")

    account = root or accounts[0]
    try:
        courses = _get(api, f"/api/v1/accounts/{account['id']}/courses")
    except CanvasError as exc:
        yield Finding(False, "courses", f"{exc}: the role needs Courses – view list" if _denied(exc) else str(exc))
        return
    if not courses:
        yield Finding(True, "enrolments", f"account {account['id']} has no course yet; nothing to read")
        return
    course = courses[0]["id"]
    try:
        _get(api, f"/api/v1/courses/{course}/enrollments")
        pupils = _get(api, f"/api/v1/courses/{course}/enrollments", {"type[]": "StudentEnrollment"})
    except CanvasError as exc:
        yield Finding(False, f"GET /api/v1/courses/{course}/enrollments",
                      f"{exc}: the role needs Users – view list" if _denied(exc) else str(exc))
        return
    yield Finding(True, "enrolments", f"course {course}'s roster can be read")
    if not pupils:
        yield Finding(True, "acting as a user", f"course {course} has no pupil to act as; not checked")
        return
    pupil = str(pupils[0].get("user_id"))
    try:
        _get(api, "/api/v1/planner_notes", as_user=pupil)
    except CanvasError as exc:
        if "Invalid as_user_id" in str(exc) or exc.status == 401:
            yield Finding(False, "acting as a user", "Canvas refuses as_user_id: the role needs Users – act as "
                          "(planner notes are written, and messages read, as the user)")
        elif "Feature disabled" in str(exc):
            yield Finding(False, "Student Planner", "the Student Planner feature is off for the account: pupils' "
                          "tasks (planner notes) would be refused")
        else:
            yield Finding(False, "planner notes", str(exc))
        return
    yield Finding(True, "acting as a user and the planner", f"read user {pupil}'s planner notes as that user")
