"""A job that fails for good is shown to an admin (ids, times, the error's kind and place; no event data) and can be
run again from the command line once the cause is fixed."""
from __future__ import annotations

import pytest
from rq.job import Retry

from connector import cli
from connector.engine import failed_jobs, routing, rq_compat
from tests.support import post_event, run_worker

REGISTER = {"date": "2026-11-20", "group_id": "7A", "marks": [
    {"student_id": "s-1", "status": "absent", "documented": False, "reason": "Kari er syk med feber"}]}


@pytest.fixture
def failing_worker(monkeypatch):
    """Every delivery job raises, its message quoting what it worked on, as a careless exception might (the mark's
    reason is not in it any more: the door drops it, ``engine.reading``; its pupil id is)."""
    monkeypatch.setattr(rq_compat, "RETRY", Retry(max=1, interval=0))
    original = routing.handle_events

    def broken(rt, tenant_id, adapter, events):
        raise ValueError(f"cannot judge {events[0]['marks'][0]}")

    monkeypatch.setattr(routing, "handle_events", broken)
    return lambda: monkeypatch.setattr(routing, "handle_events", original)


def test_a_job_that_failed_for_good_is_listed_with_its_reason_and_no_event_data(rt, client, monkeypatch, capsys,
                                                                               failing_worker):
    monkeypatch.setattr(cli, "_runtime", lambda args: rt)
    assert post_event(client, "attendance.register", REGISTER, msg_id="msg-fails").status_code == 202
    run_worker(rt)
    (job,) = failed_jobs.failed_jobs(rt)
    assert (job.what, job.tenant, job.adapter) == ("delivery", "skole-a", "generic")
    assert job.reason.startswith("ValueError at test_failed_jobs.py:")
    assert job.reason.endswith("in broken")
    assert cli.main(["jobs", "failed"]) == 0
    out = capsys.readouterr().out
    assert job.id in out and "ValueError" in out
    assert "Kari" not in out and "syk" not in out and "feber" not in out
    assert "s-1" not in out and "cannot judge" not in out


def test_a_failed_job_runs_again_from_the_command_line_once_the_cause_is_fixed(rt, client, monkeypatch, capsys,
                                                                               failing_worker):
    monkeypatch.setattr(cli, "_runtime", lambda args: rt)
    post_event(client, "attendance.register", REGISTER, msg_id="msg-fails")
    run_worker(rt)
    assert len(failed_jobs.failed_jobs(rt)) == 1
    failing_worker()  # the cause is fixed
    assert cli.main(["jobs", "retry", "--all"]) == 0
    assert "queued 1 failed job(s) again" in capsys.readouterr().out
    run_worker(rt)
    assert failed_jobs.failed_jobs(rt) == []
    assert rt.redis.hexists(rt.keys.pupil("skole-a", "s-1"), "d:2026-11-20")
    assert cli.main(["jobs", "retry", "no-such-job"]) == 1


def test_the_reason_keeps_the_kind_and_place_and_drops_the_message():
    text = ('Traceback (most recent call last):\n  File "/srv/connector/engine/absence.py", line 120, in on_attendance\n'
            '    raise KeyError(mark)\nKeyError: "Ola Nordmann"\n')
    assert failed_jobs.reason_of(text) == "KeyError at absence.py:120 in on_attendance"
    assert failed_jobs.reason_of(None) == "unknown"
