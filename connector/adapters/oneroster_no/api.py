"""OneRoster's REST binding as the poller reads it: an OAuth 2.0 client-credentials token, and collections read a
page at a time (``limit``/``offset``/``sort``/``orderBy``/``filter``, OneRoster 1.2 §3.4 and docs.onedhub.io).

What the platform answers is classified here, so the poller only decides *when* to ask again:
``Throttled`` (429/503, with ``Retry-After`` when given), ``Unavailable`` (other 5xx, a timeout, no connection),
``Refused`` (any other 4xx: a wrong org, a scope the client lacks; retrying cannot help). A ``401`` is answered by
one fresh token and one retry: OnEdHub's tokens live minutes, and one may expire between two pages.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import requests

from connector.adapters.base import new_session
from connector.adapters.http import retry_after_seconds

log = logging.getLogger(__name__)

TOKEN_MARGIN_SECONDS = 30  # a token this close to its end is renewed before use, not after a 401


class PollError(Exception):
    """Why a read failed; ``reason`` is a short code for logs and ``/readyz``, never the platform's text."""

    reason = "error"

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class Throttled(PollError):
    reason = "throttled"

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message, status)
        self.retry_after = retry_after


class Unavailable(PollError):
    reason = "unavailable"


class Refused(PollError):
    reason = "refused"


@dataclass(frozen=True)
class Page:
    records: list[dict[str, Any]]
    total: int | None  # ``X-Total-Count``, when the server sends it


class OneRosterClient:
    """One per adapter instance (and so per tenant): its token is never another tenant's."""

    def __init__(self, settings: Mapping[str, Any], http: requests.Session | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.http = http or new_session()
        self.clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()
        self.requests = 0  # calls to the service (not the token endpoint): the bench counts them

    # --- token --------------------------------------------------------------------------------------------------

    def token(self, fresh: bool = False) -> str:
        with self._lock:
            if fresh or self._token is None or self.clock() >= self._expires - TOKEN_MARGIN_SECONDS:
                self._token, lifetime = self._fetch_token()
                self._expires = self.clock() + lifetime
            return self._token

    def _fetch_token(self) -> tuple[str, float]:
        data = {"grant_type": "client_credentials", "client_id": self.settings["client_id"],
                "client_secret": self.settings["client_secret"].reveal()}
        if self.settings["scopes"]:
            data["scope"] = " ".join(self.settings["scopes"])
        try:
            response = self.http.post(self.settings["token_url"], data=data, timeout=self.settings["timeout_seconds"])
        except (requests.Timeout, requests.ConnectionError):
            raise Unavailable("the token endpoint did not answer") from None
        status = response.status_code
        if status in (429, 503):
            raise Throttled(f"token endpoint: HTTP {status}", status,
                            retry_after_seconds(response.headers.get("Retry-After")))
        if status >= 500:
            raise Unavailable(f"token endpoint: HTTP {status}", status)
        if status != 200:  # invalid_client, unauthorized_client, invalid_scope: an admin must fix the credentials
            raise Refused(f"token endpoint: HTTP {status} {_oauth_error(response)}", status)
        try:
            body = response.json()
            token = str(body["access_token"])
            lifetime = float(body.get("expires_in") or 300)
        except (ValueError, KeyError, TypeError):
            raise Unavailable("token endpoint: an answer without access_token", status) from None
        return token, lifetime

    # --- collections --------------------------------------------------------------------------------------------

    def url(self, service: str, org: str, resource: str) -> str:
        path = self.settings[f"{service}_path"].replace("{org}", "" if org == "-" else org).replace("//", "/")
        return self.settings["base_url"].rstrip("/") + path.rstrip("/") + "/" + resource.lstrip("/")

    def page(self, url: str, key: str, params: Mapping[str, Any]) -> Page:
        """One page of a collection: the records under ``key`` (``absences``, ``users``...)."""
        response = self._get(url, params)
        try:
            body = response.json()
            records = body[key]
        except (ValueError, KeyError, TypeError):
            raise Unavailable(f"GET {key}: an answer without {key!r}", response.status_code) from None
        if not isinstance(records, list):
            raise Unavailable(f"GET {key}: {key!r} is not a list", response.status_code)
        total = response.headers.get("X-Total-Count")
        return Page([r for r in records if isinstance(r, dict)], int(total) if total and total.isdigit() else None)

    def _get(self, url: str, params: Mapping[str, Any]) -> requests.Response:
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.token(fresh=attempt == 2)}", "Accept": "application/json"}
            self.requests += 1
            try:
                response = self.http.get(url, params=dict(params), headers=headers,
                                         timeout=self.settings["timeout_seconds"])
            except (requests.Timeout, requests.ConnectionError):
                raise Unavailable("the service did not answer") from None
            if response.status_code == 401 and attempt == 1:
                continue  # the token expired between two pages (or was revoked): one fresh token, one more try
            return self._classified(response)
        return self._classified(response)

    @staticmethod
    def _classified(response: requests.Response) -> requests.Response:
        status = response.status_code
        if status == 200:
            return response
        if status in (429, 503):
            raise Throttled(f"HTTP {status}", status, retry_after_seconds(response.headers.get("Retry-After")))
        if status >= 500:
            raise Unavailable(f"HTTP {status}", status)
        raise Refused(f"HTTP {status}", status)


def _oauth_error(response: requests.Response) -> str:
    """RFC 6749's ``error`` code (a fixed word such as ``invalid_client``), never its description."""
    try:
        code = response.json().get("error")
    except (ValueError, AttributeError):
        return ""
    return code if isinstance(code, str) and code.replace("_", "").isalnum() and len(code) < 50 else ""
