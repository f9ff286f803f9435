"""``connector check-adapter`` for Moodle: what the web-service token can do, read before the first event.

``core_webservice_get_site_info`` is the one call any token may make; its answer lists the functions of the
token's external service and the site's advanced features, which is what an admin most often gets wrong. The
service user's capabilities cannot be listed through web services: Moodle checks them per call and context, so a
missing one shows as the first dead letter naming it (the README lists them)."""
from __future__ import annotations

from typing import Any

from connector.adapters.base import Finding
from connector.adapters.moodle.webservice import MoodleError, WebService

FUNCTIONS = (
    "mod_attendance_get_session", "core_enrol_get_enrolled_users", "core_webservice_get_site_info",
    "core_message_get_conversation_between_users", "core_message_send_instant_messages",
    "core_notes_get_course_notes", "core_notes_create_notes",
)
FEATURES = {
    "enablenotes": "Notes are off (Site administration → Advanced features → Enable notes): case notes cannot be "
                   "written.",
    "messaging": "Messaging is off (Site administration → Advanced features → Enable messaging system): alerts "
                 "cannot be sent.",
}
ERRORS = {
    "invalidtoken": "Moodle does not accept ws_token (wrong, expired, or for another service): create a token for "
                    "the service user and the connector's service under Server → Web services → Manage tokens.",
    "accessexception": "Moodle refuses the service user this service: authorise the user under the external "
                       "service's Authorised users, and give their role webservice/rest:use.",
}


def _refused(exc: MoodleError) -> str:
    if exc.errorcode in ERRORS:
        return ERRORS[exc.errorcode]
    if exc.status == 404:
        return ("No REST server at base_url: check base_url is Moodle's address and REST is enabled (Server → Web "
                "services → Manage protocols).")
    return f"Moodle refused the call ({exc.reason}); the README's set-up steps 1–3 name what it needs."


def check(ws: WebService) -> list[Finding]:
    try:
        info: Any = ws.call("core_webservice_get_site_info")
    except MoodleError as exc:
        return [Finding(False, "core_webservice_get_site_info", _refused(exc))]
    if not isinstance(info, dict):
        return [Finding(False, "core_webservice_get_site_info", "Moodle answered something that is not site info.")]
    findings = [Finding(True, "token and REST web services",
                        f"Moodle {info.get('release', '?')}; the service user is user id {info.get('userid', '?')}")]
    have = {f.get("name") for f in info.get("functions") or () if isinstance(f, dict)}
    missing = [name for name in FUNCTIONS if name not in have]
    if missing:
        detail = (f"missing: {', '.join(missing)}. Add them under Server → Web services → External services → "
                  "Functions")
        if "mod_attendance_get_session" in missing:
            detail += " (mod_attendance_get_session comes with the Attendance plugin, which must be installed)"
        findings.append(Finding(False, "functions of the external service", detail + "."))
    else:
        findings.append(Finding(True, "functions of the external service",
                                f"all {len(FUNCTIONS)} the connector calls are there"))
    features = {f.get("name"): f.get("value") for f in info.get("advancedfeatures") or () if isinstance(f, dict)}
    for name, problem in FEATURES.items():
        findings.append(Finding(features.get(name) == 1, name, "on" if features.get(name) == 1 else problem))
    findings.append(Finding(True, "capabilities", "not checkable through web services: Moodle checks them at each "
                                                  "call; see the README's step 2 (moodle/course:view among them)"))
    return findings
