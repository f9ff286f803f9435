"""JSON logs: one object per line, and the same ``delivery`` id at the door and in the job."""
from __future__ import annotations

import io
import json
import logging

import pytest
import responses

from connector.cli import build_parser
from connector.engine import logs
from tests.support import PLATFORM, post_event, run_worker

PUPIL = "elev-4711-hemmelig"
BODY = "Han blir mobbet i friminuttene"
MESSAGE = {"message_id": "m-1", "sender": {"id": "g-1", "role": "guardian"},
           "recipients": [{"id": "u-1", "role": "contact_teacher"}], "student_ids": [PUPIL], "body": BODY,
           "created_at": "2026-11-23T08:00:00Z"}


@pytest.fixture
def json_lines():
    out = io.StringIO()
    handler = logs.handler("json", out)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in out.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_json_lines_carry_the_delivery_id_from_the_door_into_the_job(client, rt, platform, json_lines):
    for path in ("tasks", "alerts", "notes"):
        platform.add(responses.POST, f"{PLATFORM}/{path}", json={"id": "remote"}, status=201)
    assert post_event(client, "message.created", MESSAGE).status_code == 202
    (job,) = rt.queue.get_jobs()
    run_worker(rt)
    lines = json_lines()
    for line in lines:
        assert {"time", "level", "logger", "message", "delivery"} <= set(line)
    door = [line for line in lines if line["logger"] == "connector.webhooks.views"]
    assert [line["delivery"] for line in door] == [job.id]
    in_job = [line for line in lines if line["logger"].startswith("connector.engine")]
    assert [line for line in in_job if line["message"].startswith("sent ")]
    assert {line["delivery"] for line in in_job} == {job.id}
    assert not any(line["delivery"] for line in lines if line["logger"].startswith("rq."))  # the worker's own lines
    text = json.dumps(lines)
    assert BODY not in text and "mobbet" not in text and PUPIL not in text
    assert "msg_" not in text  # the webhook-id itself is not logged: the job id is its digest


def test_a_refused_delivery_logs_without_a_delivery_id(client, rt, json_lines):
    assert post_event(client, "message.created", MESSAGE, secret="whsec_d3Jvbmc=").status_code == 401
    (line,) = json_lines()
    assert line["level"] == "INFO" and line["delivery"] is None and "status=401" in line["message"]


def test_text_is_the_default_and_json_is_chosen_by_option_or_environment(monkeypatch):
    monkeypatch.delenv("CONNECTOR_LOG_FORMAT", raising=False)
    assert logs.chosen_format() == "text"
    assert logs.chosen_format("json") == "json"
    monkeypatch.setenv("CONNECTOR_LOG_FORMAT", "json")
    assert logs.chosen_format() == "json"
    assert logs.chosen_format("text") == "text"
    assert build_parser().parse_args(["worker", "--log-format", "json", "--metrics-port", "9101"]).log_format == "json"


def test_an_exception_is_one_line_with_its_traceback():
    out = io.StringIO()
    logger = logging.getLogger("connector.test_logs")
    handler = logs.handler("json", out)
    logger.addHandler(handler)
    try:
        with logs.for_delivery("q-abc"):
            try:
                raise ValueError("x")
            except ValueError:
                logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    (line,) = out.getvalue().splitlines()
    record = json.loads(line)
    assert record["delivery"] == "q-abc" and record["level"] == "ERROR" and "ValueError" in record["exception"]


@pytest.mark.parametrize("control", ["\n", "\r\n", "\x1b[2J", "\u2028", "\x85"])
def test_a_value_with_a_control_character_cannot_forge_a_text_log_line(control):
    stream = io.StringIO()
    logger = logging.getLogger("test.logs.injection")
    logger.addHandler(logs.handler("text", stream))
    logger.propagate = False
    try:
        logger.warning("tenant=%s message=%s: x", "skole-a", f"m-1{control}2026-11-30 08:00:00,000 INFO forged")
    finally:
        logger.handlers.clear()
    written = stream.getvalue()
    assert written.count("\n") == 1 and written.endswith("\n")
    assert "\r" not in written and "\x1b" not in written and "\u2028" not in written and "\x85" not in written
    assert "m-1\\x" in written or "m-1\\u2028" in written
