"""What handling one delivery or one deadline decided, gathered so it is written in one Redis transaction."""
from __future__ import annotations

import json
from typing import Any, Iterable

from connector.engine import outbox
from connector.contract.actions import Action
from connector.rules.effects import Cancel, Schedule
from connector.engine.runtime import Runtime


def deadline_member(tenant: str, deadline_id: str) -> str:
    return f"{tenant}|deadline|{deadline_id}"


class Consequences:
    """Deadlines to set or drop and actions to send, for one tenant and the adapter that will write them.

    A later effect on the same deadline wins over an earlier one, so a register that first marks a pupil absent
    and then present in the same delivery ends with the watch dropped.
    """

    def __init__(self, tenant: str, adapter: str):
        self.tenant = tenant
        self.adapter = adapter
        self.schedules: dict[str, Schedule] = {}
        self.cancels: set[str] = set()
        self.actions: list[Action] = []
        self.writes: list = []  # callables taking a pipeline: state changes that must commit with the rest

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
        """Commit everything at once; returns the actions, which the caller then tries to send.

        ``nx``: set deadlines only where none is set yet (recurring routines must not move a leased one).
        """
        if not (self.schedules or self.cancels or self.actions or self.writes):
            return []
        keys, tenant = rt.keys, self.tenant
        with rt.redis.pipeline(transaction=True) as pipe:
            for write in self.writes:
                write(pipe)
            for schedule in self.schedules.values():
                payload = dict(schedule.payload, adapter=self.adapter)
                if nx:
                    pipe.hsetnx(keys.deadlines(tenant), schedule.id, json.dumps(payload))
                else:
                    pipe.hset(keys.deadlines(tenant), schedule.id, json.dumps(payload))
                pipe.zadd(keys.due, {deadline_member(tenant, schedule.id): schedule.due.timestamp()}, nx=nx)
            for deadline_id in self.cancels:
                pipe.hdel(keys.deadlines(tenant), deadline_id)
                pipe.zrem(keys.due, deadline_member(tenant, deadline_id))
            writer = rt.tenant(tenant).actions_adapter or self.adapter
            outbox.add(pipe, rt, tenant, writer, self.actions, rt.clock.now().timestamp())
            pipe.execute()
        return self.actions
