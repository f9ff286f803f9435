"""Writing actions into Canvas: tasks as Planner notes in the assignee's own planner where Canvas shows the
planner (pupils and observers), else as Inbox messages with the due date; alerts and notes as Conversations
(Inbox) messages.

Canvas has no idempotency key. Every object we write ends with a line ``Ref: <external_ref>``, and before writing
we look for that line where the object would be: the assignee's planner notes around the due date, or the
conversations the connector's account sent to that recipient. So a retry after a crash between "Canvas created it"
and "the ledger recorded it" finds the first object instead of making a second one.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

from connector.adapters.base import SendResult
from connector.contract.actions import Action
from connector.adapters.canvas.api import CanvasApi, CanvasError

SUBJECT_MAX = 255  # Canvas's limit for a conversation subject; also the planner note title column
DUE_LINE = {"nb": "Frist: {day:%d.%m.%Y}", "nn": "Frist: {day:%d.%m.%Y}", "en": "Due: {day:%d %B %Y}"}
# ConversationsController#create answers ``render_error('recipients', 'invalid')`` (400, ``[{"attribute":
# "recipients", "message": "invalid"}]``) when none of the recipients is in the sender's address book.
INVALID_RECIPIENTS = "recipients: invalid"


def marker(action: Action) -> str:
    return f"Ref: {action.external_ref}"


def with_marker(action: Action) -> str:
    return f"{action.body.rstrip()}\n\n{marker(action)}"


def subject(action: Action) -> str:
    """The title, or for a case note (which has none) its first line, so notes are told apart in an inbox and the
    look-up for an earlier copy opens few conversations."""
    text = action.title.strip() or next((line.strip() for line in action.body.splitlines() if line.strip()), "")
    return text[:SUBJECT_MAX]


def as_message(action: Action, language: str) -> Action:
    """A task to be sent as an Inbox message: its text, then its due date (a message has no date of its own)."""
    if not action.due_date:
        return action
    due = DUE_LINE[language].format(day=date.fromisoformat(action.due_date))
    return replace(action, body=f"{action.body.rstrip()}\n\n{due}")


def _when(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


class PlannerNotes:
    def __init__(self, api: CanvasApi):
        self.api = api

    def existing(self, action: Action, user_id: str, day: date) -> str | None:
        """The note already carrying this action's marker, looked for a day either side of the due date (Canvas
        reads ``yyyy-mm-dd`` in the user's own time zone)."""
        window = {"start_date": (day - timedelta(days=1)).isoformat(), "end_date": (day + timedelta(days=1)).isoformat()}
        for page in self.api.pages("/api/v1/planner_notes", window, as_user=user_id):
            for note in page:
                if isinstance(note, dict) and marker(action) in str(note.get("details") or ""):
                    return str(note.get("id"))
        return None

    def write(self, action: Action, user_id: str, day: date) -> str:
        found = self.existing(action, user_id, day)
        if found:
            return found
        note = self.api.post(
            "/api/v1/planner_notes",
            {"title": subject(action), "details": with_marker(action), "todo_date": day.isoformat()},
            as_user=user_id,
        )
        return str(note.get("id")) if isinstance(note, dict) else ""


class Conversations:
    def __init__(self, api: CanvasApi, lookback_days: int,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.api = api
        self.lookback = timedelta(days=lookback_days)
        self.now = now

    def existing(self, action: Action, recipient: str) -> str | None:
        """A conversation the connector's account already sent ``recipient`` for this action: sent conversations
        with that user, newest first, back to the look-back limit; only those with the same subject are opened."""
        cutoff = self.now() - self.lookback
        sent = self.api.pages("/api/v1/conversations", {"scope": "sent", "filter[]": [f"user_{recipient}"]})
        for page in sent:
            for conversation in page:
                if not isinstance(conversation, dict):
                    continue
                stamp = _when(conversation.get("last_authored_message_at") or conversation.get("last_message_at"))
                if stamp is not None and stamp < cutoff:
                    return None
                if str(conversation.get("subject") or "").strip() != subject(action):
                    continue
                full = self.api.get(f"/api/v1/conversations/{conversation.get('id')}",
                                    {"auto_mark_as_read": "false", "include_participant_contexts": "false"})
                messages = full.get("messages") if isinstance(full, dict) else None
                if any(marker(action) in str(m.get("body") or "") for m in messages or () if isinstance(m, dict)):
                    return str(conversation.get("id"))
        return None

    def write(self, action: Action, recipients: list[str]) -> list[str]:
        """One private conversation per recipient (two guardians each get their own), each started anew
        (``force_new``) so it never lands in an older thread with the same person."""
        ids = []
        for recipient in recipients:
            found = self.existing(action, recipient)
            if found:
                ids.append(found)
                continue
            try:
                answer = self.api.post("/api/v1/conversations", {
                    "recipients": [recipient], "subject": subject(action), "body": with_marker(action),
                    "force_new": True, "group_conversation": False,
                })
            except CanvasError as exc:
                if exc.status == 400 and INVALID_RECIPIENTS in exc.result.reason:
                    raise CanvasError(SendResult("dead", status=400, reason=(
                        f"Canvas HTTP 400: {INVALID_RECIPIENTS}: user {recipient} is not in the service account's "
                        "address book; let the account message them (see the canvas README), then retry"))) from None
                raise
            first = answer[0] if isinstance(answer, list) and answer else {}
            ids.append(str(first.get("id", "")) if isinstance(first, dict) else "")
        return ids
