"""What the connector counts for an admin.

``keys.ignored``: hash event type -> the number of well-formed deliveries of a type this version does not handle.
A type is named as the platform sent it, which may hold a lone surrogate: it is counted under its UTF-8 bytes, such
characters escaped (``backslashreplace``).
"""
from __future__ import annotations

from redis import Redis

from connector.store.keys import Keys


def count_ignored(redis: Redis, keys: Keys, event_type: str) -> None:
    redis.hincrby(keys.ignored, event_type.encode("utf-8", "backslashreplace"), 1)
