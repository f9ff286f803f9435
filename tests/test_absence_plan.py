"""Every rule of the absence action plan over a timeline of events, through webhook → worker → platform.

Absences are sent as documented unless the test is about notices, so ``absence.notice_missing`` stays out of the
way; each test reads what reached the platform by rule id.
"""
from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone

import pytest
import responses

from connector.engine import absence, scheduler
from connector.contract.terms import OSLO
from tests.support import PLATFORM, door_clock_at, post_event, run_worker


@pytest.fixture(autouse=True)
def accepting_platform(platform):
    for path in ("tasks", "alerts", "notes"):
        platform.add(responses.POST, f"{PLATFORM}/{path}", json={"id": f"remote-{path}"}, status=201)
    return platform


def at(rt, day: str, hour: int = 9):
    rt.clock.set(datetime.combine(date.fromisoformat(day), time(hour), tzinfo=OSLO))


def absent(client, rt, student, day, *, lesson=None, subject="Norsk", documented=True, status="absent", group="7A",
           minutes=None):
    at(rt, day)
    mark = {"student_id": student, "status": status, "documented": documented}
    if minutes is not None:
        mark["minutes"] = minutes
    data = {"date": day, "group_id": group, "marks": [mark]}
    if lesson:
        data["lesson"] = {"id": lesson, "subject": subject, "start": "08:30", "end": "09:15"}
    assert post_event(client, "attendance.register", data).status_code == 202
    run_worker(rt)


def present(client, rt, student, day, lesson, group="7A"):
    data = {"date": day, "group_id": group, "lesson": {"id": lesson, "subject": "Engelsk"},
            "marks": [{"student_id": student, "status": "present", "documented": False}]}
    post_event(client, "attendance.register", data)
    run_worker(rt)


def sweep(rt, moment: datetime | None = None):
    if moment:
        rt.clock.set(moment)
    scheduler.sweep(rt)
    run_worker(rt)


def sent(platform, rule_id=None, kind=None):
    out = []
    for call in platform.calls:
        body = json.loads(call.request.body)
        body["kind"] = call.request.url.rsplit("/", 1)[1][:-1]
        if (rule_id is None or body["rule_id"] == rule_id) and (kind is None or body["kind"] == kind):
            out.append(body)
    return out


def update_task(client, rt, ref, *, status="completed", outcome=None, completed_at=None):
    data = {"external_ref": ref, "status": status}
    if outcome:
        data["outcome"] = outcome
    if completed_at:
        data["completed_at"] = completed_at
    with door_clock_at(client, completed_at):
        assert post_event(client, "task.updated", data).status_code == 202
    run_worker(rt)


def set_plan(rt, **rules):
    """Override plan settings of ``skole-a``, on top of earlier overrides in the same test."""
    from dataclasses import replace

    from connector.rules.plan import merge_plan

    overrides = getattr(rt, "plan_overrides", {})
    for rule_id, settings in rules.items():
        overrides[rule_id] = {**overrides.get(rule_id, {}), **settings}
    rt.plan_overrides = overrides
    tenant = rt.config.tenants["skole-a"]
    tenant = replace(tenant, plan=merge_plan(overrides))
    rt.config = replace(rt.config, tenants={**rt.config.tenants, "skole-a": tenant})


MONDAYS = ["2026-11-02", "2026-11-09", "2026-11-16"]
OFF = {"same_weekday_count": 50, "same_subject_count": 50, "occasion_count": 50, "increase_min_rate": 1.0}


def only(rt, kind, **extra):
    """Switch the other kinds of pattern off, so a test sees the one it is about (and settings are exercised)."""
    keep = {"weekday": "same_weekday_count", "subject": "same_subject_count", "occasions": "occasion_count",
            "increasing": "increase_min_rate"}[kind]
    settings = {k: v for k, v in OFF.items() if k != keep}
    set_plan(rt, **{"absence.pattern": {**settings, **extra}})


# --- absence.pattern -------------------------------------------------------------------------------------------


def test_three_absences_on_the_same_weekday_open_one_conversation_task_and_inform_the_leader(client, rt, platform):
    only(rt, "weekday")
    absent(client, rt, "s-1", MONDAYS[0])
    absent(client, rt, "s-1", MONDAYS[1])
    assert sent(platform, "absence.pattern") == []
    absent(client, rt, "s-1", MONDAYS[2])
    (task,) = sent(platform, "absence.pattern", "task")
    (alert,) = sent(platform, "absence.pattern", "alert")
    assert task["assignee"] == {"role": "contact_teacher", "id": "u-kl-7a"}
    assert task["due_date"] == "2026-11-23"  # 5 school days after Mon 16 Nov
    assert "3 fravær på mandager de siste 30 skoledagene (2. nov, 9. nov og 16. nov)" in task["body"]
    assert "samtale med elev og foresatte" in task["body"]
    assert "kartlegger relasjonene" in task["body"]
    assert alert["recipient"] == {"role": "nearest_leader", "id": "u-leder"}
    assert task["case_id"]


def test_absences_on_different_weekdays_are_not_a_weekday_pattern(client, rt, platform):
    only(rt, "weekday")
    for day in ["2026-11-02", "2026-11-10", "2026-11-18"]:  # Mon, Tue, Wed
        absent(client, rt, "s-1", day)
    assert sent(platform, "absence.pattern") == []


