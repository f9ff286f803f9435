"""``connector replay``: a past period's events through the plan on a simulated clock, and the report of it.

The events are the bench generator's synthetic school (``bench/generator.py``), a few weeks of it. Live mode is
the worker's own path (``jobs.process_delivery`` per delivery, the scheduler's sweep and ``jobs.run_due`` for the
deadlines) against the platform's API mocked with ``responses``; the replay must write what live mode wrote, and
nothing at all.
"""
from __future__ import annotations

import gzip
import json
import re
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import responses

from bench.generator import SchoolOwner
from connector import cli
from connector.adapters.generic.adapter import contract_body
from connector.contract.actions import Action
from connector.engine import absence, jobs, replay, replay_report, runtime, scheduler
from connector.engine.clock import FixedClock
from connector.engine.runtime import Runtime
from tests.support import PLATFORM, REDIS_URL, cleanup, run_worker

EXAMPLE_EVENTS = Path(cli.__file__).parent / "example" / "events-autumn-2026.jsonl.gz"
LAST_DAY = date(2026, 9, 11)  # four school weeks from the first day


@pytest.fixture(scope="module")
def owner():
    return SchoolOwner(schools=1, groups_per_school=3, seed=7)


@pytest.fixture(scope="module")
def events_file(owner, tmp_path_factory):
    """Four weeks of the synthetic school as the contract's envelopes, one per line, compressed."""
    path = tmp_path_factory.mktemp("events") / "weeks.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for day in owner.school_days:
            if day > LAST_DAY:
                break
            for _, envelope in owner.day_events(day):
                out.write(json.dumps(envelope, ensure_ascii=False) + "\n")
    return path


@pytest.fixture
def school(owner, redis_client):
    token = f"test{uuid.uuid4().hex[:10]}"
    config = owner.config(key_prefix=token, queue_name=token, platform_url=PLATFORM)
    rt = Runtime(config, redis_client, clock=FixedClock(datetime(2026, 8, 13, 6, 0, tzinfo=timezone.utc)))
    rt.token = token
    runtime.install(rt)
    yield rt
    runtime.install(None)
    cleanup(redis_client, token)


def accept_all(platform) -> None:
    for path in ("tasks", "alerts", "notes"):
        platform.add(responses.POST, f"{PLATFORM}/{path}", json={"id": f"remote-{path}"}, status=201)


def replay_keys(redis) -> list[bytes]:
    return list(redis.scan_iter(match="replay-*", count=1000))


def run_live(rt: Runtime, events: list[dict]) -> None:
    """Each event one delivery, as the door queues it and the worker runs it; the scheduler sweeps at each event's
    time and at the end of the last day (the worker runs what it queued) and puts the calendar's routines on the
    due set each day, as ``scheduler.run_forever`` does every hour."""
    tenant = next(iter(rt.config.tenants))
    day = None
    for n, event in enumerate(events):
        moment = datetime.fromisoformat(event["timestamp"])
        rt.clock.set(moment)
        if moment.date() != day:
            absence.schedule_routines(rt)
            day = moment.date()
        if scheduler.sweep(rt):
            run_worker(rt)
        jobs.process_delivery(tenant, "generic", rt.keys.delivery(tenant, "generic", f"d{n}"), [event])
    end = rt.config.tenants[tenant].calendar.start_of_day(LAST_DAY + timedelta(days=1)) - timedelta(seconds=1)
    rt.clock.set(end)
    if scheduler.sweep(rt):
        run_worker(rt)


def test_replay_writes_what_live_mode_writes_and_nothing_anywhere(school, events_file, platform, redis_client):
    events = replay.read_events(events_file)
    tenant = next(iter(school.config.tenants))
    before = sorted(redis_client.scan_iter(match=f"{school.token}*"))

    replayed = replay.replay(school.config, tenant, events, redis_client)
    assert len(platform.calls) == 0  # nothing reached the platform
    assert replay_keys(redis_client) == []  # the replay's own state is gone
    assert sorted(redis_client.scan_iter(match=f"{school.token}*")) == before  # no live state touched
    assert len(replayed.actions) > 20

    accept_all(platform)
    run_live(school, events)
    live = sorted((json.loads(call.request.body) for call in platform.calls), key=lambda body: body["external_ref"])
    would = sorted((contract_body(Action.from_dict(record["action"])) for record in replayed.actions),
                   key=lambda body: body["external_ref"])
    only_live = [b for b in live if b["external_ref"] not in {w["external_ref"] for w in would}]
    only_would = [w for w in would if w["external_ref"] not in {b["external_ref"] for b in live}]
    assert (only_live, only_would) == ([], [])
    assert len(live) == len(would)
    assert {body["rule_id"] for body in live} >= {"absence.notice_missing", "absence.pattern"}
    assert live == would  # the same actions, to the last word and due date


def test_same_events_give_the_same_report_every_time(school, events_file, redis_client):
    tenant = next(iter(school.config.tenants))
    reports = []
    for _ in range(2):
        events = replay.read_events(events_file)
        summary = replay_report.summarise(replay.replay(school.config, tenant, events, redis_client))
        reports.append((replay_report.text(summary), replay_report.html(summary)))
    assert reports[0] == reports[1]
    assert "absence.notice_missing" in reports[0][0]


