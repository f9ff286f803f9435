"""``connector replay <tenant> --from D --until D``: a period read straight from the Absence Service (the fake
OneRoster service on loopback, ``tests/oneroster_server.py``) gives the same report and actions as the same absences
replayed from a JSON Lines file of the envelopes the poller would have queued; records outside the period and
deleted ones are left out, a throttled page is waited for, nothing is written anywhere and no comment is read."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest

from connector import cli
from connector.adapters.oneroster_no import replay_source
from connector.engine import replay, replay_report
from tests.oneroster_server import FakeOneRoster, Sleeps, settings
from tests.support import REDIS_URL, add_adapter

ORG = "bergen.kommune.no"
TENANT = "skole-a"
SCHOOL = "org-skole-a"
FIRST, LAST = date(2026, 11, 16), date(2026, 11, 20)
SENTINEL = "SENTINEL-HELSE-tekst fra foresatt"

# (record id, pupil, first day, last day, type, documented, lesson, minutes, when it was registered (UTC))
WEEK = [
    ("r1", "p1", "2026-11-16", "2026-11-16", "absent", False, None, None, "2026-11-16T07:30"),
    ("r2", "p1", "2026-11-17", "2026-11-18", "absent", False, None, None, "2026-11-18T07:30"),  # two days at once
    ("r3", "p1", "2026-11-19", "2026-11-19", "absent", False, None, None, "2026-11-19T07:30"),
    ("r4", "p2", "2026-11-16", "2026-11-16", "absent", False, "mat", None, "2026-11-16T09:00"),
    ("r5", "p2", "2026-11-18", "2026-11-18", "absent", False, "mat", None, "2026-11-18T09:00"),
    ("r6", "p2", "2026-11-20", "2026-11-20", "absent", False, "mat", None, "2026-11-20T09:00"),
    ("r7", "p3", "2026-11-17", "2026-11-17", "late", False, "nor", 12, "2026-11-17T08:00"),
    ("r8", "p4", "2026-11-19", "2026-11-19", "absent", False, None, None, "2026-11-19T07:40"),
    ("r9", "p5", "2026-11-20", "2026-11-20", "absent", False, None, None, "2026-11-20T07:40"),
]
OUTSIDE = [  # none of these is in the replay of 16-20 November
    ("r10", "p2", "2026-11-09", "2026-11-09", "absent", False, "mat", None, "2026-11-09T09:00"),  # the week before
    ("r11", "p1", "2026-11-23", "2026-11-23", "absent", False, None, None, "2026-11-23T06:30"),  # the week after
]


def record(rid, pupil, first, last, kind, documented, lesson, minutes) -> dict:
    body = {"sourcedId": rid, "student": {"sourcedId": pupil, "type": "user", "href": f"/users/{pupil}"},
            "absenceType": kind, "documented": documented, "comment": SENTINEL}
    if minutes:
        body["startTime"], body["endTime"] = f"{first}T07:00:00Z", f"{first}T07:{minutes:02d}:00Z"
    else:
        body["startDate"], body["endDate"] = first, last
    if lesson:
        body["classesAffected"] = [{"sourcedId": lesson, "type": "class", "href": f"/classes/{lesson}"}]
    return body


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def serve_week(server: FakeOneRoster) -> dict[str, dict]:
    """The week as the school's staff registered it, each record stamped when it was registered; p4's absence
    documented the next morning, p5's deleted (registered in error). The records as the service now holds them."""
    server.set_roster(ORG, "classes", [{"sourcedId": "7A", "classType": "homeroom", "school": {"sourcedId": SCHOOL}}])
    server.set_roster(ORG, "enrollments", [
        {"sourcedId": f"e-{p}", "role": "student", "user": {"sourcedId": p}, "class": {"sourcedId": "7A"},
         "school": {"sourcedId": SCHOOL}} for p in ("p1", "p2", "p3", "p4", "p5")])
    server.set_roster(ORG, "users", [])
    for rid, pupil, first, last, kind, documented, lesson, minutes, when in sorted(WEEK + OUTSIDE,
                                                                                     key=lambda r: r[-1]):
        server.now = at(when)
        server.put(ORG, record(rid, pupil, first, last, kind, documented, lesson, minutes))
        if rid == "r9":
            server.now = at("2026-11-20T09:30")
            server.delete(ORG, "r9")
    server.now = at("2026-11-20T08:10")
    server.put(ORG, dict(server.absences[ORG]["r8"], documented=True))  # the guardian's note for p4 came
    server.now = at("2026-11-23T07:00")
    return dict(server.absences[ORG])


