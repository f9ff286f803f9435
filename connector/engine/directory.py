"""Who holds a role: the platform first (when its adapter can tell), the tenant's configured directory after, and last
a polled platform's roster (a group's contact teacher, from OneRoster: ``store.polls``)."""
from __future__ import annotations

import logging

from connector.config.schema import Tenant
from connector.engine.runtime import Runtime
from connector.store.polls import roster_values
from connector.store.pupils import group_of

log = logging.getLogger(__name__)


def resolve(
    rt: Runtime, tenant: Tenant, adapter: str | None, role: str, group_id: str | None = None,
    student_id: str | None = None,
) -> str | None:
    if adapter:
        try:
            user = rt.adapter(tenant.id, adapter).lookup_role(role, group_id=group_id, student_id=student_id)
        except Exception:  # a platform lookup failing must not stop the rule: the configuration still answers
            log.warning("tenant=%s adapter=%s: role lookup for %s failed; using the configured directory",
                        tenant.id, adapter, role, exc_info=True)
            user = None
        if user:
            return user
    return tenant.directory.lookup(role, group_id) or from_roster(rt, tenant, role, group_id)


def from_roster(rt: Runtime, tenant: Tenant, role: str, group_id: str | None) -> str | None:
    """A group's contact teacher as a polled platform's roster said (``store.polls`` roster cache), where the
    configuration has no answer: a school need not type its classes into YAML. Other roles are not in a roster."""
    if role != "contact_teacher" or not group_id:
        return None
    for name in _roster_adapters(tenant):
        found = roster_values(rt.redis, rt.keys, tenant.id, name, [f"ct:{group_id}"])[0]
        if found:
            return found
    return None


def _roster_adapters(tenant: Tenant) -> list[str]:
    from connector.adapters import adapter_types

    types = adapter_types()
    return [name for name, adapter in tenant.adapters.items() if getattr(types[adapter.type], "polled", False)]


LOOK_UP = object()  # the pupil's group is not known yet: read it from the store the first time a role is asked


class People:
    """Who holds each role for one pupil (``rules.context.People``): resolved the first time a rule asks, then
    remembered for the job, so a pupil no rule writes about costs no lookup at all. ``group_id`` may be
    :data:`LOOK_UP` (a case's pupil, whose group the job has not read): it is then read once, when first needed."""

    def __init__(self, rt: Runtime, tenant: Tenant, adapter: str | None, group_id, student_id: str | None):
        self.rt, self.tenant, self.adapter, self.group_id, self.student_id = rt, tenant, adapter, group_id, student_id
        self._found: dict[str, str | None] = {}

    def get(self, role: str) -> str | None:
        if role not in self._found:
            if self.group_id is LOOK_UP:
                self.group_id = group_of(self.rt.redis, self.rt.keys, self.tenant.id, self.student_id)
            self._found[role] = resolve(self.rt, self.tenant, self.adapter, role, self.group_id, self.student_id)
        return self._found[role]
