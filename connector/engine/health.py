"""What ``/readyz`` reports: each dependency of the web process, up or down, read through the store and RQ's API."""
from __future__ import annotations

from typing import Any

from connector.engine.runtime import Runtime
from connector.store import health, polls
from connector.store.connection import ping


def dependencies(rt: Runtime) -> dict[str, Any]:
    """``{"status": "ok"|"unavailable", "redis": "up"|"down", "queue": ..., "workers": n|None, "down": [...]}``.

    ``redis`` is a PING; ``queue`` is the RQ queue's length read (the door writes there); ``workers`` is RQ's
    ``Worker.count`` for the queue, ``None`` when it could not be read. Any failure is "down", never a 500.

    ``detail.adapters`` (only when there is one) names each ``<tenant>/<adapter>`` the platform refuses until an admin
    acts, with its reason code (``{"skole-a/teams": "protected_api_not_approved"}``). It does not fail readiness:
    the door still takes deliveries for every other adapter, and for that one once an admin has fixed it.

    ``detail.polls`` (only when there is one) names each polled ``<tenant>/<adapter>`` whose polls have failed for
    longer than its ``alert_after_intervals`` intervals: since when (RFC 3339, UTC) and the last failure's reason
    code (``{"skole-a/vigilo": {"failing_since": "...", "reason": "throttled"}}``). It does not fail readiness either.
    """
    from rq import Worker

    body: dict[str, Any] = {}
    try:
        ping(rt.redis)
        body["redis"] = "up"
    except Exception:
        body["redis"] = "down"
    body["queue"], body["workers"] = "down", None
    if body["redis"] == "up":  # the queue lives in that Redis: no second timeout when it is down
        try:
            refused = health.refused(rt.redis, rt.keys)
            if refused:
                body["detail"] = {"adapters": refused}
            failing = failing_polls(rt)
            if failing:
                body.setdefault("detail", {})["polls"] = failing
        except Exception:
            pass
        try:
            rt.queue.count
            body["queue"] = "up"
            body["workers"] = Worker.count(connection=rt.redis, queue=rt.queue)
        except Exception:
            pass
    down = [name for name in ("redis", "queue") if body[name] == "down"]
    body["status"] = "unavailable" if down else "ok"
    if down:
        body["down"] = down
    return body


def failing_polls(rt: Runtime, now: float | None = None) -> dict[str, dict[str, str]]:
    """The polled adapters whose failing spell is longer than ``alert_after`` intervals (``store.polls``)."""
    import time
    from datetime import datetime, timezone

    now = time.time() if now is None else now
    found = {}
    for where, spell in polls.failing_polls(rt.redis, rt.keys).items():
        if now - spell["since"] > spell["alert_after"] * spell["interval"]:
            since = datetime.fromtimestamp(spell["since"], tz=timezone.utc).isoformat(timespec="seconds")
            found[where] = {"failing_since": since, "reason": spell["reason"]}
    return found


def queue_state(rt: Runtime) -> dict[str, int]:
    """For the admin page: jobs waiting in the queue and workers alive on it (RQ's API)."""
    from rq import Worker

    return {"depth": rt.queue.count, "workers": Worker.count(connection=rt.redis, queue=rt.queue)}
