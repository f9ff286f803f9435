"""How every adapter reads a platform's HTTP answer: one place for what is done, retried or dead."""
from __future__ import annotations

import email.utils
import time
from typing import Any, Mapping

import requests

from connector.adapters.base import SendResult

MAX_RETRY_AFTER = 6 * 3600.0


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3); ``None`` if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)  # RFC 9110 says integer seconds; Microsoft Graph sends decimals ("2.128")
    except ValueError:
        seconds = None
    if seconds is not None:
        return min(max(seconds, 0.0), MAX_RETRY_AFTER) if seconds == seconds else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    delta = when.timestamp() - (time.time() if now is None else now)
    return min(max(delta, 0.0), MAX_RETRY_AFTER)


def post(session: requests.Session, url: str, timeout: float, **kwargs: Any) -> requests.Response | SendResult:
    """POST (``json=``, or ``data=`` for a form) and return the response, or a ``retry`` result for a timeout or a
    connection that failed: the one place where a platform that does not answer becomes "try again later"."""
    try:
        return session.post(url, timeout=timeout, **kwargs)
    except requests.Timeout:
        return SendResult("retry", reason="timeout")
    except requests.ConnectionError:
        return SendResult("retry", reason="connection failed")


def post_json(
    session: requests.Session, url: str, body: Any, headers: Mapping[str, str], timeout: float
) -> requests.Response | SendResult:
    return post(session, url, timeout, json=body, headers=dict(headers))


def classify_response(response: requests.Response) -> SendResult:
    """2xx and 409 are done; 429/503 wait for ``Retry-After``; other 5xx retry; other 4xx are dead letters."""
    status = response.status_code
    if 200 <= status < 300 or status == 409:
        return SendResult("done", status=status)
    if status in (429, 503):
        return SendResult(
            "retry", status=status, retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            reason=f"HTTP {status}",
        )
    if status >= 500:
        return SendResult("retry", status=status, reason=f"HTTP {status}")
    return SendResult("dead", status=status, reason=f"HTTP {status}", error_body=error_body(response))


ERROR_BODY_CHARS = 1000


def error_body(response: requests.Response) -> str:
    """The platform's answer to a refused write, as an admin needs it to act ("assignee not found"), cut at
    :data:`ERROR_BODY_CHARS`: it describes our request, which carries ids and catalogue texts, never a person's."""
    try:
        text = response.text
    except Exception:  # an undecodable body is no reason to lose the dead letter
        return ""
    return text[:ERROR_BODY_CHARS]
