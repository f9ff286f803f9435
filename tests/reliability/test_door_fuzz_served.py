"""Fuzzing the served door and a real worker: hypothesis-made envelopes of every event type, schema-valid but odd
(far dates, Sundays, unknown groups, a pupil in two groups, unicode ids), signed and sent to ``connector web`` and
processed by ``connector worker`` writing to a platform on loopback: no answer is a 5xx, and no job fails.
Then schemathesis reads the served ``/openapi.json`` and holds the door to it (a bounded number of examples).

``tests/test_door_fuzz.py`` does the first in-process, on a fixed clock; here the clock is the real one, so the
dates are drawn around today.
"""
from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta, timezone

import pytest
import requests
import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance
from hypothesis import HealthCheck, given, settings, strategies as st
from redis import Redis

from connector.store.keys import Keys
from tests.envelope_strategies import event_strategies
from tests.reliability.door_support import Connector, OutagePlatform, signed, today_oslo
from tests.support import REDIS_URL

pytestmark = [pytest.mark.reliability]

TODAY = date.fromisoformat(today_oslo())
ANSWERS = {202, 400, 413, 415, 422}

good_ids = st.sampled_from(["s-1", "s-2", "s-3", "7A", "7B", "ukjent-gruppe", "u-kl-7a", "g-1", "elev-ø", "42",
                            "ünï-çødé-😀", "学生-1", "Ωmega"])
ids = st.one_of(good_ids, good_ids, st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12))
sundays = [TODAY - timedelta(days=(TODAY.weekday() + 1) % 7 + 7 * n) for n in range(3)]
good_days = st.dates(TODAY - timedelta(days=300), TODAY)  # weekends and holidays included
days = st.one_of(
    good_days, good_days, st.sampled_from(sundays),
    st.dates(TODAY - timedelta(days=800), TODAY + timedelta(days=400)),  # around and past the windows
    st.sampled_from([date(1, 1, 1), date(9999, 12, 31), TODAY]),
).map(date.isoformat)
now = datetime.now(timezone.utc).replace(tzinfo=None)
moments = st.one_of(
    st.datetimes(now - timedelta(days=300), now, timezones=st.just(timezone.utc)).map(lambda m: m.isoformat()),
    st.datetimes(now - timedelta(days=800), now + timedelta(days=400), timezones=st.just(timezone.utc)).map(
        lambda m: m.isoformat()),
    st.sampled_from(["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00"]),
)
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
roles = st.sampled_from(["guardian", "contact_teacher", "principal", "class_parent_rep", "fau", "student"])
lessons = st.one_of(st.none(), st.fixed_dictionaries(
    {"id": ids}, optional={"subject": st.sampled_from(["Norsk", "Matematikk", "Kroppsøving", ""]),
                           "start": st.sampled_from(["08:30", "23:59"]), "end": st.sampled_from(["09:15", "00:00"])}))
