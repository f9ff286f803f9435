"""The OneRoster adapter and its poller against a fake OneRoster service on loopback (``tests/oneroster_server.py``):
paged, sorted data with ``dateLastModified``, edits and deletions of old absences, a token that expires, ``429``
with ``Retry-After`` and ``5xx`` spells; every change reaches the rules once, nothing is lost across a poller's
restart mid-page and two pollers queue nothing twice."""
from __future__ import annotations

import os

import json
import logging
import signal
import threading
from pathlib import Path

import pytest

from connector.adapters.oneroster_no.absences import Seen, to_marks
from connector.config.schema import ConfigError, config_from_dict
from connector.engine import health
from connector.engine.poller import LostLease, Poller
from connector.store import polls
from connector.store.pupils import day_field
from tests.oneroster_server import Sleeps, settings
from tests.support import add_adapter, queued_jobs, run_worker

FIXTURES = Path(__file__).parent / "fixtures" / "outbound"
ORG = "bergen.kommune.no"
TENANT = "skole-a"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def absence(rid: str, student: str, day: str, kind: str = "absent", documented: bool = False, lesson: str | None = None,
            comment: str = "SENTINEL-HELSE-tekst fra foresatt") -> dict:
    record = {"sourcedId": rid, "student": {"sourcedId": student, "type": "user", "href": f"/users/{student}"},
              "startDate": day, "endDate": day, "absenceType": kind, "documented": documented, "comment": comment}
    if lesson:
        record["classesAffected"] = [{"sourcedId": lesson, "type": "class", "href": f"/classes/{lesson}"}]
    return record


def poller(rt, name: str = "p1") -> Poller:
    return Poller(rt, sleep=Sleeps(), name=name)


def poll(rt, p: Poller | None = None):
    p = p or poller(rt)
    assert polls.take_lease(rt.redis, rt.keys, TENANT, "vigilo", p.token, 60_000) or polls.extend_lease(
        rt.redis, rt.keys, TENANT, "vigilo", p.token, 60_000)
    try:
        return p.poll(TENANT, "vigilo")
    finally:
        polls.release_lease(rt.redis, rt.keys, TENANT, "vigilo", p.token)


def queued_changes(rt) -> list[tuple[str, str, str, str]]:
    """(student, date, status, lesson id or "") of every mark in every queued job."""
    found = []
    for job in queued_jobs(rt):
        tenant, adapter, marker, events = job.args
        assert (tenant, adapter) == (TENANT, "vigilo")
        found += [(e["student_id"], e["date"], e["status"], (e.get("lesson") or {}).get("id", "")) for e in events]
    return found


def day(rt, student: str, date: str) -> str | None:
    raw = rt.redis.hget(rt.keys.pupil(TENANT, student), day_field(date))
    return raw.decode() if raw is not None else None


# --- the mapping ------------------------------------------------------------------------------------------------


def test_fixture_page_maps_to_marks_without_its_comments():
    page = fixture("absences_detail__page")["absences"]
    whole, late, deleted = (to_marks(record, None) for record in page)
    assert whole.events == [{
        "type": "attendance.marked", "timestamp": "2026-11-23T07:41:12.345000+00:00",
        "student_id": "5a0e3d1c-7b2f-4e61-8d9a-0c4b3f2e1a10", "date": "2026-11-23", "status": "absent",
        "documented": False}]
    assert late.events == [{
        "type": "attendance.marked", "timestamp": "2026-11-23T08:05:40.001000+00:00",
        "student_id": "9c2b7e4a-3d1f-4a08-b6e5-1f0a2d3c4b55", "date": "2026-11-23", "status": "late",
        "documented": False, "lesson": {"id": "b3e9d0f4-1c6a-4f7e-9b21-7d8c0e5a4f22"}, "minutes": 12}]
    assert deleted.events == [{
        "type": "attendance.marked", "timestamp": "2026-11-23T08:06:02.500000+00:00",
        "student_id": "5a0e3d1c-7b2f-4e61-8d9a-0c4b3f2e1a10", "date": "2026-11-18", "status": "present",
        "documented": False}]
    assert "SENTINEL" not in json.dumps([whole.events, late.events, deleted.events, whole.seen.pack()])


