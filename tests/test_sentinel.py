"""``REDIS_URL=redis+sentinel://…``: web and worker processes on several machines follow the master that Redis
Sentinel names (issue 16: scale out on the engine already used, with Sentinel for failover). A real master and a
real Sentinel process, both private to the test."""
from __future__ import annotations

import subprocess
import time

import pytest
from redis import Redis
from rq import Queue, SimpleWorker

from connector.store.connection import connect, from_url
from tests.redis_server import RedisServer, free_port


@pytest.fixture
def sentinel(tmp_path):
    master = RedisServer(tmp_path / "master", appendonly=False).start()
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\nsentinel monitor skoleflyt 127.0.0.1 {master.port} 1\n"
                    f"logfile {tmp_path / 'sentinel.log'}\n", encoding="utf-8")
    process = subprocess.Popen(["redis-server", str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if Redis(port=port, socket_timeout=0.5).sentinel_master("skoleflyt"):
                    break
            except Exception:  # not listening, or not monitoring yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield master, port
    finally:
        process.kill()
        process.wait(timeout=5)
        master.kill()


def test_a_sentinel_url_reaches_the_named_master_and_database(sentinel, monkeypatch):
    master, port = sentinel
    monkeypatch.setenv("REDIS_URL", f"redis+sentinel://127.0.0.1:{port}/skoleflyt/3")
    client = connect()
    client.set("sentinel-check", "1")
    assert Redis(port=master.port, db=3).get("sentinel-check") == b"1"
    assert Redis(port=master.port, db=0).get("sentinel-check") is None


def test_rq_queues_and_works_through_the_sentinel_client(sentinel):
    master, port = sentinel
    client = from_url(f"redis+sentinel://127.0.0.1:{port},127.0.0.1:1/skoleflyt")  # a dead Sentinel is skipped
    queue = Queue("sentinel-check", connection=client)
    job = queue.enqueue(len, "fravær")
    SimpleWorker([queue], connection=client).work(burst=True)
    assert job.get_status(refresh=True) == "finished" and job.return_value() == 6


@pytest.mark.parametrize("url", ["redis+sentinel://127.0.0.1:26379", "redis+sentinel://127.0.0.1:26379/"])
def test_a_sentinel_url_without_a_service_is_refused_with_the_form_it_needs(url):
    with pytest.raises(ValueError, match="<service>"):
        from_url(url)
