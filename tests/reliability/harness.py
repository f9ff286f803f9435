"""The running system for the reliability suite: real ``connector`` processes, a private Redis, a recording platform.

What a test gets from :func:`tests.reliability.conftest.system`:

* :class:`System`: ``connector web`` (gunicorn), ``connector worker`` ×N and ``connector scheduler`` as subprocesses
  of this test, each in its own session (so a kill takes the whole process, RQ's scheduler child included, as
  systemd's and Docker's do), with ``REDIS_URL`` at the private ``redis_server`` (``tests/redis_server.py``:
  appendonly, restartable, kill -9-able) and ``CONNECTOR_CONFIG`` at a configuration written to the test's tmp
  folder. Every process logs to ``<tmp>/logs/<name>.log``; :meth:`System.logs` reads them all (for a failure's
  report, and for the privacy checks).
* :class:`RecordingPlatform`: the contract's outbound API (``POST /tasks|/alerts|/notes``, ``Idempotency-Key``,
  ``201``/``409`` as ``connector/demo_platform.py`` answers) on a thread of the test, which counts every request
  per ``external_ref``: a second write of an action shows as a second *post*, even though the platform, as the
  contract asks, answers it ``409`` and creates nothing. ``platform.respond`` may be set to a function that answers
  instead (an outage: ``lambda post: (503, {"Retry-After": "2"})``).
* :class:`Sender`: signs a generic envelope as a platform does (Standard Webhooks, ``connector.contract.signatures``
  as ``tests/support.py`` signs) and posts it with a fixed ``webhook-id``, so a test can redeliver.
* :func:`registers`: a deterministic workload of whole-day registers over past school days, with undocumented
  absences whose deadlines have already passed (so they fire at once, through the due set and the scheduler).

Nothing here depends on the shared Redis at 127.0.0.1:6379: every key lives on the private server, removed with
its directory when the test ends.
"""
from __future__ import annotations

import base64
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import requests
import yaml

from connector.contract.signatures import sign
from connector.contract.terms import OSLO
from connector.rules.calendar import SchoolCalendar
from tests.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
CALENDAR = ROOT / "connector" / "example" / "calendar-2026-27.yaml"
KINDS = {"tasks": "task", "alerts": "alert", "notes": "note"}


# --- the platform the connector writes to ------------------------------------------------------------------------


@dataclass
class Post:
    kind: str
    external_ref: str
    body: dict[str, Any]
    status: int


class RecordingPlatform:
    """The outbound contract on 127.0.0.1, recording every request; ``url`` is the adapter's ``base_url``."""

    def __init__(self, token: str):
        self.token = token
        self.lock = threading.Lock()
        self.posts: list[Post] = []
        self.created: dict[str, Post] = {}
        self.respond: Callable[[Post], tuple[int, dict[str, str]] | None] | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def start(self) -> "RecordingPlatform":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def posts_per_ref(self) -> Counter:
        with self.lock:
            return Counter(post.external_ref for post in self.posts)

    def created_refs(self) -> set[str]:
        with self.lock:
            return set(self.created)

    def _handler(self):
        platform = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kind = KINDS.get(self.path.rsplit("/", 1)[-1])
                if kind is None or not self.path.startswith("/api/"):
                    return self.reply(404, {"error": "not_found"})
                if self.headers.get("Authorization") != f"Bearer {platform.token}":
                    return self.reply(401, {"error": "unauthorized"})
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self.reply(400, {"error": "bad_request"})
                key = self.headers.get("Idempotency-Key") or ""
                if not isinstance(body, dict) or body.get("external_ref") != key or not key:
                    return self.reply(400, {"error": "bad_request"})
                post = Post(kind, key, body, 0)
                answer = platform.respond(post) if platform.respond else None
                with platform.lock:
                    if answer is None:
                        post.status = 409 if key in platform.created else 201
                        if post.status == 201:
                            platform.created[key] = post
                    else:
                        post.status = answer[0]
                    platform.posts.append(post)
                if answer is not None:
                    return self.reply(answer[0], {"error": "unavailable"}, answer[1])
                if post.status == 409:
                    return self.reply(409, {"error": "duplicate", "external_ref": key})
                return self.reply(201, {"id": f"{kind}-{len(platform.created)}"})

        return Handler