def envelopes_by_hand(held: dict[str, dict]) -> list[dict]:
    """What the poller queues for the week, written out as a school would export it: a mark per weekday of each
    record that is not deleted, stamped with its last change, with the pupil's base group from the roster."""
    out = []
    for rid, pupil, first, last, kind, _, lesson, minutes, _ in WEEK:
        now = held[rid]
        if now["status"] == "tobedeleted":
            continue
        days = [first] if first == last else [first, last]
        for day in days:
            data = {"student_id": pupil, "date": day, "status": kind, "documented": now["documented"],
                    "group_id": "7A"}
            if lesson:
                data["lesson"] = {"id": rid}
            if minutes:
                data["minutes"] = minutes
            out.append({"type": "attendance.marked", "timestamp": now["dateLastModified"], "data": data})
    return out


@pytest.fixture(autouse=True)
def replay_sources():
    """The command line registers the OneRoster source (the engine imports no adapter); the API tests do it too."""
    cli.register_replay_sources()


def keys(redis, rt) -> list[bytes]:
    """The test tenant's keys (the poller's checkpoint and roster cache would be among them)."""
    return sorted(redis.scan_iter(match=f"*{rt.token}*", count=1000))


@pytest.fixture
def prefixes(monkeypatch):
    """The key prefixes the replays used; each must be gone when they return."""
    from connector.store import replay as replay_store

    used, remove = [], replay_store.remove
    monkeypatch.setattr(replay_store, "remove", lambda redis, prefix: (used.append(prefix), remove(redis, prefix)))
    return used


def test_a_week_read_from_the_api_replays_as_the_same_week_from_a_file(vigilo, server, tmp_path, redis_client,
                                                                      prefixes):
    held = serve_week(server)
    path = tmp_path / "week.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in envelopes_by_hand(held)), encoding="utf-8")
    tenant = vigilo.config.tenants[TENANT]
    before = keys(redis_client, vigilo)

    from_api = replay.source_events("oneroster_no", tenant, FIRST, LAST)
    from_file = replay.read_events(path)
    assert len(from_api) == len(from_file) == 9
    by_api, by_file = (replay.replay(vigilo.config, TENANT, events, redis_client, until=LAST)
                       for events in (from_api, from_file))

    assert by_api.actions and by_api.actions == by_file.actions  # the plan did something, and the same thing
    assert {a["action"]["rule_id"] for a in by_api.actions} >= {"absence.notice_missing"}
    assert (by_api.first_absence, by_api.first_day, by_api.last_day) == (
        by_file.first_absence, by_file.first_day, by_file.last_day)
    assert by_api.first_absence == {"p1": "2026-11-16", "p2": "2026-11-16", "p3": "2026-11-17",
                                    "p4": "2026-11-19"}
    report_api, report_file = (replay_report.text(replay_report.summarise(r, "nb"), None, "nb")
                               for r in (by_api, by_file))
    assert report_api == report_file
    # nothing written: not the poller's checkpoint or roster cache, not a replay prefix left behind, no platform
    assert keys(redis_client, vigilo) == before
    assert len(prefixes) == 2 and not [k for p in prefixes for k in redis_client.scan_iter(match=f"{p}*")]
    assert SENTINEL not in json.dumps([from_api, by_api.actions]) + report_api


def test_records_outside_the_period_and_deleted_ones_are_left_out_and_edits_count_as_of_their_last(vigilo, server):
    held = serve_week(server)
    server.now = at("2026-11-24T10:00")  # p3's late arrival on the 17th is edited after the period: left out
    server.put(ORG, dict(held["r7"], documented=True))
    found = replay_source.envelopes(vigilo.config.tenants[TENANT], FIRST, LAST, sleep=Sleeps())
    marks = [(e["data"]["student_id"], e["data"]["date"], e["data"]["status"], e["data"]["documented"])
             for e in found]
    assert ("p5", "2026-11-20", "absent", False) not in marks  # deleted
    assert not [m for m in marks if m[1] in ("2026-11-09", "2026-11-23")]  # the weeks before and after
    assert not [m for m in marks if m[0] == "p3"]  # last edited after the period
    assert ("p4", "2026-11-19", "absent", True) in marks  # as of its last edit: documented
    assert [e["timestamp"] for e in found if e["data"]["student_id"] == "p4"] == ["2026-11-20T08:10:00.007000+00:00"]
    assert [e["timestamp"] for e in found] == sorted(e["timestamp"] for e in found)  # in time order
    assert len(marks) == 8
    assert all(e["data"]["group_id"] == "7A" for e in found)


