"""What every platform adapter provides: verify and parse what the platform sends, and write actions back."""
from __future__ import annotations

import os
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


# An internal event an adapter's ``receive`` may produce besides the contract's: the platform says something about a
# subscription of ours (Graph's lifecycle notifications). The job hands it to the subscriptions' upkeep, not the rules.
SUBSCRIPTION_LIFECYCLE = "subscription.lifecycle"


@dataclass(frozen=True)
class Finding:
    """One result of ``check``: what was tried against the platform and, in plain words for an admin, what is
    missing (a capability, a permission, an approval) or that it works. Never a secret or a pupil's data."""

    ok: bool
    what: str
    detail: str = ""


@dataclass
class Upkeep:
    """What ``keep_subscriptions`` did: the subscriptions to remember (resource -> record, JSON-able), when to look
    again, (still incomplete) events for what the platform did not notify meanwhile, and problems as short codes."""

    records: dict[str, dict[str, Any]]
    next_at: float | None
    events: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    refused: PlatformRefused | None = None  # the platform refuses until an admin acts (the health flag, as prepare's)


# The variables that make requests look for proxies; a CA bundle it would also read is given to the session itself.
PROXY_SETTINGS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
CA_BUNDLE_SETTINGS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def new_session() -> requests.Session:
    """A session for a platform's API.

    By default requests asks the environment for proxies on every request, and ``urllib``'s lookup walks every
    variable: with a school owner's secrets in the environment (two per school, thousands for a county) that was
    ~8 ms of CPU per write in a profile. Unless a proxy is configured there, the session does not look; a CA bundle
    named in the environment is read once, here, as requests would have read it per request.
    """
    session = requests.Session()
    if not any(name.lower() in PROXY_SETTINGS for name in os.environ):
        session.trust_env = False
        bundle = next((os.environ[name] for name in CA_BUNDLE_SETTINGS if os.environ.get(name)), None)
        if bundle:
            session.verify = bundle
    return session


class Adapter:
    type_name: ClassVar[str]
    config_schema: ClassVar[type[Schema]]
    # Whether ``prepare`` may raise ``PlatformRefused``: only then does a job clear the adapter's health flag after a
    # successful ``prepare`` (one Redis call a delivery the others need not pay).
    may_refuse: ClassVar[bool] = False
    # Whether the platform only sends events while the connector keeps subscriptions alive (``keep_subscriptions``).
    keeps_subscriptions: ClassVar[bool] = False
    # Whether ``send`` can write to the platform: a tenant whose adapter cannot (a read-only service that is polled,
    # ``oneroster_no``) must name an ``actions_adapter`` that can (checked with the configuration).
    writes: ClassVar[bool] = True
    # Whether ``connector poll`` reads this adapter's platform (it then offers what ``engine.poller`` calls).
    polled: ClassVar[bool] = False

    def __init__(self, tenant_id: str, name: str, settings: Mapping[str, Any], http: requests.Session | None = None):
        self.tenant_id = tenant_id
        self.name = name
        self.settings = settings
        self.http = http or new_session()

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

    def check(self) -> list[Finding]:
        """Call the platform's read-only endpoints this adapter needs and say what is missing, before the first
        event (``connector check-adapter``). The default has nothing to call."""
        return [Finding(True, "nothing to check", "this adapter makes no calls that can be checked in advance")]

    def wants_subscriptions(self) -> bool:
        """Whether this instance is configured to keep subscriptions (``keeps_subscriptions`` and some configured)."""
        return False

    def keep_subscriptions(self, records: Mapping[str, dict[str, Any]], signals: Mapping[str, str],
                           now: float) -> Upkeep:
        """Create what is missing, renew what expires soon, act on the platform's ``signals`` (subscription id ->
        lifecycle event) and fetch what was missed where the platform allows; see the m365 adapter."""
        return Upkeep(records={}, next_at=None)
