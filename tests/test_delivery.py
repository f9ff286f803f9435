"""Writing back exactly once: idempotency keys, the ledger, retries, Retry-After and dead letters."""
from __future__ import annotations

import os
import json
from datetime import datetime, timedelta, timezone

import pytest
import requests
import responses

from connector.engine import jobs, outbox, routing as processing, scheduler
from connector.contract.actions import Action, Party, external_ref
from connector.store import due, outbox as stored
from tests.support import PLATFORM, post_event, queued_jobs, run_worker

TASKS = f"{PLATFORM}/tasks"


def task(n: int = 1) -> Action:
    return Action(
        kind="task",
        external_ref=external_ref("skole-a", "absence.notice_missing", f"s-{n}", "2026-11-23", "task"),
        rule_id="absence.notice_missing",
        student_id=f"s-{n}",
        title="Følg opp fravær uten melding 23. nov",
        body="Hvorfor: ...",
        assignee=Party("contact_teacher", "u-kl-7a"),
        due_date="2026-11-30",
    )


def queue_action(rt, action: Action) -> None:
    with rt.redis.pipeline() as pipe:
        outbox.add(pipe, rt, "skole-a", "generic", [action], rt.clock.now().timestamp())
        pipe.execute()


def due_at(rt, action: Action) -> float | None:
    return due.send_due_at(rt.redis, rt.keys, "skole-a", action.external_ref)


def test_created_task_is_recorded_in_the_ledger_with_the_platforms_id(rt, platform):
    platform.add(responses.POST, TASKS, json={"id": "remote-17"}, status=201)
    action = task()
    queue_action(rt, action)
    assert outbox.send(rt, "skole-a", action.external_ref) == "done"
    assert outbox.written(rt, "skole-a", action.external_ref) == b"remote-17"
    assert not rt.redis.hexists(rt.keys.outbox("skole-a"), action.external_ref)
    assert due_at(rt, action) is None


def test_sending_twice_calls_the_platform_once(rt, platform):
    platform.add(responses.POST, TASKS, json={"id": "remote-1"}, status=201)
    action = task()
    queue_action(rt, action)
    outbox.send(rt, "skole-a", action.external_ref)
    queue_action(rt, action)  # as a retried job would
    assert outbox.send(rt, "skole-a", action.external_ref) == "skipped"
    assert len(platform.calls) == 1


def test_409_means_the_platform_already_has_it(rt, platform):
    platform.add(responses.POST, TASKS, json={"error": "duplicate"}, status=409)
    action = task()
    queue_action(rt, action)
    assert outbox.send(rt, "skole-a", action.external_ref) == "done"
    assert outbox.written(rt, "skole-a", action.external_ref) is not None


def test_the_ledger_remembers_for_its_weeks_and_expires_after_them(rt, platform):
    platform.add(responses.POST, TASKS, json={"id": "remote-5"}, status=201)
    action = task()
    queue_action(rt, action)
    outbox.send(rt, "skole-a", action.external_ref)
    [key] = rt.redis.scan_iter(match=f"{rt.keys.prefix}:t:skole-a:ledger:*")
    assert 0 < rt.redis.ttl(key) <= (stored.LEDGER.kept + 1) * stored.WEEK_SECONDS
    start = rt.clock.now()
    rt.clock.set(start + timedelta(weeks=stored.LEDGER.kept))
    queue_action(rt, action)  # the same action derived again, weeks later
    assert outbox.send(rt, "skole-a", action.external_ref) == "skipped"
    assert len(platform.calls) == 1
    rt.clock.set(start + timedelta(weeks=stored.LEDGER.kept + 1))
    assert outbox.written(rt, "skole-a", action.external_ref) is None