EVENTS = event_strategies(ids, days, moments, texts, roles, lessons, marks_per_register=8)
deliveries = st.lists(st.tuples(st.sampled_from(sorted(EVENTS)), st.data(), moments), min_size=1, max_size=8)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Web, worker and scheduler, writing to a platform that accepts everything."""
    platform = OutagePlatform().start()
    connector = Connector(tmp_path_factory.mktemp("fuzz"), platform_url=platform.url,
                          outbox={"backoff_base_seconds": 0.5, "backoff_cap_seconds": 2.0})
    try:
        connector.start_web()
        connector.start("worker", "worker")
        connector.start("scheduler", "scheduler", "--interval", "0.2")
        yield connector, platform
    finally:
        connector.stop()
        connector.clean()
        platform.stop()


@pytest.mark.timeout(300)
def test_no_envelope_the_served_door_accepts_gets_a_5xx_or_fails_a_job(served):
    connector, platform = served
    accepted: list[int] = []

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.data_too_large])
    @given(batch=deliveries)
    def send(batch):
        for event_type, data, stamp in batch:
            payload = data.draw(EVENTS[event_type])
            items = [payload]
            if event_type == "attendance.register" and payload["marks"]:  # the same pupils in another group too
                items.append({**payload, "group_id": "7B" if payload["group_id"] != "7B" else "7A"})
            for item in items:
                body = json.dumps({"type": event_type, "timestamp": stamp, "data": item},
                                  ensure_ascii=False).encode()
                status, headers, answer = connector.post(body, signed(body), tenant="skole-a", timeout=10)
                assert status in ANSWERS, (status, answer[:300])
                assert headers["content-type"].startswith("application/json")
                if status == 202:
                    accepted.append(json.loads(answer)["accepted"])

    send()
    assert sum(accepted) > 0, "the fuzzing let nothing through to a worker"

    # then every job it queued, every deadline and every send those set, ends without failing
    redis = Redis.from_url(REDIS_URL)
    queue, keys = connector.token, Keys(connector.token)

    def drained() -> bool:
        return (redis.llen(f"rq:queue:{queue}") == 0 and redis.zcard(f"rq:wip:{queue}") == 0
                and redis.zcount(keys.due, "-inf", time.time()) == 0 and redis.hlen(keys.outbox("skole-a")) == 0)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not drained():
        time.sleep(0.3)
    try:
        assert drained(), "the worker did not drain what the fuzzing queued within 90 s"
        assert redis.zcard(f"rq:failed:{queue}") == 0, "a job failed"
        assert redis.zcard(f"rq:scheduled:{queue}") == 0, "a job failed and waits for RQ's retry"
        assert redis.hlen(keys.dead_letters) == 0
    except AssertionError:
        print(connector.log("worker").read_text()[-6000:])
        raise
    finally:
        redis.close()
    print(f"fuzzing: {sum(accepted)} event(s) accepted and processed; {len(platform.calls)} platform write(s)")


# --- schemathesis: the served contract ----------------------------------------------------------------------------


OPERATIONS = (("/webhooks/{tenant}/{adapter}", "POST"), ("/webhooks/{tenant}/{adapter}", "POST"), ("/healthz", "GET"),
              ("/readyz", "GET"))


@pytest.mark.timeout(180)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_door_keeps_its_served_openapi_contract(served, data):
    """Cases drawn by schemathesis from the served document: every answer is one it lists, shaped as it says;
    never a 5xx. Half the webhook cases go to the configured tenant, signed as a sender signs, so the schemas
    behind the signature are reached too. (Drawn as hypothesis strategies: schemathesis's pytest plugin is not
    needed for that, and its fixture loader does not run on this pytest.)"""
    connector, _ = served
    base = f"http://127.0.0.1:{connector.web_port}"
    schema = served_document(base)
    path, method = data.draw(st.sampled_from(OPERATIONS))
    case = data.draw(schema[path][method].as_strategy())
    if method == "POST":
        body = json.dumps(case.body, ensure_ascii=False).encode() if case.body is not None else b""
        headers = {str(k): str(v) for k, v in (case.headers or {}).items()}
        if data.draw(st.booleans()):
            case.path_parameters = {"tenant": "skole-a", "adapter": "generic"}
            headers.update(signed(body))
        headers.setdefault("content-type", "application/json")
        response = requests.post(base + case.formatted_path, data=body, headers=headers, timeout=10)
    else:
        response = requests.get(base + case.formatted_path, timeout=10)
    assert response.status_code < 500 or (path == "/readyz" and response.status_code == 503), response.text
    assert response.headers["content-type"].startswith("application/json")
    # positive_data_acceptance left out: a schema-valid body may still be refused with 422 for what a schema cannot
    # say and the document states in words (a date outside its window, ids with control characters)
    case.validate_response(response, excluded_checks=[positive_data_acceptance])


_DOCUMENTS: dict = {}


def served_document(base: str):
    """The schema as schemathesis loads it from the served ``/openapi.json`` (once per server)."""
    if base not in _DOCUMENTS:
        _DOCUMENTS[base] = schemathesis.openapi.from_url(f"{base}/openapi.json")
    return _DOCUMENTS[base]
