"""Small time-bounded memories of what Graph said about people, so a busy day does not ask Graph the same thing
for every message (and a changed class teacher is seen within the TTL)."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

MAX_ENTRIES = 10_000
_MISSING = object()


class TtlCache:
    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl_seconds
        self.clock = clock
        self._entries: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, default: Any = _MISSING) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= self.clock():
                self._entries.pop(key, None)
                return default
            return entry[1]

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (self.clock() + self.ttl, value)

    def remember(self, key: Any, compute: Callable[[], Any]) -> Any:
        """The cached value, or ``compute()`` cached; an exception from ``compute`` is not remembered."""
        value = self.get(key)
        if value is _MISSING:
            value = compute()
            self.put(key, value)
        return value


ROLES = {"student": "student", "teacher": "staff", "faculty": "staff"}


def role_from_primary(primary_role: str | None) -> str:
    """The Education API's ``primaryRole`` as the role the rules read on a message's sender and recipients."""
    return ROLES.get(str(primary_role or "").lower(), "unknown")
