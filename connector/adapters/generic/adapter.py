"""The generic adapter: Standard Webhooks in, the contract's ``/tasks``, ``/alerts`` and ``/notes`` out."""
from __future__ import annotations

import json
import logging
from typing import Any, Mapping

from marshmallow import Schema, ValidationError, fields, validate

from connector.contract.actions import Action
from connector.adapters.base import Adapter, Finding, Inbound, InboundError, SendResult
from connector.adapters.http import classify_response, post_json
from connector.config.secrets import SecretField
from connector.contract.events import flatten_errors, load_event
from connector.contract.signatures import SignatureError, secret_problem, verify

log = logging.getLogger(__name__)

PATHS = {"task": "/tasks", "alert": "/alerts", "note": "/notes"}


class GenericSettings(Schema):
    webhook_secrets = fields.List(SecretField(check=secret_problem), required=True, validate=validate.Length(min=1))
    base_url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False)
    api_token = SecretField(required=True)
    max_body_bytes = fields.Integer(load_default=1024 * 1024, validate=validate.Range(min=1024, max=16 * 1024 * 1024))
    timeout_seconds = fields.Float(load_default=10.0, validate=validate.Range(min=0.5, max=120))


def is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def contract_body(action: Action) -> dict[str, Any]:
    """The action as the contract's outbound table spells it, and nothing more."""
    body: dict[str, Any] = {
        "external_ref": action.external_ref,
        "student_id": action.student_id,
        "rule_id": action.rule_id,
        "body": action.body,
    }
    if action.kind == "task":
        body.update(
            assignee=action.assignee.to_dict(), title=action.title, due_date=action.due_date, priority=action.priority
        )
    elif action.kind == "alert":
        body.update(recipient=action.assignee.to_dict(), title=action.title, severity=action.severity)
    else:
        body["visibility"] = action.visibility
    if action.case_id and action.kind in ("task", "note"):
        body["case_id"] = action.case_id
    if action.group_id:
        body["group_id"] = action.group_id  # an addition to the contract: routines about a whole group
    return body


class DuplicateKey(Exception):
    pass


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are unique. RFC 8259 leaves a repeated key's meaning open (Python keeps the last, other
    parsers the first), so a body that repeats one could mean one thing to its sender and another here: refused."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise DuplicateKey()
    return obj


class GenericAdapter(Adapter):
    type_name = "generic"
    config_schema = GenericSettings

    def receive(self, body: bytes, headers: Mapping[str, str]) -> Inbound:
        if not is_json(headers.get("content-type")):
            raise InboundError(415, "unsupported_media_type", "The body must be JSON (Content-Type: application/json).")
        secrets = [ref.reveal() for ref in self.settings["webhook_secrets"]]
        try:
            delivery_id = verify(body, headers, secrets)
        except SignatureError as exc:
            raise InboundError(401, "invalid_signature", str(exc)) from None
        try:  # JSON is UTF-8 (RFC 8259); json.loads would also take UTF-16 and UTF-8-encoded surrogates
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InboundError(400, "malformed_json", "The body is not UTF-8 (JSON must be).") from None
        try:
            envelope = json.loads(text, object_pairs_hook=unique_keys)
        except DuplicateKey:
            raise InboundError(400, "malformed_json", "The body names a key twice in one object.") from None
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than any event
            raise InboundError(400, "malformed_json", "The body is not valid JSON.") from None
        if not isinstance(envelope, dict):
            raise InboundError(422, "invalid_event", "The body must be a JSON object.", {"_schema": ["Not an object."]})
        try:
            event = load_event(envelope)
        except ValidationError as exc:
            fields_ = flatten_errors(exc.messages)
            raise InboundError(422, "invalid_event", f"Invalid field(s): {', '.join(sorted(fields_))}.", fields_) from None
        if event is None:
            return Inbound(delivery_id=delivery_id, ignored_type=str(envelope.get("type"))[:100])
        return Inbound(delivery_id=delivery_id, events=[event])

    def check(self) -> list[Finding]:
        """The reference contract (``shared/CONTRACT.md``) has write calls only (``POST /tasks``, ``/alerts``,
        ``/notes``): there is nothing read-only to call, and a trial write would create a real task."""
        return [Finding(True, "nothing to check", "the generic contract has no read-only call; the platform's "
                        "answer to the first action (201, 409, or a dead letter naming its status) is the check")]

    def send(self, action: Action) -> SendResult:
        url = self.settings["base_url"].rstrip("/") + PATHS[action.kind]
        headers = {
            "Authorization": f"Bearer {self.settings['api_token'].reveal()}",
            "Idempotency-Key": action.external_ref,
        }
        response = post_json(self.http, url, contract_body(action), headers, self.settings["timeout_seconds"])
        if isinstance(response, SendResult):
            return response
        result = classify_response(response)
        if result.outcome == "done" and response.status_code != 409:
            try:
                remote_id = str(response.json()["id"])
            except (ValueError, KeyError, TypeError):
                remote_id = None
            return SendResult("done", remote_id=remote_id, status=response.status_code)
        return result