# --- the configuration ---------------------------------------------------------------------------------------------


def secret_for(tenant: str) -> str:
    return "whsec_" + base64.b64encode(f"reliability-{tenant}-secret".encode()).decode()


def write_config(path: Path, tenants: list[str], platform_url: str, groups: list[str], prefix: str) -> Path:
    """A configuration like the bundled example's, one generic adapter per tenant, secrets as ``{env: NAME}``."""
    config = {
        "key_prefix": prefix,
        "queue_name": prefix,
        "tenants": {
            tenant: {
                "name": f"Pålitelighet {tenant}",
                "language": "nb",
                "calendar": [{"file": str(CALENDAR)}],
                "adapters": {"generic": {
                    "type": "generic",
                    "webhook_secrets": [{"env": env_name(tenant, "WEBHOOK_SECRET")}],
                    "base_url": platform_url,
                    "api_token": {"env": env_name(tenant, "API_TOKEN")},
                    "timeout_seconds": 5,
                }},
                "directory": {
                    "roles": {"principal": f"u-{tenant}-rektor", "nearest_leader": f"u-{tenant}-leder"},
                    "groups": {group: {"contact_teacher": f"u-{tenant}-{group.lower()}"} for group in groups},
                },
            }
            for tenant in tenants
        },
    }
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def env_name(tenant: str, what: str) -> str:
    return f"REL_{tenant.upper().replace('-', '_')}_{what}"


def secrets_env(tenants: list[str], token: str) -> dict[str, str]:
    env = {}
    for tenant in tenants:
        env[env_name(tenant, "WEBHOOK_SECRET")] = secret_for(tenant)
        env[env_name(tenant, "API_TOKEN")] = token
    return env


# --- the processes ---------------------------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """The signal to the process's whole session (its own children too: gunicorn's workers, RQ's scheduler)."""
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def kill_only(self, sig: int = signal.SIGKILL) -> None:
        """The signal to this process alone (a gunicorn worker killed under its master, say)."""
        try:
            os.kill(self.popen.pid, sig)
        except ProcessLookupError:
            pass


