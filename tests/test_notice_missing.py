"""``absence.notice_missing`` end to end: webhook in → worker → deadline on school days → task and alert out.

Time moves through an injected clock; the platform's API is the only thing mocked.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import responses

from connector.engine import scheduler
from connector.contract.actions import external_ref
from tests.support import PLATFORM, OTHER_TENANT_SECRET, post_event, run_worker

OSLO_MIDNIGHT_FRIDAY = datetime(2026, 11, 26, 23, 0, tzinfo=timezone.utc)  # Fri 27 Nov 00:00 in Oslo


def register(day="2026-11-23", marks=None, group="7A", lesson=None):
    data = {"date": day, "group_id": group, "marks": marks or [
        {"student_id": "s-1", "status": "present", "documented": False},
        {"student_id": "s-2", "status": "absent", "documented": False},
    ]}
    if lesson:
        data["lesson"] = lesson
    return data


def notice(student="s-2", start="2026-11-23", end="2026-11-23", code="illness"):
    return {"student_id": student, "from_date": start, "to_date": end, "reason": "Feber og hodepine", "reason_code": code}


def accept_all(platform):
    for path in ("tasks", "alerts", "notes"):
        platform.add(responses.POST, f"{PLATFORM}/{path}", json={"id": f"remote-{path}"}, status=201)


def sent(platform, path=None):
    calls = [c for c in platform.calls if path is None or c.request.url.endswith(f"/{path}")]
    return [json.loads(c.request.body) for c in calls]


def at(rt, moment: datetime):
    """Move the clock, sweep the due set and run what it queued: what the scheduler and worker do in production."""
    rt.clock.set(moment)
    scheduler.sweep(rt)
    run_worker(rt)


def test_undocumented_absence_without_notice_gives_one_reminder_and_one_task(client, rt, platform):
    accept_all(platform)
    assert post_event(client, "attendance.register", register()).status_code == 202
    run_worker(rt)
    assert sent(platform) == []

    at(rt, datetime(2026, 11, 26, 22, 59, tzinfo=timezone.utc))  # Thursday 23:59 in Oslo: still in time
    assert sent(platform) == []

    at(rt, OSLO_MIDNIGHT_FRIDAY)
    (alert,) = sent(platform, "alerts")
    (task,) = sent(platform, "tasks")
    assert alert["recipient"] == {"role": "guardian"}
    assert alert["rule_id"] == task["rule_id"] == "absence.notice_missing"
    assert alert["student_id"] == task["student_id"] == "s-2"
    assert alert["severity"] == "warning"
    assert task["assignee"] == {"role": "contact_teacher", "id": "u-kl-7a"}
    assert task["due_date"] == "2026-11-30"  # Thursday + 2 school days = Monday
    assert task["priority"] == "normal"
    assert task["external_ref"] == external_ref("skole-a", "absence.notice_missing", "s-2", "2026-11-23", "task")
    headers = [c.request.headers for c in platform.calls]
    assert all(h["Authorization"] == "Bearer token-a-not-in-logs" for h in headers)
    assert {h["Idempotency-Key"] for h in headers} == {alert["external_ref"], task["external_ref"]}


def test_texts_are_bokmal_and_say_why_which_step_what_and_by_when(client, rt, platform):
    accept_all(platform)
    post_event(client, "attendance.register", register())
    run_worker(rt)
    at(rt, OSLO_MIDNIGHT_FRIDAY)
    (alert,) = sent(platform, "alerts")
    (task,) = sent(platform, "tasks")
    assert alert["title"] == "Fravær 23. nov: send oss en kort melding"
    assert alert["body"].startswith("Hei!\nBarnet deres er registrert med fravær mandag 23. november 2026 (hele dagen)")
    assert "Det holder å skrive for eksempel «syk» eller «tannlege»." in alert["body"]
    assert "Er registreringen feil" in alert["body"] and "gi beskjed til kontaktlæreren" in alert["body"]
    assert "frist" not in alert["body"].lower()  # the school writes kindly; the deadline is the teacher's business
    assert "Fristen på 3 skoledager gikk ut torsdag 26. november 2026" in task["body"]
    assert task["title"] == "Følg opp fravær uten melding 23. nov"
    for expected in ("Hvorfor:", "Steg i handlingsplanen:", "Hva du gjør:", "Frist: mandag 30. november 2026.",
                     "Ansvarlig: kontaktlærer."):
        assert expected in task["body"]


def test_tenant_language_nynorsk(client, rt, platform):
    accept_all(platform)
    post_event(client, "attendance.register", register(group="7B"), tenant="skole-b", secret=OTHER_TENANT_SECRET)
    run_worker(rt)
    at(rt, OSLO_MIDNIGHT_FRIDAY)
    (task,) = sent(platform, "tasks")
    assert task["title"] == "Følg opp fråvær utan melding 23. nov"
    assert "Kva du gjer:" in task["body"]
    assert task["assignee"] == {"role": "contact_teacher", "id": "u-kl-7b"}
    assert task["external_ref"] != external_ref("skole-a", "absence.notice_missing", "s-2", "2026-11-23", "task")


def test_notice_in_time_cancels_both(client, rt, platform):
    accept_all(platform)
    post_event(client, "attendance.register", register())
    run_worker(rt)
    rt.clock.set(datetime(2026, 11, 25, 7, 0, tzinfo=timezone.utc))
    post_event(client, "absence.notice", notice())
    run_worker(rt)
    at(rt, datetime(2026, 12, 10, 8, 0, tzinfo=timezone.utc))
    assert sent(platform) == []
    assert rt.redis.zcard(rt.keys.due) == 0


def test_notice_before_the_absence_arrives_out_of_order_prevents_the_deadline(client, rt, platform):
    accept_all(platform)
    post_event(client, "absence.notice", notice(start="2026-11-20", end="2026-11-24"))
    run_worker(rt)
    post_event(client, "attendance.register", register())
    run_worker(rt)
    assert rt.redis.zcard(rt.keys.due) == 0
    at(rt, datetime(2026, 12, 10, 8, 0, tzinfo=timezone.utc))
    assert sent(platform) == []


def test_notice_for_another_day_does_not_cancel(client, rt, platform):
    accept_all(platform)
    post_event(client, "attendance.register", register())
    post_event(client, "absence.notice", notice(start="2026-11-24", end="2026-11-24"))
    run_worker(rt)
    at(rt, OSLO_MIDNIGHT_FRIDAY)
    assert len(sent(platform, "tasks")) == 1


def test_absence_marked_documented_later_cancels(client, rt, platform):
    accept_all(platform)
    post_event(client, "attendance.register", register())
    run_worker(rt)
    post_event(client, "attendance.marked",
               {"student_id": "s-2", "date": "2026-11-23", "status": "absent", "documented": True})
    run_worker(rt)
    at(rt, OSLO_MIDNIGHT_FRIDAY)
    assert sent(platform) == []


def test_correction_to_present_cancels_and_leaves_no_history(client, rt, platform):
    accept_all(platform)
    post_event(client, "attendance.register", register())
    run_worker(rt)
    post_event(client, "attendance.marked",
               {"student_id": "s-2", "date": "2026-11-23", "status": "present", "documented": False})
    run_worker(rt)
    at(rt, OSLO_MIDNIGHT_FRIDAY)
    assert sent(platform) == []
    assert rt.redis.hget(rt.keys.pupil("skole-a", "s-2"), "d:2026-11-23") is None


def test_present_marks_are_not_stored(client, rt, platform):
    post_event(client, "attendance.register", register())
    run_worker(rt)
    assert sorted(rt.redis.hkeys(rt.keys.pupil("skole-a", "s-1"))) == [b"g", b"t"]  # group, retention marker
    assert sorted(rt.redis.hkeys(rt.keys.pupil("skole-a", "s-2"))) == [b"d:2026-11-23", b"g", b"t"]


def test_late_marks_do_not_ask_for_a_notice(client, rt, platform):
    accept_all(platform)
    marks = [{"student_id": "s-3", "status": "late", "documented": False, "minutes": 5}]
    post_event(client, "attendance.register", register(marks=marks))
    run_worker(rt)
    at(rt, OSLO_MIDNIGHT_FRIDAY)
    assert sent(platform) == []


def test_lesson_by_lesson_registers_give_one_task_counting_lessons(client, rt, platform):
    accept_all(platform)
    for n in (1, 2, 3):
        marks = [{"student_id": "s-2", "status": "absent" if n < 3 else "present", "documented": False}]
        lesson = {"id": f"L{n}", "subject": "Matematikk", "start": "08:30", "end": "09:15"}
        post_event(client, "attendance.register", register(marks=marks, lesson=lesson))
    run_worker(rt)
    at(rt, OSLO_MIDNIGHT_FRIDAY)
    by_rule = {t["rule_id"]: t for t in sent(platform, "tasks")}
    assert sorted(by_rule) == ["absence.notice_missing", "absence.single_lessons"]  # present in L3: single lessons
    assert "(2 timer)" in by_rule["absence.notice_missing"]["body"]


def test_deadline_counts_school_days_across_the_weekend_and_a_break(client, rt, platform):
    """Absence Tue 3 Nov: school days Wed 4, Thu 5, (Fri 6 is the school's day off), Mon 9 → due Tue 10 at 00:00."""
    accept_all(platform)
    post_event(client, "attendance.register", register(day="2026-11-03"))
    run_worker(rt)
    at(rt, datetime(2026, 11, 9, 22, 59, tzinfo=timezone.utc))
    assert sent(platform) == []
    at(rt, datetime(2026, 11, 9, 23, 0, tzinfo=timezone.utc))
    (task,) = sent(platform, "tasks")
    assert task["due_date"] == "2026-11-11"


def test_absence_arriving_after_its_deadline_fires_at_once(client, rt, platform):
    accept_all(platform)
    rt.clock.set(datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc))
    post_event(client, "attendance.register", register(day="2026-11-23"))  # a backfill, two weeks late
    run_worker(rt)
    at(rt, rt.clock.now())
    (task,) = sent(platform, "tasks")
    assert task["due_date"] == "2026-12-09"  # not 30 Nov, which had passed: 2 school days from Mon 7 Dec
    assert len(sent(platform, "alerts")) == 1


