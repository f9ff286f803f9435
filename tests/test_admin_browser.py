"""The admin page end to end in a real headless Chromium: the app served on loopback by a real HTTP server, a small
OpenID Connect provider and the recording demo platform beside it, both on loopback too.

A school IT admin signs in (the local account; the school owner's provider as two different schools), sends a test
task that the platform receives, sees what the connector did, and retries a dead letter once the platform is fixed.
Screenshots go to the test artefacts (``tests/browser_support.py``): ``admin-*.png``.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as until
from selenium.webdriver.support.ui import Select, WebDriverWait

from connector import create_app
from connector.admin.auth import write_password_file
from connector.demo_platform import DemoPlatform
from connector.engine import outbox, scheduler
from tests.admin_support import (
    ADMIN_PASSWORD, CLIENT_SECRET, SESSION_SECRET, FakeOidcProvider, ServedApp, admin_config, with_admin,
)
from tests.browser_support import browser  # noqa: F401 - the fixture
from tests.support import run_worker


def platform_at(rt, base_url: str) -> None:
    """Point both schools' generic adapters at ``base_url`` (a fresh adapter is built on the next send)."""
    tenants = {}
    for tenant_id, tenant in rt.config.tenants.items():
        adapter = tenant.adapters["generic"]
        settings = {**adapter.settings, "base_url": base_url}
        tenants[tenant_id] = replace(tenant, adapters={"generic": replace(adapter, settings=settings)})
    rt.config = replace(rt.config, tenants=tenants)
    rt._adapters.clear()


@pytest.fixture
def site(rt, tmp_path, monkeypatch):
    """The admin page served on loopback, with its OIDC provider and the demo platform the schools write to."""
    monkeypatch.setenv("TEST_ADMIN_SESSION_SECRET", SESSION_SECRET)
    monkeypatch.setenv("TEST_OIDC_CLIENT_SECRET", CLIENT_SECRET)
    password_file = tmp_path / "admin-password.hash"
    write_password_file(password_file, ADMIN_PASSWORD)
    provider = FakeOidcProvider()
    demo = DemoPlatform().start()
    with_admin(rt, admin_config(password_file, f"{provider.issuer}/.well-known/openid-configuration"))
    platform_at(rt, demo.url)
    served = ServedApp(create_app(runtime=rt))
    try:
        yield served.url, provider, demo
    finally:
        served.stop()
        demo.stop()
        provider.stop()


def wait_for(browser, css: str, timeout: float = 10):
    return WebDriverWait(browser, timeout).until(until.presence_of_element_located((By.CSS_SELECTOR, css)))


def sign_in_locally(browser, url: str) -> None:
    browser.get(f"{url}/admin/")
    wait_for(browser, "#username").send_keys("admin")
    browser.find_element(By.ID, "password").send_keys(ADMIN_PASSWORD)
    browser.find_element(By.ID, "local-sign-in").click()
    wait_for(browser, "#tenants")


def sign_in_with_feide(browser, url: str, provider, **claims) -> None:
    provider.next_user(**claims)
    browser.get(f"{url}/admin/login")
    wait_for(browser, "#login-feide").click()
    wait_for(browser, "#tenants")


def sign_out(browser) -> None:
    browser.find_element(By.ID, "sign-out").click()
    wait_for(browser, "#username")