@dataclass
class System:
    directory: Path
    redis: RedisServer
    platform: RecordingPlatform
    tenants: list[str]
    groups: list[str]
    prefix: str = field(default_factory=lambda: f"rel{uuid.uuid4().hex[:8]}")
    web_port: int = field(default_factory=free_port)
    procs: list[Proc] = field(default_factory=list)
    config_path: Path | None = None

    def __post_init__(self):
        (self.directory / "logs").mkdir(parents=True, exist_ok=True)
        self.config_path = write_config(self.directory / "connector.yaml", self.tenants, self.platform.url,
                                        self.groups, self.prefix)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONNECTOR_", "REDIS_URL"))}
        env.update(secrets_env(self.tenants, self.platform.token), REDIS_URL=self.redis.url,
                   CONNECTOR_CONFIG=str(self.config_path), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        return env

    def start(self, name: str, *extra: str) -> Proc:
        """``connector <name> <extra…>`` in its own session, logging to ``logs/<name>-<n>.log``."""
        n = sum(1 for p in self.procs if p.name == name)
        log = self.directory / "logs" / f"{name}-{n}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen([sys.executable, "-m", "connector.cli", name, *extra], env=self.env(),
                                     cwd=self.directory, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def start_web(self, workers: int = 2) -> Proc:
        proc = self.start("web", "--bind", f"127.0.0.1:{self.web_port}", "--workers", str(workers))
        self.wait_http("/healthz")
        return proc

    def start_worker(self) -> Proc:
        return self.start("worker")

    def start_scheduler(self) -> Proc:
        return self.start("scheduler", "--interval", "0.5")

    def running(self, name: str) -> list[Proc]:
        return [p for p in self.procs if p.name == name and p.alive()]

    def wait_http(self, path: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + path, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.url}{path} did not answer 200 within {timeout} s\n{self.logs()[-4000:]}")

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.alive():
                proc.kill(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs:
            try:
                proc.popen.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
            proc.kill(signal.SIGKILL)  # the session: whatever a SIGTERM left behind
            try:
                proc.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def logs(self) -> str:
        return "\n".join(f"==> {log.name} <==\n{log.read_text(errors='replace')}"
                         for log in sorted((self.directory / "logs").glob("*.log")))

    # --- what Redis holds -------------------------------------------------------------------------------------

    def client(self):
        return self.redis.client(socket_timeout=5)

    def backlog(self) -> dict[str, int]:
        """What RQ still has to do for the connector's queue: queued, running, scheduled (a retry's wait),
        taken but not started; what the due set holds that is due now; and the actions still in an outbox, not yet
        confirmed by the platform (a send a killed worker or a lost Redis cut short is retried from the outbox once
        its first try's grace has passed, a minute on the production defaults: until then nothing is drained)."""
        r = self.client()
        q = self.prefix
        now = time.time()
        return {
            "queued": r.llen(f"rq:queue:{q}"),
            "started": r.zcard(f"rq:wip:{q}"),
            "scheduled": r.zcard(f"rq:scheduled:{q}"),
            "intermediate": r.llen(f"rq:queue:{q}:intermediate"),
            "due_now": r.zcount(f"{q}:due", 0, now),
            "outbox": sum(r.hlen(f"{q}:t:{tenant}:outbox") for tenant in self.tenants),
        }

    def failed_jobs(self) -> int:
        return self.client().zcard(f"rq:failed:{self.prefix}")

    def dead_letters(self) -> int:
        r = self.client()
        key = f"{self.prefix}:dead-letters"
        kind = r.type(key).decode()
        return {"hash": r.hlen, "list": r.llen, "zset": r.zcard, "set": r.scard}.get(kind, lambda k: 0)(key)


# --- signed deliveries -----------------------------------------------------------------------------------------------


class Sender:
    """Posts envelopes to ``/webhooks/<tenant>/generic`` signed with the tenant's secret, as a platform does."""

    def __init__(self, url: str, timeout: float = 10.0):
        self.url = url
        self.timeout = timeout
        self.session = requests.Session()

    def post(self, tenant: str, msg_id: str, envelope: dict[str, Any]) -> requests.Response:
        envelope = dict(envelope, timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        body = json.dumps(envelope, ensure_ascii=False).encode()
        stamp = int(time.time())
        headers = {"content-type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(stamp),
                   "webhook-signature": sign(body, msg_id, stamp, secret_for(tenant))}
        return self.session.post(f"{self.url}/webhooks/{tenant}/generic", data=body, headers=headers,
                                 timeout=self.timeout)


@dataclass(frozen=True)
class Delivery:
    tenant: str
    msg_id: str
    envelope: dict[str, Any]


def past_school_days(count: int, today: date | None = None) -> list[date]:
    """The last ``count`` school days before today (Oslo) in the example calendar, oldest first."""
    calendar = SchoolCalendar.from_mapping([yaml.safe_load(CALENDAR.read_text(encoding="utf-8"))])
    today = today or datetime.now(OSLO).date()
    days = calendar.school_days(today - timedelta(days=count * 3 + 30), today - timedelta(days=1))
    return days[-count:]


def registers(tenants: list[str], groups: list[str], pupils: int, days: list[date], seed: int = 12) -> list[Delivery]:
    """One whole-day register per tenant, group and day; a pupil is absent now and then (some on one weekday, a
    pattern), without a notice, so the notice deadlines are past when the register arrives. Shuffled: any arrival
    order must give the same result."""
    rng = random.Random(seed)
    out = []
    for tenant in tenants:
        for g, group in enumerate(groups):
            for day in days:
                marks = []
                for p in range(pupils):
                    student = f"{tenant}-{group}-{p:02d}"
                    weekday_habit = p % 9 == 0 and day.weekday() == p % 5
                    absent = weekday_habit or rng.random() < 0.04
                    marks.append({"student_id": student, "status": "absent" if absent else "present",
                                  "documented": False})
                out.append(Delivery(tenant, f"msg_{tenant}_{group}_{day.isoformat()}", {
                    "type": "attendance.register", "timestamp": "",
                    "data": {"date": day.isoformat(), "group_id": group, "marks": marks},
                }))
    rng.shuffle(out)
    return out