def test_rule_disabled_in_the_plan_does_nothing(client, rt, platform):
    from dataclasses import replace

    from connector.rules.plan import merge_plan

    tenant = replace(rt.config.tenants["skole-a"], plan=merge_plan({"absence.notice_missing": {"enabled": False}}))
    rt.config = replace(rt.config, tenants={**rt.config.tenants, "skole-a": tenant})
    accept_all(platform)
    post_event(client, "attendance.register", register())
    run_worker(rt)
    at(rt, OSLO_MIDNIGHT_FRIDAY)
    assert sent(platform) == []


@pytest.mark.parametrize("tenant_plan", [{"absence.notice_missing": {"notice_school_days": 1, "task_school_days": 5}}])
def test_configured_deadlines_are_used(client, rt, platform, tenant_plan):
    accept_all(platform)
    post_event(client, "attendance.register", register())
    run_worker(rt)
    at(rt, datetime(2026, 11, 24, 22, 59, tzinfo=timezone.utc))
    assert sent(platform) == []
    at(rt, datetime(2026, 11, 24, 23, 0, tzinfo=timezone.utc))  # end of Tuesday, 1 school day after Monday
    (task,) = sent(platform, "tasks")
    assert task["due_date"] == "2026-12-01"  # Tuesday + 5 school days
    (alert,) = sent(platform, "alerts")
    assert "Fristen på 1 skoledag gikk ut tirsdag 24. november 2026" in task["body"]