def test_an_edit_that_moves_an_absence_clears_the_day_it_left():
    first = to_marks(absence("a1", "s1", "2026-11-17") | {"dateLastModified": "2026-11-17T08:00:00Z"}, None)
    moved = to_marks(absence("a1", "s1", "2026-11-18", documented=True) | {"dateLastModified": "2026-11-19T08:00:00Z"},
                     first.seen)
    assert [(e["date"], e["status"], e["documented"]) for e in moved.events] == [
        ("2026-11-18", "absent", True), ("2026-11-17", "present", False)]
    assert moved.seen == Seen("2026-11-19T08:00:00Z", "2026-11-18", "2026-11-18", True)


def test_a_record_without_student_or_dates_is_refused_not_guessed():
    assert to_marks({"sourcedId": "x", "dateLastModified": "2026-11-23T08:00:00Z"}, None).problem == "no usable student"
    no_date = absence("x", "s1", "2026-11-23") | {"dateLastModified": "2026-11-23T08:00:00Z", "startDate": None}
    assert to_marks(no_date, None).problem == "no startTime or startDate"


def test_a_tenant_reading_oneroster_must_name_the_adapter_that_writes(monkeypatch, tmp_path):
    monkeypatch.setenv("ONEROSTER_TEST_SECRET", "x")
    calendar = {"first_day": "2026-08-13", "last_day": "2027-06-18", "breaks": []}
    raw = {"tenants": {"skole": {"name": "Skole", "calendar": [calendar], "adapters": {
        "vigilo": {"type": "oneroster_no", "orgs": [ORG], "client_id": "c",
                   "client_secret": {"env": "ONEROSTER_TEST_SECRET"}},
    }}}}
    with pytest.raises(ConfigError) as refused:
        config_from_dict(raw)
    assert "actions_adapter" in str(refused.value) and "read-only" in str(refused.value)
    raw["tenants"]["skole"]["actions_adapter"] = "vigilo"
    with pytest.raises(ConfigError, match="cannot write"):
        config_from_dict(raw)


# --- the poller -------------------------------------------------------------------------------------------------


def test_a_poll_queues_one_job_per_page_and_nothing_twice(vigilo, server):
    add_adapter(vigilo, TENANT, "vigilo", "oneroster_no", settings(server, page_size=2))
    for n in range(5):
        server.put(ORG, absence(f"a{n}", f"s{n}", "2026-11-20"))
    result = poll(vigilo)
    assert (result.pages, result.jobs, result.changes) == (3, 3, 5)
    assert sorted(queued_changes(vigilo)) == [(f"s{n}", "2026-11-20", "absent", "") for n in range(5)]
    again = poll(vigilo)
    assert (again.requests, again.jobs, again.changes, again.unchanged) == (3, 0, 0, 5)  # the overlap, read again
    assert len(queued_jobs(vigilo)) == 3


def test_a_poll_with_nothing_new_costs_one_request_per_org(vigilo, server):
    add_adapter(vigilo, TENANT, "vigilo", "oneroster_no", settings(server, orgs=[ORG, "asker.kommune.no"]))
    for n in range(40):
        server.put(ORG, absence(f"a{n}", f"s{n}", "2026-11-20"))
    assert poll(vigilo).changes == 40
    calls = len(server.absence_calls())
    again = poll(vigilo)
    assert (again.requests, again.jobs) == (2, 0)
    assert len(server.absence_calls()) == calls + 2


def test_edits_and_deletions_of_old_absences_change_the_pupils_day(vigilo, server):
    server.put(ORG, absence("a1", "s1", "2026-11-17"))
    server.put(ORG, absence("a2", "s2", "2026-11-18", lesson="mat-7a"))
    poll(vigilo)
    run_worker(vigilo)
    assert day(vigilo, "s1", "2026-11-17") == "day=a0"
    assert day(vigilo, "s2", "2026-11-18") is not None
    server.tick(hours=2)
    server.put(ORG, absence("a1", "s1", "2026-11-17", documented=True))  # the guardian's note came
    server.delete(ORG, "a2")  # registered by mistake
    result = poll(vigilo)
    assert result.changes == 2
    run_worker(vigilo)
    assert day(vigilo, "s1", "2026-11-17") == "day=a1"
    assert day(vigilo, "s2", "2026-11-18") is None


