"""Moodle's REST web services: ``POST /webservice/rest/server.php`` with ``wstoken``, ``wsfunction`` and
``moodlewsrestformat=json``, parameters as PHP-style form fields (``notes[0][userid]=5``).

Moodle answers a failed call with HTTP 200 and ``{"exception", "errorcode", "message"}``, so a status code alone
says nothing: every answer is read for that key. The token travels in the form body, never in the URL, so it cannot
end up in a proxy's access log or in an exception message that quotes the URL.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import requests

from connector.adapters.base import SendResult
from connector.adapters.http import classify_response, post
from connector.config.secrets import SecretRef

REST_PATH = "/webservice/rest/server.php"

# Errors that say "not now" rather than "not like this": the site is in maintenance mode or its database failed.
# Every other Moodle exception (a bad token, a function missing from the service, a capability the web-service user
# lacks, a bad parameter) needs an admin, so retrying it only delays the dead letter that tells them.
RETRYABLE_ERRORCODES = frozenset({"sitemaintenance", "dmlreadexception", "dmlwriteexception", "dbconnectionfailed"})


class MoodleError(Exception):
    """A call that did not give an answer to use. ``reason`` names the function and Moodle's error code, never the
    token, a parameter value or Moodle's message (which can quote a user's name)."""

    def __init__(self, outcome: str, reason: str, status: int | None = None, retry_after: float | None = None,
                 errorcode: str | None = None):
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.errorcode = errorcode

    def result(self) -> SendResult:
        return SendResult(self.outcome, status=self.status, retry_after=self.retry_after, reason=self.reason)


def form_fields(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested parameters as Moodle reads them: ``{"notes": [{"userid": 5}]}`` -> ``[("notes[0][userid]", "5")]``."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        pairs.extend(_value_fields(name, value))
    return pairs


def _value_fields(name: str, value: Any) -> Iterable[tuple[str, str]]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return form_fields(value, name)
    if isinstance(value, (list, tuple)):
        return form_fields({str(i): item for i, item in enumerate(value)}, name)
    if isinstance(value, bool):
        return [(name, "1" if value else "0")]
    return [(name, str(value))]


class WebService:
    def __init__(self, session: requests.Session, base_url: str, token: SecretRef, timeout: float):
        self.session = session
        self.url = base_url.rstrip("/") + REST_PATH
        self.token = token
        self.timeout = timeout

    def call(self, function: str, **params: Any) -> Any:
        """The decoded answer of one web-service function, or ``MoodleError`` saying whether to retry."""
        query = {"wsfunction": function, "moodlewsrestformat": "json"}
        body = [("wstoken", self.token.reveal()), *form_fields(params)]
        response = post(self.session, self.url, self.timeout, params=query, data=body)
        if isinstance(response, SendResult):
            raise MoodleError("retry", f"{function}: {response.reason}")
        if not 200 <= response.status_code < 300:
            verdict = classify_response(response)
            outcome = "dead" if verdict.outcome == "done" else verdict.outcome  # a 409 means nothing to Moodle
            raise MoodleError(outcome, f"{function}: HTTP {response.status_code}", response.status_code,
                              verdict.retry_after)
        try:
            answer = response.json()
        except ValueError:  # an HTML maintenance or proxy page, or a base_url that is not Moodle
            raise MoodleError("retry", f"{function}: answer is not JSON", response.status_code) from None
        if isinstance(answer, dict) and "exception" in answer:
            errorcode = str(answer.get("errorcode") or "")
            outcome = "retry" if errorcode in RETRYABLE_ERRORCODES else "dead"
            reason = f"{function}: Moodle {answer.get('exception')} {errorcode}".rstrip()
            raise MoodleError(outcome, reason, response.status_code, errorcode=errorcode)
        return answer