def test_a_configured_weekday_count_of_two_fires_on_the_second(client, rt, platform):
    only(rt, "weekday", same_weekday_count=2)
    absent(client, rt, "s-1", MONDAYS[0])
    absent(client, rt, "s-1", MONDAYS[1])
    assert len(sent(platform, "absence.pattern", "task")) == 1


def test_same_weekday_outside_the_window_does_not_count(client, rt, platform):
    only(rt, "weekday", repeat_window_school_days=8)
    for day in MONDAYS:  # 2 Nov is more than 8 school days before 16 Nov
        absent(client, rt, "s-1", day)
    assert sent(platform, "absence.pattern") == []


def test_three_absences_in_one_subject_are_a_pattern(client, rt, platform):
    only(rt, "subject")
    for day, lesson in [("2026-11-03", "L1"), ("2026-11-11", "L4"), ("2026-11-19", "L2")]:
        absent(client, rt, "s-1", day, lesson=lesson, subject="Matematikk")
    (task,) = sent(platform, "absence.pattern", "task")
    assert "3 fravær i Matematikk" in task["body"]


def test_four_separate_occasions_in_twenty_school_days_are_a_pattern_but_a_long_flu_is_one(client, rt, platform):
    only(rt, "occasions")
    for day in ["2026-11-10", "2026-11-11", "2026-11-12"]:  # one flu: a single occasion
        absent(client, rt, "s-1", day)
    absent(client, rt, "s-1", "2026-11-17")
    absent(client, rt, "s-1", "2026-11-19")
    assert sent(platform, "absence.pattern") == []
    absent(client, rt, "s-1", "2026-11-24")
    (task,) = sent(platform, "absence.pattern", "task")
    assert "4 separate fraværsperioder de siste 20 skoledagene" in task["body"]


def test_increasing_absence_needs_double_the_rate_and_two_occasions(client, rt, platform):
    only(rt, "increasing")
    absent(client, rt, "s-1", "2026-11-18")  # one sick day: 5 %, not a trend
    assert sent(platform, "absence.pattern") == []
    absent(client, rt, "s-1", "2026-11-24")
    (task,) = sent(platform, "absence.pattern", "task")
    assert "økende fravær: 10 % de siste 20 skoledagene, mot 0 % de 20 skoledagene før" in task["body"]


def test_increasing_is_not_found_when_the_rate_was_already_as_high(client, rt, platform):
    only(rt, "increasing")
    history = {"d:2026-10-07": 'day=a1', "d:2026-10-14": 'day=a1'}  # 2 in the 20 days before
    rt.redis.hset(rt.keys.pupil("skole-a", "s-1"), mapping=history)
    for day in ["2026-11-18", "2026-11-24"]:  # 2 in the last 20: the same rate, not double
        absent(client, rt, "s-1", day)
    assert sent(platform, "absence.pattern") == []


def test_increasing_with_a_configured_factor(client, rt, platform):
    only(rt, "increasing", increase_factor=1.0)
    history = {"d:2026-10-07": 'day=a1', "d:2026-10-14": 'day=a1'}
    rt.redis.hset(rt.keys.pupil("skole-a", "s-1"), mapping=history)
    for day in ["2026-11-18", "2026-11-24"]:
        absent(client, rt, "s-1", day)
    assert len(sent(platform, "absence.pattern", "task")) == 1


def test_while_the_task_is_open_a_new_kind_of_pattern_is_one_note_and_nothing_more(client, rt, platform):
    only(rt, "weekday")
    for day in MONDAYS:
        absent(client, rt, "s-1", day)
    (task,) = sent(platform, "absence.pattern", "task")
    (first,) = sent(platform, "absence.pattern", "note")  # each kind found is one note on the task's case
    assert first["case_id"] == task["case_id"] and "3 fravær på mandager" in first["body"]
    set_plan(rt, **{"absence.pattern": {"occasion_count": 4}})
    absent(client, rt, "s-1", "2026-11-23")  # a fourth Monday: also four separate occasions now, a new kind
    (note,) = [n for n in sent(platform, "absence.pattern", "note") if n != first]
    assert note["case_id"] == task["case_id"]
    assert "4 separate fraværsperioder" in note["body"]
    absent(client, rt, "s-1", "2026-11-30")  # a fifth Monday: both kinds already noted
    assert len(sent(platform, "absence.pattern", "task")) == 1
    assert len(sent(platform, "absence.pattern", "note")) == 2


def test_present_marks_never_make_tasks(client, rt, platform):
    day = date(2026, 10, 5)
    for _ in range(40):
        day = rt.config.tenants["skole-a"].calendar.next_school_day(day + timedelta(days=1))
        at(rt, day.isoformat())
        post_event(client, "attendance.register", {"date": day.isoformat(), "group_id": "7A", "marks": [
            {"student_id": f"s-{n}", "status": "present", "documented": False} for n in range(25)]})
    run_worker(rt)
    sweep(rt, datetime(2026, 12, 20, 12, tzinfo=timezone.utc))
    assert len(platform.calls) == 0
    assert rt.redis.zcard(rt.keys.due) == 0


def test_pattern_texts_in_nynorsk_and_english(client, rt, platform):
    from dataclasses import replace

    only(rt, "weekday")
    for language, expected in [("nn", "3 fråvær på måndagar"), ("en", "3 absences on Mondays")]:
        tenant = replace(rt.config.tenants["skole-a"], language=language)
        rt.config = replace(rt.config, tenants={**rt.config.tenants, "skole-a": tenant})
        student = f"s-{language}"
        for day in MONDAYS:
            absent(client, rt, student, day)
        (task,) = [t for t in sent(platform, "absence.pattern", "task") if t["student_id"] == student]
        assert expected in task["body"]


