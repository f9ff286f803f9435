"""The Canvas adapter: signed Live Events in, Planner notes and Conversations out (README.md for the admin)."""
from __future__ import annotations

import logging
import time
from datetime import date, datetime
from typing import Any, Mapping

import requests

from connector.contract.actions import Action
from connector.adapters.base import Adapter, Finding, Inbound, InboundError, SendResult
from connector.adapters.canvas import check
from connector.adapters.canvas.api import CanvasApi, CanvasError, Throttled
from connector.adapters.canvas.live_events import PENDING, EventRejected, envelope, translate
from connector.adapters.canvas.messages import MessageReader
from connector.adapters.canvas.outbound import Conversations, PlannerNotes, as_message
from connector.adapters.canvas.roster import RosterCache
from connector.adapters.canvas.settings import CanvasSettings
from connector.adapters.canvas.signatures import (
    KeysUnavailable, LiveEventVerifier, RemoteKeys, SignatureRejected, StaticKeys,
)
from connector.contract.terms import OSLO

log = logging.getLogger(__name__)

GUARDIAN_ROLES = ("guardian",)  # addressed by role only: Canvas knows them as the pupil's observers
# Whom Canvas shows the planner: users with a student enrolment, and observers (``planner_enabled?``).
PLANNER_ROLES = ("student", "guardian")


