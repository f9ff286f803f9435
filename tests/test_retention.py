"""State older than the retention is gone (issue 12): what the connector keeps about a pupil and a case expires.

The plan's ``history`` sets the retention: ``retention_school_years`` (2: the current and the previous school year)
and ``retention_margin_days`` (60: the summer after the last kept school year's last day). Every write of a pupil's
hash, its notices, a case and its pupils' open sets gives the key that expiry, so Redis removes the state of a
pupil nobody writes about any more; a pupil still seen has old days and notices trimmed once a school year.
Every other key either expires by itself or holds no pupil's state for long (the list below says why).
"""
from __future__ import annotations

import re
from datetime import date, datetime, time

import pytest

from connector.contract.terms import OSLO
from connector.rules.calendar import SchoolYear
from connector.rules.history import retention_end
from tests.cases_support import accept_all, update
from tests.support import SCHOOL_YEAR, post_event, run_worker

NEXT_YEAR = SchoolYear(first_day=date(2027, 8, 19), last_day=date(2028, 6, 20), breaks=(), name="2027-28")


def midnight(day: date) -> int:
    return int(datetime.combine(day, time(), OSLO).timestamp())


@pytest.mark.parametrize("today, years, keep, margin, expected", [
    (date(2026, 11, 23), [SCHOOL_YEAR], 2, 60, date(2028, 8, 29)),  # 2027-28 unknown: 30 June 2028 + 60 days
    (date(2026, 11, 23), [SCHOOL_YEAR, NEXT_YEAR], 2, 60, date(2028, 8, 19)),  # 20 June 2028 + 60 days
    (date(2026, 11, 23), [SCHOOL_YEAR], 1, 60, date(2027, 8, 17)),  # 18 June 2027 + 60 days
    (date(2027, 7, 10), [SCHOOL_YEAR], 1, 0, date(2027, 6, 18)),  # the summer still belongs to 2026-27
    (date(2026, 11, 23), [SCHOOL_YEAR], 3, 10, date(2029, 7, 10)),
])
def test_retention_ends_after_the_last_kept_school_year_and_the_margin(today, years, keep, margin, expected):
    assert retention_end(today, years, keep, margin) == expected


@pytest.fixture
def story(client, rt, platform):
    """Pupil s-1 away without a notice, a notice for s-2, and a guardian's case about s-3 that its level updates."""
    accept_all(platform)
    assert post_event(client, "attendance.register", {"date": "2026-11-23", "group_id": "7A", "marks": [
        {"student_id": "s-1", "status": "absent", "documented": False},
        {"student_id": "s-2", "status": "absent", "documented": False}]}).status_code == 202
    assert post_event(client, "absence.notice", {"student_id": "s-2", "from_date": "2026-11-23",
                                                 "to_date": "2026-11-23", "reason": "Syk"}).status_code == 202
    assert post_event(client, "message.created", {
        "message_id": "m-1", "sender": {"id": "g-3", "role": "guardian"},
        "recipients": [{"id": "u-kl-7a", "role": "contact_teacher"}], "student_ids": ["s-3"],
        "created_at": "2026-11-23T08:30:00+01:00", "category": "own_child_case"}).status_code == 202
    run_worker(rt)
    (task,) = [c for c in platform.calls if c.request.url.endswith("/tasks")]
    update(client, rt, task.request.headers["Idempotency-Key"], status="open")
    return rt


def case_key(rt) -> bytes:
    (key,) = rt.redis.scan_iter(match=f"{rt.token}:t:skole-a:case:*")
    return key


def test_a_pupils_state_and_cases_expire_at_the_end_of_the_retention(story):
    rt = story
    ends = midnight(date(2028, 8, 29))  # written in 2026-27, kept 2 school years (2027-28 ends 30 June) + 60 days
    for key in (rt.keys.pupil("skole-a", "s-1"), rt.keys.pupil("skole-a", "s-2"), rt.keys.notices("skole-a", "s-2"),
                case_key(rt), rt.keys.pupil_cases("skole-a", "s-3")):
        assert rt.redis.exists(key), key
        assert rt.redis.expiretime(key) == ends, key


def test_the_retention_is_the_schools_to_set(client, rt, platform):
    from tests.test_absence_plan import set_plan

    set_plan(rt, history={"retention_school_years": 1, "retention_margin_days": 14})
    accept_all(platform)
    post_event(client, "attendance.register", {"date": "2026-11-23", "group_id": "7A", "marks": [
        {"student_id": "s-1", "status": "absent", "documented": False}]})
    run_worker(rt)
    assert rt.redis.expiretime(rt.keys.pupil("skole-a", "s-1")) == midnight(date(2027, 7, 2))  # 18 June + 14


def test_notices_older_than_the_retention_are_trimmed_when_the_pupil_is_next_seen(client, rt, platform):
    accept_all(platform)
    rt.redis.hset(rt.keys.notices("skole-a", "s-1"), mapping={"2024-11-04|2024-11-05": "illness",
                                                              "2025-09-01|2025-09-01": "medical"})
    post_event(client, "attendance.register", {"date": "2026-11-23", "group_id": "7A", "marks": [
        {"student_id": "s-1", "status": "absent", "documented": False}]})
    run_worker(rt)
    # kept: the current and the previous school year (from August 2025)
    assert rt.redis.hgetall(rt.keys.notices("skole-a", "s-1")) == {b"2025-09-01|2025-09-01": b"medical"}


# Keys that have no expiry of their own, and why that is right. Everything else the connector writes must expire.
WITHOUT_EXPIRY = {
    r"due": "the due set: each member is removed when it is handled",
    r"t:[^:]+:deadlines": "each deadline is removed when it fires or is cancelled",
    r"t:[^:]+:outbox": "each action is removed once sent (or moved to the dead letters)",
    r"t:[^:]+:routines": "calendar routines scheduled: rule ids and dates, no pupil",
    r"stats:ignored": "counts of event types",
    r"health:adapters": "adapters' flags",
    r"dead-letters": "for an admin to retry or drop (connector dead-letters)",
    r"seen": "each adapter's last delivery and poll: tenant and adapter names and times, no pupil",
}


def test_every_key_the_connector_writes_expires_or_is_emptied_by_its_owner(story):
    rt = story
    lasting = []
    for key in rt.redis.scan_iter(match=f"{rt.token}:*"):
        name = key.decode().removeprefix(f"{rt.token}:")
        if rt.redis.ttl(key) == -1 and not any(re.fullmatch(p, name) for p in WITHOUT_EXPIRY):
            lasting.append(name)
    assert lasting == []
