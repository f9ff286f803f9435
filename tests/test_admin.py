"""The admin page through Flask's test client: sign-in (local account and OpenID Connect), roles and isolation
between schools, CSRF, and each view: tenants and adapters, the plan, what the connector did, cases, dead letters."""
from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest
import requests
import responses

from connector import cli, create_app
from connector.admin.auth import check_local, roles_from_claims, write_password_file
from connector.config.schema import RoleRule
from connector.store import deliveries, journal
from tests.admin_support import (
    ADMIN_PASSWORD, CLIENT_SECRET, SESSION_SECRET, FakeOidcProvider, admin_config, with_admin,
)
from tests.cases_support import accept_all, school, send_message  # noqa: F401 - ``school`` is a fixture
from tests.support import PLATFORM, post_event, run_worker

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def oidc():
    provider = FakeOidcProvider()
    yield provider
    provider.stop()


@pytest.fixture
def admin_rt(rt, tmp_path, monkeypatch, oidc):
    monkeypatch.setenv("TEST_ADMIN_SESSION_SECRET", SESSION_SECRET)
    monkeypatch.setenv("TEST_OIDC_CLIENT_SECRET", CLIENT_SECRET)
    password_file = tmp_path / "admin-password.hash"
    write_password_file(password_file, ADMIN_PASSWORD)
    return with_admin(rt, admin_config(password_file, f"{oidc.issuer}/.well-known/openid-configuration"))


@pytest.fixture
def web(admin_rt):
    app = create_app(runtime=admin_rt)
    return app.test_client()


def csrf(web, path: str = "/admin/login") -> str:
    page = web.get(path)
    match = TOKEN.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in_local(web, password: str = ADMIN_PASSWORD, username: str = "admin"):
    return web.post("/admin/login", data={"username": username, "password": password, "csrf_token": csrf(web)})


def sign_in_oidc(web, oidc, **claims):
    """The code flow as a browser follows it: to the provider, which signs ``claims`` in, and back."""
    oidc.next_user(**claims)
    start = web.get("/admin/login/feide")
    assert start.status_code == 302 and start.location.startswith(oidc.issuer + "/authorize")
    back = requests.get(start.location, allow_redirects=False, timeout=5)
    assert back.status_code == 302
    url = urlsplit(back.headers["Location"])
    return web.get(f"{url.path}?{url.query}")


def text(response) -> str:
    return response.get_data(as_text=True)


# --- Signing in ----------------------------------------------------------------------------------------------------


def test_every_page_sends_a_stranger_to_the_sign_in_page(web):
    for path in ("/admin/", "/admin/t/skole-a", "/admin/t/skole-a/plan", "/admin/t/skole-a/actions",
                 "/admin/t/skole-a/cases", "/admin/t/skole-a/dead-letters"):
        response = web.get(path)
        assert response.status_code == 302 and "/admin/login" in response.location, path


def test_local_admin_signs_in_with_the_password_and_sees_every_school(web):
    refused = sign_in_local(web, password="feil-passord-123")
    assert refused.status_code == 401 and "Feil brukernavn eller passord." in text(refused)
    assert sign_in_local(web, username="rektor").status_code == 401

    assert sign_in_local(web).status_code == 302
    page = text(web.get("/admin/"))
    assert "Skole skole-a" in page and "Skole skole-b" in page
    assert 'id="queue-depth">0<' in page


def test_the_password_file_holds_a_hash_only(tmp_path, admin_rt):
    stored = admin_rt.config.admin.password_file.read_text()
    assert ADMIN_PASSWORD not in stored and stored.startswith("scrypt:")
    assert oct(admin_rt.config.admin.password_file.stat().st_mode & 0o777) == "0o600"
    assert check_local(admin_rt.config.admin, "admin", ADMIN_PASSWORD)


