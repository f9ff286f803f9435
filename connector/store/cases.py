"""Guardians' cases as Redis holds them, and how a job holds a case while it decides what follows.

=========================================  ===================================================================
``keys.case(tenant, case id)``             string: the case as compact JSON (ids, dates, codes; never a message's
                                           text). What it means is the engine's (``engine.cases``, the rules);
                                           the store reads only its ``id``, ``status`` and ``pupils``
``keys.pupil_cases(tenant, pupil)``        set of the pupil's *open* case ids, written with the case: the id is
                                           added while the case's status is ``open`` and removed once it is not
``keys.case_lock(tenant, case id)``        string: the token of the job working on the case, expiring
``keys.pupil_intake_lock(tenant, pupil)``  string: the token of the job matching a guardian's message against the
                                           pupil's open cases, expiring
=========================================  ===================================================================

A case and its pupils' open sets expire at the checkout's ``expire_at`` (the school's retention, set again by every
write), so a case nobody touches any more goes with the rest of what is kept about its pupils.

**Locks, and why.** A case is read, changed as a whole and written back; two jobs changing one case (a task update
and a deadline, say) would each write over the other's change. So a job takes the case's lock before it reads the
case (:meth:`Checkout.case`), and keeps it until the job's transaction writes the case and gives the lock back in
the same ``MULTI``/``EXEC`` (:meth:`Checkout.write`). A job that waited :data:`LOCK_WAIT_SECONDS` in vain gives
back everything it holds and raises :class:`CaseBusy`: it is retried (deliveries by RQ, deadlines by the due
set's lease) rather than write over another job's change.

A guardian's message is matched against the pupil's open cases, and a new case's id comes from the message, so
two messages about one pupil never meet on a case lock: the pupil's intake lock is taken before its open cases are
read and given back by the commit that adds the new case to them (:meth:`Checkout.hold_pupils`). Intake locks are
taken in sorted order, so two jobs about overlapping pupils cannot hold one each and wait for the other.

A lock is a random token with an expiry (:data:`LOCK_TTL_MS`): a job that dies holding it blocks the others for
at most that long, and a job that ends without committing gives its locks back at once (:meth:`Checkout.release`).
Only the token's holder deletes a lock (:data:`RELEASE` compares first), so a job whose lock ran out cannot take
away the next holder's.
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Iterable

from redis import Redis

from connector.store.keys import Keys
from connector.store.scripts import Script

LOCK_TTL_MS = 60_000
LOCK_WAIT_SECONDS = 10.0
LOCK_POLL_SECONDS = 0.05

# KEYS[1]: a lock; ARGV[1]: the token of the job giving it back. Deletes the lock only if that job still holds it.
RELEASE = Script("""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""")


class CaseBusy(RuntimeError):
    """Another job holds the case; raising makes this job be retried rather than write over that job's change."""


def load(redis: Redis, keys: Keys, tenant: str, case_id: str) -> dict | None:
    """The case as stored, without taking its lock (to show it, never to change it)."""
    raw = redis.get(keys.case(tenant, case_id))
    return json.loads(raw) if raw else None


def case_ids(redis: Redis, keys: Keys, tenant: str, limit: int = 1000) -> list[str]:
    """The ids of the tenant's cases (open or closed), sorted, at most ``limit``: for an admin's list. A ``SCAN`` of
    the tenant's case keys (cases are few: a school has tens a year), never a ``KEYS``."""
    prefix = keys.case(tenant, "")
    found = set()
    for key in redis.scan_iter(match=prefix + "*", count=500):
        found.add(key.decode()[len(prefix):])
        if len(found) >= limit:
            break
    return sorted(found)


def load_many(redis: Redis, keys: Keys, tenant: str, case_ids_: list[str]) -> list[dict]:
    """The cases as stored (without their locks), in one round trip; missing ones left out."""
    if not case_ids_:
        return []
    raws = redis.mget([keys.case(tenant, case_id) for case_id in case_ids_])
    return [json.loads(raw) for raw in raws if raw]