def test_past_the_ledgers_weeks_the_platforms_409_still_stops_a_second_task(rt, platform):
    platform.add(responses.POST, TASKS, json={"id": "remote-6"}, status=201)
    platform.add(responses.POST, TASKS, json={"error": "duplicate"}, status=409)
    action = task()
    queue_action(rt, action)
    outbox.send(rt, "skole-a", action.external_ref)
    rt.clock.set(rt.clock.now() + timedelta(weeks=stored.LEDGER.kept + 1))
    queue_action(rt, action)
    assert outbox.send(rt, "skole-a", action.external_ref) == "done"
    sent = [json.loads(call.request.body) for call in platform.calls]
    assert [call.request.headers["Idempotency-Key"] for call in platform.calls] == [action.external_ref] * 2
    assert sent[0]["external_ref"] == sent[1]["external_ref"]
    assert rt.redis.hlen(rt.keys.outbox("skole-a")) == 0


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(rt, platform, status):
    platform.add(responses.POST, TASKS, status=status, headers={"Retry-After": "120"})
    platform.add(responses.POST, TASKS, json={"id": "remote-2"}, status=201)
    action = task()
    queue_action(rt, action)
    start = rt.clock.now()
    assert outbox.send(rt, "skole-a", action.external_ref) == "retry"
    assert due_at(rt, action) == pytest.approx(start.timestamp() + 120)

    rt.clock.set(start + timedelta(seconds=119))
    assert scheduler.sweep(rt) == 0
    rt.clock.set(start + timedelta(seconds=120))
    assert scheduler.sweep(rt) == 1
    run_worker(rt)
    assert len(platform.calls) == 2
    assert outbox.written(rt, "skole-a", action.external_ref) == b"remote-2"


def test_retry_after_as_http_date(rt, platform):
    platform.add(responses.POST, TASKS, status=429, headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})
    action = task()
    queue_action(rt, action)
    outbox.send(rt, "skole-a", action.external_ref)
    assert due_at(rt, action) == pytest.approx(rt.clock.now().timestamp() + 6 * 3600)  # capped


@pytest.mark.parametrize("failure", [500, 502, "timeout", "connection"])
def test_server_errors_and_timeouts_back_off_exponentially(rt, platform, failure):
    if failure == "timeout":
        platform.add(responses.POST, TASKS, body=requests.Timeout("read timed out"))
    elif failure == "connection":
        platform.add(responses.POST, TASKS, body=requests.ConnectionError("refused"))
    else:
        platform.add(responses.POST, TASKS, status=failure)
    action = task()
    queue_action(rt, action)
    delays = []
    for attempt in range(1, 5):
        now = rt.clock.now().timestamp()
        assert outbox.send(rt, "skole-a", action.external_ref) == "retry"
        delays.append(due_at(rt, action) - now)
        entry = json.loads(rt.redis.hget(rt.keys.outbox("skole-a"), action.external_ref))
        assert entry["attempts"] == attempt
    for earlier, later in zip(delays, delays[1:]):
        assert later > earlier * 1.5
    assert delays[0] == pytest.approx(30, rel=0.11)


def test_retries_give_up_into_the_dead_letters_after_max_attempts(rt, platform):
    platform.add(responses.POST, TASKS, status=500)
    action = task()
    queue_action(rt, action)
    outcomes = [outbox.send(rt, "skole-a", action.external_ref) for _ in range(outbox.MAX_ATTEMPTS)]
    assert outcomes[-1] == "dead" and set(outcomes[:-1]) == {"retry"}
    (letter,) = outbox.dead_letters(rt)
    assert letter["attempts"] == outbox.MAX_ATTEMPTS


def test_other_4xx_go_straight_to_the_dead_letters_and_can_be_retried(rt, platform):
    platform.add(responses.POST, TASKS, json={"error": "unknown assignee"}, status=422)
    platform.add(responses.POST, TASKS, json={"id": "remote-3"}, status=201)
    action = task()
    queue_action(rt, action)
    assert outbox.send(rt, "skole-a", action.external_ref) == "dead"
    (letter,) = outbox.dead_letters(rt)
    assert (letter["tenant"], letter["status"], letter["action"]["external_ref"]) == ("skole-a", 422, action.external_ref)
    assert due_at(rt, action) is None
    assert scheduler.sweep(rt) == 0

    assert outbox.retry_dead_letter(rt, letter["id"])
    assert outbox.dead_letters(rt) == []
    scheduler.sweep(rt)
    run_worker(rt)
    assert outbox.written(rt, "skole-a", action.external_ref) == b"remote-3"


def test_an_action_decided_before_a_crash_is_sent_by_the_scheduler(rt, platform):
    """The job died between recording its decision and sending: the outbox entry is swept after the grace time."""
    platform.add(responses.POST, TASKS, json={"id": "remote-4"}, status=201)
    action = task()
    queue_action(rt, action)
    assert scheduler.sweep(rt) == 0  # not before the first-try grace: the job itself is still expected to send
    rt.clock.advance(seconds=outbox.FIRST_TRY_GRACE_SECONDS)
    assert scheduler.sweep(rt) == 1
    run_worker(rt)
    assert outbox.written(rt, "skole-a", action.external_ref) == b"remote-4"