def test_a_form_without_its_csrf_token_is_refused(web):
    response = web.post("/admin/login", data={"username": "admin", "password": ADMIN_PASSWORD})
    assert response.status_code == 400 and "Skjemaet var utløpt eller ugyldig" in text(response)
    assert web.get("/admin/").status_code == 302  # not signed in
    sign_in_local(web)
    forged = web.post("/admin/t/skole-a/dead-letters/retry", data={"all": "1", "csrf_token": "forged"})
    assert forged.status_code == 400


def test_the_webhook_door_needs_no_csrf_token(web):
    response = post_event(web, "student.enrolled", {"student_id": "s-1", "group_id": "7A", "date": "2026-11-23"})
    assert response.status_code == 202


def test_oidc_sign_in_maps_the_owner_group_to_admin(web, oidc):
    response = sign_in_oidc(web, oidc, sub="u-1", email="it@kommune.no", groups=["fc:org:owner"])
    assert response.status_code == 302 and response.location.endswith("/admin/")
    page = text(web.get("/admin/"))
    assert "it@kommune.no" in page and "Skole skole-a" in page and "Skole skole-b" in page


def test_oidc_sign_in_without_a_mapped_claim_gets_no_access(web, oidc):
    response = sign_in_oidc(web, oidc, sub="u-2", groups=["fc:some-other-group"])
    assert response.status_code == 403 and "har ikke tilgang" in text(response)
    assert web.get("/admin/").status_code == 302


def test_an_id_token_signed_with_another_key_is_not_accepted(web, oidc):
    from cryptography.hazmat.primitives.asymmetric import rsa

    oidc.rogue_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    try:
        response = sign_in_oidc(web, oidc, sub="u-3", groups=["fc:org:owner"])
    finally:
        oidc.rogue_key = None
    assert response.status_code == 401 and "kunne ikke bekreftes" in text(response)
    assert web.get("/admin/").status_code == 302


def test_a_callback_with_a_forged_state_is_refused(web, oidc):
    oidc.next_user(sub="u-4", groups=["fc:org:owner"])
    web.get("/admin/login/feide")
    response = web.get("/admin/auth/feide?code=anything&state=forged")
    assert response.status_code == 401


def test_claims_map_to_roles():
    rules = (RoleRule("groups", "owner", "admin"), RoleRule("org", "a", "school", "skole-a"),
             RoleRule("groups", "b", "school", "skole-b"))
    assert roles_from_claims(rules, {"groups": ["x", "owner"]}) == ("admin", [])
    assert roles_from_claims(rules, {"org": "a", "groups": ["b"]}) == ("school", ["skole-a", "skole-b"])
    assert roles_from_claims(rules, {"org": "ab"}) is None
    assert roles_from_claims(rules, {}) is None


# --- A school sees its own school only -----------------------------------------------------------------------------


def test_a_school_admin_never_sees_another_school(web, oidc, admin_rt, platform):
    platform.add_passthru(oidc.issuer)  # the sign-in's provider is a real server on loopback, not the platform
    platform.add(responses.POST, f"{PLATFORM}/tasks", json={"error": "assignee_not_found"}, status=400)
    from connector.engine import outbox

    outbox.send_test(admin_rt, "skole-b", "generic", "t", "b")  # a dead letter of skole-b's
    (letter,) = outbox.dead_letters(admin_rt)
    assert letter["tenant"] == "skole-b"

    sign_in_oidc(web, oidc, sub="u-5", groups=["fc:skole-a"])
    index = text(web.get("/admin/"))
    assert "Skole skole-a" in index and "skole-b" not in index
    assert 'id="queue-depth"' not in index  # the shared queue is the operator's
    for path in ("/admin/t/skole-b", "/admin/t/skole-b/plan", "/admin/t/skole-b/actions",
                 "/admin/t/skole-b/cases", "/admin/t/skole-b/dead-letters", "/admin/t/skole-b/cases/case-x",
                 "/admin/t/nowhere"):
        assert web.get(path).status_code == 404, path
    assert web.get("/admin/t/skole-a").status_code == 200
    token = csrf(web, "/admin/t/skole-a")
    for path, data in (("/admin/t/skole-b/dead-letters/retry", {"all": "1"}),
                       ("/admin/t/skole-b/adapters/generic/test", {}),
                       ("/admin/t/skole-a/dead-letters/retry", {"id": letter["id"]})):
        assert web.post(path, data={**data, "csrf_token": token}).status_code == 404, path
    assert [letter["id"] for letter in outbox.dead_letters(admin_rt)] == [letter["id"]]  # untouched
    assert len(platform.calls) == 1  # no test task was sent for skole-b


