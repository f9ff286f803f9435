"""Calls to Microsoft Graph as the school's app registration: an app-only token from ``msal``, and Graph's answers
read the one way the connector reads every platform (``connector.adapters.http``) plus what Graph says differently.
"""
from __future__ import annotations

import logging
import math
import re
import threading
from typing import Any, Mapping

import msal
import requests

from connector.adapters.base import SendResult
from connector.adapters.http import classify_response, retry_after_seconds

log = logging.getLogger(__name__)

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# Token-endpoint errors an admin must fix in the app registration; retrying them only repeats the refusal.
CONFIGURATION_ERRORS = frozenset(
    {"invalid_client", "unauthorized_client", "invalid_scope", "invalid_request", "invalid_grant",
     "unsupported_grant_type"}
)
DECIMAL_SECONDS = re.compile(r"\d+\.\d+")


class GraphUnavailable(Exception):
    """No call could be made (no token, no connection); ``result`` says whether waiting can help."""

    def __init__(self, result: SendResult):
        super().__init__(result.reason)
        self.result = result


def error_code(response: requests.Response) -> str:
    """Graph's ``error.code`` and the innermost ``innerError.code``: codes only, never the message text."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return ""
    if not isinstance(error, dict):
        return ""
    codes = [str(error.get("code") or "")]
    inner = error.get("innerError") or error.get("innererror")
    while isinstance(inner, dict):
        if inner.get("code"):
            codes.append(str(inner["code"]))
        inner = inner.get("innerError") or inner.get("innererror")
    return "/".join(code for code in codes if code)[:120]


def retry_after(value: str | None) -> float | None:
    """Graph's own throttling page shows ``Retry-After: 2.128``; whole seconds go to the shared parser."""
    if value and DECIMAL_SECONDS.fullmatch(value.strip()):
        value = str(math.ceil(float(value)))
    return retry_after_seconds(value)


def outcome(response: requests.Response, conflict: str = "dead") -> SendResult:
    """The shared classification, adjusted where Graph means something else by a status.

    ``409`` is never "already there" on Graph: for activity notifications it means two Teams apps share one app
    registration, for Planner a version clash (``conflict="retry"``: read again and try later). ``401`` is a token
    Graph no longer accepts; a fresh one may be, so it is retried rather than dead-lettered.
    """
    status = response.status_code
    code = error_code(response)
    reason = f"HTTP {status}" + (f" ({code})" if code else "")
    if status == 409:
        return SendResult(conflict, status=status, reason=reason)
    if status == 401:
        return SendResult("retry", status=status, reason=reason)
    result = classify_response(response)
    if result.outcome == "retry" and status in (429, 503):
        return SendResult("retry", status=status, retry_after=retry_after(response.headers.get("Retry-After")),
                          reason=reason)
    return SendResult(result.outcome, status=status, retry_after=result.retry_after, reason=reason)


class Graph:
    """One app registration's view of Graph. The token lives in ``msal``'s in-memory cache, which hands out the
    cached token until it nears expiry and only then asks the token endpoint again."""

    def __init__(self, settings: Mapping[str, Any], session: requests.Session):
        self.settings = settings
        self.session = session
        self.base = settings["graph_url"].rstrip("/")
        self.timeout = float(settings["timeout_seconds"])
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()

    def url(self, path: str) -> str:
        return path if path.startswith("https://") else self.base + path

    def _application(self) -> msal.ConfidentialClientApplication:
        """Built on first use, not at start: building reads the tenant's OpenID metadata over the network.

        ``instance_discovery=False``: the authority is the configured Microsoft login host and tenant, so msal need
        not ask ``/common/discovery/instance`` about it; the only calls are that metadata (once) and the token.
        """
        with self._lock:
            if self._app is None:
                authority = f"{self.settings['authority_host'].rstrip('/')}/{self.settings['tenant_id']}"
                self._app = msal.ConfidentialClientApplication(
                    self.settings["client_id"],
                    client_credential=self.settings["client_secret"].reveal(),
                    authority=authority,
                    timeout=self.timeout,
                    instance_discovery=False,
                )
            return self._app

    def forget_token(self) -> None:
        """After Graph refused a token: drop the application and its cache, so the next call gets a new token."""
        with self._lock:
            self._app = None

    def token(self) -> str:
        try:
            result = self._application().acquire_token_for_client(scopes=[GRAPH_SCOPE])
        except ValueError:  # msal: the tenant's OpenID metadata could not be read (wrong tenant id, or no network)
            raise GraphUnavailable(SendResult("retry", reason="authority metadata unavailable (check tenant_id)"))
        except requests.RequestException:
            raise GraphUnavailable(SendResult("retry", reason="token endpoint unreachable"))
        if "access_token" in result:
            return result["access_token"]
        error = str(result.get("error") or "unknown_error")[:60]
        if error in CONFIGURATION_ERRORS:
            log.error("tenant_id=%s: the token endpoint refused the app registration (%s)",
                      self.settings["tenant_id"], error)
            raise GraphUnavailable(SendResult("dead", reason=f"token refused ({error})"))
        raise GraphUnavailable(SendResult("retry", reason=f"token not issued ({error})"))

    def call(self, method: str, path: str, *, json: Any = None, headers: Mapping[str, str] | None = None,
             params: Mapping[str, str] | None = None) -> requests.Response:
        """One request with a bearer token; any status comes back, a failed connection raises ``GraphUnavailable``."""
        all_headers = {"Authorization": f"Bearer {self.token()}", **(headers or {})}
        try:
            response = self.session.request(method, self.url(path), json=json, headers=all_headers, params=params,
                                            timeout=self.timeout)
        except requests.Timeout:
            raise GraphUnavailable(SendResult("retry", reason="timeout"))
        except requests.ConnectionError:
            raise GraphUnavailable(SendResult("retry", reason="connection failed"))
        if response.status_code == 401:
            self.forget_token()
        return response
