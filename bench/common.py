"""What the benchmarks share: a runtime on a real local Redis under a throw-away prefix, and the example school.

Every benchmark cleans up exactly the keys it made (its own prefix and queue), so it can run beside other users of
the same Redis server.
"""
from __future__ import annotations

import itertools
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path

from redis import Redis

from connector.engine import runtime
from connector.engine.clock import FixedClock
from connector.config.schema import Config, load_config
from connector.engine.runtime import Runtime

EXAMPLE = Path(__file__).resolve().parents[1] / "connector" / "example" / "connector.yaml"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")


@contextmanager
def bench_runtime(now: datetime | None = None, config: Config | None = None):
    """A runtime with its own key prefix and queue on the local Redis, removed afterwards."""
    token = f"bench{uuid.uuid4().hex[:8]}"
    base = config or load_config(EXAMPLE)
    from dataclasses import replace

    cfg = replace(base, key_prefix=token, queue_name=token)
    redis = Redis.from_url(REDIS_URL)
    rt = Runtime(cfg, redis, clock=FixedClock(now or datetime(2026, 11, 23, 8, tzinfo=timezone.utc)))
    runtime.install(rt)
    try:
        yield rt
    finally:
        runtime.install(None)
        cleanup_token(redis, token)


# Redis's own defaults for small hashes (redis.conf as shipped), given explicitly: a host's tuning must not move the
# memory figure. Debian's redis.conf and this machine's Redis may differ (this one has entries 512).
STOCK_HASH_SETTINGS = ("--hash-max-listpack-entries", "128", "--hash-max-listpack-value", "64")


@contextmanager
def stock_redis():
    """A private ``redis-server`` on a free loopback port with the stock hash settings and nothing on disk."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as folder:
        server = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
             "--dir", folder, *STOCK_HASH_SETTINGS], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            redis = Redis(port=port)
            for _ in range(100):
                try:
                    redis.ping()
                    break
                except Exception:  # not listening yet
                    time.sleep(0.05)
            yield redis
        finally:
            server.terminate()
            server.wait(timeout=10)


def watch_burst(redis: Redis, queue: str, sender, outbox_left, check_alive, timeout: float,
                interval: float = 0.01) -> tuple[int, float, float]:
    """While ``sender`` (a thread posting the burst) runs and the workers drain ``queue``: poll the queue, the jobs
    taken and running, and the outbox (``outbox_left()``) until all are empty and the sender is done. Returns the
    queue's peak, when processing ended (the queue empty, no job running) and when the outbox was empty too."""
    keys = (f"rq:queue:{queue}", f"rq:wip:{queue}", f"rq:queue:{queue}:intermediate")
    peak, processed = 0, None
    deadline = time.monotonic() + timeout
    while True:
        with redis.pipeline(transaction=False) as pipe:
            pipe.llen(keys[0]).zcard(keys[1]).llen(keys[2])
            waiting, running, taken = pipe.execute()
        peak = max(peak, waiting)
        idle = not sender.is_alive() and not (waiting or running or taken)
        if idle and processed is None:
            processed = time.time()
        if idle and outbox_left() == 0:
            return peak, processed, time.time()
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done within {timeout:.0f} s: {waiting} queued, {running} running")
        check_alive()
        time.sleep(interval)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def timed(fn, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def summary(samples: list[float]) -> str:
    return (f"median {statistics.median(samples) * 1e6:7.0f} µs  p90 {percentile(samples, 90) * 1e6:7.0f} µs  "
            f"n={len(samples)}")


def cores() -> int:
    return os.cpu_count() or 1


def school_days_back(calendar, end: date, n: int) -> list[date]:
    first = calendar.add_school_days(end, -(n - 1))
    return calendar.school_days(first, end)


# --- Helpers for the benchmarks that start processes (ingest, processing, burst, memory) -----------------------------

ROOT = Path(__file__).resolve().parents[1]


def new_token(kind: str = "bench") -> str:
    """A key prefix and queue name of its own: every key a benchmark makes contains it."""
    return f"{kind}{uuid.uuid4().hex[:8]}"


def cleanup_token(redis: Redis, token: str, extra: tuple[str, ...] = ()) -> int:
    """Delete every key containing ``token`` (the connector's keys, the RQ queue, jobs and registries) and
    ``extra`` keys; forget the queue in RQ's list of queues. Never anything else."""
    keys = list(redis.scan_iter(match=f"*{token}*", count=5000)) + list(extra)
    for start in range(0, len(keys), 1000):
        redis.delete(*keys[start:start + 1000])
    redis.srem("rq:queues", *{f"rq:queue:{token}", f"rq:queue:{token}-bare", f"rq:queue:{token}-fork"})
    return len(keys)


def copy_prefix(redis: Redis, src: str, dst: str) -> int:
    """Copy every key under the prefix ``src:`` to the same name under ``dst:`` (values and TTLs, server-side)."""
    copied = 0
    batch: list[bytes] = []

    def flush() -> None:
        with redis.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.copy(key, dst.encode() + key[len(src):])
            pipe.execute()
        batch.clear()

    for key in redis.scan_iter(match=f"{src}:*", count=5000):
        batch.append(key)
        copied += 1
        if len(batch) >= 2000:
            flush()
    if batch:
        flush()
    return copied


def rq_side_keys(redis: Redis, queues: list[str]) -> list[str]:
    """Keys RQ names by a worker's or a scheduler's random name rather than by the queue (so ``cleanup_token``
    does not find them): collect them while the workers of ``queues`` run, delete them after."""
    found: list[str] = []
    for queue in queues:
        for member in redis.smembers(f"rq:workers:{queue}"):
            worker_key = member.decode()
            found += [worker_key, f"{worker_key}:executions"]
        owner = redis.get(f"rq:scheduler-lock:{queue}")
        if owner:
            found.append(f"rq:scheduler:{owner.decode()}")
    return found


def forget_rq_side_keys(redis: Redis, keys: list[str]) -> None:
    if keys:
        redis.delete(*keys)
        redis.srem("rq:workers", *[k for k in keys if not k.endswith(":executions")])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def answers(port: int, path: str = "/healthz") -> bool:
    """Whether an HTTP server on the port answers a GET (any status): a gunicorn worker is up, not just the master."""
    try:
        return _exchange(port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode(),
                         timeout=1) > 0
    except (OSError, ValueError, IndexError):
        return False


def group_cpu(pgid: int) -> float:
    """User + system CPU seconds used so far by the live processes of a process group (from /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def redis_cpu(redis: Redis) -> float:
    """CPU seconds the Redis server has used (all its clients: other users of the server count too)."""
    info = redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def stop_process(proc: subprocess.Popen, grace: float = 8.0) -> None:
    """SIGTERM to the child's whole process group (gunicorn's workers, RQ's scheduler), SIGKILL after ``grace``."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:  # the group may outlive its leader (a worker process finishing a request)
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


class Processes:
    """Child processes, each in its own process group, with output in a scratch folder; all stopped on exit."""

    def __init__(self, keep_logs: bool = False):
        self.dir = Path(tempfile.mkdtemp(prefix="connector-bench-"))
        self.keep_logs = keep_logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.dir / f"{name}.log", "wb")
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=str(ROOT))
        log.close()
        self.procs[name] = proc
        return proc

    def python(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        return self.start(name, [sys.executable, *args], env)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode}; its log:\n{self.log(name)[-3000:]}")

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            stop_process(proc)

    def stop_all(self) -> None:
        for name in list(self.procs)[::-1]:
            self.stop(name)

    def __enter__(self) -> "Processes":
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()
        if not self.keep_logs:
            for path in self.dir.glob("*"):
                path.unlink()
            self.dir.rmdir()