# --- The views -----------------------------------------------------------------------------------------------------


def test_the_tenant_page_masks_secrets_and_shows_the_last_delivery(web, admin_rt, clock):
    post_event(web, "student.enrolled", {"student_id": "s-1", "group_id": "7A", "date": "2026-11-23"})
    run_worker(admin_rt)
    sign_in_local(web)
    page = text(web.get("/admin/t/skole-a"))
    assert "token-a-not-in-logs" not in page and "whsec_" not in page
    assert "•••••• (env: SKOLE_A_API_TOKEN)" in page
    assert '<dd class="last-delivery">2026-11-23 09:00</dd>' in page  # the clock's Monday 08:00 UTC, in Oslo
    assert '<dd class="last-poll">aldri</dd>' in page
    assert deliveries.last_seen(admin_rt.redis, admin_rt.keys, "skole-b") == {}


def test_send_test_task_writes_a_marked_task_through_the_adapter(web, admin_rt, platform):
    platform.add(responses.POST, f"{PLATFORM}/tasks", json={"id": "remote-1"}, status=201)
    sign_in_local(web)
    response = web.post("/admin/t/skole-a/adapters/generic/test", data={"csrf_token": csrf(web, "/admin/t/skole-a")})
    assert response.status_code == 302
    (call,) = platform.calls
    body = json.loads(call.request.body)
    assert body["rule_id"] == "admin.test" and body["title"].startswith("TEST fra Skoleflyt")
    assert body["student_id"] is None and body["assignee"] == {"role": "principal", "id": "u-rektor"}
    assert call.request.headers["Idempotency-Key"] == body["external_ref"]
    page = text(web.get("/admin/t/skole-a"))
    assert f"Testoppgave {body['external_ref']} ble skrevet til plattformen." in page
    (entry,) = journal.read(admin_rt.redis, admin_rt.keys, "skole-a")
    assert (entry.rule, entry.kind, entry.out, entry.status, entry.ref) == (
        "admin.test", "task", "written", "201", body["external_ref"])


def test_what_the_connector_did_is_filterable_by_rule_pupil_date_and_outcome(web, admin_rt):
    keys = admin_rt.keys
    day = 1795420800.0  # 2026-11-23 08:00 UTC
    with admin_rt.redis.pipeline() as pipe:
        journal.record(pipe, keys, "skole-a", {"ref": "sf1-aaa", "kind": "task", "rule": "absence.pattern",
                                              "pupil": "s-1", "group": "7A", "due": "2026-11-30", "out": "written",
                                              "status": 201, "adapter": "generic"}, day)
        journal.record(pipe, keys, "skole-a", {"ref": "sf1-bbb", "kind": "alert", "rule": "absence.school_refusal",
                                              "pupil": "s-2", "out": "dead", "status": 400, "adapter": "generic"},
                       day + 86400)
        journal.record(pipe, keys, "skole-b", {"ref": "sf1-ccc", "kind": "task", "rule": "absence.pattern",
                                              "pupil": "s-9", "out": "written", "adapter": "generic"}, day)
        pipe.execute()
    sign_in_local(web)

    def refs(query: str) -> list[str]:
        return re.findall(r'<code class="small">(sf1-\w+)</code>', text(web.get(f"/admin/t/skole-a/actions{query}")))

    assert refs("") == ["sf1-bbb", "sf1-aaa"]  # newest first, skole-a's only
    assert refs("?rule=absence.pattern") == ["sf1-aaa"]
    assert refs("?pupil=s-2") == ["sf1-bbb"]
    assert refs("?date=2026-11-24") == ["sf1-bbb"]
    assert refs("?date=2026-11-30") == ["sf1-aaa"]  # the deadline's day too
    assert refs("?outcome=dead") == ["sf1-bbb"]
    assert refs("?outcome=written&pupil=s-2") == []
    page = text(web.get("/admin/t/skole-a/actions?rule=absence.pattern"))
    assert "2026-11-30" in page and "gruppe <code>7A</code>" in page


