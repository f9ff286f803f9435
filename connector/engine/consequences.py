"""What handling one delivery or one deadline decided, gathered so it is written in one Redis transaction.

The pupils the job read were checked out (``store.pupils.Checkout``): the transaction runs on the connection that
watches them, so it writes nothing if one of them changed meanwhile (``Conflict``), and the caller judges again.
"""
from __future__ import annotations

import logging
from datetime import datetime, time
from typing import Any, Iterable

from connector.contract.actions import Action
from connector.contract.terms import OSLO
from connector.engine import outbox
from connector.engine.runtime import Runtime
from connector.rules.effects import Cancel, Schedule
from connector.rules.history import HISTORY, retention_end
from connector.store import due
from connector.store.pupils import Checkout

log = logging.getLogger(__name__)


class Consequences:
    """Deadlines to set or drop and actions to send, for one tenant and the adapter that will write them.

    A later effect on the same deadline wins over an earlier one, so a register that first marks a pupil absent
    and then present in the same delivery ends with the watch dropped.
    """

    def __init__(self, tenant: str, adapter: str, pupils: Checkout | None = None):
        self.tenant = tenant
        self.adapter = adapter
        self.pupils = pupils
        self.schedules: dict[str, Schedule] = {}
        self.cancels: set[str] = set()
        self.actions: list[Action] = []
        self.writes: list = []  # callables taking a pipeline: state changes that must commit with the rest
        self.releases: list = []  # callables giving back what the job holds (locks) if it ends without committing
        self.committed = False
        # Recorded as *would write*, not sent: the tenant is in shadow mode, or this follows from a deadline set while
        # it was (``routing.fire_deadline``): going live sends nothing that a shadow decision set in motion.
        self.shadow = False
        self.routine = False  # calendar routines are the calendar's, not a shadow decision's: never marked

    @classmethod
    def start(cls, rt: Runtime, tenant: str, adapter: str) -> "Consequences":
        """A job's (or one attempt's) consequences, with its own checkout of the pupils it will read."""
        return cls(tenant, adapter, Checkout(rt.redis, rt.keys, tenant, expire_at=kept_until(rt, tenant)))

    def add(self, effects: Iterable[Any]) -> None:
        for effect in effects:
            if isinstance(effect, Schedule):
                self.cancels.discard(effect.id)
                self.schedules[effect.id] = effect
            elif isinstance(effect, Cancel):
                self.schedules.pop(effect.id, None)
                self.cancels.add(effect.id)
            elif isinstance(effect, Action):
                self.actions.append(effect)
            else:
                raise TypeError(f"not an effect: {effect!r}")

    def write(self, rt: Runtime, nx: bool = False) -> list[Action]:
        """Commit everything at once; returns the actions, which the caller then tries to send (none in shadow mode:
        they were recorded as *would write*).

        ``nx``: set deadlines only where none is set yet (recurring routines must not move a leased one).
        """
        keys, tenant = rt.keys, self.tenant
        shadow = self.shadow or rt.tenant(tenant).shadow
        marked = shadow and not self.routine
        pupils = self.pupils or Checkout(rt.redis, keys, tenant)
        if not (self.schedules or self.cancels or self.actions or self.writes or pupils.pending):
            pupils.close()
            self.committed = True
            return []
        with pupils.transaction() as pipe:
            for write in self.writes:
                write(pipe)
            for schedule in self.schedules.values():
                payload = dict(schedule.payload, adapter=self.adapter, **({"shadow": 1} if marked else {}))
                due.set_deadline(pipe, keys, tenant, schedule.id, payload, schedule.due.timestamp(), nx=nx)
            for deadline_id in self.cancels:
                due.drop_deadline(pipe, keys, tenant, deadline_id)
            writer = rt.tenant(tenant).actions_adapter or self.adapter
            outbox.add(pipe, rt, tenant, writer, self.actions, rt.clock.now().timestamp(), shadow=shadow)
            pupils.commit(pipe)
        self.committed = True
        if shadow:
            outbox.recorded(self.actions)
            return []
        return self.actions

    def release(self) -> None:
        """Call in a ``finally`` around the handlers and :meth:`write`: if the job ends without committing (a handler
        raised, the commit failed, or a pupil changed meanwhile), what it holds is given back now, not when the locks
        expire, so the retry and every other job can go on at once. After a commit it only gives back the
        connection: the transaction gave everything else back."""
        if self.pupils is not None:
            self.pupils.close()
        if self.committed:
            return
        releases, self.releases = self.releases, []
        for release in releases:
            try:
                release()
            except Exception:  # never hide the error that ended the job; the locks still expire on their own
                log.warning("tenant=%s: could not release what a failed job held", self.tenant, exc_info=True)


def kept_until(rt: Runtime, tenant_id: str) -> int:
    """When what a job writes today about a pupil or a case expires (epoch seconds, the start of that day in
    Oslo): the school's retention (``rules.history.retention_end``, the plan's ``history``)."""
    tenant = rt.tenant(tenant_id)
    settings = tenant.plan[HISTORY]
    end = retention_end(tenant.calendar.local_date(rt.clock.now()), tenant.calendar.years,
                        settings["retention_school_years"], settings["retention_margin_days"])
    return int(datetime.combine(end, time(), OSLO).timestamp())
