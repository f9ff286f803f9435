"""Alerts and tasks as Moodle instant messages (``core_message_send_instant_messages``).

Moodle has no way to hand a task to another user: ``core_calendar_create_calendar_events`` always writes as the
calling user (its parameters say so: "Userid is always current user"), so a *user* event would sit in the service
account's own calendar, and a *course* or *group* event would show a pupil's absence follow-up to every pupil in
it. A private message reaches exactly the teacher, in Moodle's message drawer and their notification e-mail.

``clientmsgid`` is only echoed back; Moodle does not deduplicate on it. So every message ends with a marker line
holding the ``external_ref``, and before sending, the service account's latest messages to that user are read
(``core_message_get_conversation_between_users``): a message already carrying the marker is the one a crashed
attempt sent, and is reported as done instead of being sent again.
"""
from __future__ import annotations

from connector.contract.actions import Action
from connector.adapters.base import SendResult
from connector.adapters.moodle.webservice import MoodleError, WebService

FORMAT_PLAIN = 2
MESSAGE_MAX_LENGTH = 4096  # core_message\api::MESSAGE_MAX_LENGTH, checked in bytes
LOOKBACK = 50  # messages read back when looking for an earlier attempt


def marker(external_ref: str) -> str:
    return f"skoleflyt: {external_ref}"


def message_text(action: Action) -> str:
    """Title, body and the marker; the body is cut (never the marker) to stay within Moodle's length limit."""
    head, tail = f"{action.title}\n\n", f"\n\n{marker(action.external_ref)}"
    room = MESSAGE_MAX_LENGTH - len(head.encode()) - len(tail.encode())
    body = action.body
    if len(body.encode()) > room:
        body = body.encode()[: max(room - 3, 0)].decode("utf-8", "ignore") + "..."
    return head + body + tail


def find_sent(ws: WebService, sender: int, recipient: int, external_ref: str) -> int | None:
    try:
        conversation = ws.call(
            "core_message_get_conversation_between_users", userid=sender, otheruserid=recipient,
            includecontactrequests=False, includeprivacyinfo=False, messagelimit=LOOKBACK, messageoffset=0,
            newestmessagesfirst=True,
        )
    except MoodleError as exc:
        if exc.errorcode == "errorconversationdoesnotexist":  # never written to: nothing can be there
            return None
        raise
    for message in (conversation or {}).get("messages") or []:
        if int(message.get("useridfrom") or 0) == sender and marker(external_ref) in str(message.get("text") or ""):
            return int(message["id"])
    return None


def send(ws: WebService, recipient: int, action: Action) -> SendResult:
    function = "core_message_send_instant_messages"
    answer = ws.call(function, messages=[{
        "touserid": recipient, "text": message_text(action), "textformat": FORMAT_PLAIN,
        "clientmsgid": action.external_ref,
    }])
    first = answer[0] if isinstance(answer, list) and answer and isinstance(answer[0], dict) else None
    if first is None:  # safe to retry: the next attempt looks for the marker first
        return SendResult("retry", status=200, reason=f"{function}: unexpected answer")
    msgid = int(first.get("msgid") or -1)
    if msgid > 0:
        return SendResult("done", remote_id=str(msgid), status=200)
    # ``errormessage`` can name the recipient ("You are unable to message ..."), so it is not repeated here.
    return SendResult("dead", status=200, reason=f"{function}: Moodle refused the message (msgid -1)")
