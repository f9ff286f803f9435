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

    def subscriptions(self, tenant: str, adapter: str) -> str:
        """Hash resource -> JSON ``{id, expires, since}``: the platform subscriptions an adapter keeps alive
        (``store.subscriptions``; Graph's ids and times, nothing about people)."""
        return f"{self.prefix}:t:{tenant}:subscriptions:{adapter}"

    def subscription_signals(self, tenant: str, adapter: str) -> str:
        """Hash subscription id -> the platform's last lifecycle signal for it, until the upkeep has acted on it."""
        return f"{self.prefix}:t:{tenant}:subscription-signals:{adapter}"

    def subscriptions_lock(self, tenant: str, adapter: str) -> str:
        """String: the token of the one job keeping an adapter's subscriptions, expiring."""
        return f"{self.prefix}:t:{tenant}:subscriptions-lock:{adapter}"

    def replay_report(self, tenant: str) -> str:
        """Hash ``{html, at, events}``: the school's latest replay report (``store.replay``), for the admin page; it
        holds counts per rule, week and role, and staff ids, never a pupil's data. Expires after 90 days."""
        return f"{self.prefix}:t:{tenant}:replay-report"

    def shadow(self, tenant: str) -> str:
        """Hash external_ref -> JSON of an action decided in shadow mode: recorded as *would write*, never sent, and
        never sent later either, even when the same action is derived again after the school went live
        (``store.outbox``). Expires :data:`store.outbox.REFS`'s span after its last write."""
        return f"{self.prefix}:t:{tenant}:shadow"

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

    def journal(self, tenant: str) -> str:
        """Stream of what the connector wrote to the platform or gave up on (``store.journal``): ids, dates, codes."""
        return f"{self.prefix}:t:{tenant}:journal"

    @property
    def last_seen(self) -> str:
        """Hash ``<tenant>/<adapter>|<delivery or poll>`` -> epoch seconds of the last one taken (``store.deliveries``)."""
        return f"{self.prefix}:seen"

    @property
    def sign_in_failures(self) -> str:
        """String: failed sign-ins to the admin page's local account in the current window (``store.sign_ins``)."""
        return f"{self.prefix}:admin:sign-in-failures"

    @property
    def adapter_backoff(self) -> str:
        """Hash ``<tenant>/<adapter>`` -> epoch seconds: no send to that platform before then (``store.outbox``)."""
        return f"{self.prefix}:backoff:adapters"

    @property
    def adapter_health(self) -> str:
        """Hash ``<tenant>/<adapter>`` -> reason code: adapters the platform refuses until an admin acts."""
        return f"{self.prefix}:health:adapters"

    def poll_lease(self, tenant: str, adapter: str) -> str:
        """String: the token of the poller that may read and queue this adapter's platform now, expiring; while it
        stands after a poll it also says "not due yet" (``store.polls``)."""
        return f"{self.prefix}:t:{tenant}:poll-lease:{adapter}"

    def poll_checkpoint(self, tenant: str, adapter: str) -> str:
        """Hash org -> the latest ``dateLastModified`` durably queued from it."""
        return f"{self.prefix}:t:{tenant}:poll-checkpoint:{adapter}"

    def poll_seen(self, tenant: str, adapter: str) -> str:
        """Hash record id -> what the record covered when last queued (its ``dateLastModified``, first and last
        day, whole day or not): the dedupe per record and change, and what an edit must clear. Ids and dates only."""
        return f"{self.prefix}:t:{tenant}:poll-seen:{adapter}"

    @property
    def poll_health(self) -> str:
        """Hash ``<tenant>/<adapter>`` -> JSON of a poller's failing spell (since when, why, how many intervals
        make it an admin's business); removed by the next successful poll."""
        return f"{self.prefix}:health:polls"

    def roster(self, tenant: str, adapter: str) -> str:
        """Hash ``g:<pupil>`` -> the pupil's group, ``ct:<group>`` -> its contact teacher, ``gd:<pupil>`` -> the
        guardians' ids (comma-separated), ``s:<pupil>`` -> the pupil's school, ``at`` -> when it was read: the
        directory read from a OneRoster roster. Ids only (``store.polls``)."""
        return f"{self.prefix}:t:{tenant}:roster:{adapter}"

