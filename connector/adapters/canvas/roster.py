"""Who is who in a Canvas course or section, from its enrollments, cached for a while.

One roster answers both questions the connector asks Canvas: "who is the contact teacher of this group?" (the
directory lookup) and "what is the sender of this message to the pupils in it?" (a guardian is an observer whose
enrollment names the pupil in ``associated_user_id``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from connector.adapters.canvas.api import CanvasApi

ACTIVE = ("active",)
UNKNOWN_ROLE = "other"


@dataclass(frozen=True)
class Member:
    enrollment_id: int
    user_id: str
    role: str  # Canvas's enrollment role: a base type (TeacherEnrollment) or a custom course role's name
    observes: str | None  # the pupil an observer enrollment is for


def _member(enrollment: Mapping[str, Any]) -> Member | None:
    user = enrollment.get("user_id")
    if user is None:
        return None
    observed = enrollment.get("associated_user_id")
    return Member(
        enrollment_id=int(enrollment.get("id") or 0),
        user_id=str(user),
        role=str(enrollment.get("role") or enrollment.get("type") or ""),
        observes=str(observed) if observed is not None else None,
    )


class Roster:
    def __init__(self, members: list[Member], roles: Mapping[str, list[str]]):
        self.members = sorted(members, key=lambda m: m.enrollment_id)
        self.roles = roles

    def holder(self, role: str) -> str | None:
        """The user holding ``role``: the earliest enrollment with one of its Canvas roles (a course's first teacher
        is, in practice, the class's own; a school with co-teachers names a custom role to be exact)."""
        wanted = set(self.roles.get(role, ()))
        return next((m.user_id for m in self.members if m.role in wanted), None)

    def role_of(self, user_id: str) -> str:
        """The first internal role (in the configured order) that any of the user's enrollments maps to."""
        held = {m.role for m in self.members if m.user_id == user_id}
        for role, canvas_roles in self.roles.items():
            if held & set(canvas_roles):
                return role
        return UNKNOWN_ROLE

    def pupils_of(self, user_id: str) -> list[str]:
        """The pupils a user stands for: those they observe, or themselves when they are enrolled as a pupil."""
        students = set(self.roles.get("student", ()))
        found = {m.observes for m in self.members if m.user_id == user_id and m.observes}
        if any(m.user_id == user_id and m.role in students for m in self.members):
            found.add(user_id)
        return sorted(found)


class RosterCache:
    """Rosters by (``course`` or ``section``, id), each kept ``ttl`` seconds in this process."""

    def __init__(self, api: CanvasApi, roles: Mapping[str, list[str]], ttl: float,
                 clock: Callable[[], float] = time.monotonic):
        self.api = api
        self.roles = roles
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[float, Roster]] = {}

    def get(self, kind: str, context_id: str) -> Roster:
        key = (kind, context_id)
        cached = self._cache.get(key)
        if cached and cached[0] > self.clock():
            return cached[1]
        path = f"/api/v1/{'courses' if kind == 'course' else 'sections'}/{context_id}/enrollments"
        enrollments = self.api.all(path, {"state[]": list(ACTIVE)})
        roster = Roster([m for m in map(_member, enrollments) if m], self.roles)
        self._cache[key] = (self.clock() + self.ttl, roster)
        return roster