def test_the_journal_refuses_a_field_that_could_carry_text(admin_rt):
    with admin_rt.redis.pipeline() as pipe, pytest.raises(ValueError, match="body"):
        journal.record(pipe, admin_rt.keys, "skole-a", {"ref": "sf1-x", "body": "Emil var syk"}, 0.0)


def test_cases_are_listed_with_their_history_and_the_actions_they_caused(web, school, admin_rt, platform):
    accept_all(platform)
    send_message(web, school, "Jeg er bekymret for at Emil ikke får nok oppfølging i matte. Kan vi ta en prat?")
    sign_in_local(web)
    listing = text(web.get("/admin/t/skole-a/cases"))
    (case_id,) = re.findall(r"<code>(c-[0-9a-f]+)</code>", listing)
    assert "own_child_case" in listing and "Emil" not in listing
    shown = text(web.get(f"/admin/t/skole-a/cases/{case_id}"))
    assert f"case {case_id}: open" in shown and "created" in shown and "Emil" not in shown
    actions = text(web.get("/admin/t/skole-a/actions"))
    assert f"/admin/t/skole-a/cases/{case_id}" in actions and "trinn school/0" in actions
    assert web.get("/admin/t/skole-a/cases/c-nope").status_code == 404


def test_dead_letters_show_the_platforms_answer_and_can_be_retried(web, admin_rt, platform):
    from connector.engine import outbox

    platform.add(responses.POST, f"{PLATFORM}/tasks", json={"error": "assignee_not_found", "id": "u-rektor"},
                 status=400)
    for _ in range(3):
        outbox.send_test(admin_rt, "skole-a", "generic", "t", "b")
    sign_in_local(web)
    page = text(web.get("/admin/t/skole-a/dead-letters"))
    assert page.count('class="dead-letter"') == 3
    assert "HTTP 400" in page and "assignee_not_found" in page
    first = outbox.dead_letters(admin_rt)[0]
    token = csrf(web, "/admin/t/skole-a/dead-letters")
    web.post("/admin/t/skole-a/dead-letters/retry", data={"id": first["id"], "csrf_token": token})
    left = outbox.dead_letters(admin_rt)
    assert len(left) == 2 and first["id"] not in {letter["id"] for letter in left}
    ref = first["action"]["external_ref"]
    assert admin_rt.redis.hexists(admin_rt.keys.outbox("skole-a"), ref)  # back in the outbox, due now
    response = web.post("/admin/t/skole-a/dead-letters/retry", data={"all": "1", "csrf_token": token})
    assert outbox.dead_letters(admin_rt) == []
    assert "2 handling(er) lagt tilbake i utboksen." in text(web.get(response.location))


@pytest.fixture
def tenant_plan():
    return {"absence.notice_missing": {"notice_school_days": 4}}