# --- absence.persistent and absence.external_meeting ------------------------------------------------------------


def pattern_task(client, rt, platform, student="s-1"):
    only(rt, "weekday")
    for day in MONDAYS:
        absent(client, rt, student, day)
    (task,) = [t for t in sent(platform, "absence.pattern", "task") if t["student_id"] == student]
    return task


def test_absence_after_the_conversation_calls_a_new_meeting_with_the_external_help_agenda(client, rt, platform):
    task = pattern_task(client, rt, platform)
    update_task(client, rt, task["external_ref"], completed_at="2026-11-18T14:00:00+01:00")
    absent(client, rt, "s-1", "2026-11-20", documented=False)
    assert sent(platform, "absence.persistent") == []
    absent(client, rt, "s-1", "2026-11-25", documented=False)
    (meeting,) = sent(platform, "absence.persistent", "task")
    assert meeting["assignee"]["role"] == "resource_person"
    assert meeting["priority"] == "high"
    assert meeting["due_date"] == "2026-12-09"  # 15 school days after Wed 18 Nov
    for words in ("skolehelsetjenesten", "konsultasjonsteamet", "PPT", "barnevernstjenesten",
                  "referat", "som hovedregel ja", "innen tre uker"):
        assert words in meeting["body"]
    assert sent(platform, "absence.pattern", "task") == [task]  # the pattern rule left it to the watch


def test_persistence_is_not_judged_before_a_conversation_is_completed(client, rt, platform):
    pattern_task(client, rt, platform)
    for day in ["2026-11-18", "2026-11-20", "2026-11-25"]:
        absent(client, rt, "s-1", day, documented=False)
    assert sent(platform, "absence.persistent") == []


def test_the_watch_counts_from_the_meeting_date_not_from_when_the_update_arrived(client, rt, platform):
    task = pattern_task(client, rt, platform)
    at(rt, "2026-12-14")
    update_task(client, rt, task["external_ref"], completed_at="2026-11-18T14:00:00+01:00")  # reported late
    for day in ["2026-11-20", "2026-11-25"]:  # backfilled registers, sent on 14 Dec
        post_event(client, "attendance.register", {"date": day, "group_id": "7A", "marks": [
            {"student_id": "s-1", "status": "absent", "documented": False}]})
    run_worker(rt)
    (meeting,) = sent(platform, "absence.persistent", "task")
    assert meeting["due_date"] == "2026-12-16"  # the 3 weeks had passed: 2 school days after it was found (14 Dec)


def test_a_low_absence_rate_after_the_conversation_asks_for_nothing(client, rt, platform):
    task = pattern_task(client, rt, platform)
    update_task(client, rt, task["external_ref"], completed_at="2026-11-18T14:00:00+01:00")
    absent(client, rt, "s-1", "2026-11-20", lesson="L1", documented=False)  # one lesson: far below 10 %
    assert sent(platform, "absence.persistent") == []


def test_configured_persistence_rate(client, rt, platform):
    set_plan(rt, **{"absence.persistent": {"min_rate": 0.05, "undocumented_occasions": 9}})
    task = pattern_task(client, rt, platform)
    update_task(client, rt, task["external_ref"], completed_at="2026-11-18T14:00:00+01:00")
    absent(client, rt, "s-1", "2026-11-20")  # 1 day of 15 = 6.7 %
    assert len(sent(platform, "absence.persistent", "task")) == 1


def test_the_meeting_repeats_every_three_weeks_while_it_persists_and_stops_when_resolved(client, rt, platform):
    task = pattern_task(client, rt, platform)
    update_task(client, rt, task["external_ref"], completed_at="2026-11-18T14:00:00+01:00")
    absent(client, rt, "s-1", "2026-11-20", documented=False)
    absent(client, rt, "s-1", "2026-11-25", documented=False)
    (first,) = sent(platform, "absence.persistent", "task")
    update_task(client, rt, first["external_ref"], completed_at="2026-12-02T10:00:00+01:00")
    absent(client, rt, "s-1", "2026-12-04", documented=False)
    absent(client, rt, "s-1", "2026-12-08", documented=False)
    second = [t for t in sent(platform, "absence.persistent", "task") if t["external_ref"] != first["external_ref"]]
    assert len(second) == 1
    assert second[0]["due_date"] == "2027-01-07"  # 15 school days after 2 Dec, across the Christmas break
    update_task(client, rt, second[0]["external_ref"], outcome="resolved", completed_at="2026-12-15T10:00:00+01:00")
    absent(client, rt, "s-1", "2026-12-16", documented=False)
    absent(client, rt, "s-1", "2026-12-18", documented=False)
    assert len(sent(platform, "absence.persistent", "task")) == 2