def test_a_task_update_in_the_file_closes_the_task_it_is_about(school, events_file, tmp_path, redis_client):
    """The replay's tasks carry live mode's ``external_ref``: an update in the file for one of them reaches the rule
    that made it (and one for a task the plan never made is ignored, as in the service)."""
    tenant = next(iter(school.config.tenants))
    first = replay.replay(school.config, tenant, replay.read_events(events_file), redis_client)
    task = next(r for r in first.actions if r["action"]["rule_id"] == "absence.pattern"
                and r["action"]["kind"] == "task")
    done_at = datetime.fromtimestamp(task["decided_at"], tz=timezone.utc) + timedelta(hours=2)
    updates = [{"type": "task.updated", "timestamp": done_at.isoformat(),
                "data": {"external_ref": ref, "status": "completed", "completed_at": done_at.isoformat()}}
               for ref in (task["action"]["external_ref"], "sf1-000000000000000000000000")]
    path = tmp_path / "with-updates.jsonl"
    with gzip.open(events_file, "rt", encoding="utf-8") as source:
        path.write_text(source.read() + "".join(json.dumps(u) + "\n" for u in updates), encoding="utf-8")
    second = replay.replay(school.config, tenant, replay.read_events(path), redis_client)
    assert first.closed == frozenset()
    assert second.closed == {task["action"]["external_ref"]}


def test_compare_puts_both_plans_side_by_side_with_the_difference(school, events_file, tmp_path, redis_client):
    tenant = next(iter(school.config.tenants))
    events = replay.read_events(events_file)
    stricter = tmp_path / "stricter.yaml"
    stricter.write_text("absence.notice_missing: {notice_school_days: 1}\n", encoding="utf-8")
    current = replay_report.summarise(replay.replay(school.config, tenant, events, redis_client, plan_name="nå"))
    other = replay_report.summarise(replay.replay(school.config, tenant, events, redis_client,
                                                  plan=replay.load_plan_file(stricter), plan_name="stricter.yaml"))
    table = {t.key: t for t in replay_report.tables(current, other)}["by_rule"]
    assert table.header == ("regel", "nå", "stricter.yaml", "forskjell")
    row = next(row for row in table.rows if row[0] == "absence.notice_missing")
    a, b = int(row[1]), int(row[2])
    assert row[3] == (f"+{b - a}" if b > a else str(b - a))
    assert a != b  # one school day for a notice instead of three changes what the rule does
    page = replay_report.html(current, other)
    assert page.count("<svg") == 4  # each plan's actions by week, the teachers' load and the pupils, both plans
    assert "<th>forskjell</th>" in page and "<script" not in page


def test_the_bundled_sample_is_a_valid_term_of_the_example_school():
    events = replay.read_events(EXAMPLE_EVENTS)  # every envelope valid by the contract's schemas
    assert (events[0]["timestamp"][:10], events[-1]["timestamp"][:10]) == ("2026-08-13", "2026-12-18")
    groups = {e["group_id"] for e in events if e["type"] == "attendance.register"}
    directory = cli.load_config(cli.EXAMPLE_CONFIG).tenants["demo-skole"].directory
    assert len(groups) == 10 and all(directory.lookup("contact_teacher", group) for group in groups)
    pupils = {m["student_id"] for e in events if e["type"] == "attendance.register" for m in e["marks"]}
    assert len(pupils) > 200