def test_a_swept_item_whose_job_was_lost_is_swept_again_after_its_lease(rt, platform):
    platform.add(responses.POST, TASKS, json={"id": "remote-5"}, status=201)
    action = task()
    queue_action(rt, action)
    rt.clock.advance(seconds=outbox.FIRST_TRY_GRACE_SECONDS)
    assert scheduler.sweep(rt) == 1
    rt.queue.empty()  # the queued job is lost (say, Redis failed over without it)
    assert scheduler.sweep(rt) == 0  # leased
    rt.clock.advance(seconds=scheduler.LEASE_SECONDS)
    assert scheduler.sweep(rt) == 1
    run_worker(rt)
    assert len(platform.calls) == 1


def test_delivery_job_run_twice_writes_once(client, rt, platform):
    platform.add(responses.POST, f"{PLATFORM}/tasks", json={"id": "t"}, status=201)
    platform.add(responses.POST, f"{PLATFORM}/alerts", json={"id": "a"}, status=201)
    rt.clock.set(datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc))  # past the deadline: it fires when swept
    data = {"date": "2026-11-23", "group_id": "7A",
            "marks": [{"student_id": "s-2", "status": "absent", "documented": False}]}
    post_event(client, "attendance.register", data)
    (job,) = queued_jobs(rt)
    jobs.process_delivery(*job.args)
    jobs.process_delivery(*job.args)  # a retry of the same job
    members = [m.decode() for m in rt.redis.zrange(rt.keys.due, 0, -1)]
    jobs.run_due(members)
    jobs.run_due(members)  # the scheduler's lease ran out and it was swept twice
    assert len(platform.calls) == 2  # one task, one alert
    assert sorted(c.request.url.rsplit("/", 1)[1] for c in platform.calls) == ["alerts", "tasks"]


def test_deadline_fired_twice_concurrently_sends_each_action_once(client, rt, platform):
    platform.add(responses.POST, f"{PLATFORM}/tasks", json={"id": "t"}, status=201)
    platform.add(responses.POST, f"{PLATFORM}/alerts", json={"id": "a"}, status=201)
    rt.clock.set(datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc))
    data = {"date": "2026-11-23", "group_id": "7A",
            "marks": [{"student_id": "s-2", "status": "absent", "documented": False}]}
    post_event(client, "attendance.register", data)
    run_worker(rt)
    deadline = "absence.notice_missing|s-2|2026-11-23"
    first = processing.fire_deadline(rt, "skole-a", deadline)
    second_payload_gone = processing.fire_deadline(rt, "skole-a", deadline)
    assert len(first) == 2 and second_payload_gone == []
    for action in first:
        outbox.send(rt, "skole-a", action.external_ref)
        outbox.send(rt, "skole-a", action.external_ref)
    assert len(platform.calls) == 2


def test_api_token_never_appears_in_logs(client, rt, platform, caplog):
    caplog.set_level("DEBUG")
    platform.add(responses.POST, TASKS, status=500)
    action = task()
    queue_action(rt, action)
    outbox.send(rt, "skole-a", action.external_ref)
    assert "token-a-not-in-logs" not in caplog.text
    assert "Følg opp" not in caplog.text


# --- the per-adapter back-off: an outage costs about one call per wait, not one per action ------------------------


def test_while_an_adapter_backs_off_other_actions_are_put_off_without_a_call_or_an_attempt(rt, platform):
    platform.add(responses.POST, TASKS, status=503, headers={"Retry-After": "120"})
    first, second = task(1), task(2)
    queue_action(rt, first)
    queue_action(rt, second)
    start = rt.clock.now().timestamp()
    assert outbox.send(rt, "skole-a", first.external_ref) == "retry"
    assert outbox.send(rt, "skole-a", second.external_ref) == "deferred"
    assert len(platform.calls) == 1
    entry = json.loads(rt.redis.hget(rt.keys.outbox("skole-a"), second.external_ref))
    assert entry["attempts"] == 0
    assert start + 120 < due_at(rt, second) <= start + 120 + outbox.BACKOFF_BASE_SECONDS


def test_when_the_wait_is_over_one_action_probes_and_its_success_lets_the_others_through(rt, platform):
    platform.add(responses.POST, TASKS, status=500)
    platform.add(responses.POST, TASKS, json={"id": "remote-a"}, status=201)
    platform.add(responses.POST, TASKS, json={"id": "remote-b"}, status=201)
    first, second, third = task(1), task(2), task(3)
    for action in (first, second, third):
        queue_action(rt, action)
    assert outbox.send(rt, "skole-a", first.external_ref) == "retry"
    assert outbox.send(rt, "skole-a", second.external_ref) == "deferred"
    rt.clock.advance(seconds=outbox.BACKOFF_BASE_SECONDS * 1.2)  # the adapter's wait is over, first's may not be
    assert outbox.send(rt, "skole-a", second.external_ref) == "done"  # the probe: it took the back-off, and ended it
    assert outbox.send(rt, "skole-a", third.external_ref) == "done"
    assert len(platform.calls) == 3
    assert rt.redis.hlen(rt.keys.adapter_backoff) == 0