def test_external_bodies_involved_give_the_principal_a_meeting_task(client, rt, platform):
    task = pattern_task(client, rt, platform)
    update_task(client, rt, task["external_ref"], completed_at="2026-11-18T14:00:00+01:00")
    absent(client, rt, "s-1", "2026-11-20", documented=False)
    absent(client, rt, "s-1", "2026-11-25", documented=False)
    (meeting,) = sent(platform, "absence.persistent", "task")
    update_task(client, rt, meeting["external_ref"], outcome="external_involved",
                completed_at="2026-12-02T10:00:00+01:00")
    (external,) = sent(platform, "absence.external_meeting", "task")
    assert external["assignee"] == {"role": "principal", "id": "u-rektor"}
    assert external["due_date"] == "2026-12-16"  # 10 school days after Wed 2 Dec
    assert "foresatte, elev, kontaktlærer og skoleledelsen" in external["body"]
    update_task(client, rt, meeting["external_ref"], outcome="external_involved",
                completed_at="2026-12-02T10:00:00+01:00")  # redelivered under a new id
    assert len(sent(platform, "absence.external_meeting", "task")) == 1


# --- absence.school_refusal -------------------------------------------------------------------------------------


def test_a_notice_reporting_school_refusal_alerts_the_contact_teacher_at_once(client, rt, platform):
    at(rt, "2026-11-23", 7)
    post_event(client, "absence.notice", {"student_id": "s-1", "from_date": "2026-11-23", "to_date": "2026-11-23",
                                          "reason": "Vil ikke på skolen", "reason_code": "school_refusal"})
    run_worker(rt)
    (alert,) = sent(platform, "absence.school_refusal", "alert")
    (task,) = sent(platform, "absence.school_refusal", "task")
    assert alert["severity"] == "urgent"
    assert alert["recipient"]["role"] == "contact_teacher"
    assert task["due_date"] == "2026-11-30"
    assert "må presses for å gå på skolen" in alert["body"]


def test_a_message_classified_as_refusal_is_handled_like_a_notice_and_a_second_report_is_a_note(client, rt, platform):
    from connector.engine.consequences import Consequences

    tenant = rt.config.tenants["skole-a"]
    for message_id, created in [("m-1", "2026-11-23T07:10:00+01:00"), ("m-2", "2026-11-25T07:05:00+01:00")]:
        found = Consequences.start(rt, "skole-a", "generic")
        absence.MESSAGE_HANDLERS["school_refusal"](rt, tenant, {
            "type": "message.created", "message_id": message_id, "student_ids": ["s-1"], "created_at": created,
            "sender": {"id": "g-1", "role": "guardian"}, "recipients": [], "timestamp": created}, found)
        from connector.engine import outbox

        for action in found.write(rt):
            outbox.send(rt, "skole-a", action.external_ref)
    assert len(sent(platform, "absence.school_refusal", "alert")) == 2
    assert len(sent(platform, "absence.school_refusal", "task")) == 1
    (note,) = sent(platform, "absence.school_refusal", "note")
    assert "igjen onsdag 25. november 2026" in note["body"]


# --- absence.single_lessons -------------------------------------------------------------------------------------


def test_single_lesson_absence_on_a_day_at_school_asks_the_teacher_to_contact_the_home(client, rt, platform):
    absent(client, rt, "s-1", "2026-11-24", lesson="L3", documented=False)
    present(client, rt, "s-1", "2026-11-24", "L1")
    sweep(rt, datetime(2026, 11, 24, 14, 59, tzinfo=timezone.utc))
    assert sent(platform, "absence.single_lessons") == []
    sweep(rt, datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc))  # 16:00 in Oslo
    (task,) = sent(platform, "absence.single_lessons", "task")
    assert task["due_date"] == "2026-12-01"
    assert "kontakter hjemmet og drøfter fraværet" in task["body"]


def test_a_whole_day_away_or_a_documented_lesson_is_not_single_lesson_absence(client, rt, platform):
    absent(client, rt, "s-1", "2026-11-24", documented=False)
    absent(client, rt, "s-2", "2026-11-24", lesson="L3", documented=True)
    present(client, rt, "s-2", "2026-11-24", "L1")
    absent(client, rt, "s-3", "2026-11-24", lesson="L3", documented=False, group="7B")  # 7B had no other lesson
    sweep(rt, datetime(2026, 11, 24, 16, 0, tzinfo=timezone.utc))
    assert sent(platform, "absence.single_lessons") == []


def test_documented_single_lessons_count_when_the_school_says_so(client, rt, platform):
    set_plan(rt, **{"absence.single_lessons": {"count_documented": True, "evaluate_at": "15:00"}})
    absent(client, rt, "s-2", "2026-11-24", lesson="L3", documented=True)
    present(client, rt, "s-2", "2026-11-24", "L1")
    sweep(rt, datetime(2026, 11, 24, 14, 0, tzinfo=timezone.utc))
    assert len(sent(platform, "absence.single_lessons", "task")) == 1


def test_one_open_single_lessons_task_per_pupil_then_notes_then_a_new_task_after_completion(client, rt, platform):
    for day in ["2026-11-24", "2026-11-25"]:
        absent(client, rt, "s-1", day, lesson="L3", documented=False)
        present(client, rt, "s-1", day, "L1")
        sweep(rt, datetime.combine(date.fromisoformat(day), time(17), tzinfo=OSLO))
    (task,) = sent(platform, "absence.single_lessons", "task")
    (note,) = sent(platform, "absence.single_lessons", "note")
    assert note["case_id"] == task["case_id"]
    update_task(client, rt, task["external_ref"])
    absent(client, rt, "s-1", "2026-11-26", lesson="L3", documented=False)
    present(client, rt, "s-1", "2026-11-26", "L1")
    sweep(rt, datetime(2026, 11, 26, 17, 0, tzinfo=OSLO))
    assert len(sent(platform, "absence.single_lessons", "task")) == 2


