"""What every platform adapter provides: verify and parse what the platform sends, and write actions back."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

import requests
from marshmallow import Schema

from connector.contract.actions import Action


class InboundError(Exception):
    """A request the adapter refuses. ``status`` and ``code`` become the HTTP answer; ``fields`` names bad fields.

    Messages are written for the sender's developer: they name fields and headers, never a secret or a value
    from the body.
    """

    def __init__(self, status: int, code: str, message: str, fields: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = dict(fields) if fields else None


class PlatformRefused(Exception):
    """Raised by ``prepare`` when the platform refuses every read for a reason only an admin can fix (an approval,
    a licence): retrying cannot help. The engine drops the delivery's events, keeps ``reason_code`` as the adapter's
    health flag (``/readyz`` shows it) and logs it once; the next successful ``prepare`` clears the flag.

    ``reason_code`` is a short stable code (``protected_api_not_approved``); ``hint`` tells an admin what to do. Neither
    holds the platform's message text or anything from the events.
    """

    def __init__(self, reason_code: str, hint: str = ""):
        super().__init__(reason_code)
        self.reason_code = reason_code
        self.hint = hint


@dataclass
class Inbound:
    """One verified, parsed delivery: its dedupe id, the internal events, or the unknown type it carried."""

    delivery_id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    ignored_type: str | None = None


@dataclass(frozen=True)
class SendResult:
    """The platform's answer to one action, classified.

    ``outcome`` is ``done`` (written, or already there), ``retry`` (try again later, after ``retry_after`` seconds
    when the platform said so) or ``dead`` (the platform refused it; an admin must look). ``error_body`` is what
    the platform answered a refusal with (cut short), kept with the dead letter for the admin to read.
    """

    outcome: str
    remote_id: str | None = None
    status: int | None = None
    retry_after: float | None = None
    reason: str = ""
    error_body: str = ""


class Adapter:
    type_name: ClassVar[str]
    config_schema: ClassVar[type[Schema]]
    # Whether ``prepare`` may raise ``PlatformRefused``: only then does a job clear the adapter's health flag after a
    # successful ``prepare`` (one Redis call a delivery the others need not pay).
    may_refuse: ClassVar[bool] = False

    def __init__(self, tenant_id: str, name: str, settings: Mapping[str, Any], http: requests.Session | None = None):
        self.tenant_id = tenant_id
        self.name = name
        self.settings = settings
        self.http = http or requests.Session()

    @property
    def max_body_bytes(self) -> int:
        return int(self.settings.get("max_body_bytes", 1024 * 1024))

    def validation_response(self, query: Mapping[str, str]) -> str | None:
        """A subscription handshake some platforms make before sending events (Microsoft Graph's
        ``validationToken``): the text to answer with 200, or ``None`` when the request is no handshake."""
        return None

    def receive(self, body: bytes, headers: Mapping[str, str]) -> Inbound:
        """Verify ``body`` (the raw bytes) and turn it into internal events; raise ``InboundError`` to refuse."""
        raise NotImplementedError

    def prepare(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Runs in the worker, before the rules: complete events whose webhook lacks data (a register's statuses,
        a message's text) with the platform's API. Raising makes RQ retry the job, except ``PlatformRefused``, which
        ends it (see there). The default needs nothing."""
        return events

    def lookup_role(self, role: str, group_id: str | None = None, student_id: str | None = None) -> str | None:
        """The platform user holding ``role`` for a group or pupil, if the platform can tell; ``None`` falls back to
        the tenant's configured directory. Implementations cache their lookups."""
        return None

    def send(self, action: Action) -> SendResult:
        raise NotImplementedError