def test_the_plan_is_shown_as_the_seed_prints_it_with_the_difference_from_the_default(web, admin_rt):
    from connector.rules.plan_text import plan_lines

    sign_in_local(web)
    page = text(web.get("/admin/t/skole-a/plan"))
    tenant = admin_rt.config.tenants["skole-a"]
    first_line = plan_lines(f"{tenant.name} ({tenant.id})", tenant.plan, "nb")[0]
    assert first_line in page
    changes = re.search(r'<table id="plan-changes">.*?</table>', page, re.S).group(0)
    assert "absence.notice_missing" in changes and "notice_school_days" in changes
    assert "<td>3</td><td><strong>4</strong></td>" in changes
    assert 'id="plan-diff"' in page
    other = text(web.get("/admin/t/skole-b/plan"))
    assert "Skulen brukar standardplanen uendra." not in other and "Skolen bruker standardplanen uendret." in other


def test_the_language_switch_turns_the_page_english_and_back(web):
    sign_in_local(web)
    token = csrf(web, "/admin/")
    web.post("/admin/language", data={"lang": "en", "next": "/admin/", "csrf_token": token})
    page = text(web.get("/admin/"))
    assert '<html lang="en">' in page and "Schools" in page and "Sign out" in page
    web.post("/admin/language", data={"lang": "nn", "next": "/admin/", "csrf_token": token})
    assert "Skular" in text(web.get("/admin/"))
    web.post("/admin/language", data={"lang": "xx", "next": "https://evil.example/", "csrf_token": token})
    assert "Skular" in text(web.get("/admin/"))


def test_sign_in_never_redirects_off_the_site(web):
    response = web.post("/admin/login", data={"username": "admin", "password": ADMIN_PASSWORD,
                                              "next": "//evil.example/x", "csrf_token": csrf(web)})
    assert response.location.endswith("/admin/")


def test_signing_out_ends_the_session(web):
    sign_in_local(web)
    web.post("/admin/logout", data={"csrf_token": csrf(web, "/admin/")})
    assert web.get("/admin/").status_code == 302


def test_without_an_admin_section_the_page_says_how_to_turn_it_on(client):
    response = client.get("/admin/")
    assert response.status_code == 404 and response.get_json()["error"] == "not_configured"


# --- The command that sets the password ----------------------------------------------------------------------------


def test_set_password_stores_only_the_hash(tmp_path, monkeypatch, capsys):
    import io

    config = tmp_path / "connector.yaml"
    example = (cli.EXAMPLE_CONFIG.parent / "connector.yaml").read_text()
    config.write_text(example.replace("file: calendar-2026-27.yaml",
                                      f"file: {cli.EXAMPLE_CONFIG.parent / 'calendar-2026-27.yaml'}")
                      .replace("secrets/", f"{cli.EXAMPLE_CONFIG.parent / 'secrets'}/"))
    monkeypatch.setattr("sys.stdin", io.StringIO("kort\n"))
    assert cli.main(["admin", "set-password", "--config", str(config)]) == 1
    assert not (tmp_path / "admin-password.hash").exists()
    monkeypatch.setattr("sys.stdin", io.StringIO("et-langt-nok-passord\n"))
    assert cli.main(["admin", "set-password", "--config", str(config)]) == 0
    stored = (tmp_path / "admin-password.hash").read_text()
    assert "et-langt-nok-passord" not in stored and stored.startswith("scrypt:")
    from connector.config.schema import load_config

    assert check_local(load_config(config).admin, "admin", "et-langt-nok-passord")
    assert "admin-password.hash" in capsys.readouterr().out