def test_local_admin_sends_a_test_task_and_sees_it_written(browser, site, rt):
    url, _, demo = site
    browser.get(f"{url}/admin/t/skole-a")
    wait_for(browser, "#username")
    browser.screenshot("admin-sign-in")
    browser.find_element(By.ID, "username").send_keys("admin")
    browser.find_element(By.ID, "password").send_keys("feil-passord")
    browser.find_element(By.ID, "local-sign-in").click()
    assert "Feil brukernavn eller passord." in wait_for(browser, "#login-error").text

    browser.find_element(By.ID, "password").send_keys(ADMIN_PASSWORD)
    browser.find_element(By.ID, "username").clear()
    browser.find_element(By.ID, "username").send_keys("admin")
    browser.find_element(By.ID, "local-sign-in").click()
    wait_for(browser, "#adapter-generic")  # back where it was going
    page = browser.page_source
    assert "SKOLE_A_API_TOKEN" in page and "token-a-not-in-logs" not in page

    browser.find_element(By.CSS_SELECTOR, "#adapter-generic .send-test").click()
    flash = wait_for(browser, ".flash.ok")
    assert "ble skrevet til plattformen" in flash.text
    browser.screenshot("admin-send-test-task")
    (received,) = demo.state.records()
    assert received["rule_id"] == "admin.test" and received["title"].startswith("TEST fra Skoleflyt")
    assert received["external_ref"] in flash.text

    browser.get(f"{url}/admin/t/skole-a/actions")
    rows = browser.find_elements(By.CSS_SELECTOR, "#actions tr.action")
    assert len(rows) == 1 and "admin.test" in rows[0].text and "skrevet" in rows[0].text
    browser.screenshot("admin-what-the-connector-did")

    browser.get(f"{url}/admin/t/skole-a/plan")
    assert wait_for(browser, "#plan-text").text.startswith("Handlingsplan for fravær – Skole skole-a (skole-a)")
    browser.screenshot("admin-plan")

    browser.get(f"{url}/admin/")
    Select(wait_for(browser, "#lang")).select_by_value("en")
    browser.find_element(By.ID, "change-language").click()
    WebDriverWait(browser, 10).until(until.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Schools"))
    assert browser.find_element(By.ID, "sign-out").text == "Sign out"
    browser.screenshot("admin-overview-english")


def test_a_dead_letter_is_retried_from_the_page_once_the_platform_is_fixed(browser, site, rt):
    url, _, demo = site
    platform_at(rt, demo.url + "/wrong-path")  # the platform answers 404: a dead letter
    outcome, ref = outbox.send_test(rt, "skole-a", "generic", "t", "b")
    assert outcome == "dead" and demo.state.records() == []
    platform_at(rt, demo.url)  # the admin fixes the configuration

    sign_in_locally(browser, url)
    browser.get(f"{url}/admin/t/skole-a/dead-letters")
    row = wait_for(browser, "#dead-letters tr.dead-letter")
    assert "404" in row.text and "admin.test" in row.text
    browser.screenshot("admin-dead-letters")
    row.find_element(By.CSS_SELECTOR, "button.retry").click()
    assert "1 handling(er) lagt tilbake i utboksen." in wait_for(browser, ".flash.ok").text
    wait_for(browser, "#no-dead-letters")
    browser.screenshot("admin-dead-letter-retried")

    scheduler.sweep(rt)  # the outbox entry is due now: the scheduler queues it and a worker sends it
    run_worker(rt)
    assert [record["external_ref"] for record in demo.state.records()] == [ref]


def test_two_schools_signed_in_through_the_owners_provider_see_only_their_own(browser, site, rt):
    url, provider, demo = site
    sign_in_with_feide(browser, url, provider, sub="u-a", email="it@skole-a.no", groups=["fc:skole-a"])
    table = browser.find_element(By.ID, "tenants").text
    assert "Skole skole-a" in table and "skole-b" not in table
    assert "it@skole-a.no" in browser.page_source
    browser.screenshot("admin-school-a-signed-in-with-oidc")
    browser.get(f"{url}/admin/t/skole-b/dead-letters")
    assert wait_for(browser, "#error").text == "Finnes ikke."
    browser.screenshot("admin-school-a-cannot-see-school-b")
    browser.get(f"{url}/admin/t/skole-a")
    sign_out(browser)

    sign_in_with_feide(browser, url, provider, sub="u-b", email="it@skole-b.no", groups=["fc:skole-b"])
    table = browser.find_element(By.ID, "tenants").text
    assert "Skole skole-b" in table and "skole-a" not in table
    browser.get(f"{url}/admin/t/skole-b")
    wait_for(browser, "#adapter-generic .send-test").click()
    wait_for(browser, ".flash.ok")
    (received,) = demo.state.records()
    assert received["rule_id"] == "admin.test"
    browser.get(f"{url}/admin/t/skole-a/actions")
    assert wait_for(browser, "#error").text == "Finnes ikke."
    assert provider.token_requests == 2