# --- absence.notice_missing: the same-day reminder ---------------------------------------------------------------


def test_same_day_reminder_when_the_school_turns_it_on(client, rt, platform):
    set_plan(rt, **{"absence.notice_missing": {"same_day_reminder": True, "same_day_reminder_time": "11:00"}})
    absent(client, rt, "s-1", "2026-11-24", documented=False)
    sweep(rt, datetime(2026, 11, 24, 9, 59, tzinfo=timezone.utc))
    assert sent(platform, "absence.notice_missing") == []
    sweep(rt, datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc))
    (alert,) = sent(platform, "absence.notice_missing", "alert")
    assert alert["title"] == "Barnet deres er registrert borte fra skolen i dag"
    # safe for a child who left home and never arrived: say it plainly and ask them to call at once
    assert "Barnet deres er registrert med fravær i dag, tirsdag 24. november 2026 (hele dagen)" in alert["body"]
    assert "Visste dere ikke at barnet er borte fra skolen, ring skolen med en gang." in alert["body"]
    assert "«syk» eller «tannlege»" in alert["body"]
    assert alert["recipient"] == {"role": "guardian"}


def test_same_day_reminder_is_off_by_default_and_skipped_for_a_backfill(client, rt, platform):
    absent(client, rt, "s-1", "2026-11-24", documented=False)
    sweep(rt, datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc))
    assert sent(platform, "absence.notice_missing") == []
    set_plan(rt, **{"absence.notice_missing": {"same_day_reminder": True}})
    at(rt, "2026-11-26")
    post_event(client, "attendance.register", {"date": "2026-11-25", "group_id": "7A", "marks": [
        {"student_id": "s-2", "status": "absent", "documented": False}]})
    run_worker(rt)
    sweep(rt, datetime(2026, 11, 26, 12, tzinfo=timezone.utc))
    assert [a for a in sent(platform, "absence.notice_missing") if a["student_id"] == "s-2"] == []


# --- preventive routines ---------------------------------------------------------------------------------------


def one_tenant(rt):
    from dataclasses import replace

    rt.config = replace(rt.config, tenants={"skole-a": rt.config.tenants["skole-a"]})


def test_autumn_review_and_development_talk_appear_on_the_school_calendar_once(client, rt, platform):
    one_tenant(rt)
    at(rt, "2026-08-01")
    assert absence.schedule_routines(rt) == 3  # review, autumn talk, spring talk
    assert absence.schedule_routines(rt) == 3  # still pending: set again, not duplicated
    assert rt.redis.zcard(rt.keys.due) == 3
    sweep(rt, datetime(2026, 8, 31, 23, 59, tzinfo=OSLO))
    assert sent(platform, "prevention.expectations_review") == []
    sweep(rt, datetime(2026, 9, 1, 0, 0, tzinfo=OSLO))  # 10 school days before 15 September
    reviews = sent(platform, "prevention.expectations_review", "task")
    assert sorted((t.get("group_id") or "", t["assignee"]["role"]) for t in reviews) == [
        ("", "principal"), ("7A", "contact_teacher"), ("7B", "contact_teacher")]
    assert {t["due_date"] for t in reviews} == {"2026-09-15"}
    assert all(t["student_id"] is None for t in reviews)
    assert absence.schedule_routines(rt) == 2  # the review is done for this year
    sweep(rt, datetime(2026, 11, 1, 12, tzinfo=timezone.utc))  # 10 school days before 15 Nov
    talks = sent(platform, "prevention.development_talk", "task")
    assert sorted(t["group_id"] for t in talks) == ["7A", "7B"]
    assert {t["due_date"] for t in talks} == {"2026-11-15"}
    assert len(sent(platform, "prevention.expectations_review", "task")) == 3


def test_a_school_starting_in_november_does_not_get_septembers_routine(client, rt):
    one_tenant(rt)
    at(rt, "2026-11-23")
    assert absence.schedule_routines(rt) == 1  # only the spring development talk is still ahead


def test_configured_routine_dates(client, rt, platform):
    set_plan(rt, **{"prevention.expectations_review": {"due_month_day": "10-20", "lead_school_days": 2},
                    "prevention.development_talk": {"enabled": False}})
    one_tenant(rt)
    at(rt, "2026-08-01")
    assert absence.schedule_routines(rt) == 1
    sweep(rt, datetime(2026, 10, 15, 23, 0, tzinfo=timezone.utc))  # Fri 16 Oct: 2 school days before Tue 20
    assert {t["due_date"] for t in sent(platform, "prevention.expectations_review")} == {"2026-10-20"}


def test_a_pupil_who_joins_mid_year_gets_the_information_routine(client, rt, platform):
    post_event(client, "student.enrolled", {"student_id": "s-new", "group_id": "7B", "date": "2027-01-11"})
    post_event(client, "student.enrolled", {"student_id": "s-first", "group_id": "7B", "date": "2026-08-13"})
    run_worker(rt)
    (task,) = sent(platform, "prevention.new_student_info", "task")
    assert task["student_id"] == "s-new"
    assert task["assignee"] == {"role": "contact_teacher", "id": "u-kl-7b"}
    assert task["due_date"] == "2027-01-18"


# --- the absence limit (upper secondary) ------------------------------------------------------------------------


