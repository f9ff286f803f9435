"""A OneRoster Absence Service as the source of a replay: ``connector replay <tenant> --from D --until D``.

What the poller would have queued for that period, read straight from the API instead of a JSON Lines file:

* every absence record whose ``dateLastModified`` falls in the period (from the start of ``--from`` to the end of
  ``--until``, Europe/Oslo days), read with the adapter's own client (its token, paging sorted by
  ``dateLastModified``, ``429``/``503`` waited for as ``Retry-After`` asks, other ``5xx`` backed off);
* a record ``tobedeleted`` is left out: the absence is gone, and there is nothing before it in the replay to clear;
* each record becomes the events the poller queues for it (``absences.to_marks(record, None)``), checked by the
  contract's schema and date window as the poller checks them, with the pupil's base group from the roster; for an
  adapter that follows some ``schools`` only, the marks of pupils the roster puts in other schools are left out,
  as the poller leaves them out;
* only the marks of days in the period are kept, each wrapped as a contract envelope stamped with its record's
  ``dateLastModified``: **an edited record is replayed as of its last edit** (its type, documentation and days as
  they are now, at the time of the edit; the earlier versions are not in the API). So a record last edited after
  the period is left out too (widen ``--until`` to include it), and one registered before the period began (a
  leave granted ahead) is, as in live mode, not a mark of the day it was read.

The roster (classes, enrollments, users) is read into memory for the groups and schools, ids only, as
``roster.entries`` keeps them. Nothing is written anywhere: no Redis (not even the poller's checkpoint or roster
cache), no platform. A record's comment is never read (``absences``), so it is in no envelope, log line or report.
"""
from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from marshmallow import ValidationError

from connector.adapters.oneroster_no import roster
from connector.adapters.oneroster_no.absences import FIELDS, modified_at, record_id
from connector.adapters.oneroster_no.adapter import OneRosterAdapter
from connector.adapters.oneroster_no.api import PollError, Throttled, Unavailable
from connector.contract.events import check_windows, load_event

log = logging.getLogger(__name__)

TYPE = "oneroster_no"
MAX_ATTEMPTS = 5  # tries of one request, as the poller's
FIRST_BACKOFF_SECONDS = 2.0


class SourceError(ValueError):
    """The API could not be read for the replay: which adapter and why (a short reason, never a record)."""


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelopes(tenant: Any, first: date, last: date, *, http=None,
              sleep: Callable[[float], None] = time.sleep) -> list[dict[str, Any]]:
    """The contract envelopes of ``tenant``'s OneRoster adapters for the days ``first`` to ``last``, in time order.
    Raises ``SourceError`` when the tenant has no such adapter or its API cannot be read."""
    adapters = [(name, config) for name, config in tenant.adapters.items() if config.type == TYPE]
    if not adapters:
        raise SourceError(f"tenant {tenant.id!r} has no {TYPE} adapter to read a period from")
    start = tenant.calendar.start_of_day(first)
    end = tenant.calendar.start_of_day(last + timedelta(days=1))
    found: list[tuple[datetime, int, dict[str, Any]]] = []
    for name, config in adapters:
        adapter = OneRosterAdapter(tenant.id, name, config.settings, http)
        if not config.settings["read_absences"]:
            continue
        try:
            for moment, envelope in _adapter_envelopes(tenant, name, adapter, first, last, start, end, sleep):
                found.append((moment, len(found), envelope))
        except PollError as exc:
            raise SourceError(f"adapter {name!r}: the OneRoster API could not be read: {exc.reason} ({exc})") \
                from None
    found.sort(key=lambda item: (item[0], item[1]))
    return [envelope for _, _, envelope in found]