class CanvasAdapter(Adapter):
    type_name = "canvas"
    config_schema = CanvasSettings

    def __init__(self, tenant_id: str, name: str, settings: Mapping[str, Any], http: requests.Session | None = None):
        super().__init__(tenant_id, name, settings, http)
        s = self.settings
        keys = StaticKeys(s["jwks"]) if s["jwks"] else RemoteKeys(
            s["jwks_url"], self.http, lifespan=s["jwks_cache_seconds"], timeout=s["timeout_seconds"])
        self.verifier = LiveEventVerifier(keys, s["jwt_issuer"], s["jwt_audience"], s["jwt_leeway_seconds"])
        self.api = CanvasApi(s["base_url"], s["api_token"].reveal, self.http, s["timeout_seconds"],
                             s["throttle_wait_seconds"], s["rate_limit_floor"])
        self.rosters = RosterCache(self.api, s["roles"], s["directory_ttl_seconds"])
        self.messages = MessageReader(self.api, self.rosters, self._own_user_id)
        self.planner = PlannerNotes(self.api)
        self.conversations = Conversations(self.api, s["dedupe_lookback_days"])
        self._self_id: tuple[float, str | None] | None = None

    @property
    def max_body_bytes(self) -> int:
        return int(self.settings["max_body_bytes"])

    # --- inbound -----------------------------------------------------------------------------------------------

    def receive(self, body: bytes, headers: Mapping[str, str], now: float | None = None) -> Inbound:
        """Any media type is accepted (Canvas does not document the one it sends with a signed body); the body must
        verify as a JWT before anything in it is read."""
        try:
            claims = self.verifier.claims(body)
        except SignatureRejected as exc:
            raise InboundError(401, exc.code, exc.message) from None
        except KeysUnavailable:
            log.warning("tenant=%s adapter=%s: Live Events key set unavailable", self.tenant_id, self.name)
            raise InboundError(503, "keys_unavailable", "The signing keys cannot be fetched now; retry later.") from None
        try:
            metadata, event_body = envelope(claims)
            if metadata.get("root_account_uuid") != self.settings["root_account_uuid"]:
                raise InboundError(403, "foreign_account",
                                   "The event is from a Canvas root account this adapter is not configured for.")
            mapped = translate(metadata, event_body, self.settings["group_by"])
        except EventRejected as exc:
            raise InboundError(422, "invalid_event", f"Invalid field(s): {', '.join(sorted(exc.fields))}.",
                               exc.fields) from None
        if mapped.ignored is not None:
            return Inbound(delivery_id=mapped.delivery_id, ignored_type=mapped.ignored)
        return Inbound(delivery_id=mapped.delivery_id, events=mapped.events)

    def prepare(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Completes the messages whose text Canvas did not send. A throttled or failing Canvas raises, so RQ tries
        the whole delivery again later; a message that no longer exists is dropped (logged at info)."""
        ready = []
        for event in events:
            if PENDING not in event:
                ready.append(event)
                continue
            try:
                complete = self.messages.complete(self.tenant_id, event)
            except CanvasError as exc:
                raise RuntimeError(f"tenant={self.tenant_id}: reading a Canvas message failed ({exc})") from None
            if complete is not None:
                ready.append(complete)
        return ready

    def _own_user_id(self) -> str | None:
        """The connector's own Canvas user (``GET /api/v1/users/self``), so its own messages are not read as news."""
        now = time.monotonic()
        if self._self_id is None or self._self_id[0] <= now:
            user = self.api.get("/api/v1/users/self")
            own = str(user.get("id")) if isinstance(user, dict) and user.get("id") is not None else None
            self._self_id = (now + max(self.settings["directory_ttl_seconds"], 60), own)
        return self._self_id[1]

    # --- directory ---------------------------------------------------------------------------------------------

    def lookup_role(self, role: str, group_id: str | None = None, student_id: str | None = None) -> str | None:
        """The group's course (or section) roster answers; ``None`` sends the caller to the configured directory.
        Errors propagate: the caller logs them and falls back too."""
        if group_id is None or not str(group_id).isdigit() or role not in self.settings["roles"]:
            return None
        return self.rosters.get(self.settings["group_by"], str(group_id)).holder(role)

    def check(self) -> list[Finding]:
        """Read-only calls that show what the service account lacks (``check.py``)."""
        return check.check(self.api, self.settings)

    # --- outbound ----------------------------------------------------------------------------------------------

    def send(self, action: Action) -> SendResult:
        try:
            if action.kind == "task":
                return self._task(action)
            return self._message(action)
        except Throttled as exc:
            return SendResult("retry", status=exc.status, retry_after=exc.retry_after, reason="Canvas rate limit")
        except CanvasError as exc:
            return exc.result

    def _task(self, action: Action) -> SendResult:
        """A task goes where its assignee sees it: the planner for a pupil or an observer, the Inbox for staff
        (unless ``staff_tasks: planner_note``). Either way it is found again by its ``Ref:`` line."""
        assignee = action.assignee.id if action.assignee else None
        if not assignee or not str(assignee).isdigit():
            return SendResult("dead", reason="task has no Canvas user to assign it to (planner notes are personal)")
        if action.assignee.role not in PLANNER_ROLES and self.settings["staff_tasks"] == "conversation":
            (conversation_id,) = self.conversations.write(as_message(action, self.settings["language"]),
                                                          [str(assignee)])
            return SendResult("done", remote_id=f"conversation/{conversation_id}", status=201)
        day = date.fromisoformat(action.due_date) if action.due_date else datetime.now(OSLO).date()
        note_id = self.planner.write(action, str(assignee), day)
        return SendResult("done", remote_id=f"planner_note/{note_id}", status=201)

    def _message(self, action: Action) -> SendResult:
        recipients = self._recipients(action)
        if not recipients:
            return SendResult("dead", reason=f"{action.kind} has no Canvas recipient (see the adapter README)")
        ids = self.conversations.write(action, recipients)
        return SendResult("done", remote_id="conversation/" + ",".join(ids), status=201)

    def _recipients(self, action: Action) -> list[str]:
        """Alerts go to the person named, to the pupil's observers when only the guardian role is named, or to the
        pupil for the student role; notes for guardians go to the observers, staff notes to ``note_recipients``."""
        if action.kind == "note":
            if action.visibility == "guardians":
                return self._observers(action.student_id)
            return list(self.settings["note_recipients"])
        if action.assignee and action.assignee.id:
            return [str(action.assignee.id)] if str(action.assignee.id).isdigit() else []
        if action.assignee and action.assignee.role in GUARDIAN_ROLES:
            return self._observers(action.student_id)
        if action.assignee and action.assignee.role == "student" and str(action.student_id).isdigit():
            return [str(action.student_id)]  # the pupil's own Canvas user
        return []

    def _observers(self, student_id: str) -> list[str]:
        if not str(student_id).isdigit():
            return []
        users = self.api.all(f"/api/v1/users/{student_id}/observers")
        return sorted({str(u["id"]) for u in users if u.get("id") is not None}, key=int)
