"""Talking to Canvas's REST API: bearer token, masquerading, ``Link`` pagination, throttling and error shapes.

Canvas throttles per token with a leaky bucket (default high-water mark 600, leaking 10 units a second). A throttled
request is answered ``403`` with the plain-text body ``403 Forbidden (Rate Limit Exceeded)``; every answer carries
``X-Rate-Limit-Remaining``. Both make this client pause the whole adapter for a while instead of pressing on.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlsplit

import requests

from connector.adapters.base import SendResult
from connector.adapters.http import classify_response, post_json, retry_after_seconds

log = logging.getLogger(__name__)

RATE_LIMITED = "Rate Limit Exceeded"
LEAK_PER_SECOND = 10.0  # Canvas's default request_throttle.outflow
PAGE_SIZE = 100
MAX_PAGES = 50  # a guard against a paging loop, far beyond a class's roster or a day's planner notes


class Throttled(Exception):
    """Canvas asked us to slow down, or we chose to before it had to; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: float, status: int | None = None):
        super().__init__(f"Canvas rate limit: wait {retry_after:.0f}s")
        self.retry_after = retry_after
        self.status = status  # 403 when Canvas refused the call, None when we paused before it had to


class CanvasError(Exception):
    """A call Canvas refused or could not answer. ``result`` is how ``send`` reports it (retry or dead letter);
    ``reason`` names the status and Canvas's own error message, never a token or a body we sent."""

    def __init__(self, result: SendResult):
        super().__init__(result.reason)
        self.result = result
        self.status = result.status


def error_message(response: requests.Response) -> str:
    """Canvas's message from any of its error shapes: ``{"errors": [{"message"}]}``, ``{"errors": "text"}``,
    ``{"message"}`` and ``[{"attribute", "message"}]``; short, because it ends up in a dead letter."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:120]
    messages: list[str] = []
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, str):
            messages.append(errors)
        elif isinstance(errors, list):
            messages += [str(e.get("message")) for e in errors if isinstance(e, dict) and e.get("message")]
        elif isinstance(errors, dict):
            messages += [f"{field} invalid" for field in sorted(errors)]
        if isinstance(data.get("message"), str):
            messages.append(data["message"])
    elif isinstance(data, list):
        messages += [f"{e.get('attribute')}: {e.get('message')}" for e in data if isinstance(e, dict)]
    return "; ".join(messages)[:120]


def is_rate_limited(response: requests.Response) -> bool:
    return response.status_code == 403 and RATE_LIMITED in response.text[:200]


class CanvasApi:
    def __init__(self, base_url: str, token: Callable[[], str], session: requests.Session, timeout: float,
                 throttle_wait: float, rate_limit_floor: float, clock: Callable[[], float] = time.monotonic):
        self.base_url = base_url.rstrip("/")
        self._origin = urlsplit(self.base_url)[:2]
        self._token = token
        self.session = session
        self.timeout = timeout
        self.throttle_wait = throttle_wait
        self.rate_limit_floor = rate_limit_floor
        self.clock = clock
        self.paused_until = 0.0

    # --- one request -------------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token()}", "Accept": "application/json"}

    def _before(self) -> None:
        wait = self.paused_until - self.clock()
        if wait > 0:
            raise Throttled(wait)

    def _after(self, response: requests.Response) -> None:
        """Pause on a throttled answer, and before the bucket runs dry when the remaining quota is below the floor."""
        if is_rate_limited(response):
            wait = retry_after_seconds(response.headers.get("Retry-After")) or self.throttle_wait
            self.paused_until = max(self.paused_until, self.clock() + wait)
            log.warning("Canvas rate limit exceeded at %s; pausing %.0fs", self.base_url, wait)
            raise Throttled(wait, status=403)
        try:
            remaining = float(response.headers.get("X-Rate-Limit-Remaining", "nan"))
        except ValueError:
            return
        if remaining < self.rate_limit_floor:
            wait = max((self.rate_limit_floor - remaining) / LEAK_PER_SECOND, 1.0)
            self.paused_until = max(self.paused_until, self.clock() + wait)
            log.info("Canvas rate limit nearly used (remaining %.0f); pausing %.0fs", remaining, wait)

    def _check(self, response: requests.Response) -> requests.Response:
        self._after(response)
        status = response.status_code
        if 200 <= status < 300:
            return response
        result = classify_response(response) if status != 409 else SendResult("dead", status=status)
        reason = f"Canvas HTTP {status}"
        message = error_message(response)
        if message:
            reason += f": {message}"
        raise CanvasError(SendResult(result.outcome, status=status, retry_after=result.retry_after, reason=reason))

    def _url(self, path_or_url: str) -> str:
        if path_or_url.startswith("https://") or path_or_url.startswith("http://"):
            if urlsplit(path_or_url)[:2] != self._origin:
                # Link headers are opaque, but the token only ever goes to the configured Canvas
                raise CanvasError(SendResult("dead", reason="Canvas pagination link points at another host"))
            return path_or_url
        return self.base_url + path_or_url

    @staticmethod
    def _json(response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:  # a proxy's or maintenance page's HTML: Canvas itself always answers JSON here
            raise CanvasError(SendResult("retry", status=response.status_code,
                                         reason=f"Canvas HTTP {response.status_code} answered no JSON")) from None

    def get(self, path_or_url: str, params: Mapping[str, Any] | None = None, as_user: str | None = None) -> Any:
        return self._json(self._get(path_or_url, params, as_user))

    def _get(self, path_or_url: str, params: Mapping[str, Any] | None = None,
             as_user: str | None = None) -> requests.Response:
        self._before()
        params = dict(params or {})
        if as_user:
            params["as_user_id"] = as_user
        try:
            response = self.session.get(self._url(path_or_url), params=params or None, headers=self._headers(),
                                        timeout=self.timeout, allow_redirects=False)
        except requests.Timeout:
            raise CanvasError(SendResult("retry", reason="Canvas timeout")) from None
        except requests.ConnectionError:
            raise CanvasError(SendResult("retry", reason="Canvas unreachable")) from None
        return self._check(response)

    def post(self, path: str, body: Mapping[str, Any], as_user: str | None = None) -> Any:
        self._before()
        url = self.base_url + path
        if as_user:
            url += f"?as_user_id={as_user}"
        response = post_json(self.session, url, body, self._headers(), self.timeout)
        if isinstance(response, SendResult):
            raise CanvasError(SendResult(response.outcome, reason=f"Canvas {response.reason}"))
        return self._json(self._check(response))

    # --- lists -------------------------------------------------------------------------------------------------

    def pages(self, path: str, params: Mapping[str, Any] | None = None,
              as_user: str | None = None) -> Iterator[list[dict[str, Any]]]:
        """Each page of a list, following ``Link: <...>; rel="next"`` until there is none (Canvas pages by 10 unless
        asked, and may cap ``per_page`` silently, so the header is the only truth)."""
        response = self._get(path, {"per_page": PAGE_SIZE, **(params or {})}, as_user)
        for _ in range(MAX_PAGES):
            data = self._json(response)
            yield data if isinstance(data, list) else []
            following = response.links.get("next", {}).get("url")
            if not following:
                return
            response = self._get(following)
        log.warning("Canvas list %s has more than %d pages; stopped there", path, MAX_PAGES)

    def all(self, path: str, params: Mapping[str, Any] | None = None,
            as_user: str | None = None) -> list[dict[str, Any]]:
        return [item for page in self.pages(path, params, as_user) for item in page if isinstance(item, dict)]
