"""demo_platform: the contract's outbound side on 127.0.0.1, recording what it was asked to write and showing it.

``POST <base>/tasks|/alerts|/notes`` with ``Authorization: Bearer`` and ``Idempotency-Key`` answers ``201
{"id": ...}``, or ``409`` when that key was written before (the connector counts that as done); anything else is
``404``/``400``/``401``. ``GET /`` is a plain HTML page of the last writes (kind, the platform's id, rule id, title,
pupil id, assignee, due date, external_ref) so a newcomer sees a task appear; ``GET /_received`` is the same as
JSON, ``GET /_stats`` the counts and the wall-clock time of the last write (which is how the benchmarks see "the
last action written").

It is ``http.server.ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive (the connector's ``requests.Session``
reuses its connection). ``connector serve --demo`` runs it beside the service (the bundled example's generic
adapter writes to ``http://127.0.0.1:8099/api``); ``python -m connector.demo_platform --port 8099`` runs it alone
until Ctrl-C. The benchmarks' ``bench/fake_platform.py`` drives the same server. Everything it shows is the demo's
own fake data: it keeps the last ``KEEP`` writes in memory and nothing on disk.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import signal
import threading
import time
from collections import deque
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KINDS = {"tasks": "task", "alerts": "alert", "notes": "note"}
REQUIRED = {
    "task": ("external_ref", "assignee", "student_id", "title", "body", "due_date", "rule_id", "priority"),
    "alert": ("external_ref", "recipient", "student_id", "title", "body", "rule_id", "severity"),
    "note": ("external_ref", "student_id", "body", "rule_id", "visibility"),
}
KEEP = 500  # writes shown on the page, newest first
DEFAULT_PORT = 8099
SHOWN = ("id", "kind", "rule_id", "title", "student_id", "assignee", "due_date", "external_ref", "received_at")


class State:
    def __init__(self, base_path: str = "/api", token: str | None = None, keep: int = KEEP):
        self.base = base_path.rstrip("/")
        self.token = token
        self.lock = threading.Lock()
        self.keys: set[str] = set()
        self.counts = {"task": 0, "alert": 0, "note": 0, "conflict": 0, "unauthorized": 0, "bad": 0, "requests": 0}
        self.rules: dict[str, int] = {}
        self.tally: dict[str, int] = {}  # "<kind>|<rule_id>|<student_id>" -> writes (GET /_tally; the benchmarks')
        self.first_write: float | None = None
        self.last_write: float | None = None
        self.received: deque[dict[str, Any]] = deque(maxlen=keep)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {**self.counts, "written": sum(self.counts[k] for k in ("task", "alert", "note")),
                    "rules": dict(self.rules), "first_write": self.first_write, "last_write": self.last_write}

    def records(self) -> list[dict[str, Any]]:
        """What was written, newest first."""
        with self.lock:
            return list(reversed(self.received))


def _record(kind: str, remote: str, body: dict[str, Any], now: float) -> dict[str, Any]:
    party = body.get("assignee") or body.get("recipient") or {}
    assignee = f"{party.get('role', '')} {party.get('id', '')}".strip() if isinstance(party, dict) else str(party)
    return {
        "id": remote, "kind": kind, "rule_id": str(body.get("rule_id", "")), "title": str(body.get("title", "")),
        "student_id": str(body.get("student_id", "")), "assignee": assignee,
        "due_date": str(body.get("due_date", "")), "external_ref": str(body.get("external_ref", "")),
        "received_at": datetime.fromtimestamp(now, tz=timezone.utc).isoformat(timespec="seconds"),
    }


def page(state: State) -> str:
    """The demo platform's page: what it received, newest first, every value escaped."""
    records = state.records()
    head = "".join(f"<th>{html.escape(name)}</th>" for name in SHOWN)
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(record[name])}</td>" for name in SHOWN) + "</tr>" for record in records
    )
    stats = state.stats()
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>Demo platform: what the connector wrote</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}th{{background:#eee}}</style></head>
<body><h1>Demo platform</h1>
<p>What the connector wrote to this fake platform ({stats['task']} task(s), {stats['alert']} alert(s),
{stats['note']} note(s); {stats['conflict']} repeated write(s) answered 409). Newest first; the page reloads
every 5 seconds. This is the demo's own fake data, kept in memory only.</p>
{'<p><em>Nothing received yet: send an event with <code>connector send-test demo-skole attendance_marked__absent</code>.</em></p>' if not records else ''}
<table><thead><tr>{head}</tr></thead><tbody>
{rows}
</tbody></table></body></html>
"""


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive
        disable_nagle_algorithm = True

        def log_message(self, *args):  # quiet: thousands of requests in the benchmarks
            pass

        def send(self, status: int, data: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self._headers_buffer.append(b"\r\n" + data)  # head and body in one write
            self.flush_headers()

        def reply(self, status: int, body: Any) -> None:
            self.send(status, json.dumps(body).encode(), "application/json")

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/_stats":
                self.reply(200, state.stats())
            elif path == "/_received":
                self.reply(200, state.records())
            elif path == "/_tally":
                with state.lock:
                    self.reply(200, dict(state.tally))
            elif path == "/":
                self.send(200, page(state).encode(), "text/html; charset=utf-8")
            else:
                self.reply(404, {"error": "not_found"})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            path = self.path.split("?", 1)[0]
            kind = KINDS.get(path[len(state.base) + 1:]) if path.startswith(state.base + "/") else None
            with state.lock:
                state.counts["requests"] += 1
            if kind is None:
                self.reply(404, {"error": "not_found"})
                return
            if state.token is not None and self.headers.get("Authorization") != f"Bearer {state.token}":
                with state.lock:
                    state.counts["unauthorized"] += 1
                self.reply(401, {"error": "unauthorized"})
                return
            key = self.headers.get("Idempotency-Key")
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            if not key or not isinstance(body, dict) or any(f not in body for f in REQUIRED[kind]) \
                    or body.get("external_ref") != key:
                with state.lock:
                    state.counts["bad"] += 1
                self.reply(400, {"error": "bad_request"})
                return
            with state.lock:
                if key in state.keys:
                    state.counts["conflict"] += 1
                    conflict = True
                else:
                    state.keys.add(key)
                    state.counts[kind] += 1
                    state.rules[body["rule_id"]] = state.rules.get(body["rule_id"], 0) + 1
                    tally = f"{kind}|{body['rule_id']}|{body.get('student_id') or ''}"
                    state.tally[tally] = state.tally.get(tally, 0) + 1
                    now = time.time()
                    state.first_write = state.first_write or now
                    state.last_write = now
                    conflict = False
                    remote = f"{kind}-{len(state.keys)}"
                    state.received.append(_record(kind, remote, body, now))
            if conflict:
                self.reply(409, {"error": "duplicate", "external_ref": key})
            else:
                self.reply(201, {"id": remote})

    return Handler


class DemoPlatform:
    """The demo platform on a thread of this process (tests, or anything embedding it); ``port=0`` picks a free one.

    ``url`` is the base_url an adapter writes to, ``page_url`` the page that shows it.
    """

    def __init__(self, port: int = 0, base_path: str = "/api", token: str | None = None, host: str = "127.0.0.1"):
        self.state = State(base_path, token)
        self.server = ThreadingHTTPServer((host, port), make_handler(self.state))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.page_url = f"http://{host}:{self.port}/"
        self.url = f"http://{host}:{self.port}{self.state.base}"
        self._thread: threading.Thread | None = None

    def start(self) -> "DemoPlatform":
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "DemoPlatform":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def serve(port: int, base_path: str = "/api", token: str | None = None, seconds: float | None = None,
          quiet: bool = False) -> None:
    """Serve in the foreground until Ctrl-C, SIGTERM or ``seconds``."""
    state = State(base_path, token)
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(state))
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, _interrupt)
    if not quiet:
        print(f"demo platform listening on http://127.0.0.1:{server.server_address[1]}{state.base} "
              f"(what it received: http://127.0.0.1:{server.server_address[1]}/)", flush=True)
    if seconds:
        threading.Timer(seconds, server.shutdown).start()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--base-path", default="/api")
    parser.add_argument("--token-env", help="require 'Authorization: Bearer $VAR' (default: any token)")
    parser.add_argument("--seconds", type=float, help="stop by itself after this long")
    parser.add_argument("--quiet", action="store_true", help="no start-up line")
    args = parser.parse_args(argv)
    token = os.environ.get(args.token_env) if args.token_env else None
    serve(args.port, args.base_path, token or None, args.seconds, args.quiet)


if __name__ == "__main__":
    main()
