"""Operations: ``/metrics`` in Prometheus's text format, its counters moved by the door, the jobs and the sends,
no pupil id in any label; ``/readyz`` naming the dependency that is down."""
from __future__ import annotations

import responses
from prometheus_client.parser import text_string_to_metric_families

from connector import create_app
from connector.contract.actions import Action, Party, external_ref
from connector.engine import outbox
from connector.engine.runtime import Runtime
from tests.support import PLATFORM, post_event, run_worker

PUPIL = "elev-4711-hemmelig"
REGISTER = {"date": "2026-11-23", "group_id": "7A", "marks": [
    {"student_id": PUPIL, "status": "absent", "documented": False},
    {"student_id": "s-2", "status": "present", "documented": False},
]}


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples, name: str, **labels) -> float:
    """The sum over every sample of ``name`` whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items())


def test_metrics_answer_in_prometheus_text_format_with_the_scrape_time_gauges(client, rt):
    samples = scrape(client)
    assert value(samples, "connector_redis_up") == 1
    assert value(samples, "connector_queue_depth") == 0
    assert value(samples, "connector_failed_jobs") == 0
    assert value(samples, "connector_dead_letters", tenant="skole-a") == 0
    assert ("connector_workers", ()) in samples


def test_a_signed_delivery_moves_the_door_and_job_counters(client, rt, platform):
    platform.add(responses.POST, f"{PLATFORM}/tasks", json={"id": "remote-1"}, status=201)
    platform.add(responses.POST, f"{PLATFORM}/alerts", json={"id": "remote-2"}, status=201)
    platform.add(responses.POST, f"{PLATFORM}/notes", json={"id": "remote-3"}, status=201)
    before = scrape(client)
    assert post_event(client, "attendance.register", REGISTER).status_code == 202
    assert post_event(client, "attendance.register", REGISTER, secret="whsec_d3Jvbmc=").status_code == 401
    assert client.post("/webhooks/no-such-school/generic", data=b"{}").status_code == 404
    queued = scrape(client)
    labels = dict(tenant="skole-a", adapter="generic")
    assert value(queued, "connector_deliveries_total", type="attendance.register", status="202", **labels) == \
        value(before, "connector_deliveries_total", type="attendance.register", status="202", **labels) + 1
    assert value(queued, "connector_deliveries_total", type="-", status="401", **labels) == \
        value(before, "connector_deliveries_total", type="-", status="401", **labels) + 1
    assert value(queued, "connector_deliveries_total", tenant="-", adapter="-", type="-", status="404") == \
        value(before, "connector_deliveries_total", tenant="-", adapter="-", type="-", status="404") + 1
    assert value(queued, "connector_queue_depth") == 1

    run_worker(rt)
    after = scrape(client)
    assert value(after, "connector_queue_depth") == 0
    assert value(after, "connector_jobs_total", function="process_delivery", outcome="ok") == \
        value(before, "connector_jobs_total", function="process_delivery", outcome="ok") + 1
    assert value(after, "connector_job_duration_seconds_count", function="process_delivery") == \
        value(before, "connector_job_duration_seconds_count", function="process_delivery") + 1


def test_a_send_moves_the_action_and_platform_counters(client, rt, platform):
    action = Action(
        kind="task", external_ref=external_ref("skole-a", "absence.notice_missing", PUPIL, "2026-11-23", "task"),
        rule_id="absence.notice_missing", student_id=PUPIL, title="t", body="b",
        assignee=Party("contact_teacher", "u-kl-7a"), due_date="2026-11-30",
    )
    platform.add(responses.POST, f"{PLATFORM}/tasks", status=503)
    platform.add(responses.POST, f"{PLATFORM}/tasks", json={"id": "remote-9"}, status=201)
    before = scrape(client)
    with rt.redis.pipeline() as pipe:
        outbox.add(pipe, rt, "skole-a", "generic", [action], rt.clock.now().timestamp())
        pipe.execute()
    assert outbox.send(rt, "skole-a", action.external_ref) == "retry"
    assert outbox.send(rt, "skole-a", action.external_ref) == "done"
    assert outbox.send(rt, "skole-a", action.external_ref) == "skipped"
    after = scrape(client)
    for outcome in ("retry", "done"):
        labels = dict(rule="absence.notice_missing", kind="task", outcome=outcome)
        assert value(after, "connector_actions_total", **labels) == value(before, "connector_actions_total", **labels) + 1
    assert value(after, "connector_actions_total", rule="-", kind="-", outcome="skipped") == \
        value(before, "connector_actions_total", rule="-", kind="-", outcome="skipped") + 1
    assert value(after, "connector_platform_errors_total", adapter_type="generic", status="503") == \
        value(before, "connector_platform_errors_total", adapter_type="generic", status="503") + 1
    assert value(after, "connector_platform_request_seconds_count", adapter_type="generic") == \
        value(before, "connector_platform_request_seconds_count", adapter_type="generic") + 2


def test_no_label_value_holds_a_pupil_id(client, rt, platform):
    platform.add(responses.POST, f"{PLATFORM}/tasks", json={"id": "remote-1"}, status=201)
    platform.add(responses.POST, f"{PLATFORM}/alerts", json={"id": "remote-2"}, status=201)
    platform.add(responses.POST, f"{PLATFORM}/notes", json={"id": "remote-3"}, status=201)
    assert post_event(client, "attendance.register", REGISTER).status_code == 202
    assert post_event(client, "attendance.notice", {"student_id": PUPIL, "from_date": "2026-11-23",
                                                    "to_date": "2026-11-23", "reason": "Syk"}).status_code == 202
    run_worker(rt)
    text = client.get("/metrics").get_data(as_text=True)
    assert "connector_deliveries_total" in text
    assert PUPIL not in text and "Syk" not in text and "s-2" not in text


def down_runtime(rt) -> Runtime:
    from connector.store.connection import connect

    return Runtime(rt.config, connect("redis://127.0.0.1:1/0"), clock=rt.clock)


def test_readyz_names_each_dependency_and_the_workers(client, rt):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["redis"], body["queue"]) == ("ok", "up", "up")
    assert body["workers"] == 0 and "down" not in body


def test_readyz_says_which_dependency_is_down(rt):
    response = create_app(runtime=down_runtime(rt)).test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["down"] == ["redis", "queue"]
    assert (body["redis"], body["queue"], body["workers"]) == ("down", "down", None)


def test_metrics_say_redis_is_down_instead_of_failing(rt):
    response = create_app(runtime=down_runtime(rt)).test_client().get("/metrics")
    assert response.status_code == 200
    samples = {s.name: s.value for f in text_string_to_metric_families(response.get_data(as_text=True)) for s in f.samples}
    assert samples["connector_redis_up"] == 0
    assert "connector_queue_depth" not in samples


def test_multiprocess_mode_sums_the_processes_that_share_the_folder(tmp_path):
    """With ``PROMETHEUS_MULTIPROC_DIR`` (set before the process starts), ``/metrics`` adds up every process."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    count = "from connector.engine import metrics; metrics.count_delivery('skole-a', 'generic', 'attendance.register', 202)"
    for _ in range(2):  # two web processes (gunicorn workers), each counting one delivery
        subprocess.run([sys.executable, "-c", count], env=env, check=True)
    scrape_ = (
        "from types import SimpleNamespace\n"
        "from connector.engine import metrics\n"
        "text, _ = metrics.exposition(SimpleNamespace(queue=None, redis=None, keys=None, config=None))\n"
        "print(text.decode())\n"
    )
    text = subprocess.run([sys.executable, "-c", scrape_], env=env, check=True, capture_output=True, text=True).stdout
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    labels = (("adapter", "generic"), ("status", "202"), ("tenant", "skole-a"), ("type", "attendance.register"))
    assert samples[("connector_deliveries_total", labels)] == 2
    assert samples[("connector_redis_up", ())] == 0


def test_a_poller_sets_its_poll_lag_and_its_last_poll(client, rt):
    """The hook a poller (an adapter that reads the platform on a timer) calls at the end of each poll: the gauge by
    tenant and adapter, and the last poll the admin page shows."""
    from connector.engine import metrics
    from connector.store import deliveries

    metrics.poll_finished(rt, "skole-a", "generic", 42.5)
    assert value(scrape(client), "connector_poll_lag_seconds", tenant="skole-a", adapter="generic") == 42.5
    metrics.set_poll_lag("skole-a", "generic", -3)  # a platform clock ahead of ours is no lag, not a negative one
    assert value(scrape(client), "connector_poll_lag_seconds", tenant="skole-a", adapter="generic") == 0
    assert deliveries.last_seen(rt.redis, rt.keys, "skole-a") == {("generic", "poll"): rt.clock.now().timestamp()}
