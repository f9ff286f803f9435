"""The Moodle adapter: local_webhooks events in, mod_attendance and core web services to complete and write."""
from __future__ import annotations

import logging
from typing import Any, Mapping
from zoneinfo import ZoneInfo

import requests
from marshmallow import ValidationError

from connector.contract.actions import Action
from connector.adapters.base import Adapter, Finding, Inbound, InboundError, SendResult
from connector.adapters.moodle import attendance, check, messages, notes
from connector.adapters.moodle.directory import RoleDirectory
from connector.adapters.moodle.events import (
    EVENT_MAPPER, PENDING, FieldErrors, delivery_id, parse_body, token_matches,
)
from connector.adapters.moodle.settings import MoodleSettings
from connector.adapters.moodle.webservice import MoodleError, WebService
from connector.contract.events import EVENT_SCHEMAS, flatten_errors
from connector.contract.signatures import HEADERS as SIGNATURE_HEADERS
from connector.contract.signatures import SignatureError, verify

log = logging.getLogger(__name__)

GONE = frozenset({"invalidrecord", "invalidrecordunknown"})  # the session was deleted after the event


class MoodleAdapter(Adapter):
    type_name = "moodle"
    config_schema = MoodleSettings

    def __init__(self, tenant_id: str, name: str, settings: Mapping[str, Any], http: requests.Session | None = None):
        super().__init__(tenant_id, name, settings, http)
        self.ws = WebService(self.http, settings["base_url"], settings["ws_token"], settings["timeout_seconds"])
        self.zone = ZoneInfo(settings["timezone"])
        self.directory = RoleDirectory(self.ws, settings["roles"], settings["lookup_ttl_seconds"])
        self._service_user: int | None = None

    # --- inbound -------------------------------------------------------------------------------------------------

    def receive(self, body: bytes, headers: Mapping[str, str]) -> Inbound:
        signed = any(headers.get(name) for name in SIGNATURE_HEADERS)
        if signed:
            delivery = self._verify_signature(body, headers)
        event = parse_body(body, headers.get("content-type"))
        if not signed:
            tokens = [ref.reveal() for ref in self.settings["webhook_tokens"]]
            if not tokens or not token_matches(event.get("token"), tokens):
                raise InboundError(401, "invalid_token", "Missing or wrong token (the local_webhooks service's Token).")
            delivery = delivery_id(event)
        name = event.get("eventname")
        if not isinstance(name, str) or not name:
            raise InboundError(422, "invalid_event", "Invalid field(s): eventname.", {"eventname": ["Missing event name."]})
        builder = EVENT_MAPPER.get(name)
        try:
            events = builder(event, self.settings) if builder else None
        except FieldErrors as exc:
            raise InboundError(422, "invalid_event", f"Invalid field(s): {exc}.", exc.fields) from None
        if events is None:
            return Inbound(delivery_id=delivery, ignored_type=name[:100])
        return Inbound(delivery_id=delivery, events=events)

    def _verify_signature(self, body: bytes, headers: Mapping[str, str]) -> str:
        secrets = [ref.reveal() for ref in self.settings["webhook_secrets"]]
        if not secrets:
            raise InboundError(401, "invalid_signature", "Signed deliveries are not configured for this endpoint.")
        try:
            return verify(body, headers, secrets)
        except SignatureError as exc:
            raise InboundError(401, "invalid_signature", str(exc)) from None

    # --- worker: complete what the webhook lacks -----------------------------------------------------------------

    def prepare(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Fetch each pending event's session once; a deleted session drops its events, other errors raise (RQ
        retries the job, and a job that keeps failing stays in RQ's failed registry for an admin)."""
        sessions: dict[int, Mapping[str, Any] | None] = {}
        for event in events:
            ids = event.get(PENDING)
            if ids and ids["sessionid"] not in sessions:
                sessions[ids["sessionid"]] = self._session(ids["sessionid"])
        ready = []
        for event in events:
            ids = event.get(PENDING)
            if not ids:
                ready.append(event)
                continue
            session = sessions[ids["sessionid"]]
            built = self._complete(event, ids, session) if session is not None else None
            if built is not None:
                ready.append(built)
        return ready

    def _session(self, session_id: int) -> Mapping[str, Any] | None:
        try:
            return self.ws.call("mod_attendance_get_session", sessionid=session_id)
        except MoodleError as exc:
            if exc.errorcode in GONE:
                log.warning("tenant=%s adapter=%s: attendance session %s no longer exists; its event is dropped",
                            self.tenant_id, self.name, session_id)
                return None
            raise

    def _complete(self, event: dict[str, Any], ids: Mapping[str, int], session: Mapping[str, Any]):
        translation = attendance.translate(session, self.settings["statuses"])
        attendance.warn_unknown(self.tenant_id, self.name, ids["sessionid"], translation.unknown)
        if event["type"] == "attendance.register":
            built = attendance.register(session, event["timestamp"], translation, self.zone)
        else:
            built = attendance.marked(session, event["timestamp"], translation, str(ids["studentid"]), self.zone)
            if built is None:
                log.info("tenant=%s adapter=%s: session %s has no mark for the pupil who marked it; nothing to do",
                         self.tenant_id, self.name, ids["sessionid"])
                return None
        try:
            data = EVENT_SCHEMAS[built["type"]].load({k: v for k, v in built.items() if k not in ("type", "timestamp")})
        except ValidationError as exc:  # Moodle answered something the contract cannot hold: stop, say where
            raise ValueError(f"session {ids['sessionid']}: {sorted(flatten_errors(exc.messages))}") from None
        return {"type": built["type"], "timestamp": built["timestamp"], **data}

    # --- directory -----------------------------------------------------------------------------------------------

    def lookup_role(self, role: str, group_id: str | None = None, student_id: str | None = None) -> str | None:
        return self.directory.lookup(role, group_id)

    # --- outbound ------------------------------------------------------------------------------------------------

    def send(self, action: Action) -> SendResult:
        try:
            if action.kind == "note":
                return self._send_note(action)
            return self._send_message(action)
        except MoodleError as exc:
            return exc.result()

    def _send_message(self, action: Action) -> SendResult:
        recipient = self._recipient(action)
        if isinstance(recipient, SendResult):
            return recipient
        sender = self.service_user()
        existing = messages.find_sent(self.ws, sender, recipient, action.external_ref)
        if existing is not None:
            log.info("tenant=%s adapter=%s: %s %s is already in Moodle (message %s); not sent again",
                     self.tenant_id, self.name, action.kind, action.external_ref, existing)
            return SendResult("done", remote_id=str(existing), status=200, reason="found by its marker")
        return messages.send(self.ws, recipient, action)

    def _send_note(self, action: Action) -> SendResult:
        if action.visibility != "staff":
            return SendResult("dead", reason="Moodle has no note guardians can see (visibility guardians)")
        student = moodle_user(action.student_id)
        if student is None:
            return SendResult("dead", reason="a Moodle note needs the pupil's Moodle user id as student_id")
        existing = notes.find_written(self.ws, student, action.external_ref)
        if existing is not None:
            log.info("tenant=%s adapter=%s: note %s is already in Moodle (note %s); not written again",
                     self.tenant_id, self.name, action.external_ref, existing)
            return SendResult("done", remote_id=str(existing), status=200, reason="found by its marker")
        return notes.create(self.ws, student, action)

    def _recipient(self, action: Action) -> int | SendResult:
        party = action.assignee
        if party is None:
            return SendResult("dead", reason=f"{action.kind} without a recipient")
        if party.id:
            user = moodle_user(party.id)
            if user is None:
                return SendResult("dead", reason=f"the {party.role}'s id is not a Moodle user id; check directory:")
            return user
        if party.role != "guardian":
            return SendResult("dead", reason=f"no Moodle user holds the role {party.role}; check directory: or roles:")
        policy = self.settings["guardian_alerts"]
        if policy == "student":
            user = moodle_user(action.student_id)
            if user is not None:
                return user
            return SendResult("dead", reason="guardian_alerts is student, but the pupil has no Moodle user id")
        if policy == "skip":
            log.info("tenant=%s adapter=%s: %s %s for guardians not written (guardian_alerts: skip)",
                     self.tenant_id, self.name, action.kind, action.external_ref)
            return SendResult("done", reason="guardian_alerts: skip")
        return SendResult("dead", reason="Moodle has no guardian link; set guardian_alerts or handle it by hand")

    def check(self) -> list[Finding]:
        """Read-only: ``core_webservice_get_site_info`` (``check.py``)."""
        return check.check(self.ws)

    def service_user(self) -> int:
        """The web-service account's own user id: messages are read back from its side of the conversation."""
        if self._service_user is None:
            info = self.ws.call("core_webservice_get_site_info")
            self._service_user = int(info["userid"])
        return self._service_user


def moodle_user(value: str | None) -> int | None:
    text = (value or "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None
