"""Who holds a role: the platform first (when its adapter can tell), the tenant's configured directory after."""
from __future__ import annotations

import logging

from connector.config.schema import Tenant
from connector.engine.runtime import Runtime

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
    return tenant.directory.lookup(role, group_id)


class People:
    """Who holds each role for one pupil (``rules.context.People``): resolved the first time a rule asks, then
    remembered for the job, so a pupil no rule writes about costs no lookup at all."""

    def __init__(self, rt: Runtime, tenant: Tenant, adapter: str | None, group_id: str | None,
                 student_id: str | None):
        self.rt, self.tenant, self.adapter, self.group_id, self.student_id = rt, tenant, adapter, group_id, student_id
        self._found: dict[str, str | None] = {}

    def get(self, role: str) -> str | None:
        if role not in self._found:
            self._found[role] = resolve(self.rt, self.tenant, self.adapter, role, self.group_id, self.student_id)
        return self._found[role]