def test_each_action_shows_its_evidence_and_the_plan_step_it_belongs_to(web, admin_rt, platform):
    from datetime import datetime, timezone

    from tests.cases_support import at

    accept_all(platform)
    mark = {"student_id": "s-1", "date": "2026-11-23", "status": "absent", "documented": False, "group_id": "7A"}
    assert post_event(web, "attendance.marked", mark).status_code == 202
    run_worker(admin_rt)
    at(admin_rt, datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc))  # the notice's deadline has passed
    entries = journal.read(admin_rt.redis, admin_rt.keys, "skole-a")
    reminder = [entry for entry in entries if entry.rule == "absence.notice_missing" and entry.evidence]
    assert reminder, [(entry.rule, entry.kind) for entry in entries]
    assert json.loads(reminder[0].evidence)["absence_date"] == "2026-11-23"

    sign_in_local(web)
    page = text(web.get("/admin/t/skole-a/actions?rule=absence.notice_missing"))
    assert "fraværsdag: 2026-11-23" in page and "frist for melding: 2026-11-27" in page  # 4 school days here
    assert "Planens punkt: " in page
    web.post("/admin/language", data={"lang": "en", "next": "/admin/", "csrf_token": csrf(web, "/admin/")})
    assert "absence date: 2026-11-23" in text(web.get("/admin/t/skole-a/actions?rule=absence.notice_missing"))


def test_evidence_keeps_dates_counts_and_codes_and_drops_anything_like_text():
    from connector.engine.outbox import evidence

    assert evidence({"absence_date": "2026-11-23", "count": 3, "rate": 0.125, "note": "Emil var syk",
                     "findings": [{"kind": "weekday", "dates": ["2026-11-02", "mandag og tirsdag"]}],
                     "Navn Navnesen": 1}) == {
        "absence_date": "2026-11-23", "count": 3, "rate": 0.125,
        "findings": [{"kind": "weekday", "dates": ["2026-11-02"]}],
    }


def test_behind_a_proxy_the_provider_sends_people_back_to_the_public_address(web, admin_rt):
    from dataclasses import replace
    from urllib.parse import parse_qs

    admin_rt.config = replace(admin_rt.config, admin=replace(admin_rt.config.admin,
                                                             public_url="https://connector.kommune.no/"))
    start = web.get("/admin/login/feide")
    redirect_uri = parse_qs(urlsplit(start.location).query)["redirect_uri"]
    assert redirect_uri == ["https://connector.kommune.no/admin/auth/feide"]


ADMIN_YAML = """
admin:
  session_secret: {env: TEST_ADMIN_SESSION_SECRET}
  password_file: admin.hash
  oidc:
    feide:
      discovery_url: https://auth.dataporten.no/.well-known/openid-configuration
      client_id: abc
      client_secret: {env: TEST_OIDC_CLIENT_SECRET}
      roles:
        - {claim: groups, value: "fc:org:kommune", role: admin}
        - {claim: groups, value: "fc:unit:a", role: school, tenant: TENANT}
"""


def example_with(tmp_path, admin_yaml: str):
    example = (cli.EXAMPLE_CONFIG.parent / "connector.yaml").read_text().split("\nadmin:")[0]
    example = example.replace("file: calendar-2026-27.yaml", f"file: {cli.EXAMPLE_CONFIG.parent / 'calendar-2026-27.yaml'}")
    example = example.replace("secrets/", f"{cli.EXAMPLE_CONFIG.parent / 'secrets'}/")
    path = tmp_path / "connector.yaml"
    path.write_text(example + admin_yaml)
    return path


def test_the_admin_section_loads_with_its_providers_and_claim_mapping(tmp_path, monkeypatch):
    from connector.config.schema import load_config

    admin = load_config(example_with(tmp_path, ADMIN_YAML.replace("TENANT", "demo-skole"))).admin
    assert admin.password_file == tmp_path / "admin.hash" and admin.secure_cookies is True
    (feide,) = admin.providers.values()
    assert (feide.label, feide.client_id, feide.scope) == ("feide", "abc", "openid")
    assert feide.roles[1] == RoleRule("groups", "fc:unit:a", "school", "demo-skole")


