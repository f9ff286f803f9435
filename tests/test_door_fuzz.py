"""Whatever the door accepts, no job crashes on: hypothesis-made envelopes of every event type (schema-valid but
odd: far dates, weekends, unknown groups, a pupil in two groups, unicode ids, text with anything in it) are
answered with a contract code, never a 5xx, and every job they queue — and every deadline those jobs set — ends
without failing."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import responses
from hypothesis import HealthCheck, given, settings, strategies as st

from connector.engine import scheduler
from tests.envelope_strategies import event_strategies
from tests.support import PLATFORM, envelope, run_worker, signed_headers

TODAY = date(2026, 11, 23)
ANSWERS = {202, 400, 413, 415, 422}

# Mostly what a platform sends (so most deliveries get through to the rules), sometimes anything at all.
good_ids = st.sampled_from(["s-1", "s-2", "s-3", "7A", "7B", "ukjent-gruppe", "u-kl-7a", "g-1", "elev-ø", "42"])
ids = st.one_of(good_ids, good_ids, good_ids, st.text(min_size=1, max_size=12))  # any text: must be refused or kept
good_days = st.dates(date(2025, 8, 20), TODAY)  # inside the window, weekends and holidays included
days = st.one_of(
    good_days, good_days, good_days,
    st.dates(TODAY - timedelta(days=500), TODAY + timedelta(days=400)),  # around and past the windows
    st.sampled_from([date(1, 1, 1), date(9999, 12, 31), date(1609, 3, 2), TODAY, date(2026, 11, 22)]),  # a Sunday
).map(date.isoformat)
good_moments = st.datetimes(datetime(2025, 8, 20), datetime(2026, 11, 23, 8), timezones=st.just(timezone.utc))
moments = st.one_of(
    good_moments.map(lambda m: m.isoformat()), good_moments.map(lambda m: m.isoformat()),
    st.datetimes(datetime(2025, 1, 1), datetime(2027, 12, 31), timezones=st.just(timezone.utc)).map(
        lambda m: m.isoformat()),
    st.sampled_from(["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00", "2026-11-23T08:00:00Z"]),
)
texts = st.text(max_size=40)
roles = st.sampled_from(["guardian", "contact_teacher", "principal", "class_parent_rep", "student"])
lessons = st.one_of(st.none(), st.fixed_dictionaries(
    {"id": ids}, optional={"subject": st.sampled_from(["Norsk", "Matematikk", "Ø|;=", ""]),
                           "start": st.sampled_from(["08:30", "25:99", "2026-11-23T08:30:00"]),
                           "end": st.sampled_from(["09:15", "", "x"])}))
EVENTS = event_strategies(ids, days, moments, texts, roles, lessons, marks_per_register=6)
stamps = st.one_of(st.just("2026-11-23T08:00:00Z"), st.just("2026-11-23T08:00:00Z"), moments)
deliveries = st.lists(st.tuples(st.sampled_from(sorted(EVENTS)), st.data(), stamps), min_size=1, max_size=12)


def accept_everything(platform):
    for path in ("tasks", "alerts", "notes"):
        platform.add(responses.POST, f"{PLATFORM}/{path}", json={"id": "remote"}, status=201)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=deliveries)
def test_no_envelope_the_door_accepts_crashes_a_job(client, rt, platform, batch):
    accept_everything(platform)
    for n, (event_type, data, stamp) in enumerate(batch):
        body = envelope(event_type, data.draw(EVENTS[event_type]), stamp)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            continue  # json.dumps escapes everything: never happens, but a lone surrogate stays \\ud800 text
        response = client.post("/webhooks/skole-a/generic", data=body, headers=signed_headers(body))
        assert response.status_code in ANSWERS, (response.status_code, response.get_json())
        assert response.is_json
    run_worker(rt)
    rt.clock.advance(days=30)  # every deadline they set falls due
    for _ in range(3):
        scheduler.sweep(rt)
        run_worker(rt)
    failed = rt.queue.failed_job_registry
    assert failed.count == 0, [json.dumps(rt.queue.fetch_job(j).latest_result().exc_string[-400:])
                               for j in failed.get_job_ids()]
    rt.clock.set(datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc))
