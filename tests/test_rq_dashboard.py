"""RQ's own dashboard (``rq-dashboard``) works against the connector's Redis: it lists the connector's queue, the
jobs waiting in it and those that failed. It needs its JSON serializer switched on (``rq-dashboard --json`` or
``RQ_DASHBOARD_JSON_SERIALIZER=true``), as the connector's jobs are JSON (README, "Admin page")."""
from __future__ import annotations

import pytest
from rq.serializers import JSONSerializer

from tests.support import REDIS_URL, post_event


@pytest.fixture
def dashboard(rt):
    from rq_dashboard.cli import make_flask_app
    from rq_dashboard.web import config, setup_rq_connection

    app = make_flask_app(None, None, None, "")
    app.config["RQ_DASHBOARD_REDIS_URL"] = REDIS_URL
    before, config.serializer = config.serializer, JSONSerializer
    setup_rq_connection(app)
    try:
        yield app.test_client()
    finally:
        config.serializer = before


def test_the_dashboard_lists_the_connectors_queue_and_its_jobs(client, rt, dashboard):
    for student in ("s-1", "s-2"):
        body = {"student_id": student, "group_id": "7A", "date": "2026-11-23"}
        assert post_event(client, "student.enrolled", body).status_code == 202

    queues = dashboard.get("/0/data/queues.json").get_json()["queues"]
    (ours,) = [queue for queue in queues if queue["name"] == rt.config.queue_name]
    assert ours["count"] == 2

    jobs = dashboard.get(f"/0/data/jobs/{rt.config.queue_name}/queued/10/asc/1.json").get_json()["jobs"]
    assert sorted(job["id"] for job in jobs) == sorted(rt.queue.job_ids)
    assert all(job["description"] == "delivery for skole-a/generic" for job in jobs)

    page = dashboard.get("/0/view/queues", follow_redirects=True)
    assert page.status_code == 200