def test_a_school_role_for_an_unknown_tenant_or_an_unreadable_secret_is_a_configuration_problem(tmp_path,
                                                                                                  monkeypatch):
    from connector.config.schema import ConfigError, check_config, load_config

    path = example_with(tmp_path, ADMIN_YAML.replace("TENANT", "no-such-school"))
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert any("admin.oidc.feide.roles.1.tenant: No tenant named 'no-such-school'." in p for p in raised.value.problems)

    monkeypatch.delenv("TEST_ADMIN_SESSION_SECRET", raising=False)
    monkeypatch.setenv("TEST_OIDC_CLIENT_SECRET", "x")
    problems = check_config(example_with(tmp_path, ADMIN_YAML.replace("TENANT", "demo-skole")))
    assert [p.split(": ", 1)[1] for p in problems] == [
        "admin.session_secret: environment variable TEST_ADMIN_SESSION_SECRET is not set"]


def test_failed_jobs_are_listed_without_event_data_and_the_operator_runs_them_again(web, admin_rt, oidc,
                                                                                     monkeypatch):
    from rq.job import Retry

    from connector.engine import failed_jobs, routing, rq_compat

    monkeypatch.setattr(rq_compat, "RETRY", Retry(max=1, interval=0))
    original = routing.handle_events

    def broken(rt, tenant_id, adapter, events):
        raise ValueError(f"cannot judge {events[0]['marks'][0]}")  # the mark as queued: the door keeps no reason

    monkeypatch.setattr(routing, "handle_events", broken)
    register = {"date": "2026-11-20", "group_id": "7A", "marks": [
        {"student_id": "s-1", "status": "absent", "documented": False, "reason": "Kari er syk med feber"}]}
    post_event(web, "attendance.register", register, msg_id="msg-fails")
    run_worker(admin_rt)
    (job,) = failed_jobs.failed_jobs(admin_rt)

    sign_in_oidc(web, oidc, sub="u-a", groups=["fc:skole-a"])  # a school sees its failed job, cannot rerun it
    page = text(web.get("/admin/"))
    assert job.id in page and "ValueError" in page and "Kari" not in page and "cannot judge" not in page
    assert 'class="retry-job"' not in page
    token = csrf(web, "/admin/")
    assert web.post("/admin/jobs/retry", data={"all": "1", "csrf_token": token}).status_code == 404
    web.post("/admin/logout", data={"csrf_token": token})

    sign_in_local(web)
    monkeypatch.setattr(routing, "handle_events", original)  # the cause is fixed
    token = csrf(web, "/admin/")
    assert web.post("/admin/jobs/retry", data={"id": "no-such-job", "csrf_token": token}).status_code == 404
    response = web.post("/admin/jobs/retry", data={"id": job.id, "csrf_token": token})
    assert "1 jobb(er) lagt i køen igjen." in text(web.get(response.location))
    run_worker(admin_rt)
    assert failed_jobs.failed_jobs(admin_rt) == []
    assert admin_rt.redis.hexists(admin_rt.keys.pupil("skole-a", "s-1"), "d:2026-11-20")


def test_an_unreadable_session_secret_turns_the_admin_page_off_and_not_the_door(admin_rt, monkeypatch, caplog):
    monkeypatch.delenv("TEST_ADMIN_SESSION_SECRET")
    web = create_app(runtime=admin_rt).test_client()
    response = web.get("/admin/")
    assert response.status_code == 404 and "session secret cannot be read" in response.get_json()["message"]
    assert "TEST_ADMIN_SESSION_SECRET" in caplog.text and SESSION_SECRET not in caplog.text
    body = {"student_id": "s-1", "group_id": "7A", "date": "2026-11-23"}
    assert post_event(web, "student.enrolled", body).status_code == 202


def test_the_local_account_locks_after_ten_failed_sign_ins(web, admin_rt):
    from connector.store import sign_ins

    for _ in range(sign_ins.LIMIT):
        assert sign_in_local(web, password="gjetning-1234").status_code == 401
    locked = sign_in_local(web)  # even the right password, until the window ends
    assert locked.status_code == 429 and "For mange mislykte forsøk" in text(locked)
    assert web.get("/admin/").status_code == 302
    assert 0 < admin_rt.redis.ttl(admin_rt.keys.sign_in_failures) <= sign_ins.WINDOW_SECONDS
    admin_rt.redis.delete(admin_rt.keys.sign_in_failures)  # the window has passed
    assert sign_in_local(web).status_code == 302
    assert admin_rt.redis.get(admin_rt.keys.sign_in_failures) is None  # a success starts afresh