def test_absence_limit_warns_at_five_percent_then_tasks_at_ten_once_per_term(client, rt, platform):
    set_plan(rt, **{"absence_limit.warning": {"enabled": True, "planned_hours": {"Matematikk": 15}},
                    "absence_limit.reached": {"enabled": True}})
    absent(client, rt, "s-1", "2026-11-02", lesson="L1", subject="Matematikk", documented=False)  # 45 min = 5 %
    warnings = sent(platform, "absence_limit.warning", "alert")
    assert sorted(a["recipient"]["role"] for a in warnings) == ["guardian", "student"]
    assert "5 %" in warnings[0]["title"]
    absent(client, rt, "s-1", "2026-11-03", lesson="L1", subject="Norsk", documented=False)  # another subject
    absent(client, rt, "s-1", "2026-11-04", lesson="L1", subject="Matematikk", documented=True)  # documented
    assert len(sent(platform, "absence_limit.warning")) == 2
    absent(client, rt, "s-1", "2026-11-05", lesson="L1", subject="Matematikk", documented=False)  # 90 min = 10 %
    (task,) = sent(platform, "absence_limit.reached", "task")
    assert task["assignee"]["role"] == "contact_teacher"
    assert "10 %" in task["title"]
    assert len(sent(platform, "absence_limit.warning")) == 4  # 8 % was crossed on the way: its warning too
    absent(client, rt, "s-1", "2026-11-10", lesson="L1", subject="Matematikk", documented=False)
    assert len(sent(platform, "absence_limit.reached")) == 1


def test_documenting_an_absence_later_lowers_the_count(client, rt, platform):
    set_plan(rt, **{"absence_limit.warning": {"enabled": True, "planned_hours": {"Matematikk": 15}}})
    absent(client, rt, "s-1", "2026-11-02", lesson="L1", subject="Matematikk", documented=False)
    absent(client, rt, "s-1", "2026-11-02", lesson="L1", subject="Matematikk", documented=True)
    assert rt.redis.hget(rt.keys.pupil("skole-a", "s-1"), "h:2026-27:Matematikk") == b"0"


def test_the_absence_limit_is_off_for_schools_that_do_not_turn_it_on(client, rt, platform):
    for day in ["2026-11-02", "2026-11-03", "2026-11-04"]:
        absent(client, rt, "s-1", day, lesson="L1", subject="Matematikk", documented=False)
    assert sent(platform, "absence_limit.warning") == [] and sent(platform, "absence_limit.reached") == []


# --- history -----------------------------------------------------------------------------------------------------


def test_history_older_than_the_retention_is_trimmed_when_the_pupil_is_next_seen(client, rt, platform):
    key = rt.keys.pupil("skole-a", "s-1")
    rt.redis.hset(key, mapping={"d:2024-11-04": 'day=a1', "d:2025-09-01": 'day=a1', "g": "7A"})
    absent(client, rt, "s-1", "2026-11-02")
    fields = sorted(f.decode() for f in rt.redis.hkeys(key))
    assert "d:2024-11-04" not in fields
    assert "d:2025-09-01" in fields and "d:2026-11-02" in fields  # the previous and the current school year


def test_a_day_is_stored_as_short_lesson_keys_and_codes_whatever_the_platforms_lesson_ids(client, rt, platform):
    """Two lessons with GUID ids: each kept under 6 characters of its id's hash; a correction to present removes
    that lesson, and the last one the day. A curriculum subject is kept as a letter ("Norsk": ``*N``), any other
    name as it is."""
    from connector.rules.history import decode_day, lesson_key

    first, second = "4f1c2a9e-7d3b-4c61-9a0f-2b8e5d7c1a30", "4f1c2a9e-7d3b-4c61-9a0f-2b8e5d7c1a31"
    absent(client, rt, "s-1", "2026-11-02", lesson=first, subject="Mat; og | helse", documented=False)
    absent(client, rt, "s-1", "2026-11-02", lesson=second, subject="Norsk", documented=True)
    raw = rt.redis.hget(rt.keys.pupil("skole-a", "s-1"), "d:2026-11-02")
    one, two = lesson_key({"id": first}), lesson_key({"id": second})
    assert len(one) == len(two) == 6 and one != two
    assert raw.decode() == ";".join(sorted([f"{one}=a0|Mat, og / helse|45", f"{two}=a1|*N|45"]))
    assert decode_day(raw) == {one: "a0|Mat, og / helse|45", two: "a1|*N|45"}
    present(client, rt, "s-1", "2026-11-02", first)
    assert rt.redis.hget(rt.keys.pupil("skole-a", "s-1"), "d:2026-11-02").decode() == f"{two}=a1|*N|45"
    present(client, rt, "s-1", "2026-11-02", second)
    assert rt.redis.hget(rt.keys.pupil("skole-a", "s-1"), "d:2026-11-02") is None


def test_a_register_redelivered_under_a_new_webhook_id_creates_nothing_new(client, rt, platform):
    for day in MONDAYS:
        absent(client, rt, "s-1", day)
    calls = len(platform.calls)
    assert len(sent(platform, "absence.pattern", "task")) == 1
    for day in MONDAYS:  # the platform resends the same registers under new webhook ids
        absent(client, rt, "s-1", day)
    assert len(platform.calls) == calls


# --- one open task per pupil for the missing notices, and settings beyond the defaults ----------------------------