def test_a_tenant_following_some_schools_replays_only_their_pupils(vigilo, server):
    add_adapter(vigilo, TENANT, "vigilo", "oneroster_no", settings(server, schools=[SCHOOL]))
    serve_week(server)
    server.set_roster(ORG, "classes", server.roster[ORG]["classes"] + [
        {"sourcedId": "9X", "classType": "homeroom", "school": {"sourcedId": "org-skole-b"}}])
    server.set_roster(ORG, "enrollments", server.roster[ORG]["enrollments"] + [
        {"sourcedId": "e-theirs", "role": "student", "user": {"sourcedId": "theirs"}, "class": {"sourcedId": "9X"},
         "school": {"sourcedId": "org-skole-b"}}])
    server.now = at("2026-11-18T10:00")
    server.put(ORG, record("x1", "theirs", "2026-11-18", "2026-11-18", "absent", False, None, None))
    found = replay_source.envelopes(vigilo.config.tenants[TENANT], FIRST, LAST, sleep=Sleeps())
    assert {e["data"]["student_id"] for e in found} == {"p1", "p2", "p3", "p4"}
    # the roster could not be read: a tenant of some schools replays nothing rather than another school's pupils
    server.fail_next(403)
    with pytest.raises(replay_source.SourceError, match="refused"):
        replay_source.envelopes(vigilo.config.tenants[TENANT], FIRST, LAST, sleep=Sleeps())


def test_a_throttled_page_is_waited_for_as_retry_after_asks(vigilo, server):
    serve_week(server)
    tenant = vigilo.config.tenants[TENANT]
    add_adapter(vigilo, TENANT, "vigilo", "oneroster_no", settings(server, page_size=3))
    tenant = vigilo.config.tenants[TENANT]
    calm = replay_source.envelopes(tenant, FIRST, LAST, sleep=Sleeps())
    server.requests.clear()
    sleeps = Sleeps()
    server.between_pages = lambda calls: server.fail_next(429, retry_after="7") if calls == 1 else None
    throttled = replay_source.envelopes(tenant, FIRST, LAST, sleep=sleeps)
    assert sleeps == [7.0]
    assert [status for _, _, status in server.absence_calls()][:3] == [200, 429, 200]
    assert throttled == calm and len(calm) == 9
    # a service that stays throttled: a clear error after five tries, never a partial period
    server.between_pages = None
    server.fail_next(503, times=10, retry_after="1")  # five tries of the roster (groups lost), five of absences
    with pytest.raises(replay_source.SourceError, match="throttled"):
        replay_source.envelopes(tenant, FIRST, LAST, sleep=Sleeps())


def test_the_command_reads_the_period_from_the_api(vigilo, server, tmp_path, monkeypatch, capsys, redis_client,
                                                   prefixes):
    serve_week(server)
    monkeypatch.setattr(cli, "load_config", lambda path: vigilo.config)
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    out = tmp_path / "report.html"
    before = keys(redis_client, vigilo)
    assert cli.main(["replay", TENANT, "--from", "2026-11-16", "--until", "2026-11-20", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Periode: 2026-11-16 – 2026-11-20" in printed and "absence.notice_missing" in printed
    assert SENTINEL not in printed + out.read_text(encoding="utf-8")
    # nothing live changed but the school's latest report, kept for the admin page (and it holds no comment)
    report = vigilo.keys.replay_report(TENANT).encode()
    assert [k for k in keys(redis_client, vigilo) if k != report] == before
    assert redis_client.hget(report, "html").decode() == out.read_text(encoding="utf-8")
    assert len(prefixes) == 1 and not list(redis_client.scan_iter(match=f"{prefixes[0]}*"))


def test_the_command_refuses_what_it_cannot_replay_with_a_clear_error(vigilo, server, tmp_path, monkeypatch,
                                                                      capsys):
    monkeypatch.setattr(cli, "load_config", lambda path: vigilo.config)
    path = tmp_path / "week.jsonl"
    path.write_text("", encoding="utf-8")
    cases = [
        (["replay", TENANT, str(path), "--from", "2026-11-16", "--until", "2026-11-20"], "not both"),
        (["replay", TENANT], "give an events file, or --from and --until"),
        (["replay", TENANT, "--from", "2026-11-16"], "--from needs --until"),
        (["replay", TENANT, "--from", "2026-11-20", "--until", "2026-11-16"], "--from needs --until"),
        (["replay", "skole-b", "--from", "2026-11-16", "--until", "2026-11-20"],
         "tenant 'skole-b' has no adapter whose API a period can be read from (oneroster_no)"),
        (["replay", TENANT, "--from", "2026-11-09", "--until", "2026-11-13"], "no events of a known type in "
                                                                              "oneroster_no from 2026-11-09"),
    ]
    for argv, message in cases:
        assert cli.main(argv) == 1, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)
    server.fail_next(403, times=4)  # a client without the scope (roster, then absences): refused, said plainly
    assert cli.main(["replay", TENANT, "--from", "2026-11-16", "--until", "2026-11-20"]) == 1
    err = capsys.readouterr().err
    assert "adapter 'vigilo': the OneRoster API could not be read: refused (HTTP 403)" in err
