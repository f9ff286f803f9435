"""What ``/readyz`` reports: each dependency of the web process, up or down, read through the store and RQ's API."""
from __future__ import annotations

from typing import Any

from connector.engine.runtime import Runtime
from connector.store.connection import ping


def dependencies(rt: Runtime) -> dict[str, Any]:
    """``{"status": "ok"|"unavailable", "redis": "up"|"down", "queue": ..., "workers": n|None, "down": [...]}``.

    ``redis`` is a PING; ``queue`` is the RQ queue's length read (the door writes there); ``workers`` is RQ's
    ``Worker.count`` for the queue, ``None`` when it could not be read. Any failure is "down", never a 500.
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
