"""Failed sign-ins to the admin page's local account, so a password cannot be guessed at speed.

``keys.sign_in_failures``: string, a count of failed attempts, expiring :data:`WINDOW_SECONDS` after the first of
them. Past :data:`LIMIT` the local account refuses every attempt until the window ends (the school owner's own
sign-in is not affected). Nothing about who tried is kept: no address, no user name.
"""
from __future__ import annotations

from redis import Redis

from connector.store.keys import Keys

LIMIT = 10
WINDOW_SECONDS = 15 * 60


def locked(redis: Redis, keys: Keys) -> bool:
    count = redis.get(keys.sign_in_failures)
    return count is not None and int(count) >= LIMIT


def failed(redis: Redis, keys: Keys) -> int:
    """Count one failure; the window starts at the first."""
    with redis.pipeline() as pipe:
        pipe.incr(keys.sign_in_failures)
        pipe.expire(keys.sign_in_failures, WINDOW_SECONDS, nx=True)
        count, _ = pipe.execute()
    return int(count)


def succeeded(redis: Redis, keys: Keys) -> None:
    redis.delete(keys.sign_in_failures)
