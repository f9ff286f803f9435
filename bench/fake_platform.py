"""fake_platform: the contract's outbound side on 127.0.0.1, small and fast, counting what it was asked to write.

``POST <base>/tasks|/alerts|/notes`` with ``Authorization: Bearer`` and ``Idempotency-Key`` answers ``201
{"id": ...}``, or ``409`` when that key was written before (the connector counts that as done); anything else is
``404``/``400``/``401``. ``GET /_stats`` gives the counts and the wall-clock time of the last write, which is how
the benchmarks see "the last action written".

It is ``http.server.ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive (the connector's ``requests.Session``
reuses its connection), run in its own process so it takes no interpreter lock from the process measured. Is it
fast enough not to be the bottleneck? ``python -m bench.fake_platform --measure`` drives it as hard as two workers
can and prints its rate; the benchmarks' action rates are a small fraction of it (see bench/README.md).

``python -m bench.fake_platform --port 8099`` serves until Ctrl-C (or ``--seconds``), for trying the example.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

KINDS = {"tasks": "task", "alerts": "alert", "notes": "note"}
REQUIRED = {
    "task": ("external_ref", "assignee", "student_id", "title", "body", "due_date", "rule_id", "priority"),
    "alert": ("external_ref", "recipient", "student_id", "title", "body", "rule_id", "severity"),
    "note": ("external_ref", "student_id", "body", "rule_id", "visibility"),
}


class State:
    def __init__(self, base_path: str, token: str | None):
        self.base = base_path.rstrip("/")
        self.token = token
        self.lock = threading.Lock()
        self.keys: set[str] = set()
        self.counts = {"task": 0, "alert": 0, "note": 0, "conflict": 0, "unauthorized": 0, "bad": 0, "requests": 0}
        self.rules: dict[str, int] = {}
        self.first_write: float | None = None
        self.last_write: float | None = None

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {**self.counts, "written": sum(self.counts[k] for k in ("task", "alert", "note")),
                    "rules": dict(self.rules), "first_write": self.first_write, "last_write": self.last_write}


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive
        disable_nagle_algorithm = True

        def log_message(self, *args):  # quiet: thousands of requests
            pass

        def reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self._headers_buffer.append(b"\r\n" + data)  # head and body in one write
            self.flush_headers()

        def do_GET(self):
            if self.path == "/_stats":
                self.reply(200, state.stats())
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
                    now = time.time()
                    state.first_write = state.first_write or now
                    state.last_write = now
                    conflict = False
                    remote = f"{kind}-{len(state.keys)}"
            if conflict:
                self.reply(409, {"error": "duplicate", "external_ref": key})
            else:
                self.reply(201, {"id": remote})

    return Handler


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def serve(port: int, base_path: str = "/api", token: str | None = None, seconds: float | None = None) -> None:
    state = State(base_path, token)
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(state))
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"fake platform listening on http://127.0.0.1:{server.server_address[1]}{base_path}", flush=True)
    if seconds:
        threading.Timer(seconds, server.shutdown).start()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


class FakePlatform:
    """The fake platform in a child process (its own process group), stopped on exit; ``url`` is the base_url."""

    def __init__(self, port: int | None = None, token: str | None = None, log_path: str | None = None):
        from bench.common import free_port

        self.port = port or free_port()
        self.token = token
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.session = requests.Session()

    def __enter__(self) -> "FakePlatform":
        from bench.common import wait_until

        argv = [sys.executable, "-m", "bench.fake_platform", "--port", str(self.port), "--seconds", "3600"]
        if self.token:
            argv += ["--token-env", "BENCH_FAKE_PLATFORM_TOKEN"]
        env = dict(os.environ, BENCH_FAKE_PLATFORM_TOKEN=self.token or "")
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                     cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        if not wait_until(lambda: self._up(), timeout=15):
            self.__exit__(None, None, None)
            raise RuntimeError("the fake platform did not start")
        return self

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the fake platform exited with code {self.proc.returncode}")
        try:
            return self.session.get(f"http://127.0.0.1:{self.port}/_stats", timeout=0.5).ok
        except requests.RequestException:
            return False

    def stats(self) -> dict[str, Any]:
        return self.session.get(f"http://127.0.0.1:{self.port}/_stats", timeout=5).json()

    def __exit__(self, *exc) -> None:
        from bench.common import stop_process

        self.session.close()
        if self.proc is not None:
            stop_process(self.proc)


def measure(seconds: float, clients: int) -> None:
    """Drive the platform with ``clients`` keep-alive sessions in threads for ``seconds`` and print the rate."""
    token = "measure-token"
    with FakePlatform(token=token) as platform:
        stop = time.monotonic() + seconds
        done = [0] * clients

        def client(n: int) -> None:
            session = requests.Session()
            headers = {"Authorization": f"Bearer {token}"}
            i = 0
            while time.monotonic() < stop:
                ref = f"sf1-measure-{n}-{i}"
                body = {"external_ref": ref, "assignee": {"role": "contact_teacher", "id": "u-1"},
                        "student_id": "100001", "title": "Fravær uten melding", "body": "Eleven var borte " * 20,
                        "due_date": "2026-11-30", "rule_id": "absence.pattern", "priority": "normal"}
                response = session.post(f"{platform.url}/tasks", json=body, headers={**headers, "Idempotency-Key": ref},
                                        timeout=5)
                assert response.status_code == 201, response.status_code
                i += 1
            done[n] = i
            session.close()

        cpu0 = process_cpu(platform.proc.pid)
        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        cpu = process_cpu(platform.proc.pid) - cpu0
        stats = platform.stats()
    total = sum(done)
    print(f"fake platform: {total} POST /tasks in {elapsed:.1f} s from {clients} keep-alive requests.Session "
          f"client(s) = {total / elapsed:,.0f} writes/s (server counted {stats['written']}); the server spent "
          f"{cpu / total * 1e6:,.0f} µs CPU per write, i.e. it can take ~{total / cpu:,.0f} writes/s on one core "
          f"(the clients, sharing the 2 cores, are the limit here)")


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--base-path", default="/api")
    parser.add_argument("--token-env", help="require 'Authorization: Bearer $VAR' (default: any token)")
    parser.add_argument("--seconds", type=float, help="stop by itself after this long")
    parser.add_argument("--measure", action="store_true", help="start one on a free port and measure its rate")
    parser.add_argument("--measure-seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure_seconds, args.clients)
        return
    token = os.environ.get(args.token_env) if args.token_env else None
    serve(args.port, args.base_path, token or None, args.seconds)


if __name__ == "__main__":
    main()
