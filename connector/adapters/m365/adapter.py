"""The Microsoft 365 adapter: Graph change notifications in, Teams activity-feed alerts and Planner tasks out."""
from __future__ import annotations

import logging
import time
from typing import Any, Iterator, Mapping
from urllib.parse import quote

import requests

from connector.contract.actions import Action
from connector.adapters.base import Adapter, Finding, Inbound, InboundError, PlatformRefused, SendResult, Upkeep
from connector.adapters.m365 import activity, check, planner, subscriptions
from connector.adapters.m365.graph import Graph, GraphUnavailable, error_code, outcome
from connector.adapters.m365.lookups import TtlCache, role_from_primary
from connector.adapters.m365.messages import message_created
from connector.adapters.m365.notifications import check_origin, load_collection, parse, validation_token
from connector.adapters.m365.settings import M365Settings, is_object_id
from connector.adapters.m365.subscriptions import PROTECTED_API, PROTECTED_API_HINT

log = logging.getLogger(__name__)


def protected_api_refusal(response: requests.Response) -> bool:
    """Graph's 403 for a protected Teams API the app registration is not approved for. Graph gives it no code of its
    own (``Forbidden``); only the message names it ("Invoked API requires Protected API access in application-only
    context ..."). The message is read to recognise it, never logged or kept."""
    if response.status_code != 403:
        return False
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return False
    message = error.get("message") if isinstance(error, dict) else None
    return isinstance(message, str) and "protected api" in message.lower()


class PrepareFailed(Exception):
    """Graph could not give what a notification points at; raised so RQ retries the delivery's job."""


class _Refused(Exception):
    def __init__(self, result: SendResult):
        super().__init__(result.reason)
        self.result = result


def media_type(headers: Mapping[str, str]) -> str:
    return (headers.get("content-type") or "").split(";", 1)[0].strip().lower()