def test_shadow_mode_and_what_it_would_write_are_shown_to_the_school_only(web, admin_rt, oidc):
    from dataclasses import replace

    from connector.contract.actions import Action, Party
    from connector.store import outbox as stored_outbox

    tenants = admin_rt.config.tenants
    admin_rt.config = replace(admin_rt.config, tenants={**tenants, "skole-a": replace(tenants["skole-a"],
                                                                                        mode="shadow")})
    action = Action(kind="task", external_ref="sf1-shadow-1", rule_id="absence.notice_missing", student_id="s-7",
                    title="Fravær uten melding", body="…", assignee=Party(role="contact_teacher", id="u-kl-7a"),
                    due_date="2026-11-25")
    with admin_rt.redis.pipeline() as pipe:
        stored_outbox.record_shadow(pipe, admin_rt.keys, "skole-a", "generic", [action], 1_795_000_000.0)
        pipe.execute()
    sign_in_oidc(web, oidc, sub="u-a", groups=["fc:skole-a"])
    page = text(web.get("/admin/t/skole-a"))
    assert '<span class="mode">skyggemodus</span>' in page and "Ville ha skrevet: 1 handlinger" in page
    listing = text(web.get("/admin/t/skole-a/shadow"))
    assert all(part in listing for part in ("absence.notice_missing", "s-7", "u-kl-7a", "2026-11-25",
                                             "Fravær uten melding"))
    sign_in_oidc(web, oidc, sub="u-b", groups=["fc:skole-b"])  # another school: not its page
    assert web.get("/admin/t/skole-a/shadow").status_code == 404


def test_the_latest_replay_report_is_linked_and_served_to_its_school(web, admin_rt, oidc):
    from connector.store import replay as stored_replay

    sign_in_oidc(web, oidc, sub="u-a", groups=["fc:skole-a"])
    assert 'id="no-replay-report"' in text(web.get("/admin/t/skole-a"))
    assert web.get("/admin/t/skole-a/replay-report").status_code == 404
    html = "<!doctype html><title>Hva planen ville ha laget</title><svg width='10' height='10'></svg>"
    stored_replay.keep_report(admin_rt.redis, admin_rt.keys, "skole-a", html, 1_795_000_000.0, 1234)
    page = text(web.get("/admin/t/skole-a"))
    assert 'id="replay-report-link"' in page and "1234 hendelser" in page
    report = web.get("/admin/t/skole-a/replay-report")
    assert report.status_code == 200 and text(report) == html
    assert "script-src" not in report.headers["Content-Security-Policy"]
    assert report.headers["Content-Security-Policy"].startswith("default-src 'none'")
    sign_in_oidc(web, oidc, sub="u-b", groups=["fc:skole-b"])
    assert web.get("/admin/t/skole-a/replay-report").status_code == 404


def test_polls_failing_longer_than_their_alert_are_shown_to_their_school_only(web, admin_rt, oidc):
    import time

    from connector.store import polls

    long_ago = time.time() - 3600
    polls.poll_failed(admin_rt.redis, admin_rt.keys, "skole-a", "vigilo", long_ago, "HTTP 503", 300.0, 3)
    polls.poll_failed(admin_rt.redis, admin_rt.keys, "skole-b", "visma", long_ago, "HTTP 401", 300.0, 3)
    sign_in_oidc(web, oidc, sub="u-a", groups=["fc:skole-a"])
    page = text(web.get("/admin/"))
    assert "<code>skole-a/vigilo</code>: feiler siden" in page and "HTTP 503" in page
    assert "skole-b/visma" not in page and "HTTP 401" not in page
