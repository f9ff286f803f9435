"""Trying it in one minute: ``connector send-test`` against the real web app on loopback, and the demo platform
(``connector/demo_platform.py``) showing what the outbox wrote to it."""
from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

from connector import cli, create_app
from connector.config.schema import load_config
from connector.contract.actions import Action, Party, external_ref
from connector.demo_platform import DemoPlatform
from connector.engine import outbox
from connector.engine.runtime import Runtime
from tests.support import add_adapter, cleanup

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "connector" / "example" / "connector.yaml"


# --- send-test -----------------------------------------------------------------------------------------------------


@pytest.fixture
def served(redis_client):
    """The bundled example's web app (its own key prefix and queue on the test Redis) served on a free loopback port."""
    token = f"test{uuid.uuid4().hex[:10]}"
    config = replace(load_config(EXAMPLE), key_prefix=token, queue_name=token)
    rt = Runtime(config, redis_client)
    server = make_server("127.0.0.1", 0, create_app(runtime=rt), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rt, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        cleanup(redis_client, token)


def test_send_test_signs_a_fixture_by_name_and_the_door_accepts_it(served, capsys, monkeypatch):
    rt, url = served
    monkeypatch.delenv("CONNECTOR_CONFIG", raising=False)  # the bundled example, whose secret the app checks
    assert cli.main(["send-test", "demo-skole", "attendance_marked__absent", "--url", url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"POST {url}/webhooks/demo-skole/generic  (attendance_marked__absent.json, webhook-id ")
    assert out[1:] == ["202 ACCEPTED", '{"accepted":1}']
    (job,) = rt.queue.get_jobs()
    assert "s-1002" in json.dumps(job.args)  # the fixture's pupil, in the one job the delivery queued


def test_send_test_posts_an_envelope_file_with_its_timestamp_set_to_now(served, tmp_path, capsys):
    rt, url = served
    today = datetime.now(timezone.utc).date().isoformat()
    envelope = {"type": "student.enrolled", "timestamp": "2001-01-01T00:00:00Z",  # far too old for the door
                "data": {"student_id": "s-7777", "group_id": "7B", "date": today}}
    path = tmp_path / "enrolled.json"
    path.write_text(json.dumps(envelope))
    assert cli.main(["send-test", "demo-skole", str(path), "--url", url, "--config", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["202 ACCEPTED", '{"accepted":1}']

    body, source = cli._test_envelope(str(path))
    sent = json.loads(body)
    assert source == path and sent["data"] == envelope["data"] and sent["type"] == envelope["type"]
    stamp = datetime.fromisoformat(sent["timestamp"].replace("Z", "+00:00"))
    assert abs(stamp.timestamp() - time.time()) < 5


def test_send_test_prints_the_doors_refusal_and_fails(served, tmp_path, capsys):
    rt, url = served
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"type": "attendance.marked", "timestamp": "x", "data": {"student_id": "s-1"}}))
    assert cli.main(["send-test", "demo-skole", str(path), "--url", url, "--config", str(EXAMPLE)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "422 UNPROCESSABLE ENTITY"
    assert "data.date" in out[2]
    assert rt.queue.get_jobs() == []


def test_send_test_says_what_is_wrong_before_sending(capsys):
    common = ["--config", str(EXAMPLE), "--url", "http://127.0.0.1:1"]
    assert cli.main(["send-test", "no-such-school", "student_enrolled", *common]) == 1
    assert "no tenant 'no-such-school' in the configuration (tenants: demo-skole)" in capsys.readouterr().err
    assert cli.main(["send-test", "demo-skole", "student_enrolled", "--adapter", "moodle", *common]) == 1
    assert "adapter 'moodle' of tenant demo-skole is not configured" in capsys.readouterr().err
    assert cli.main(["send-test", "demo-skole", "no_such_fixture", *common]) == 1
    err = capsys.readouterr().err
    assert "no generic fixture of that name" in err and "attendance_marked__absent" in err
    assert cli.main(["send-test", "demo-skole", "student_enrolled", *common]) == 2  # nothing listens on port 1
    assert "nothing answered at http://127.0.0.1:1/webhooks/demo-skole/generic" in capsys.readouterr().err


# --- the demo platform ---------------------------------------------------------------------------------------------


def test_an_action_sent_through_the_outbox_appears_on_the_demo_platforms_page(rt):
    with DemoPlatform() as demo:
        add_adapter(rt, "skole-a", "generic", "generic", {
            "webhook_secrets": [{"env": "SKOLE_A_WEBHOOK_SECRET"}], "base_url": demo.url,
            "api_token": {"env": "SKOLE_A_API_TOKEN"}, "timeout_seconds": 2,
        })
        assert requests.get(demo.page_url, timeout=5).text.count("<tr>") == 1  # the header row only
        ref = external_ref("skole-a", "absence.notice_missing", "s-2", "2026-11-23", "task")
        action = Action(
            kind="task", external_ref=ref, rule_id="absence.notice_missing", student_id="s-2",
            title="Follow up <absence>", body="No notice received.", assignee=Party("contact_teacher", "u-kl-7a"),
            due_date="2026-11-25",
        )
        with rt.redis.pipeline() as pipe:
            outbox.add(pipe, rt, "skole-a", "generic", [action], rt.clock.now().timestamp())
            pipe.execute()
        assert outbox.send(rt, "skole-a", ref) == "done"

        page = requests.get(demo.page_url, timeout=5)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        for shown in ("task-1", "absence.notice_missing", "Follow up &lt;absence&gt;", "s-2",
                      "contact_teacher u-kl-7a", "2026-11-25", ref):
            assert f"<td>{shown}</td>" in page.text, shown
        assert "<absence>" not in page.text  # every value is escaped
        (record,) = requests.get(demo.page_url + "_received", timeout=5).json()
        assert (record["id"], record["rule_id"], record["external_ref"]) == ("task-1", "absence.notice_missing", ref)
        assert demo.state.stats()["task"] == 1


def test_the_demo_platform_answers_a_repeated_key_with_409_and_shows_it_once():
    with DemoPlatform(token="t") as demo:
        body = {"external_ref": "sf1-x", "student_id": "s-1", "rule_id": "r", "body": "b", "visibility": "staff"}
        headers = {"Authorization": "Bearer t", "Idempotency-Key": "sf1-x"}
        assert requests.post(f"{demo.url}/notes", json=body, headers=headers, timeout=5).status_code == 201
        assert requests.post(f"{demo.url}/notes", json=body, headers=headers, timeout=5).status_code == 409
        assert requests.post(f"{demo.url}/notes", json=body, headers={**headers, "Authorization": "Bearer no"},
                             timeout=5).status_code == 401
        assert len(demo.state.records()) == 1
        assert "1 repeated write(s) answered 409" in requests.get(demo.page_url, timeout=5).text


def test_serve_demo_is_an_option_of_serve():
    args = cli.build_parser().parse_args(["serve", "--demo"])
    assert (args.demo, args.demo_port) == (True, 8099)
    config = load_config(EXAMPLE)
    note = cli._demo_note(config, 8099)
    assert "http://127.0.0.1:8099/" in note and "connector send-test demo-skole attendance_marked__absent" in note
    assert "Not writing to it" not in note  # the bundled example's generic adapter writes to the demo platform
    assert "Not writing to it (base_url elsewhere): demo-skole/generic" in cli._demo_note(config, 8100)


def test_serve_demo_end_to_end_a_sent_fixture_becomes_a_task_on_the_demo_page(tmp_path):
    """``serve --demo`` as a newcomer runs it (real processes, an embedded Redis), on free ports: the example copied
    with its base_url at the demo platform's port, a fixture sent with ``send-test``, the task on the page."""
    import os
    import shutil
    import subprocess
    import sys

    import psutil

    from tests.test_cli import embedded_redis, free_port, kill_serve, stop_serve, wait_for, wait_for_text

    port, demo_port = free_port(), free_port()
    folder = tmp_path / "example"
    shutil.copytree(EXAMPLE.parent, folder)
    config = folder / "connector.yaml"
    config.write_text(config.read_text().replace("http://127.0.0.1:8099/api", f"http://127.0.0.1:{demo_port}/api"))
    instance = tmp_path / "instance"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CONNECTOR_CONFIG")}
    env.update(CONNECTOR_INSTANCE=str(instance), PYTHONPATH=str(ROOT), CONNECTOR_CONFIG=str(config))
    logs = open(tmp_path / "serve.log", "w+b")
    serve = subprocess.Popen(
        [sys.executable, "-m", "connector.cli", "serve", "--demo", "--demo-port", str(demo_port),
         "--bind", f"127.0.0.1:{port}"],
        cwd=tmp_path, env=env, stdout=logs, stderr=subprocess.STDOUT, start_new_session=True,
    )
    processes: list = []
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", timeout=15)
        wait_for_text(tmp_path / "serve.log", f"Demo platform: http://127.0.0.1:{demo_port}/", timeout=5)
        assert "Not writing to it" not in (tmp_path / "serve.log").read_text()
        sent = subprocess.run(
            [sys.executable, "-m", "connector.cli", "send-test", "demo-skole", "attendance_marked__absent",
             "--url", f"http://127.0.0.1:{port}"], env=env, capture_output=True, text=True, timeout=30,
        )
        assert sent.returncode == 0 and "202 ACCEPTED" in sent.stdout, sent
        deadline = time.monotonic() + 15
        while "absence.notice_missing" not in (page := requests.get(f"http://127.0.0.1:{demo_port}/", timeout=2).text):
            assert time.monotonic() < deadline, page
            time.sleep(0.2)
        assert "<td>s-1002</td>" in page and "<td>task-1</td>" in page
        processes = psutil.Process(serve.pid).children(recursive=True) + embedded_redis(instance)
        stop_serve(serve, processes)
    except BaseException:
        logs.seek(0)
        print(logs.read().decode(errors="replace"))
        raise
    finally:
        kill_serve(serve, processes, instance, logs)
