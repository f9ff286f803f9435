"""The directory a OneRoster roster can tell: each pupil's base group, each group's contact teacher, each pupil's
guardians. Ids only; names, birth dates and the rest of a user are never kept.

* The **group** is the class the pupil is enrolled in whose ``classType`` is one of ``group_class_types``
  (``homeroom`` by default: the basisgruppe / kontaktlærergruppe). A scheduled class (a subject) is not a group.
* The **contact teacher** is the one teacher enrolled in that class with ``primary: true`` (OneRoster: "the primary
  teacher of the class"), when there is exactly one; with none or several the configuration decides. Whether the
  Norwegian Profile spells kontaktlærer some other way (an extended enrollment role) could not be verified, so
  ``contact_teacher_from: configuration`` turns this off.
* A pupil's **guardians** are the user's ``agents`` (OnEdHub: the legal guardians, role ``ext:primaryGuardian``).
* A pupil's **school** is the enrollment's ``school`` (else its class's): with ``schools`` set, only those schools'
  pupils, groups and teachers are kept.

What the profile cannot tell (principal, social teacher, FAU) stays in the tenant's configured directory.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping

ACTIVE = "active"


def _ref(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("sourcedId"), str):
        return value["sourcedId"]
    return None


def _active(record: Mapping[str, Any]) -> bool:
    return str(record.get("status", ACTIVE)).lower() != "tobedeleted"


def _roles(user: Mapping[str, Any]) -> set[str]:
    found = {str(user.get("role", "")).lower()}
    for role in user.get("roles") or ():
        if isinstance(role, dict):
            found.add(str(role.get("role", "")).lower())
    return found - {""}


def entries(classes: Iterable[Mapping], enrollments: Iterable[Mapping], users: Iterable[Mapping],
            settings: Mapping[str, Any]) -> dict[str, str]:
    """The roster cache's fields (``store.polls``): ``g:<pupil>``, ``ct:<group>``, ``gd:<pupil>``, and ``s:<pupil>``
    (the pupil's school, for a tenant that follows some schools of the org only)."""
    group_types = {t.lower() for t in settings["group_class_types"]}
    schools = set(settings.get("schools") or ())
    classes = [c for c in classes if _active(c) and isinstance(c.get("sourcedId"), str)]
    school_of = {c["sourcedId"]: _ref(c.get("school")) for c in classes}
    groups = {c["sourcedId"] for c in classes if str(c.get("classType", "")).lower() in group_types
              and (not schools or school_of[c["sourcedId"]] in schools)}
    found: dict[str, str] = {}
    primary: dict[str, list[str]] = defaultdict(list)
    for enrollment in enrollments:
        if not _active(enrollment):
            continue
        user, group = _ref(enrollment.get("user")), _ref(enrollment.get("class"))
        role = str(enrollment.get("role", "")).lower()
        school = _ref(enrollment.get("school")) or school_of.get(group)
        if user and role == "student" and school and (not schools or school in schools):
            found[f"s:{user}"] = school
        if not user or group not in groups:
            continue
        if role == "student":
            found[f"g:{user}"] = group
        elif role == "teacher" and enrollment.get("primary") is True:
            primary[group].append(user)
    if settings["contact_teacher_from"] == "primary_teacher":
        for group, teachers in primary.items():
            if len(set(teachers)) == 1:
                found[f"ct:{group}"] = teachers[0]
    for user in users:
        if not _active(user) or "student" not in _roles(user) or not isinstance(user.get("sourcedId"), str):
            continue
        agents = sorted({ref for ref in (_ref(a) for a in user.get("agents") or ()) if ref})
        if agents:
            found[f"gd:{user['sourcedId']}"] = ",".join(agents)
    return found
