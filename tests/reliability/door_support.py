"""The connector's real processes for the door, outage and fuzzing tests: ``connector web`` (gunicorn, as deployed),
``connector worker`` and ``connector scheduler``, each a child process with its own log file, on the shared test
Redis under a key prefix of their own (cleaned afterwards, nothing else touched), and a raw HTTP client that can do
what a well-behaved library will not (send half a body, stall, send bytes that are not UTF-8).

Kept small on purpose: it is to be folded into the reliability harness (``tests/reliability/harness.py``).
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from redis import Redis

from tests.redis_server import free_port
from tests.support import OTHER_TENANT_SECRET, REDIS_URL, SECRET, cleanup, sign

def config_dict(token: str, platform_url: str = "http://127.0.0.1:9/api", outbox: dict | None = None) -> dict:
    """Two schools on the example's calendar, each with a generic adapter; secrets from the environment."""
    def school(name: str, secret_var: str) -> dict:
        return {
            "name": name, "language": "nb", "calendar": school_years(),
            "adapters": {"generic": {
                "type": "generic", "webhook_secrets": [{"env": secret_var}], "base_url": platform_url,
                "api_token": {"env": "DOOR_TEST_API_TOKEN"}, "timeout_seconds": 1,
            }},
            "directory": {"roles": {"principal": "u-rektor", "nearest_leader": "u-leder"},
                          "groups": {"7A": {"contact_teacher": "u-kl-7a"}, "7B": {"contact_teacher": "u-kl-7b"}}},
        }
    data = {"key_prefix": token, "queue_name": token,
            "tenants": {"skole-a": school("Skole A", "DOOR_TEST_SECRET_A"),
                        "skole-b": school("Skole B", "DOOR_TEST_SECRET_B")}}
    if outbox:
        data["outbox"] = outbox
    return data


@dataclass
class Connector:
    """The processes of one deployment under ``token``; :meth:`start` one more, :meth:`stop` them all."""

    directory: Path
    token: str = field(default_factory=lambda: f"door{uuid.uuid4().hex[:10]}")
    platform_url: str = "http://127.0.0.1:9/api"
    outbox: dict | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    web_port: int | None = None

    def __post_init__(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config = self.directory / "connector.yaml"
        self.config.write_text(yaml.safe_dump(config_dict(self.token, self.platform_url, self.outbox)))
        self.redis = Redis.from_url(REDIS_URL)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "REDIS_URL": REDIS_URL, "CONNECTOR_CONFIG": str(self.config),
                "DOOR_TEST_SECRET_A": SECRET, "DOOR_TEST_SECRET_B": OTHER_TENANT_SECRET,
                "DOOR_TEST_API_TOKEN": "token-not-in-logs", "PYTHONUNBUFFERED": "1"}

    def log(self, name: str) -> Path:
        return self.directory / f"{name}.log"

    def start(self, name: str, *args: str) -> subprocess.Popen:
        with open(self.log(name), "ab") as out:
            process = subprocess.Popen([sys.executable, "-m", "connector.cli", *args], env=self.env,
                                       cwd=self.directory, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        self.processes[name] = process
        return process

    def start_web(self, workers: int = 2) -> "Connector":
        self.web_port = free_port()
        self.start("web", "web", "--bind", f"127.0.0.1:{self.web_port}", "--workers", str(workers))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.processes["web"].poll() is None, self.log("web").read_text()
            try:
                if self.request("GET", "/healthz", timeout=1)[0] == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"connector web did not answer /healthz within 30 s: {self.log('web').read_text()}")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for name, process in self.processes.items():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self.processes.clear()

    def clean(self) -> None:
        cleanup(self.redis, self.token)
        self.redis.close()

    # --- HTTP ----------------------------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.web_port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def post(self, body: bytes, headers: dict, tenant: str = "skole-a", adapter: str = "generic", timeout=5.0):
        return self.request("POST", f"/webhooks/{tenant}/{adapter}", body, headers, timeout)

    def deliver(self, event_type: str, data: dict, tenant: str = "skole-a", secret: str = SECRET, **kw):
        body = envelope(event_type, data)
        return self.post(body, signed(body, secret=secret), tenant=tenant, **kw)

    def raw(self, data: bytes) -> socket.socket:
        """A client socket that has sent ``data`` and keeps the connection open (the caller closes it)."""
        sock = socket.create_connection(("127.0.0.1", self.web_port), timeout=5)
        sock.sendall(data)
        return sock

    # --- Redis, read only --------------------------------------------------------------------------------------

    def queued(self) -> int:
        return self.redis.llen(f"rq:queue:{self.token}")


