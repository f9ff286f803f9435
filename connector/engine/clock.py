"""Where "now" comes from.

Rules and deadlines never call ``datetime.now()`` themselves: the worker, the scheduler and the web app are handed
a clock, so a test can move time forward through a school week without sleeping, and so every decision is made
against one instant per job.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FixedClock:
    """A clock that stands still until told to move; for tests and for replaying history."""

    def __init__(self, now: datetime):
        if now.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = now

    def now(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = now

    def advance(self, **delta) -> datetime:
        self._now = self._now + timedelta(**delta)
        return self._now
