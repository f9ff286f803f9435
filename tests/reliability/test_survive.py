"""Processes that survive: the worker and the scheduler carry on when Redis comes back (clean shutdown; kill -9 is in
``test_crash.py``), ``connector serve`` starts a child that died again and still stops everything on Ctrl-C, the
deployment files restart what exits, and the door answers every delivery with the contract's 503 while Redis is down.
"""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.reliability.harness import ROOT, Sender, past_school_days

DEPLOY = ROOT / "deploy"


def register(day, group="7A", absent="skole-a-7A-01") -> dict:
    return {"type": "attendance.register", "timestamp": "", "data": {
        "date": day.isoformat(), "group_id": group,
        "marks": [{"student_id": absent, "status": "absent", "documented": False},
                  {"student_id": "skole-a-7A-02", "status": "present", "documented": False}]}}


def wait_until(predicate, timeout: float, what: str, logs=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s\n{logs()[-5000:]}")


@pytest.mark.timeout(120)
def test_worker_and_scheduler_carry_on_after_a_clean_redis_restart(system, recording_platform):
    system.start_web()
    worker = system.start_worker()
    scheduler = system.start_scheduler()
    sender = Sender(system.url)
    days = past_school_days(12)[:3]  # long enough ago that the notice deadlines have passed: actions at once
    assert sender.post("skole-a", "msg-before", register(days[0])).status_code == 202
    wait_until(lambda: len(recording_platform.created_refs()) > 0, 60, "an action before the restart", system.logs)

    system.redis.stop()  # SHUTDOWN: the AOF flushed, every client's connection closed
    time.sleep(6)  # longer than the worker's wait for a job and the scheduler's back-off: both meet the lost Redis
    response = sender.post("skole-a", "msg-during", register(days[1]))
    assert (response.status_code, response.json()["error"]) == (503, "unavailable")
    system.redis.start()

    before = len(recording_platform.created_refs())
    assert sender.post("skole-a", "msg-after", register(days[2], absent="skole-a-7A-03")).status_code == 202
    assert sender.post("skole-a", "msg-during", register(days[1])).status_code == 202  # the platform's retry
    wait_until(lambda: len(recording_platform.created_refs()) > before
               and not any(system.backlog().values()), 90, "the deliveries after the restart processed", system.logs)
    assert worker.alive() and scheduler.alive(), system.logs()[-5000:]
    # the one worker process did the work after the restart: waiting for a job, RQ retries Redis itself; in a job or
    # its bookkeeping, RQ's loop quits and `connector worker` starts a fresh one (test_crash.py meets both)
    assert "Redis does not answer" in scheduler.log.read_text() and "Redis answers again" in scheduler.log.read_text()
    assert system.failed_jobs() == 0


@pytest.mark.timeout(60)
def test_door_answers_503_as_json_for_every_delivery_while_redis_is_down(system):
    system.start_web()
    system.redis.kill()
    sender = Sender(system.url)
    day = past_school_days(1)[0]
    ignored = {"type": "grade.published", "timestamp": "", "data": {"student_id": "skole-a-7A-01"}}
    for msg_id, envelope in (("msg-register", register(day)), ("msg-ignored", ignored)):
        response = sender.post("skole-a", msg_id, envelope)
        assert response.status_code == 503, (msg_id, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["error"] == "unavailable"
    assert sender.session.get(f"{system.url}/healthz", timeout=5).status_code == 200
    ready = sender.session.get(f"{system.url}/readyz", timeout=5)
    assert ready.status_code == 503 and "redis" in ready.json()["down"]


@pytest.mark.timeout(90)
def test_serve_starts_a_dead_child_again_with_a_back_off_and_ctrl_c_still_stops_everything(system):
    port = system.web_port
    log = system.directory / "logs" / "serve.log"
    with open(log, "wb") as out:
        serve = subprocess.Popen([sys.executable, "-m", "connector.cli", "serve", "--bind", f"127.0.0.1:{port}"],
                                 env=system.env(), cwd=system.directory, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    try:
        system.wait_http("/healthz")

        def child(name: str):
            for process in psutil.Process(serve.pid).children():
                if process.cmdline()[-1:] == [name] or name in process.cmdline()[3:4]:
                    return process
            return None

        wait_until(lambda: child("worker") is not None, 20, "serve's worker", lambda: log.read_text())
        first = child("worker")
        first.kill()
        wait_until(lambda: "started the worker process again" in log.read_text(), 20, "the worker started again",
                   lambda: log.read_text())
        text = log.read_text()
        assert re.search(r"the worker process exited \(code -9\); starting it again in 1 s", text), text
        second = child("worker")
        assert second is not None and second.pid != first.pid
        scheduler = child("scheduler")
        scheduler.kill()
        wait_until(lambda: "started the scheduler process again" in log.read_text(), 20, "the scheduler again",
                   lambda: log.read_text())

        processes = psutil.Process(serve.pid).children(recursive=True)
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=15) == 0
        _, alive = psutil.wait_procs(processes, timeout=5)
        assert alive == [], [p.cmdline() for p in alive]
    finally:
        try:
            import os

            os.killpg(serve.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        serve.wait()


def test_restarts_back_off_doubling_to_thirty_seconds_and_reset_after_a_steady_minute():
    from connector.cli import Restarts

    now = [0.0]
    restarts = Restarts(clock=lambda: now[0])
    restarts.started("worker")
    delays = []
    for _ in range(7):
        delays.append(restarts.died("worker"))
        assert restarts.due() == []
        now[0] += delays[-1]
        assert restarts.due() == ["worker"]
        restarts.started("worker")
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    now[0] += 61
    assert restarts.died("worker") == 1


def test_compose_and_systemd_restart_every_connector_process():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name in ("web", "worker", "scheduler", "redis"):
        assert compose["services"][name]["restart"] in ("unless-stopped", "always"), name
    for unit in ("connector-web", "connector-worker", "connector-scheduler"):
        service = (DEPLOY / f"{unit}.service").read_text()
        assert re.search(r"^Restart=(on-failure|always)$", service, re.M), unit
        assert re.search(r"^RestartSec=\d+", service, re.M), unit


@pytest.mark.timeout(60)
def test_rq_scheduler_child_of_a_worker_killed_alone_stops_too(system):
    worker = system.start_worker()
    wait_until(lambda: "Scheduler for" in worker.log.read_text(), 20, "RQ's scheduler forked", system.logs)
    child_pid = int(re.search(r"Scheduler for \S+ started with PID (\d+)", worker.log.read_text()).group(1))
    worker.kill_only()  # the worker's process alone, not its session: its scheduler child is orphaned

    def gone() -> bool:
        try:
            return psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_until(gone, 10, "the orphaned RQ scheduler stopped", system.logs)