def test_missing_notices_on_several_days_give_one_task_and_notes_on_its_case(client, rt, platform):
    for day in ["2026-11-23", "2026-11-24"]:
        absent(client, rt, "s-1", day, documented=False)
    sweep(rt, datetime(2026, 11, 30, 12, tzinfo=timezone.utc))
    (task,) = sent(platform, "absence.notice_missing", "task")
    (note,) = sent(platform, "absence.notice_missing", "note")
    assert note["case_id"] == task["case_id"]
    assert len(sent(platform, "absence.notice_missing", "alert")) == 2  # each day's reminder to the guardians
    update_task(client, rt, task["external_ref"])
    absent(client, rt, "s-1", "2026-12-01", documented=False)
    sweep(rt, datetime(2026, 12, 7, 12, tzinfo=timezone.utc))
    assert len(sent(platform, "absence.notice_missing", "task")) == 2


def test_configured_external_meeting_deadline_and_responsible(client, rt, platform):
    set_plan(rt, **{"absence.external_meeting": {"task_school_days": 3, "responsible": "nearest_leader"}})
    task = pattern_task(client, rt, platform)
    update_task(client, rt, task["external_ref"], outcome="external_involved", completed_at="2026-11-18T14:00:00+01:00")
    (external,) = sent(platform, "absence.external_meeting", "task")
    assert external["due_date"] == "2026-11-23"
    assert external["assignee"] == {"role": "nearest_leader", "id": "u-leder"}


def test_configured_school_refusal_deadline(client, rt, platform):
    set_plan(rt, **{"absence.school_refusal": {"task_school_days": 1}})
    at(rt, "2026-11-23", 7)
    post_event(client, "absence.notice", {"student_id": "s-1", "from_date": "2026-11-23", "to_date": "2026-11-23",
                                          "reason": "-", "reason_code": "school_refusal"})
    run_worker(rt)
    (task,) = sent(platform, "absence.school_refusal", "task")
    assert task["due_date"] == "2026-11-24"


def test_configured_new_student_deadline_and_switching_it_off(client, rt, platform):
    set_plan(rt, **{"prevention.new_student_info": {"task_school_days": 2}})
    post_event(client, "student.enrolled", {"student_id": "s-new", "group_id": "7B", "date": "2027-01-11"})
    run_worker(rt)
    (task,) = sent(platform, "prevention.new_student_info", "task")
    assert task["due_date"] == "2027-01-13"
    set_plan(rt, **{"prevention.new_student_info": {"enabled": False}})
    post_event(client, "student.enrolled", {"student_id": "s-other", "group_id": "7B", "date": "2027-01-12"})
    run_worker(rt)
    assert len(sent(platform, "prevention.new_student_info", "task")) == 1


def test_a_longer_configured_retention_keeps_older_years(client, rt, platform):
    set_plan(rt, **{"history": {"retention_school_years": 3}})
    key = rt.keys.pupil("skole-a", "s-1")
    rt.redis.hset(key, mapping={"d:2024-11-04": 'day=a1', "d:2023-11-06": 'day=a1'})
    absent(client, rt, "s-1", "2026-11-02")
    fields = sorted(f.decode() for f in rt.redis.hkeys(key))
    assert "d:2024-11-04" in fields and "d:2023-11-06" not in fields


def test_each_warning_threshold_once_and_configured_thresholds(client, rt, platform):
    set_plan(rt, **{"absence_limit.warning": {"enabled": True, "planned_hours": {"Matematikk": 25},
                                              "warning_thresholds": [0.05, 0.08]},
                    "absence_limit.reached": {"enabled": True, "limit": 0.11}})
    days = ["2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"]
    shares = []
    for day in days:  # 45 minutes of 1,500 each: 3 %, 6 %, 9 %, 12 %
        absent(client, rt, "s-1", day, lesson="L1", subject="Matematikk", documented=False)
        shares.append((len(sent(platform, "absence_limit.warning")), len(sent(platform, "absence_limit.reached"))))
    assert shares == [(0, 0), (2, 0), (4, 0), (4, 1)]
    titles = [a["title"] for a in sent(platform, "absence_limit.warning", "alert")]
    assert "6 %" in titles[0] and "9 %" in titles[2]
    (task,) = sent(platform, "absence_limit.reached", "task")
    assert "Grensen er 11 %" in task["body"]


# --- guardians' messages reach the absence plan through the classifier -------------------------------------------


def guardian_message(client, rt, message_id, body, category=None, created="2026-11-23T07:40:00+01:00"):
    data = {"message_id": message_id, "sender": {"id": "g-1", "role": "guardian"},
            "recipients": [{"id": "u-kl-7a", "role": "contact_teacher"}], "student_ids": ["s-1"],
            "created_at": created, "body": body}
    if category:
        data["category"] = category
    post_event(client, "message.created", data)
    run_worker(rt)


def test_a_guardians_message_about_refusal_alerts_the_contact_teacher_whether_or_not_the_platform_says_so(
        client, rt, platform):
    guardian_message(client, rt, "m-1", "Vi får ikke Sofie ut døra om morgenen lenger. Hun ber om å slippe skolen.")
    guardian_message(client, rt, "m-2", "(tekst)", category="school_refusal")
    alerts = sent(platform, "absence.school_refusal", "alert")
    assert len(alerts) == 2 and {a["severity"] for a in alerts} == {"urgent"}
    assert len(sent(platform, "absence.school_refusal", "task")) == 1