def try_lock(redis: Redis, key: str, token: str) -> bool:
    return bool(redis.set(key, token, nx=True, px=LOCK_TTL_MS))


class Checkout:
    """What one job holds: the cases it checked out (each locked and read once per job) and the locks it took. The
    job's transaction writes the cases with their final state and gives the locks back (:meth:`write`); a job that
    ends without committing gives them back at once (:meth:`release`)."""

    def __init__(self, redis: Redis, keys: Keys, tenant: str, expire_at: int | None = None):
        self.redis, self.keys, self.tenant = redis, keys, tenant
        self.expire_at = expire_at  # epoch seconds: a case (and its pupils' open sets) goes after the retention
        self.cases: dict[str, dict | None] = {}
        self.locks: dict[str, str] = {}  # lock key -> this job's token

    def _acquire(self, key: str, what: str) -> None:
        """Take ``key`` for this job, waiting up to LOCK_WAIT_SECONDS; else give back everything the job holds and
        raise :class:`CaseBusy`, so the job is retried instead of writing over another job's change."""
        if key in self.locks:
            return
        token = uuid.uuid4().hex
        give_up = time.monotonic() + LOCK_WAIT_SECONDS
        while not try_lock(self.redis, key, token):
            if time.monotonic() >= give_up:
                self.release()  # this job will not commit: let the others go on at once
                raise CaseBusy(f"tenant={self.tenant}: {what} is held by another job")
            time.sleep(LOCK_POLL_SECONDS)
        self.locks[key] = token

    # --- reading ---------------------------------------------------------------------------------------------------

    def case(self, case_id: str) -> dict | None:
        """The case, locked for this job (``None``: there is none yet); read once per job, then this job's copy."""
        if case_id not in self.cases:
            self._acquire(self.keys.case_lock(self.tenant, case_id), f"case {case_id}")
            self.cases[case_id] = load(self.redis, self.keys, self.tenant, case_id)
        return self.cases[case_id]

    def hold_pupils(self, pupils: Iterable[str]) -> None:
        """Take the pupils' intake locks (in sorted order), before their open cases are read to match a message."""
        for pupil in sorted(set(pupils)):
            self._acquire(self.keys.pupil_intake_lock(self.tenant, pupil), f"the open cases of pupil {pupil}")

    def open_case_ids(self, pupils: Iterable[str]) -> list[str]:
        """The ids in the pupils' sets of open cases, sorted; not locked (:meth:`case` locks each)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for pupil in pupils:
                pipe.smembers(self.keys.pupil_cases(self.tenant, pupil))
            return sorted({member.decode() for members in pipe.execute() for member in members})

    def adopt(self, case: dict) -> None:
        """A new case, checked out (and so locked) under its id just before: written with the job."""
        self.cases[case["id"]] = case

    # --- writing ---------------------------------------------------------------------------------------------------

    def write(self, pipe) -> None:
        """Inside the job's transaction: every case it checked out, each in its pupils' open sets or out of them,
        and its locks given back."""
        for case_id, case in self.cases.items():
            if case is None:
                continue
            pipe.set(self.keys.case(self.tenant, case_id), json.dumps(case, separators=(",", ":")),
                     exat=self.expire_at)
            for pupil in case["pupils"]:
                if case["status"] == "open":
                    pipe.sadd(self.keys.pupil_cases(self.tenant, pupil), case_id)
                    if self.expire_at is not None:
                        pipe.expireat(self.keys.pupil_cases(self.tenant, pupil), self.expire_at)
                else:
                    pipe.srem(self.keys.pupil_cases(self.tenant, pupil), case_id)
        for key, token in self.locks.items():
            RELEASE.queue(pipe, [key], [token])

    def release(self) -> None:
        """Give back every lock this job holds and forget what it read: the job will not commit."""
        if self.locks:
            with self.redis.pipeline(transaction=False) as pipe:
                for key, token in self.locks.items():
                    RELEASE.queue(pipe, [key], [token])
                pipe.execute()
        self.locks.clear()
        self.cases.clear()
