"""fake_platform: the contract's outbound side on 127.0.0.1, small and fast, counting what it was asked to write.

``POST <base>/tasks|/alerts|/notes`` with ``Authorization: Bearer`` and ``Idempotency-Key`` answers ``201
{"id": ...}``, or ``409`` when that key was written before (the connector counts that as done); anything else is
``404``/``400``/``401``. ``GET /_stats`` gives the counts and the wall-clock time of the last write, which is how
the benchmarks see "the last action written".

It is ``http.server.ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive (the connector's ``requests.Session``
reuses its connection), run in its own process so it takes no interpreter lock from the process measured. Is it
fast enough not to be the bottleneck? ``python -m bench.fake_platform --measure`` drives it as hard as two workers
can and prints its rate; the benchmarks' action rates are a small fraction of it (see bench/README.md).

``python -m bench.fake_platform --port 8099`` serves until Ctrl-C (or ``--seconds``), for trying the example. The
server itself is ``connector/demo_platform.py`` (which ``connector serve --demo`` runs and which also shows what it
received at ``GET /``); this module keeps what only the benchmarks need.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from typing import Any

import requests

from connector.demo_platform import serve  # the server lives in the package (connector serve --demo runs it too)


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

    def tally(self) -> dict[str, int]:
        """Writes per ``<kind>|<rule_id>|<student_id>`` (every one, not only the last few hundred kept for show)."""
        return self.session.get(f"http://127.0.0.1:{self.port}/_tally", timeout=60).json()

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
