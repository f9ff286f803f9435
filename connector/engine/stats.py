"""What the connector counts for an admin: today, the event types platforms send that this version does not handle.

The door counts them (never their content); the store keeps the counts (``store.stats``).
"""
from __future__ import annotations

from connector.engine.runtime import Runtime
from connector.store import stats as stored


def count_ignored(rt: Runtime, event_type: str) -> None:
    stored.count_ignored(rt.redis, rt.keys, event_type)