def test_a_guardians_message_reporting_absence_counts_as_the_notice(client, rt, platform):
    absent(client, rt, "s-1", "2026-11-23", documented=False)
    guardian_message(client, rt, "m-3", "Hei, Jonas har feber og blir hjemme i dag. Mvh pappa")
    sweep(rt, datetime(2026, 12, 1, 12, tzinfo=timezone.utc))
    assert sent(platform, "absence.notice_missing") == []
    key = rt.keys.notices("skole-a", "s-1")
    assert b"feber" not in b"".join(rt.redis.hvals(key)) and b"feber" not in b"".join(rt.redis.hkeys(key))


def test_a_message_that_only_looks_like_illness_is_no_notice(client, rt, platform):
    absent(client, rt, "s-1", "2026-11-23", documented=False)
    guardian_message(client, rt, "m-4", "Syk av latter av forestillingen i går, for en flott kveld!")
    sweep(rt, datetime(2026, 12, 1, 12, tzinfo=timezone.utc))
    assert len(sent(platform, "absence.notice_missing", "task")) == 1


# --- a guardian's message covers the days it speaks of; a late notice closes what it covers ------------------------


def test_a_message_for_friday_and_monday_sent_on_wednesday_covers_those_days_and_no_others(client, rt, platform):
    at(rt, "2026-11-25", 12)
    guardian_message(client, rt, "m-5",
                     "Vi melder fravær for Liam fredag og mandag, han er med på begravelse i Bergen.",
                     created="2026-11-25T11:50:00+01:00")
    assert rt.redis.hgetall(rt.keys.notices("skole-a", "s-1")) == {b"2026-11-27|2026-11-30": b""}
    for day in ["2026-11-26", "2026-11-27", "2026-11-30"]:  # Thursday was not reported
        absent(client, rt, "s-1", day, documented=False)
    sweep(rt, datetime(2026, 12, 8, 12, tzinfo=timezone.utc))
    (alert,) = sent(platform, "absence.notice_missing", "alert")
    (task,) = sent(platform, "absence.notice_missing", "task")
    assert "26. nov" in alert["title"] and "26. nov" in task["title"]
    assert sent(platform, "absence.notice_missing", "note") == []  # nothing about Friday or Monday


def test_a_message_sent_on_friday_evening_about_tomorrow_covers_monday(client, rt, platform):
    at(rt, "2026-11-27", 21)
    guardian_message(client, rt, "m-6", "Liam blir heime i morgon, han er sjuk.", created="2026-11-27T20:40:00+01:00")
    assert rt.redis.hkeys(rt.keys.notices("skole-a", "s-1")) == [b"2026-11-30|2026-11-30"]


def test_a_late_notice_after_the_reminder_is_a_note_on_the_task_and_closes_the_follow_up(client, rt, platform):
    absent(client, rt, "s-1", "2026-11-23", documented=False)
    sweep(rt, datetime(2026, 11, 27, 7, tzinfo=timezone.utc))  # Friday: the deadline passed on Thursday
    (task,) = sent(platform, "absence.notice_missing", "task")
    assert len(sent(platform, "absence.notice_missing", "alert")) == 1

    at(rt, "2026-11-27", 10)
    guardian_message(client, rt, "m-7", "Beklager! Hun var syk på mandag, glemte å melde. Mvh mamma",
                     created="2026-11-27T09:55:00+01:00")
    (note,) = sent(platform, "absence.notice_missing", "note")
    assert note["case_id"] == task["case_id"]
    assert note["body"].startswith("Foresatte har nå meldt fraværet 23. nov.")
    assert "syk" not in note["body"] and "glemte" not in note["body"]

    absent(client, rt, "s-1", "2026-12-01", documented=False)  # a further missing notice: a new task, not a note
    sweep(rt, datetime(2026, 12, 7, 12, tzinfo=timezone.utc))
    tasks = sent(platform, "absence.notice_missing", "task")
    assert len(tasks) == 2 and tasks[1]["case_id"] != task["case_id"]
    assert len(sent(platform, "absence.notice_missing", "note")) == 1


def test_a_late_notice_from_the_platform_names_its_reason_code_and_keeps_the_task_for_days_still_missing(
        client, rt, platform):
    for day in ["2026-11-23", "2026-11-24"]:
        absent(client, rt, "s-1", day, documented=False)
    sweep(rt, datetime(2026, 11, 30, 12, tzinfo=timezone.utc))
    (task,) = sent(platform, "absence.notice_missing", "task")
    notice = {"student_id": "s-1", "from_date": "2026-11-24", "to_date": "2026-11-24",
              "reason": "Tannlegetime i Tromsø", "reason_code": "medical"}
    assert post_event(client, "absence.notice", notice).status_code == 202
    run_worker(rt)
    note = sent(platform, "absence.notice_missing", "note")[-1]
    assert note["case_id"] == task["case_id"]
    assert note["body"] == ("Foresatte har nå meldt fraværet 24. nov (årsak: time hos lege, tannlege o.l.). "
                            "Fortsatt uten melding: 23. nov.")
    assert "Tromsø" not in note["body"]
    notice.update(from_date="2026-11-23", to_date="2026-11-23", reason_code="illness")
    post_event(client, "absence.notice", notice)
    run_worker(rt)
    closing = sent(platform, "absence.notice_missing", "note")[-1]
    assert "23. nov (årsak: sykdom)" in closing["body"] and "du kan lukke oppgaven" in closing["body"]
    absent(client, rt, "s-1", "2026-12-01", documented=False)
    sweep(rt, datetime(2026, 12, 7, 12, tzinfo=timezone.utc))
    assert len(sent(platform, "absence.notice_missing", "task")) == 2