def child_env(**extra: str) -> dict[str, str]:
    """The environment for ``connector`` children: this one (secrets set by the generator) plus Redis and Python."""
    env = dict(os.environ, REDIS_URL=REDIS_URL, PYTHONUNBUFFERED="1", **extra)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# --- A light HTTP load generator: threads, raw sockets, requests built in advance --------------------------------


def http_post(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """A complete HTTP/1.1 request as bytes (Connection: close, as gunicorn's sync workers close anyway)."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}",
             "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _exchange(port: int, request: bytes, timeout: float = 30) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the response head")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while length is None or len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return status


class LoadResult:
    def __init__(self, statuses: list[int], latencies: list[float], started: float, finished: float, cpu: float):
        self.statuses, self.latencies, self.started, self.finished, self.cpu = (
            statuses, latencies, started, finished, cpu)

    @property
    def seconds(self) -> float:
        return self.finished - self.started

    @property
    def rate(self) -> float:
        return len(self.statuses) / self.seconds

    def count(self, wanted) -> int:
        return sum(1 for s in self.statuses if wanted(s))

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)


def drive(port: int, requests_: list[bytes], connections: int = 16) -> LoadResult:
    """Send every request once, ``connections`` at a time (each on its own connection, as a sender's pool of
    workers would); returns statuses (-1: connection error) and per-request latencies (connect to last byte)."""
    import threading

    n = len(requests_)
    statuses, latencies = [0] * n, [0.0] * n
    counter = itertools.count()
    finished = [0.0] * connections

    def run(slot: int) -> None:
        while True:
            i = next(counter)
            if i >= n:
                break
            t0 = time.perf_counter()
            try:
                statuses[i] = _exchange(port, requests_[i])
            except (OSError, ValueError, IndexError):
                statuses[i] = -1
            latencies[i] = time.perf_counter() - t0
        finished[slot] = time.perf_counter()

    cpu0 = time.process_time()
    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return LoadResult(statuses, latencies, started, max(finished), time.process_time() - cpu0)


def median_line(name: str, values: list[float], fmt: str = "{:,.0f}") -> str:
    return f"{name}: median {fmt.format(statistics.median(values))} (runs: {', '.join(fmt.format(v) for v in values)})"