def test_the_comment_is_never_stored_queued_or_logged(vigilo, server, caplog):
    caplog.set_level(logging.DEBUG)
    for record in fixture("absences_detail__page")["absences"]:
        server.put(ORG, {k: v for k, v in record.items() if k != "dateLastModified"})
    poll(vigilo)
    stored = []
    for key in vigilo.redis.scan_iter(match=f"*{vigilo.token}*"):
        kind = vigilo.redis.type(key).decode()
        stored.append(repr(vigilo.redis.hgetall(key) if kind == "hash" else vigilo.redis.dump(key)))
    assert len(queued_jobs(vigilo)) == 1
    assert "SENTINEL" not in "".join(stored)
    run_worker(vigilo)
    assert "SENTINEL" not in caplog.text and "magesyke" not in caplog.text


def test_an_expired_token_is_renewed_once_and_the_poll_goes_on(vigilo, server):
    server.put(ORG, absence("a1", "s1", "2026-11-20"))
    poll(vigilo)
    server.expire_tokens()
    server.put(ORG, absence("a2", "s2", "2026-11-20"))
    result = poll(vigilo)
    assert result.changes == 1
    assert [status for _, _, status in server.absence_calls()][-2:] == [401, 200]
    assert server.token_requests == 2


def test_429_waits_as_long_as_retry_after_says_and_a_5xx_spell_backs_off(vigilo, server):
    server.put(ORG, absence("a1", "s1", "2026-11-20"))
    server.fail_next(429, retry_after="7")
    server.fail_next(502, times=2)
    p = poller(vigilo)
    result = poll(vigilo, p)
    assert result.changes == 1
    assert p.sleep == [7, 2.0, 4.0]


def test_polls_failing_longer_than_n_intervals_are_logged_and_shown_by_readyz(vigilo, server, caplog):
    server.put(ORG, absence("a1", "s1", "2026-11-20"))
    now = [1_000_000.0]
    p = Poller(vigilo, sleep=Sleeps(), wall=lambda: now[0], name="p1")
    polls.replace_roster(vigilo.redis, vigilo.keys, TENANT, "vigilo", {}, now[0])  # read a moment ago
    for n in range(5):
        server.fail_next(500, times=5)
        outcome = p.tick()[(TENANT, "vigilo")]
        assert getattr(outcome, "reason", None) == "unavailable"
        polls.release_lease(vigilo.redis, vigilo.keys, TENANT, "vigilo", p.token)  # as if the interval had passed
        now[0] += 300
    assert "polls have failed for 20 minutes" in caplog.text
    detail = health.failing_polls(vigilo, now=now[0])
    assert detail == {"skole-a/vigilo": {"failing_since": "1970-01-12T13:46:40+00:00", "reason": "unavailable"}}
    assert queued_jobs(vigilo) == []
    result = p.tick()[(TENANT, "vigilo")]
    assert result.changes == 1 and health.failing_polls(vigilo, now=now[0]) == {}


def test_a_poller_that_dies_mid_page_loses_nothing_and_its_successor_queues_nothing_twice(vigilo, server, monkeypatch):
    add_adapter(vigilo, TENANT, "vigilo", "oneroster_no", settings(server, page_size=3))
    for n in range(8):
        server.put(ORG, absence(f"a{n}", f"s{n}", "2026-11-20"))
    commits = []
    real_commit = polls.commit_page

    def killed_on_the_second_page(*args, **kwargs):
        commits.append(1)
        if len(commits) == 2:
            raise SystemExit(137)  # the process is killed while it holds page 2, before its transaction
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(polls, "commit_page", killed_on_the_second_page)
    with pytest.raises(SystemExit):
        poll(vigilo, poller(vigilo, "p1"))
    monkeypatch.setattr(polls, "commit_page", real_commit)
    assert sorted(queued_changes(vigilo)) == [(f"s{n}", "2026-11-20", "absent", "") for n in range(3)]
    poll(vigilo, poller(vigilo, "p2"))
    assert sorted(queued_changes(vigilo)) == [(f"s{n}", "2026-11-20", "absent", "") for n in range(8)]
    assert len(queued_jobs(vigilo)) == 3