def test_replay_command_runs_the_bundled_sample_right_after_install(tmp_path, monkeypatch, capsys, redis_client):
    """The newcomer's command, on the first seven school days of the sample (the whole term takes ten seconds more)."""
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    out = tmp_path / "report.html"
    assert cli.main(["replay", "demo-skole", str(EXAMPLE_EVENTS), "--until", "2026-08-21", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Hva planen ville ha laget: demo-skole" in printed
    assert "Periode: 2026-08-13 – 2026-08-21" in printed
    assert "absence.notice_missing" in printed and "u-kontaktlaerer-" in printed
    assert out.read_text(encoding="utf-8").count("<svg") >= 3
    assert replay_keys(redis_client) == []
    # the latest report is kept for the admin page, under the service's prefix: exactly the file written
    from connector.config.schema import load_config
    from connector.store import replay as stored_replay
    from connector.store.keys import Keys

    keys = Keys(load_config(cli.config_path(cli.build_parser().parse_args(["check-config"]))).key_prefix)
    kept = stored_replay.latest_report(redis_client, keys, "demo-skole", with_html=True)
    try:
        assert kept["html"] == out.read_text(encoding="utf-8") and kept["events"] > 0
    finally:
        redis_client.delete(keys.replay_report("demo-skole"))


def test_a_bad_line_is_named_by_file_and_line_without_its_content(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    secret = "Syk med feber"
    path.write_text(json.dumps({"type": "absence.notice", "timestamp": "2026-09-01T07:00:00+02:00",
                                "data": {"student_id": "1", "reason": secret}}) + "\n", encoding="utf-8")
    assert cli.main(["replay", "demo-skole", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:1: not a valid envelope" in err
    assert secret not in err
    path.write_text("", encoding="utf-8")
    assert cli.main(["replay", "demo-skole", str(path)]) == 1
    assert "no events of a known type" in capsys.readouterr().err
    plan = tmp_path / "typo.yaml"
    plan.write_text("absence.notice_mising: {notice_school_days: 2}\n", encoding="utf-8")
    assert cli.main(["replay", "demo-skole", str(EXAMPLE_EVENTS), "--plan", str(plan)]) == 1
    assert f"{plan}: absence.notice_mising: Unknown rule id." in capsys.readouterr().err


def test_report_in_a_real_browser_opens_offline_draws_its_charts_and_shows_the_terminal_numbers(
        school, events_file, tmp_path, redis_client, browser):
    from selenium.webdriver.common.by import By

    tenant = next(iter(school.config.tenants))
    summary = replay_report.summarise(replay.replay(school.config, tenant, replay.read_events(events_file),
                                                    redis_client))
    page = replay_report.html(summary)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing to fetch: opens offline
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    browser.get(path.as_uri())

    charts = browser.find_elements(By.CSS_SELECTOR, ".chart svg")
    assert len(charts) == 3
    for chart in charts:
        assert chart.size["width"] > 300 and chart.size["height"] > 150
        assert chart.find_elements(By.CSS_SELECTOR, "rect, path")  # bars and lines drawn, not an empty frame

    terminal = replay_report.text(summary)
    for table in replay_report.tables(summary):
        shown = browser.find_element(By.ID, f"table-{table.key}")
        cells = [[cell.text for cell in row.find_elements(By.CSS_SELECTOR, "th, td")]
                 for row in shown.find_elements(By.TAG_NAME, "tr")]
        printed = _terminal_table(terminal, table.title, len(cells))
        assert cells == printed, table.key
    browser.screenshot("replay-report")


def _terminal_table(terminal: str, title: str, rows: int) -> list[list[str]]:
    """The rows of a table as the terminal printed them (columns are two or more spaces apart)."""
    lines = terminal.splitlines()
    start = lines.index(title) + 1
    return [re.split(r"\s{2,}", line.strip()) for line in lines[start:start + rows]]


def test_summary_counts_weeks_roles_pupils_and_the_median_in_school_days():
    """Pure: the report's figures from a replay's records (no Redis). A Friday absence and a Tuesday task are two
    school days apart; a weekend is not counted."""
    from tests.support import make_tenant

    tenant = make_tenant("skole-a", ["SKOLE_A_WEBHOOK_SECRET"], "SKOLE_A_API_TOKEN")  # the variables are not read

    def record(rule, kind, student, day, hour=9, role="contact_teacher", who="u-kl-7a"):
        moment = datetime.fromisoformat(f"{day}T{hour:02d}:00:00+01:00")
        return {"adapter": "generic", "decided_at": moment.timestamp(), "action": {
            "kind": kind, "rule_id": rule, "student_id": student, "external_ref": f"{rule}{student}{day}{kind}",
            "assignee": {"role": role, "id": who} if role else None}}

    actions = [
        record("absence.notice_missing", "task", "s-1", "2026-11-24"),  # Tuesday of week 48
        record("absence.notice_missing", "note", "s-1", "2026-11-24", role=None),
        record("absence.pattern", "task", "s-2", "2026-11-30", role="nearest_leader", who="u-leder"),  # week 49
        record("absence.notice_missing", "task", "s-3", "2026-12-01"),
        record("absence.notice_missing", "task", "s-3", "2026-12-02"),
    ]
    replayed = replay.Replayed(tenant, "", actions, {"s-1": "2026-11-20", "s-2": "2026-11-26", "s-3": "2026-12-01"},
                               frozenset(), date(2026, 11, 20), date(2026, 12, 4), 10)
    summary = replay_report.summarise(replayed, "nn")
    assert summary.plan_name == "gjeldande plan"
    assert summary.weeks == ["2026-W48", "2026-W49"]
    assert summary.by_rule_week == {"absence.notice_missing": {"2026-W48": 2, "2026-W49": 2},
                                    "absence.pattern": {"2026-W49": 1}}
    assert summary.teacher_week == {"2026-W48": {"u-kl-7a": 1}, "2026-W49": {"u-kl-7a": 2}}
    assert summary.by_role_week["-"] == {"2026-W48": 1}
    assert summary.pupils_per_rule == {"absence.notice_missing": 2, "absence.pattern": 1}
    assert summary.median_days == 2.0  # s-1: Fri → Tue 2; s-2: Thu → Mon 2; s-3: the same day 0
    text = replay_report.text(summary, language="nn")
    assert text.startswith("Kva planen ville ha laga: skole-a\n")
    row = next(line for line in text.splitlines() if line.startswith("(notat, ingen mottakar)"))
    assert re.split(r"\s{2,}", row) == ["(notat, ingen mottakar)", "1", "0", "1"]
    assert "Hva planen" in replay_report.text(summary) and "What the plan" in replay_report.text(summary, language="en")
