"""Who holds a role in a Moodle course: the course's (or the group's) enrolled users with the mapped role shortnames.

``core_enrol_get_enrolled_users`` with ``userfields=id,roles`` answers ids, display names and role shortnames; only
ids and shortnames are kept. Lookups are cached per course and group for ``lookup_ttl_seconds``: a rule that fires
for thirty pupils of one class asks Moodle once. ``None`` sends the caller to the tenant's configured directory.
"""
from __future__ import annotations

import time
from typing import Callable, Mapping

from connector.adapters.moodle.webservice import WebService

Members = list[tuple[int, frozenset[str]]]  # (user id, role shortnames), by user id


def parse_group(group_id: str | None) -> tuple[int, int] | None:
    """``"7"`` -> (7, 0); ``"7:12"`` -> (7, 12); anything else (a group id from another source) -> ``None``."""
    if not group_id:
        return None
    course, _, group = group_id.partition(":")
    if not course.isdigit() or (group and not group.isdigit()):
        return None
    return int(course), int(group or 0)


class RoleDirectory:
    def __init__(self, ws: WebService, roles: Mapping[str, list[str]], ttl: float,
                 clock: Callable[[], float] = time.monotonic):
        self.ws = ws
        self.roles = {role: frozenset(shortnames) for role, shortnames in roles.items()}
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[tuple[int, int], tuple[float, Members]] = {}

    def lookup(self, role: str, group_id: str | None) -> str | None:
        """The first member (lowest user id) holding one of the role's shortnames: in the group, else the course."""
        wanted = self.roles.get(role)
        where = parse_group(group_id)
        if not wanted or where is None:
            return None
        course, group = where
        scopes = [(course, group), (course, 0)] if group else [(course, 0)]
        for scope in scopes:
            for user_id, shortnames in self.members(*scope):
                if shortnames & wanted:
                    return str(user_id)
        return None

    def members(self, course: int, group: int) -> Members:
        now = self.clock()
        cached = self._cache.get((course, group))
        if cached and cached[0] > now:
            return cached[1]
        options = [{"name": "userfields", "value": "id,roles"}, {"name": "sortby", "value": "id"}]
        if group:
            options.append({"name": "groupid", "value": group})
        users = self.ws.call("core_enrol_get_enrolled_users", courseid=course, options=options)
        members = sorted(
            (int(user["id"]), frozenset(str(r.get("shortname")) for r in user.get("roles") or []))
            for user in users or [] if isinstance(user, Mapping) and user.get("id")
        )
        self._cache[(course, group)] = (now + self.ttl, members)
        return members