def test_a_record_modified_while_paging_is_read_in_the_same_poll(vigilo, server):
    add_adapter(vigilo, TENANT, "vigilo", "oneroster_no", settings(server, page_size=2))
    for n in range(6):
        server.put(ORG, absence(f"a{n}", f"s{n}", "2026-11-20"))
    server.between_pages = lambda calls: calls == 1 and server.put(ORG, absence("a0", "s0", "2026-11-20",
                                                                                  documented=True))
    result = poll(vigilo)
    assert result.changes == 7  # six records, and a0's edit made while the poller was on page 1
    assert ("s0", "2026-11-20", "absent", "") in queued_changes(vigilo)
    run_worker(vigilo)
    assert day(vigilo, "s0", "2026-11-20") == "day=a1"


def test_two_pollers_queue_nothing_twice(vigilo, server):
    for n in range(30):
        server.put(ORG, absence(f"a{n}", f"s{n}", "2026-11-20"))
    add_adapter(vigilo, TENANT, "vigilo", "oneroster_no", settings(server, page_size=4))
    barrier = threading.Barrier(2)
    outcomes = []

    def run(name):
        p = Poller(vigilo, sleep=Sleeps(), name=name)
        barrier.wait()
        outcomes.append(p.tick()[(TENANT, "vigilo")])

    threads = [threading.Thread(target=run, args=(f"p{n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(map(str, outcomes)).count("None") == 1  # one polled, the other found the lease taken
    assert sorted(queued_changes(vigilo)) == sorted((f"s{n}", "2026-11-20", "absent", "") for n in range(30))


def test_a_poller_overtaken_after_its_lease_ran_out_writes_nothing(vigilo, server):
    server.put(ORG, absence("a1", "s1", "2026-11-20"))
    slow, fast = poller(vigilo, "slow"), poller(vigilo, "fast")
    assert polls.take_lease(vigilo.redis, vigilo.keys, TENANT, "vigilo", slow.token, 60_000)
    vigilo.redis.delete(vigilo.keys.poll_lease(TENANT, "vigilo"))  # its lease ran out while it stalled
    assert polls.take_lease(vigilo.redis, vigilo.keys, TENANT, "vigilo", fast.token, 60_000)
    with pytest.raises(LostLease):
        slow.poll(TENANT, "vigilo")
    assert queued_jobs(vigilo) == []
    fast.poll(TENANT, "vigilo")
    assert len(queued_jobs(vigilo)) == 1


# --- the directory from the roster ------------------------------------------------------------------------------

ROSTER_SETTINGS = {"group_class_types": ["homeroom"], "contact_teacher_from": "primary_teacher"}
PUPIL = "5a0e3d1c-7b2f-4e61-8d9a-0c4b3f2e1a10"
HOMEROOM = "c7a00000-0000-4000-8000-0000000007a1"


def test_the_roster_gives_group_contact_teacher_and_guardians_by_id_only():
    from connector.adapters.oneroster_no.roster import entries

    found = entries(fixture("classes__homeroom")["classes"], fixture("enrollments__group")["enrollments"],
                    fixture("users__student_with_agents")["users"], ROSTER_SETTINGS)
    school = "321ea09b-e9da-40df-b8c8-7ca1393be494"
    assert found == {f"g:{PUPIL}": HOMEROOM, f"ct:{HOMEROOM}": "7e000000-0000-4000-8000-00000000000a",
                     f"gd:{PUPIL}": "1799b7ac-0143-4725-9426-28da9b1b8976", f"s:{PUPIL}": school}
    assert "Fiktiv" not in json.dumps(found)
    assert entries(fixture("classes__homeroom")["classes"], fixture("enrollments__group")["enrollments"], [],
                   {**ROSTER_SETTINGS, "contact_teacher_from": "configuration"}) == {f"g:{PUPIL}": HOMEROOM,
                                                                                     f"s:{PUPIL}": school}
    assert entries(fixture("classes__homeroom")["classes"], fixture("enrollments__group")["enrollments"], [],
                   {**ROSTER_SETTINGS, "schools": ["another-school"]}) == {}


def serve_roster(server, org: str = ORG) -> None:
    for collection in ("classes", "enrollments", "users"):
        server.set_roster(org, collection, fixture({"classes": "classes__homeroom", "enrollments": "enrollments__group",
                                                    "users": "users__student_with_agents"}[collection])[collection])


def test_polled_marks_carry_the_rostered_group_and_its_contact_teacher_answers_where_config_has_none(vigilo, server):
    from connector.engine.directory import resolve

    serve_roster(server)
    server.put(ORG, absence("a1", PUPIL, "2026-11-20"))
    outcome = Poller(vigilo, sleep=Sleeps(), name="p1").tick()[(TENANT, "vigilo")]
    assert outcome.changes == 1
    (job,) = queued_jobs(vigilo)
    assert job.args[3][0]["group_id"] == HOMEROOM
    tenant = vigilo.tenant(TENANT)
    assert resolve(vigilo, tenant, "vigilo", "contact_teacher", HOMEROOM) == "7e000000-0000-4000-8000-00000000000a"
    assert resolve(vigilo, tenant, "vigilo", "contact_teacher", "7A") == "u-kl-7a"  # configuration first
    assert resolve(vigilo, tenant, "vigilo", "principal", HOMEROOM) == "u-rektor"  # not a roster's business


def test_a_roster_that_cannot_be_read_does_not_stop_the_absences(vigilo, server):
    server.put(ORG, absence("a1", "s1", "2026-11-20"))
    server.fail_next(403)  # the client may read absences but not users (a scope it lacks)
    outcome = Poller(vigilo, sleep=Sleeps(), name="p1").tick()[(TENANT, "vigilo")]
    assert outcome.changes == 1


# --- the command and /readyz ------------------------------------------------------------------------------------


def test_connector_poll_once_polls_each_due_adapter_and_says_what_happened(vigilo, server, monkeypatch, capsys):
    from connector import cli

    serve_roster(server)
    server.put(ORG, absence("a1", "s1", "2026-11-20"))
    monkeypatch.setattr(cli, "_runtime", lambda args: vigilo)
    assert cli.main(["poll", "--once"]) == 0
    assert capsys.readouterr().out == ("skole-a/vigilo: 1 request(s), 1 page(s), 1 change(s) queued in 1 job(s), "
                                       "0 seen before, 0 refused\n")
    assert cli.main(["poll", "--once"]) == 0  # the lease stands until the next poll is due
    assert capsys.readouterr().out == "skole-a/vigilo: not due (or another poller has it)\n"
    assert cli._has_polled_adapters(vigilo.config)  # so `connector serve` starts a poller beside the others


def test_a_finished_poll_sets_the_poll_lag_gauge_and_the_last_poll_the_admin_page_shows(vigilo, server, monkeypatch):
    from prometheus_client import REGISTRY

    from connector.store import deliveries

    serve_roster(server)
    server.put(ORG, absence("a1", "s1", "2026-11-20"))
    p = poller(vigilo)
    now = [1_000.0]
    monkeypatch.setattr(p, "wall", lambda: now[0])
    polled = p.poll

    def taking_3_5_seconds(*args):
        result = polled(*args)
        now[0] += 3.5
        return result
    monkeypatch.setattr(p, "poll", taking_3_5_seconds)
    assert polls.take_lease(vigilo.redis, vigilo.keys, TENANT, "vigilo", p.token, 60_000)
    p._poll_leased(TENANT, "vigilo", vigilo.adapter(TENANT, "vigilo"))
    lag = REGISTRY.get_sample_value("connector_poll_lag_seconds", {"tenant": TENANT, "adapter": "vigilo"})
    assert lag == 3.5
    assert ("vigilo", "poll") in deliveries.last_seen(vigilo.redis, vigilo.keys, TENANT)


def test_readyz_shows_polls_failing_longer_than_n_intervals_without_failing_readiness(vigilo, server):
    from connector import create_app

    client = create_app(runtime=vigilo).test_client()
    polls.poll_failed(vigilo.redis, vigilo.keys, TENANT, "vigilo", 1000.0, "throttled", 300, 3)
    body = client.get("/readyz").get_json()
    assert body["status"] == "ok"
    assert body["detail"]["polls"] == {"skole-a/vigilo": {"failing_since": "1970-01-01T00:16:40+00:00",
                                                          "reason": "throttled"}}
    polls.poll_succeeded(vigilo.redis, vigilo.keys, TENANT, "vigilo")
    assert "detail" not in client.get("/readyz").get_json()


def test_a_service_without_an_absence_service_gives_its_roster_only(vigilo, server):
    add_adapter(vigilo, TENANT, "vigilo", "oneroster_no", settings(server, read_absences=False))
    serve_roster(server)
    server.put(ORG, absence("a1", PUPIL, "2026-11-20"))
    outcome = Poller(vigilo, sleep=Sleeps(), name="p1").tick()[(TENANT, "vigilo")]
    assert (outcome.requests, outcome.changes) == (0, 0)
    assert server.absence_calls() == []
    assert polls.roster_values(vigilo.redis, vigilo.keys, TENANT, "vigilo", [f"g:{PUPIL}"]) == [HOMEROOM]


def test_the_readmes_vigilo_and_teams_tenant_is_a_valid_configuration(tmp_path):
    from connector.config.schema import load_config

    readme = (Path(__file__).parents[3] / "README.md").read_text()
    section = readme[readme.index("A complete tenant on **Vigilo**"):]
    block = section[section.index("```yaml\n") + 8:section.index("```\n", section.index("```yaml\n") + 8)]
    calendar = Path(__file__).parents[2] / "example" / "calendar-2026-27.yaml"
    (tmp_path / "calendar-2026-27.yaml").write_text(calendar.read_text())
    (tmp_path / "connector.yaml").write_text(block)
    tenant = load_config(tmp_path / "connector.yaml").tenants["bergen-nordre"]
    assert tenant.actions_adapter == "teams"
    assert {name: adapter.type for name, adapter in tenant.adapters.items()} == {"vigilo": "oneroster_no",
                                                                                 "teams": "m365"}


def test_what_was_seen_is_forgotten_after_two_school_years_and_a_forgotten_record_is_read_as_new(vigilo, server):
    server.put(ORG, absence("a1", "s1", "2026-11-20"))
    poll(vigilo)
    key = vigilo.keys.poll_seen(TENANT, "vigilo")
    vigilo.redis.hset(key, "ancient", "2024-08-01T08:00:00.000Z|2024-08-01|2024-08-01|1")
    assert polls.forget_seen_before(vigilo.redis, vigilo.keys, TENANT, "vigilo", "2025-01-01T00:00:00Z") == 1
    assert vigilo.redis.hkeys(key) == [b"a1"]
    vigilo.redis.hdel(key, "a1")
    server.tick(minutes=1)
    server.put(ORG, absence("a1", "s1", "2026-11-20", documented=True))
    assert poll(vigilo).changes == 1


def test_the_door_answers_a_post_to_a_polled_adapter_with_a_json_404(vigilo):
    from connector import create_app

    response = create_app(runtime=vigilo).test_client().post("/webhooks/skole-a/vigilo", data=b"{}",
                                                              headers={"content-type": "application/json"})
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_connector_poll_runs_as_a_process_queues_what_changed_and_stops_on_sigterm(vigilo, server, tmp_path):
    import os
    import subprocess
    import sys
    import time

    import yaml

    from tests.support import REDIS_URL

    server.put(ORG, absence("a1", "s1", "2026-11-20"))
    calendar = Path(__file__).parents[2] / "example" / "calendar-2026-27.yaml"
    config = {"key_prefix": vigilo.token, "queue_name": vigilo.token, "tenants": {TENANT: {
        "name": "Skole A", "calendar": [{"file": str(calendar)}], "actions_adapter": "generic",
        "adapters": {
            "generic": {"type": "generic", "webhook_secrets": [{"env": "SKOLE_A_WEBHOOK_SECRET"}],
                        "base_url": "http://127.0.0.1:9/api", "api_token": {"env": "SKOLE_A_API_TOKEN"}},
            "vigilo": {"type": "oneroster_no", **settings(server)},
        }}}}
    path = tmp_path / "connector.yaml"
    path.write_text(yaml.safe_dump(config))
    env = dict(os.environ, REDIS_URL=REDIS_URL, CONNECTOR_CONFIG=str(path),
               PYTHONPATH=str(Path(__file__).parents[3]))
    proc = subprocess.Popen([sys.executable, "-m", "connector.cli", "poll"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not queued_jobs(vigilo) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert len(queued_jobs(vigilo)) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = proc.stdout.read().decode()
    assert "queued 1 change(s) as 1 mark(s)" in output
    assert "fake-oneroster-secret" not in output and "SENTINEL" not in output


def test_connector_serve_starts_a_poller_beside_web_worker_and_scheduler(vigilo, server, tmp_path, monkeypatch,
                                                                        capsys):
    import yaml

    from connector import cli

    calendar = Path(__file__).parents[2] / "example" / "calendar-2026-27.yaml"
    config = {"tenants": {TENANT: {
        "name": "Skole A", "calendar": [{"file": str(calendar)}], "actions_adapter": "generic",
        "adapters": {
            "generic": {"type": "generic", "webhook_secrets": [{"env": "SKOLE_A_WEBHOOK_SECRET"}],
                        "base_url": "http://127.0.0.1:9/api", "api_token": {"env": "SKOLE_A_API_TOKEN"}},
            "vigilo": {"type": "oneroster_no", **settings(server)},
        }}}}
    path = tmp_path / "connector.yaml"
    path.write_text(yaml.safe_dump(config))
    started = []

    class Child:
        returncode = 0

        def __init__(self, argv, env=None):
            started.append(argv[3] if argv[1:3] == ["-m", "connector.cli"] else argv)
            if len(started) == 4:  # all started: stop serve as Ctrl-C would (its handler only notes the signal)
                os.kill(os.getpid(), signal.SIGTERM)

        def poll(self):
            return None  # running (serve restarts a child that exits)

        def terminate(self):
            pass

        def wait(self, timeout=None):
            return 0

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # no embedded Redis; nothing connects here
    monkeypatch.setattr(cli.subprocess, "Popen", Child)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert cli.main(["serve", "--config", str(path)]) == 0
    finally:  # serve takes Ctrl-C and SIGTERM for itself: give them back to pytest
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert started == ["web", "worker", "scheduler", "poll"]


def test_a_tenant_that_is_one_school_of_the_org_gets_its_own_pupils_absences_only(vigilo, server):
    school_a, school_b = "org-skole-a", "org-skole-b"
    add_adapter(vigilo, TENANT, "vigilo", "oneroster_no", settings(server, schools=[school_a]))
    server.set_roster(ORG, "classes", [
        {"sourcedId": "7A", "classType": "homeroom", "school": {"sourcedId": school_a}},
        {"sourcedId": "7X", "classType": "homeroom", "school": {"sourcedId": school_b}},
    ])
    server.set_roster(ORG, "enrollments", [
        {"sourcedId": "e1", "role": "student", "user": {"sourcedId": "ours"}, "class": {"sourcedId": "7A"},
         "school": {"sourcedId": school_a}},
        {"sourcedId": "e2", "role": "student", "user": {"sourcedId": "theirs"}, "class": {"sourcedId": "7X"},
         "school": {"sourcedId": school_b}},
    ])
    server.set_roster(ORG, "users", [])
    server.put(ORG, absence("a1", "ours", "2026-11-20"))
    server.put(ORG, absence("a2", "theirs", "2026-11-20"))
    outcome = Poller(vigilo, sleep=Sleeps(), name="p1").tick()[(TENANT, "vigilo")]
    assert outcome.other_schools == 1
    assert queued_changes(vigilo) == [("ours", "2026-11-20", "absent", "")]
    assert polls.roster_values(vigilo.redis, vigilo.keys, TENANT, "vigilo", ["g:theirs", "s:theirs"]) == [None, None]

    # a pupil who joined school A after the roster was read: the roster is read again, once, in the poll
    server.set_roster(ORG, "enrollments", server.roster[ORG]["enrollments"] + [
        {"sourcedId": "e3", "role": "student", "user": {"sourcedId": "new"}, "class": {"sourcedId": "7A"},
         "school": {"sourcedId": school_a}}])
    server.put(ORG, absence("a3", "new", "2026-11-20"))
    polls.release_lease(vigilo.redis, vigilo.keys, TENANT, "vigilo", "p1")
    outcome = Poller(vigilo, sleep=Sleeps(), name="p1").tick()[(TENANT, "vigilo")]
    assert (outcome.roster_read, outcome.changes, outcome.other_schools) == (True, 1, 0)
    assert ("new", "2026-11-20", "absent", "") in queued_changes(vigilo)


def test_a_tenant_following_some_schools_queues_nothing_before_the_roster_is_read(vigilo, server):
    add_adapter(vigilo, TENANT, "vigilo", "oneroster_no", settings(server, schools=["org-skole-a"]))
    server.put(ORG, absence("a1", "ours", "2026-11-20"))
    server.fail_next(500, times=10)  # the roster cannot be read (the tick's refresh, then the poll's own)
    outcome = Poller(vigilo, sleep=Sleeps(), name="p1").tick()[(TENANT, "vigilo")]
    assert getattr(outcome, "reason", None) == "unavailable"
    assert queued_jobs(vigilo) == []
    assert vigilo.redis.hlen(vigilo.keys.poll_seen(TENANT, "vigilo")) == 0


# --- the token endpoint's answers, as OnEdHub's Keycloak gives them ------------------------------------------------


class OneAnswer:
    """A session that answers every POST with one fixture (the token endpoint), recording what was posted."""

    def __init__(self, status: int, body: dict):
        self.status, self.body, self.posted = status, body, []

    def post(self, url, data=None, timeout=None):
        import requests

        self.posted.append((url, data))
        response = requests.Response()
        response.status_code = self.status
        response._content = json.dumps(self.body).encode()
        return response


def test_the_token_is_asked_for_with_client_credentials_and_kept_for_its_lifetime(monkeypatch):
    from connector.adapters.oneroster_no.api import OneRosterClient
    from connector.adapters.oneroster_no.settings import OneRosterSettings

    monkeypatch.setenv("ONEROSTER_TEST_SECRET", "s3cret")
    answer = OneAnswer(200, fixture("token__client_credentials"))
    now = [0.0]
    client = OneRosterClient(OneRosterSettings().load({"orgs": [ORG], "client_id": "skoleflyt", "client_secret": {
        "env": "ONEROSTER_TEST_SECRET"}, "scopes": ["roster-core.readonly"]}), answer, clock=lambda: now[0])
    assert client.token() == fixture("token__client_credentials")["access_token"]
    assert answer.posted == [("https://id.onedhub.io/realms/onedhub/protocol/openid-connect/token", {
        "grant_type": "client_credentials", "client_id": "skoleflyt", "client_secret": "s3cret",
        "scope": "roster-core.readonly"})]
    now[0] = 260.0
    client.token()
    assert len(answer.posted) == 1  # 300 s lifetime: still good 40 s before its end
    now[0] = 275.0
    client.token()
    assert len(answer.posted) == 2  # within the last 30 s: renewed before use, not after a 401


def test_refused_credentials_fail_the_poll_with_a_hint_and_no_secret(vigilo, server, monkeypatch, caplog):
    from connector.adapters.oneroster_no.api import OneRosterClient, Refused

    refused = OneAnswer(401, fixture("token__invalid_client"))
    client = OneRosterClient(vigilo.adapter(TENANT, "vigilo").settings, refused)
    with pytest.raises(Refused, match="invalid_client"):
        client.token()
    monkeypatch.setenv("ONEROSTER_TEST_SECRET", "wrong-secret-not-in-logs")
    outcome = Poller(vigilo, sleep=Sleeps(), name="p1").tick()[(TENANT, "vigilo")]
    assert outcome.reason == "refused"
    assert "check the client id, secret and scopes" in caplog.text
    assert "wrong-secret-not-in-logs" not in caplog.text and "Invalid client" not in caplog.text


def test_a_schools_own_type_codes_are_read_as_configured_and_an_unknown_one_is_named(vigilo, server, caplog):
    add_adapter(vigilo, TENANT, "vigilo", "oneroster_no", settings(server, absence_types={
        "Sykdom": {"status": "absent", "documented": True}, "forsinket": {"status": "late"}}))
    server.put(ORG, absence("a1", "s1", "2026-11-20", kind="SYKDOM"))
    server.put(ORG, absence("a2", "s2", "2026-11-20", kind="forsinket", lesson="nor"))
    server.put(ORG, absence("a3", "s3", "2026-11-20", kind="permisjon-ukjent"))
    result = poll(vigilo)
    assert result.unknown_types == {"permisjon-ukjent"}
    assert "absence type(s) permisjon-ukjent are not in the adapter's absence_types" in caplog.text
    (job,) = queued_jobs(vigilo)
    assert [(e["student_id"], e["status"], e["documented"]) for e in job.args[3]] == [
        ("s1", "absent", True), ("s2", "late", False), ("s3", "absent", False)]