class M365Adapter(Adapter):
    type_name = "m365"
    config_schema = M365Settings
    may_refuse = True  # reading Teams messages needs Microsoft's approval of a protected API
    keeps_subscriptions = True  # Graph sends nothing without a subscription, and Teams' last an hour

    def __init__(self, tenant_id: str, name: str, settings: Mapping[str, Any], http: requests.Session | None = None):
        super().__init__(tenant_id, name, settings, http)
        self.graph = Graph(settings, self.http)
        self.roles = TtlCache(settings["lookup_ttl_seconds"])
        self.class_teachers = TtlCache(settings["lookup_ttl_seconds"])

    # --- in: the door -------------------------------------------------------------------------------------------

    def validation_response(self, query: Mapping[str, str]) -> str | None:
        """For the door: the text to answer Graph's subscription handshake with (``200 text/plain``), or ``None``
        when the request is not a handshake and goes on to :meth:`receive`."""
        return validation_token(query)

    def receive(self, body: bytes, headers: Mapping[str, str], now: float | None = None) -> Inbound:
        if not body.strip() and media_type(headers) == "text/plain":
            raise InboundError(
                400, "validation_not_answered",
                "This looks like Microsoft Graph's validation request; the validationToken in the query string "
                "must be echoed by the webhook door (see the m365 README).",
            )
        if media_type(headers) != "application/json":
            raise InboundError(415, "unsupported_media_type", "The body must be JSON (Content-Type: application/json).")
        notifications = load_collection(body)
        secrets = [ref.reveal() for ref in self.settings["client_states"]]
        check_origin(notifications, secrets, self.settings["tenant_id"])
        parsed = parse(notifications, time.time() if now is None else now)
        if not parsed.events:
            for kind in parsed.ignored[1:]:
                log.info("ignored notification type %r tenant=%s adapter=%s", kind, self.tenant_id, self.name)
            return Inbound(delivery_id=parsed.delivery_id, ignored_type=parsed.ignored[0])
        for kind in parsed.ignored:
            log.info("ignored notification type %r tenant=%s adapter=%s", kind, self.tenant_id, self.name)
        return Inbound(delivery_id=parsed.delivery_id, events=parsed.events)

    # --- in: the worker -----------------------------------------------------------------------------------------

    def prepare(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Read each notified message from Graph (notifications carry only its address) and complete the event."""
        complete = []
        for event in events:
            path = event.get("m365_message")
            if path is None:
                complete.append(event)
                continue
            response = self.graph.call("GET", path)
            if response.status_code == 404:
                log.info("tenant=%s: a notified Teams message was gone before it was read; skipped", self.tenant_id)
                continue
            if protected_api_refusal(response):
                raise PlatformRefused(PROTECTED_API, PROTECTED_API_HINT)
            if response.status_code != 200:
                raise PrepareFailed(f"reading a Teams message: HTTP {response.status_code} {error_code(response)}")
            created = message_created(response.json(), self.role_of)
            if created is None:
                log.info("tenant=%s: a Teams message not written by a person (system event or app) was skipped",
                         self.tenant_id)
                continue
            complete.append(created)
        return complete

    def role_of(self, user_id: str) -> str:
        """``student``, ``staff`` or ``unknown``, from the Education API's ``primaryRole``; cached with a TTL."""
        return self.roles.remember(user_id, lambda: self._education_role(user_id))

    def _education_role(self, user_id: str) -> str:
        response = self.graph.call("GET", f"/education/users/{quote(user_id)}", params={"$select": "id,primaryRole"})
        if response.status_code == 200:
            return role_from_primary(response.json().get("primaryRole"))
        if response.status_code in (403, 404):
            if response.status_code == 403:
                log.warning("tenant=%s: no permission to read education roles (EduRoster.Read.All); "
                            "message senders get the role 'unknown'", self.tenant_id)
            return "unknown"
        raise PrepareFailed(f"reading a user's education role: HTTP {response.status_code} {error_code(response)}")

    def check(self) -> list[Finding]:
        """Read-only calls that show what the app registration lacks (``check.py``)."""
        return check.check(self.graph, self.settings)

    # --- subscriptions ------------------------------------------------------------------------------------------

    def wants_subscriptions(self) -> bool:
        return bool(self.settings["subscriptions"])

    def keep_subscriptions(self, records: Mapping[str, dict[str, Any]], signals: Mapping[str, str],
                           now: float) -> Upkeep:
        return subscriptions.keep(self.graph, self.settings, records, signals, now)

    # --- directory ----------------------------------------------------------------------------------------------

    def lookup_role(self, role: str, group_id: str | None = None, student_id: str | None = None) -> str | None:
        """A class's contact teacher, when the group is mapped to an educationClass that has exactly one teacher.
        Several teachers cannot tell who the contact teacher is, so the configured directory decides then."""
        class_id = self.settings["education_classes"].get(group_id) if group_id else None
        if role != "contact_teacher" or not class_id:
            return None
        return self.class_teachers.remember(class_id, lambda: self._only_teacher(class_id))

    def _only_teacher(self, class_id: str) -> str | None:
        response = self.graph.call("GET", f"/education/classes/{quote(class_id)}/teachers", params={"$select": "id"})
        if response.status_code != 200:
            raise PrepareFailed(f"reading a class's teachers: HTTP {response.status_code} {error_code(response)}")
        teachers = [t["id"] for t in response.json().get("value", []) if isinstance(t, dict) and t.get("id")]
        return teachers[0] if len(teachers) == 1 else None

    # --- out ----------------------------------------------------------------------------------------------------

    def send(self, action: Action) -> SendResult:
        try:
            if action.kind == "alert":
                return self._alert(action)
            if action.kind == "task":
                return self._task(action)
            return SendResult("dead", reason="the m365 adapter has no place for case notes")
        except GraphUnavailable as exc:
            return exc.result
        except _Refused as exc:
            return exc.result

    def _alert(self, action: Action) -> SendResult:
        who = action.assignee
        if who is not None and who.role == "guardian":
            return self._guardian_alert(action)
        if who is None or not who.id:
            role = who.role if who else "none"
            return SendResult("dead", reason=f"no Microsoft 365 user for role {role}: add it to the tenant's directory")
        response = self.graph.call(
            "POST", f"/users/{quote(who.id)}/teamwork/sendActivityNotification",
            json=activity.notification_body(action, self.settings),
        )
        result = outcome(response)
        if result.outcome == "done":
            return SendResult("done", remote_id=f"chain-{activity.chain_id(action.external_ref)}", status=result.status)
        return result

    def _guardian_alert(self, action: Action) -> SendResult:
        """Guardians are not users in the school's Microsoft 365 tenant: Teams cannot reach them."""
        if self.settings["guardian_alerts"] == "skip":
            log.info("tenant=%s: guardian alert %s not sent: guardian_alerts is 'skip' (reached outside M365)",
                     self.tenant_id, action.external_ref)
            return SendResult("done", remote_id="skipped:guardian", reason="guardian_alerts: skip")
        return SendResult("dead", reason="guardians are not Microsoft 365 users; send this reminder another way")

    def _task(self, action: Action) -> SendResult:
        plan_id = self.settings["planner_plan_id"]
        if not plan_id:
            return SendResult("dead", reason="no Planner plan configured (planner_plan_id)")
        who = action.assignee
        if who is None or not is_object_id(who.id):
            role = who.role if who else "none"
            return SendResult("dead", reason=f"no Entra object id for role {role}: Planner assigns tasks by object id")
        existing = planner.find_tagged(self._plan_tasks(plan_id), action.external_ref)
        if existing is not None:
            if existing.get("hasDescription"):
                return SendResult("done", remote_id=existing["id"], status=200)
            return self._describe(existing["id"], action, status=200)
        response = self.graph.call(
            "POST", "/planner/tasks", json=planner.task_body(action, plan_id, self.settings["planner_bucket_id"])
        )
        result = outcome(response)
        if result.outcome != "done":
            return result
        return self._describe(response.json()["id"], action, status=response.status_code)

    def _plan_tasks(self, plan_id: str) -> Iterator[list[dict[str, Any]]]:
        url = f"/planner/plans/{quote(plan_id)}/tasks"
        for _ in range(planner.MAX_PAGES):
            response = self.graph.call("GET", url)
            if response.status_code != 200:
                raise _Refused(outcome(response))
            page = response.json()
            yield page.get("value", [])
            url = page.get("@odata.nextLink")
            if not url:
                return

    def _describe(self, task_id: str, action: Action, status: int) -> SendResult:
        """Write the text into the task's details. If this fails the task exists without text; the next attempt
        finds it by its tag and writes the text then."""
        path = f"/planner/tasks/{quote(task_id)}/details"
        read = self.graph.call("GET", path)
        if read.status_code != 200:
            return outcome(read, conflict="retry")
        etag = read.json().get("@odata.etag") or read.headers.get("ETag")
        if not etag:
            return SendResult("retry", status=read.status_code, reason="task details came without an etag")
        written = self.graph.call("PATCH", path, json=planner.details_body(action), headers={"If-Match": etag})
        if written.status_code == 412:  # someone edited the details in between: read again next time
            return SendResult("retry", status=412, reason="HTTP 412 (task details changed)")
        result = outcome(written, conflict="retry")
        if result.outcome != "done":
            return result
        return SendResult("done", remote_id=task_id, status=status)
