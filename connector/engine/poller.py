"""``connector poll``: reads the platforms that push nothing (``Adapter.polled``: OneRoster's Absence Service) and
queues what changed exactly as the webhook door queues a delivery: one job per page, in the door's job layout
(``rq_compat``), deduplicated per record and change.

How one poll of one adapter goes, for each org it follows:

1. Start at the checkpoint (the newest ``dateLastModified`` durably queued) minus the overlap window, or, the first
   time, ``backfill_days`` back. The overlap re-reads what a lagging server clock or a late commit put behind the
   checkpoint; what was queued before is recognised (``store.polls`` seen: record id -> its ``dateLastModified``)
   and not queued again.
2. Read pages sorted by ``dateLastModified`` ascending, each from the newest time read so far (keyset paging, not a
   growing ``offset``): a record modified while we page moves *behind* the bound and is read later in the same
   poll, instead of shifting every later offset and hiding one record. ``offset`` only skips the records of the
   newest instant already read (and pages on through a page that is all one instant); should the server order
   records of one instant differently from one call to the next, the next poll's overlap reads them again.
3. For each page: the records whose change is new become marks (``adapter.marks``), checked by the contract's
   schema and date window as the door checks a delivery, and the page's job, its records as seen and the moved
   checkpoint are committed in one transaction, and only while this poller still holds the lease. Then the next
   page. A poller that dies mid-page has committed nothing of it; the next poll reads it again.

A ``429``/``503`` waits for ``Retry-After`` (else a doubling back-off) and tries again; other ``5xx`` and timeouts
back off the same way; a ``401`` gets one fresh token (``api``). A poll that still fails is recorded
(``store.polls`` health), and once polls have failed for longer than ``alert_after_intervals`` intervals an ERROR line
says so and ``/readyz`` shows it in ``detail.polls``.

Several pollers may run (``connector serve`` starts one; a deployment may run more): the lease in Redis lets one poll
an adapter at a time, and it is kept after a poll until the next is due, so the others do not poll it again meanwhile.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from marshmallow import ValidationError

from connector.adapters.oneroster_no.absences import Seen, modified_at, record_id
from connector.adapters.oneroster_no.api import PollError, Refused, Throttled, Unavailable
from connector.contract.events import check_windows, load_event
from connector.engine import metrics, rq_compat
from connector.engine.runtime import Runtime
from connector.store import polls
from connector.store.keys import digest

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # tries of one request before the poll gives up (the next poll starts again at the checkpoint)
FIRST_BACKOFF_SECONDS = 2.0
LEASE_FLOOR_SECONDS = 120.0
# What was queued of a record is remembered this long after its last change (two school years, as pupils' days):
# trimmed with each roster refresh (``store.polls.forget_seen_before``).
SEEN_DAYS = 2 * 366


class LostLease(Exception):
    """Another poller holds the adapter now (this one stalled past its lease): stop, having written nothing more."""


@dataclass
class PollResult:
    requests: int = 0
    pages: int = 0
    jobs: int = 0
    changes: int = 0  # records whose change was queued
    events: int = 0
    unchanged: int = 0  # records read again (the overlap, a page boundary) whose change was queued before
    refused: int = 0  # records that could not be read, or marks outside the school's window
    unknown_types: set = field(default_factory=set)
    other_schools: int = 0  # marks of pupils of schools this tenant does not follow (``schools``), not queued
    roster_read: bool = False  # the roster was read during this poll (at most once)


def polled_adapters(rt: Runtime) -> list[tuple[str, str]]:
    from connector.adapters import adapter_types

    types = adapter_types()
    return [(tenant.id, name) for tenant in rt.config.tenants.values() for name, adapter in tenant.adapters.items()
            if getattr(types[adapter.type], "polled", False)]


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Poller:
    def __init__(self, rt: Runtime, sleep: Callable[[float], None] = time.sleep,
                 wall: Callable[[], float] = time.time, name: str | None = None):
        self.rt = rt
        self.sleep = sleep
        self.wall = wall
        self.token = name or uuid.uuid4().hex
        self.alerted: set[str] = set()

    # --- one adapter, one poll ----------------------------------------------------------------------------------

    def poll(self, tenant_id: str, name: str) -> PollResult:
        """Poll every org of one adapter once; the caller holds the lease (``self.token``)."""
        adapter = self.rt.adapter(tenant_id, name)
        result = PollResult()
        before = adapter.client.requests
        if adapter.settings["schools"] and polls.roster_read_at(self.rt.redis, self.rt.keys, tenant_id, name) is None:
            # which pupils are this tenant's is the roster's to say: without it, nothing may be queued (nor
            # remembered as seen), or another school's absences would reach this one, or this one's be lost
            self.refresh_roster(tenant_id, name)
            result.roster_read = True
        try:
            for org in adapter.settings["orgs"] if adapter.settings["read_absences"] else ():
                self._poll_org(tenant_id, name, adapter, org, result)
        finally:
            result.requests = adapter.client.requests - before
        if result.unknown_types:
            log.warning("tenant=%s adapter=%s: absence type(s) %s are not in the adapter's absence_types; read as "
                        "absent", tenant_id, name, ", ".join(sorted(result.unknown_types)))
        return result

    def _poll_org(self, tenant_id: str, name: str, adapter, org: str, result: PollResult) -> None:
        rt, settings = self.rt, adapter.settings
        checkpoint = polls.checkpoint(rt.redis, rt.keys, tenant_id, name, org)
        now = rt.clock.now()
        if checkpoint:
            bound = datetime.fromisoformat(checkpoint.replace("Z", "+00:00")) - timedelta(
                seconds=settings["overlap_seconds"])
        else:
            bound = now - timedelta(days=settings["backfill_days"])
        newest = datetime.fromisoformat(checkpoint.replace("Z", "+00:00")) if checkpoint else None
        url = adapter.client.url("absences", org, "absences/detail")
        limit, offset = settings["page_size"], 0
        while True:
            params = {"filter": f"dateLastModified>'{_iso(bound)}'", "sort": "dateLastModified", "orderBy": "asc",
                      "limit": limit, "offset": offset}
            page = self._fetch(tenant_id, name, lambda: adapter.client.page(url, "absences", params))
            result.pages += 1
            top = self._commit_page(tenant_id, name, adapter, org, page.records, newest, result)
            if top is not None and (newest is None or top > newest):
                newest = top
            if len(page.records) < limit:
                return
            next_bound = (top - timedelta(milliseconds=1)) if top is not None else bound
            if next_bound <= bound:  # a whole page of one instant: page on within it
                offset += len(page.records)
            else:  # from just before the newest instant read, past the records of that instant already read
                bound, offset = next_bound, sum(1 for r in page.records if modified_at(r) == top)

    def _commit_page(self, tenant_id: str, name: str, adapter, org: str, records: list[dict[str, Any]],
                     checkpoint: datetime | None, result: PollResult) -> datetime | None:
        """Queue the page's new changes and move the checkpoint, in one transaction; the page's newest time."""
        rt = self.rt
        moments = {}
        for record in records:
            rid, moment = record_id(record), modified_at(record)
            if rid is None or moment is None:
                result.refused += 1
                continue
            if rid not in moments or moment > moments[rid][0]:
                moments[rid] = (moment, record)
        if not moments:
            return None
        prior = polls.seen(rt.redis, rt.keys, tenant_id, name, list(moments))
        top = max(moment for moment, _ in moments.values())
        tenant = rt.tenant(tenant_id)
        now = rt.clock.now()
        events: list[dict[str, Any]] = []
        remembered: dict[str, str] = {}
        changes = []
        for rid, (moment, record) in moments.items():
            previous = Seen.unpack(prior.get(rid))
            if previous is not None:
                before = datetime.fromisoformat(previous.modified.replace("Z", "+00:00"))
                before = before if before.tzinfo else before.replace(tzinfo=timezone.utc)
                if moment <= before:
                    result.unchanged += 1
                    continue
            mapped = adapter.marks(record, previous)
            if mapped.seen is None:
                result.refused += 1
                log.info("tenant=%s adapter=%s: an absence record was skipped: %s", tenant_id, name, mapped.problem)
                continue
            if mapped.unknown_type:
                result.unknown_types.add(mapped.unknown_type)
            for event in mapped.events:
                checked = self._checked(event, now, tenant.calendar)
                if checked is None:
                    result.refused += 1
                else:
                    events.append(checked)
            remembered[rid] = mapped.seen.pack()
            changes.append(f"{rid}@{mapped.seen.modified}")
        if adapter.settings["schools"]:
            events = self._followed(tenant_id, name, adapter, events, result)
        self._add_groups(tenant_id, name, events)
        new_checkpoint = _iso(top) if checkpoint is None or top > checkpoint else None
        queue = None
        if events:
            delivery_id = f"poll:{org}:{digest(*sorted(changes))}"

            def queue(pipe):
                rq_compat.queue_delivery(pipe, rt, tenant_id, name, delivery_id, events)
        if remembered or new_checkpoint:
            self._keep_lease(tenant_id, name)
            if not polls.commit_page(rt.redis, rt.keys, tenant_id, name, self.token, org, new_checkpoint,
                                     remembered, queue):
                raise LostLease(f"tenant={tenant_id} adapter={name}")
        if events:
            result.jobs += 1
            log.info("tenant=%s adapter=%s org=%s: queued %d change(s) as %d mark(s)", tenant_id, name, org,
                     len(changes), len(events))
        result.changes += len(changes)
        result.events += len(events)
        return top

    @staticmethod
    def _checked(event: dict[str, Any], now: datetime, calendar) -> dict[str, Any] | None:
        """The mark as the door would have queued it (the contract's schema and date window), or ``None``."""
        data = {k: v for k, v in event.items() if k not in ("type", "timestamp")}
        try:
            loaded = load_event({"type": event["type"], "timestamp": event["timestamp"], "data": data})
            check_windows([loaded], now, calendar)
        except ValidationError:
            return None
        return loaded

    def _followed(self, tenant_id: str, name: str, adapter, events: list[dict[str, Any]],
                  result: PollResult) -> list[dict[str, Any]]:
        """Only the marks of pupils of the schools this tenant follows: an org is often a whole municipality, and
        one school's tenant must not see another's pupils. A pupil the roster does not know yet (enrolled since it
        was read) makes the roster be read once more in this poll; one still unknown after that is not queued."""
        if not events:
            return events
        rt, followed = self.rt, set(adapter.settings["schools"])
        students = sorted({event["student_id"] for event in events})
        school = dict(zip(students, polls.roster_values(rt.redis, rt.keys, tenant_id, name,
                                                        [f"s:{s}" for s in students])))
        unknown = [s for s in students if school[s] is None]
        if unknown and not result.roster_read:
            result.roster_read = True
            self.refresh_roster(tenant_id, name)
            school.update(zip(unknown, polls.roster_values(rt.redis, rt.keys, tenant_id, name,
                                                           [f"s:{s}" for s in unknown])))
        kept = [event for event in events if school.get(event["student_id"]) in followed]
        if len(kept) < len(events):
            result.other_schools += len(events) - len(kept)
        return kept

    def _add_groups(self, tenant_id: str, name: str, events: list[dict[str, Any]]) -> None:
        """The pupil's base group from the roster cache, where the roster has been read: the directory's groups
        (contact teacher) are keyed by it, as a webhook platform's ``group_id`` is."""
        if not events:
            return
        students = sorted({event["student_id"] for event in events})
        groups = dict(zip(students, polls.roster_values(self.rt.redis, self.rt.keys, tenant_id, name,
                                                        [f"g:{s}" for s in students])))
        for event in events:
            group = groups.get(event["student_id"])
            if group:
                event["group_id"] = group

    # --- asking again -------------------------------------------------------------------------------------------

    def _lease_ms(self, adapter) -> int:
        return int(max(LEASE_FLOOR_SECONDS, 4 * adapter.settings["timeout_seconds"]) * 1000)

    def _keep_lease(self, tenant_id: str, name: str, at_least: float = 0.0) -> None:
        adapter = self.rt.adapter(tenant_id, name)
        ms = max(self._lease_ms(adapter), int(at_least * 1000) + self._lease_ms(adapter))
        if not polls.extend_lease(self.rt.redis, self.rt.keys, tenant_id, name, self.token, ms):
            raise LostLease(f"tenant={tenant_id} adapter={name}")

    def _fetch(self, tenant_id: str, name: str, call: Callable):
        adapter = self.rt.adapter(tenant_id, name)
        cap = float(adapter.settings["poll_interval_seconds"])
        delay = FIRST_BACKOFF_SECONDS
        for attempt in range(1, MAX_ATTEMPTS + 1):
            self._keep_lease(tenant_id, name)
            try:
                return call()
            except Throttled as exc:
                wait = exc.retry_after if exc.retry_after is not None else delay
                failure = exc
            except Unavailable as exc:
                wait, failure = delay, exc
            backed_off = wait == delay
            if attempt == MAX_ATTEMPTS or wait > cap:
                raise failure
            log.info("tenant=%s adapter=%s: %s (%s); trying again in %.0f s", tenant_id, name, failure.reason,
                     failure, wait)
            self._keep_lease(tenant_id, name, at_least=wait)
            self.sleep(wait)
            if backed_off:  # the server's Retry-After was honoured instead: our own back-off stays where it was
                delay = min(delay * 2, cap)
        raise AssertionError("unreachable")

    # --- the loop -----------------------------------------------------------------------------------------------

    def tick(self) -> dict[tuple[str, str], PollResult | Exception | None]:
        """Poll each adapter that is due and not leased by another poller; what happened to each."""
        rt, outcome = self.rt, {}
        for tenant_id, name in polled_adapters(rt):
            adapter = rt.adapter(tenant_id, name)
            if not polls.take_lease(rt.redis, rt.keys, tenant_id, name, self.token, self._lease_ms(adapter)):
                outcome[(tenant_id, name)] = None  # another poller has it, or it is not due yet
                continue
            outcome[(tenant_id, name)] = self._poll_leased(tenant_id, name, adapter)
        return outcome

    def refresh_roster(self, tenant_id: str, name: str) -> int:
        """Read the roster (classes, enrollments, users) of every org and replace the cache; its number of fields."""
        from connector.adapters.oneroster_no import roster

        adapter = self.rt.adapter(tenant_id, name)
        read: dict[str, list] = {"classes": [], "enrollments": [], "users": []}
        for org in adapter.settings["orgs"]:
            for collection in read:
                read[collection] += self._all(tenant_id, name, adapter, org, collection)
        found = roster.entries(read["classes"], read["enrollments"], read["users"], adapter.settings)
        polls.replace_roster(self.rt.redis, self.rt.keys, tenant_id, name, found, self.wall())
        log.info("tenant=%s adapter=%s: roster read: %d class(es), %d enrollment(s), %d user(s)", tenant_id, name,
                 len(read["classes"]), len(read["enrollments"]), len(read["users"]))
        return len(found)

    def _all(self, tenant_id: str, name: str, adapter, org: str, collection: str) -> list[dict[str, Any]]:
        url = adapter.client.url("rostering", org, collection)
        limit, offset, records = adapter.settings["page_size"], 0, []
        while True:
            params = {"limit": limit, "offset": offset}
            page = self._fetch(tenant_id, name, lambda: adapter.client.page(url, collection, params))
            records += page.records
            if len(page.records) < limit:
                return records
            offset += len(page.records)

    def _roster_due(self, tenant_id: str, name: str, adapter) -> bool:
        read_at = polls.roster_read_at(self.rt.redis, self.rt.keys, tenant_id, name)
        return read_at is None or self.wall() - read_at >= adapter.settings["roster_refresh_seconds"]

    def _poll_leased(self, tenant_id: str, name: str, adapter):
        rt, settings = self.rt, adapter.settings
        interval = float(settings["poll_interval_seconds"])
        if self._roster_due(tenant_id, name, adapter):
            cutoff = _iso(rt.clock.now() - timedelta(days=SEEN_DAYS))
            polls.forget_seen_before(rt.redis, rt.keys, tenant_id, name, cutoff)
            try:  # first, so the first absences already find their pupils' groups
                self.refresh_roster(tenant_id, name)
            except (PollError, LostLease) as exc:  # the absences matter more: the cached roster (or config) serves
                log.warning("tenant=%s adapter=%s: roster not read (%s); the previous one (or the configuration) "
                            "serves", tenant_id, name, getattr(exc, "reason", type(exc).__name__))
        started = self.wall()
        try:
            result = self.poll(tenant_id, name)
        except LostLease:
            log.warning("tenant=%s adapter=%s: another poller took over (this one was too slow); stopped",
                        tenant_id, name)
            return LostLease()
        except PollError as exc:
            self._failed(tenant_id, name, exc, interval, settings["alert_after_intervals"])
            wait = exc.retry_after if isinstance(exc, Throttled) and exc.retry_after else interval
            polls.extend_lease(rt.redis, rt.keys, tenant_id, name, self.token, int(min(wait, interval) * 1000))
            return exc
        if polls.poll_succeeded(rt.redis, rt.keys, tenant_id, name):
            log.info("tenant=%s adapter=%s: polls succeed again", tenant_id, name)
        self.alerted.discard(f"{tenant_id}/{name}")
        # the view is as fresh as the poll's start: changes made since wait for the next poll
        metrics.poll_finished(rt, tenant_id, name, self.wall() - started)
        # the lease stays until the next poll is due: "not yet" for every poller
        polls.extend_lease(rt.redis, rt.keys, tenant_id, name, self.token, int(interval * 1000))
        return result

    def _failed(self, tenant_id: str, name: str, exc: PollError, interval: float, alert_after: int) -> None:
        rt, now = self.rt, self.wall()
        since = polls.poll_failed(rt.redis, rt.keys, tenant_id, name, now, exc.reason, interval, alert_after)
        where = f"{tenant_id}/{name}"
        hint = " (check the client id, secret and scopes, and the org ids)" if isinstance(exc, Refused) else ""
        log.warning("tenant=%s adapter=%s: poll failed: %s (%s)%s", tenant_id, name, exc.reason, exc, hint)
        if now - since > alert_after * interval and where not in self.alerted:
            self.alerted.add(where)
            log.error("tenant=%s adapter=%s: polls have failed for %.0f minutes (more than %d intervals): absences "
                      "are not being read (%s)%s", tenant_id, name, (now - since) / 60, alert_after, exc.reason, hint)

    def run_forever(self, stop: threading.Event, tick_seconds: float = 1.0) -> None:
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # Redis gone for a moment, a bug in one tenant's data: log, and poll again next tick
                log.exception("poll round failed; trying again")
            stop.wait(tick_seconds)
