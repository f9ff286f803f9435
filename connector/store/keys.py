"""Every Redis key the connector writes, in one place, under one prefix.

A prefix per deployment (and per test) means two installations, or a test run, can share a Redis server and
clean up only what they made. Pupil ids appear in keys only as given by the platform: ids, never names.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass


def digest(*parts: str, length: int = 32) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]


@dataclass(frozen=True)
class Keys:
    prefix: str

    def delivery(self, tenant: str, adapter: str, delivery_id: str) -> str:
        """Marks a webhook delivery as taken, for as long as senders may redeliver it."""
        return f"{self.prefix}:delivery:{digest(tenant, adapter, delivery_id)}"

    def pupil(self, tenant: str, student_id: str) -> str:
        """Hash of one pupil's state; its layout is ``store.pupils``'s."""
        return f"{self.prefix}:t:{tenant}:pupil:{student_id}"

    def notices(self, tenant: str, student_id: str) -> str:
        """Hash ``<from>|<to>`` -> reason code of the guardians' written notices (never their text)."""
        return f"{self.prefix}:t:{tenant}:notices:{student_id}"

    def held(self, tenant: str, group: str, day: str) -> str:
        """Set of the lesson ids a group had on a day (from lesson registers): single lessons or a day away."""
        return f"{self.prefix}:t:{tenant}:held:{group}:{day}"

    def routines(self, tenant: str) -> str:
        """Hash ``<rule id>|<occurrence>`` -> ``done``: calendar routines already put on the due set."""
        return f"{self.prefix}:t:{tenant}:routines"

    def case(self, tenant: str, case_id: str) -> str:
        """String: a guardian's case as JSON (ids, dates, codes; no message text)."""
        return f"{self.prefix}:t:{tenant}:case:{case_id}"

    def case_lock(self, tenant: str, case_id: str) -> str:
        """String: the token of the job working on a case, expiring (``store.cases``)."""
        return f"{self.prefix}:t:{tenant}:case-lock:{case_id}"

    def pupil_cases(self, tenant: str, student_id: str) -> str:
        """Set of the pupil's open case ids: where a guardian's follow-up or a staff member's feedback belongs."""
        return f"{self.prefix}:t:{tenant}:cases-of:{student_id}"

    def pupil_intake_lock(self, tenant: str, student_id: str) -> str:
        """String: the token of the job matching a guardian's message against the pupil's open cases."""
        return f"{self.prefix}:t:{tenant}:cases-of-lock:{student_id}"

    def deadlines(self, tenant: str) -> str:
        """Hash deadline id -> JSON of what to re-evaluate when it falls due."""
        return f"{self.prefix}:t:{tenant}:deadlines"

    def outbox(self, tenant: str) -> str:
        """Hash external_ref -> JSON of an action not yet confirmed by the platform."""
        return f"{self.prefix}:t:{tenant}:outbox"

    def ledger(self, tenant: str, week: int, ref: str) -> str:
        """Hash external_ref -> the platform's id: what was written in one week, so nothing is written twice.

        One key per week (it expires a few weeks after: see ``store.outbox.LEDGER``) and per last hex digit of the
        ref, so each stays small enough for Redis's compact hash encoding, which costs half the bytes.
        """
        return f"{self.prefix}:t:{tenant}:ledger:{week}:{ref[-1]}"

    def refs(self, tenant: str, period: int) -> str:
        """Hash external_ref -> what a *task* was about (rule, case, pupil: ``store.outbox.task_info``), so a
        ``task.updated`` from the platform finds its way back to the rule that created it. Alerts and notes are never
        updated: not kept. One key per 13-week period, expiring about two school years later (``store.outbox.REFS``).
        """
        return f"{self.prefix}:t:{tenant}:refs:{period}"

    @property
    def due(self) -> str:
        """Sorted set of everything that must happen at a time (deadlines, delivery retries), scored by epoch."""
        return f"{self.prefix}:due"

    @property
    def dead_letters(self) -> str:
        """Hash ``<tenant>|<external_ref>`` -> JSON of an action the platform refused, for an admin."""
        return f"{self.prefix}:dead-letters"

    @property
    def ignored(self) -> str:
        """Hash event type -> count of well-formed deliveries whose type this version does not handle."""
        return f"{self.prefix}:stats:ignored"

    @property
    def adapter_backoff(self) -> str:
        """Hash ``<tenant>/<adapter>`` -> epoch seconds: no send to that platform before then (``store.outbox``)."""
        return f"{self.prefix}:backoff:adapters"

    @property
    def adapter_health(self) -> str:
        """Hash ``<tenant>/<adapter>`` -> reason code: adapters the platform refuses until an admin acts."""
        return f"{self.prefix}:health:adapters"