def _adapter_envelopes(tenant, name: str, adapter: OneRosterAdapter, first: date, last: date, start: datetime,
                       end: datetime, sleep) -> Iterator[tuple[datetime, dict[str, Any]]]:
    settings = adapter.settings
    followed = set(settings["schools"])
    entries = _roster(tenant, name, adapter, sleep, required=bool(followed))
    records: dict[str, tuple[datetime, dict[str, Any]]] = {}
    later = 0
    for org in settings["orgs"]:
        for moment, record in _records(adapter, org, start, end, sleep):
            rid = record_id(record)
            if moment >= end:
                later += 1
            elif rid not in records or moment > records[rid][0]:
                records[rid] = (moment, record)
    kept = deleted = refused = other_schools = 0
    for moment, record in records.values():
        if str(record.get(FIELDS["status"], "active")).lower() == "tobedeleted":
            deleted += 1
            continue
        mapped = adapter.marks(record, None)
        if mapped.seen is None:
            refused += 1
            continue
        for event in mapped.events:
            if not first.isoformat() <= event["date"] <= last.isoformat():
                continue
            student = event["student_id"]
            if followed and entries.get(f"s:{student}") not in followed:
                other_schools += 1
                continue
            data = {k: v for k, v in event.items() if k not in ("type", "timestamp")}
            if entries.get(f"g:{student}"):
                data["group_id"] = entries[f"g:{student}"]
            envelope = {"type": event["type"], "timestamp": event["timestamp"], "data": data}
            try:  # the contract's schema and date window, as the poller checks a mark when it reads it
                check_windows([load_event(envelope)], moment, tenant.calendar)
            except ValidationError:
                refused += 1
                continue
            kept += 1
            yield moment, envelope
    log.info("tenant=%s adapter=%s: %d mark(s) of %s to %s from %d record(s); left out: %d deleted, %d edited after "
             "the period, %d of other schools, %d unreadable or outside the date window", tenant.id, name, kept,
             first, last, len(records) + later, deleted, later, other_schools, refused)


def _records(adapter: OneRosterAdapter, org: str, start: datetime, end: datetime,
             sleep) -> Iterator[tuple[datetime, dict[str, Any]]]:
    """The org's records modified from ``start`` on, sorted by ``dateLastModified``, until the first at ``end`` or
    later; paged as the poller pages (keyset on ``dateLastModified``, ``offset`` only within one instant)."""
    client, limit = adapter.client, adapter.settings["page_size"]
    url = client.url("absences", org, "absences/detail")
    bound, offset = start - timedelta(milliseconds=1), 0
    while True:
        params = {"filter": f"dateLastModified>'{_iso(bound)}'", "sort": "dateLastModified", "orderBy": "asc",
                  "limit": limit, "offset": offset}
        page = _fetch(adapter, lambda: client.page(url, "absences", params), sleep)
        top = None
        for record in page.records:
            moment = modified_at(record)
            if moment is None or record_id(record) is None:
                continue
            top = moment if top is None or moment > top else top
            yield moment, record
        if len(page.records) < limit or top is None or top >= end:
            return
        next_bound = top - timedelta(milliseconds=1)
        if next_bound <= bound:  # a whole page of one instant: page on within it
            offset += len(page.records)
        else:
            bound, offset = next_bound, sum(1 for r in page.records if modified_at(r) == top)


def _roster(tenant, name: str, adapter: OneRosterAdapter, sleep, required: bool) -> dict[str, str]:
    """``roster.entries`` of every org, in memory only. Without ``schools`` a roster that cannot be read only costs
    the pupils' groups (as the poller goes on with its cache); with ``schools`` nothing may be read without it."""
    read: dict[str, list] = {"classes": [], "enrollments": [], "users": []}
    try:
        for org in adapter.settings["orgs"]:
            for collection in read:
                read[collection] += _collection(adapter, org, collection, sleep)
    except PollError as exc:
        if required:
            raise
        log.warning("tenant=%s adapter=%s: the roster could not be read (%s); marks are replayed without their "
                    "pupils' groups", tenant.id, name, exc.reason)
        return {}
    return roster.entries(read["classes"], read["enrollments"], read["users"], adapter.settings)


def _collection(adapter: OneRosterAdapter, org: str, collection: str, sleep) -> list[dict[str, Any]]:
    url = adapter.client.url("rostering", org, collection)
    limit, offset, records = adapter.settings["page_size"], 0, []
    while True:
        params = {"limit": limit, "offset": offset}
        page = _fetch(adapter, lambda: adapter.client.page(url, collection, params), sleep)
        records += page.records
        if len(page.records) < limit:
            return records
        offset += len(page.records)


def _fetch(adapter: OneRosterAdapter, call: Callable, sleep):
    """``call()``, tried again as the poller tries: a ``429``/``503`` after its ``Retry-After`` (else a doubling
    back-off), other ``5xx`` and timeouts after the back-off; five tries, and never a wait of more than one poll
    interval. A ``Refused`` (4xx) is not tried again."""
    cap = float(adapter.settings["poll_interval_seconds"])
    delay = FIRST_BACKOFF_SECONDS
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return call()
        except Throttled as exc:
            wait, failure = (exc.retry_after if exc.retry_after is not None else delay), exc
        except Unavailable as exc:
            wait, failure = delay, exc
        if attempt == MAX_ATTEMPTS or wait > cap:
            raise failure
        log.info("adapter=%s: %s (%s); trying again in %.0f s", adapter.name, failure.reason, failure, wait)
        sleep(wait)
        if wait == delay:
            delay = min(delay * 2, cap)
    raise AssertionError("unreachable")