def envelope(event_type: str, data: dict, timestamp: str | None = None) -> bytes:
    stamp = timestamp or datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return json.dumps({"type": event_type, "timestamp": stamp, "data": data}, ensure_ascii=False).encode()


def signed(body: bytes, msg_id: str | None = None, secret: str = SECRET, timestamp: int | None = None,
           content_type: str = "application/json") -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {"content-type": content_type, "webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(body, msg_id, timestamp, secret)}


def read_response(sock: socket.socket, timeout: float) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response read from a raw socket (``Content-Length`` bodies: all the door sends)."""
    sock.settimeout(timeout)
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def today_oslo() -> str:
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Europe/Oslo")).date().isoformat()


def school_years() -> list[dict]:
    """Last school year and this one (August to July, around today, whenever the suite runs), without breaks:
    Norway's public holidays still come from the calendar itself."""
    from datetime import date

    today = date.fromisoformat(today_oslo())
    this = today.year if today.month >= 8 else today.year - 1
    return [{"school_year": f"{first}-{str(first + 1)[2:]}", "first_day": f"{first}-08-01",
             "last_day": f"{first + 1}-07-31", "breaks": []} for first in (this - 1, this)]


def school_days_ago(n: int) -> str:
    """The school day ``n`` school days before today: an absence that old has its follow-up due already, so a
    worker writes to the platform at once."""
    from datetime import date, timedelta

    from connector.rules.calendar import SchoolCalendar

    calendar = SchoolCalendar.from_mapping(school_years())
    day, left = date.fromisoformat(today_oslo()), n
    while left:
        day -= timedelta(days=1)
        left -= calendar.is_school_day(day)
    return day.isoformat()


@pytest.fixture(scope="module")
def door(tmp_path_factory):
    """``connector web`` with 2 gevent workers (its defaults), shared by a module's tests; no worker drains its
    queue, so a test reads there whether anything reached one."""
    connector = Connector(tmp_path_factory.mktemp("door")).start_web()
    try:
        yield connector
    finally:
        connector.stop()
        connector.clean()


# --- a platform that fails on cue, recording every call --------------------------------------------------------


@dataclass
class Call:
    ref: str
    student_id: str
    started: float
    answered: float = 0.0
    status: int = 0  # 0: the connector gave up waiting (the platform still committed, as a slow platform does)
    retry_after: float | None = None


class OutagePlatform:
    """The contract's outbound API (``POST /api/tasks|alerts|notes``, ``Idempotency-Key``, ``201``/``409``) on
    loopback, answering by a script while :attr:`down`: ``429`` and ``503`` with ``Retry-After``, ``500``, and a
    timeout (an answer after :attr:`slow_seconds`, past the adapter's timeout; the write is committed anyway, as a
    platform that is slow rather than down does). Pupils in :attr:`poisoned` get ``500`` until they are healed.
    Every call is recorded with its times, and what was created, by ``Idempotency-Key``, exactly once."""

    SCRIPT = (("429", 2.0), ("503", 1.0), ("500", None), ("timeout", None))

    def __init__(self, slow_seconds: float = 1.5):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        import threading

        self.lock = threading.Lock()
        self.calls: list[Call] = []
        self.created: dict[str, int] = {}
        self.down = False
        self.poisoned: set[str] = set()
        self.slow_seconds = slow_seconds
        self._turn = 0
        platform = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                call = Call(self.headers.get("Idempotency-Key", ""), body.get("student_id", ""), time.monotonic())
                status, retry_after = platform.answer(call)
                if status == "timeout":
                    time.sleep(platform.slow_seconds)
                    status = platform.commit(call.ref)
                    call.status = 0
                else:
                    call.status = status
                call.retry_after = retry_after
                headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else {}
                data = json.dumps({"id": f"remote-{call.ref[:12]}"} if status == 201 else {"error": str(status)})
                call.answered = time.monotonic()
                with platform.lock:
                    platform.calls.append(call)
                try:
                    self.send_response(status)
                    for name, value in {**headers, "Content-Type": "application/json",
                                        "Content-Length": str(len(data))}.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data.encode())
                except OSError:  # the connector stopped waiting
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api"

    def answer(self, call: Call) -> tuple:
        with self.lock:
            if call.student_id in self.poisoned:
                return 500, None
            if self.down:
                kind, retry_after = self.SCRIPT[self._turn % len(self.SCRIPT)]
                self._turn += 1
                return (kind if kind == "timeout" else int(kind)), retry_after
        return self.commit(call.ref), None

    def commit(self, ref: str) -> int:
        with self.lock:
            if ref in self.created:
                return 409
            self.created[ref] = 1
            return 201

    def start(self) -> "OutagePlatform":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