def test_two_senders_cannot_both_take_the_probe(rt):
    now = rt.clock.now().timestamp()
    stored.hold_adapter(rt.redis, rt.keys, "skole-a", "generic", "ref-0", now - 1)  # a wait that is over
    assert stored.take_probe(rt.redis, rt.keys, "skole-a", "generic", "ref-1", now, 30) is None
    held = stored.take_probe(rt.redis, rt.keys, "skole-a", "generic", "ref-2", now, 30)
    assert held is not None and (held.ref, held.until) == ("ref-1", pytest.approx(now + 30))


def test_an_adapters_back_off_does_not_hold_another_adapter_or_tenant(rt, platform):
    platform.add(responses.POST, TASKS, status=503, headers={"Retry-After": "120"})
    platform.add(responses.POST, TASKS, json={"id": "remote-b"}, status=201)
    action = task(1)
    queue_action(rt, action)
    assert outbox.send(rt, "skole-a", action.external_ref) == "retry"
    other = Action.from_dict({**task(2).to_dict(), "external_ref": external_ref(
        "skole-b", "absence.notice_missing", "s-2", "2026-11-23", "task")})
    with rt.redis.pipeline() as pipe:
        outbox.add(pipe, rt, "skole-b", "generic", [other], rt.clock.now().timestamp())
        pipe.execute()
    assert outbox.send(rt, "skole-b", other.external_ref) == "done"


def test_throttling_with_retry_after_uses_up_no_attempt(rt, platform):
    """The platform is there and says when: the action that probes a long throttling spell must not end a dead
    letter while the others wait (a 5xx or a timeout still counts, and ends in the dead letters)."""
    for _ in range(outbox.MAX_ATTEMPTS + 1):
        platform.add(responses.POST, TASKS, status=429, headers={"Retry-After": "60"})
    action = task()
    queue_action(rt, action)
    outcomes = [outbox.send(rt, "skole-a", action.external_ref) for _ in range(outbox.MAX_ATTEMPTS + 1)]
    assert set(outcomes) == {"retry"} and outbox.dead_letters(rt) == []
    assert json.loads(rt.redis.hget(rt.keys.outbox("skole-a"), action.external_ref))["attempts"] == 0


def test_a_platform_session_reads_the_environment_only_when_a_proxy_is_set(monkeypatch):
    """requests walks the whole environment per request for proxies; with a school owner's secrets there that cost
    ~8 ms a write. Without a proxy configured the session does not look, and a CA bundle named in the environment
    is still used; with a proxy, it looks as requests always does."""
    from connector.adapters.base import CA_BUNDLE_SETTINGS, PROXY_SETTINGS, new_session

    for name in list(os.environ):
        if name.lower() in PROXY_SETTINGS or name in CA_BUNDLE_SETTINGS:
            monkeypatch.delenv(name)
    session = new_session()
    assert session.trust_env is False and session.verify is True
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/kommune-ca.pem")
    session = new_session()
    assert session.trust_env is False and session.verify == "/etc/ssl/kommune-ca.pem"
    for name in ("HTTPS_PROXY", "no_proxy", "all_proxy"):
        monkeypatch.setenv(name, "x")
        assert new_session().trust_env is True, name
        monkeypatch.delenv(name)


def test_the_adapters_of_a_process_share_a_session_that_does_not_walk_the_environment(rt, monkeypatch):
    """The workers' adapters are built with the runtime's one session: that is the session that must not look up
    proxies per write (it was a plain ``requests.Session`` there, and the national benchmark's workers spent a third
    of their CPU walking 3,320 secrets' variables for each task, alert and note)."""
    from connector.adapters.base import PROXY_SETTINGS
    from connector.engine.runtime import Runtime

    for name in list(os.environ):
        if name.lower() in PROXY_SETTINGS:
            monkeypatch.delenv(name)
    fresh = Runtime(rt.config, rt.redis)
    adapter = fresh.adapter("skole-a", next(iter(fresh.tenant("skole-a").adapters)))
    assert adapter.http is fresh.http and fresh.http.trust_env is False
