"""ingest: signed attendance.register webhooks through the real web server vs a bare Flask endpoint with one RQ enqueue.

Both run under gunicorn with the same settings (``connector web``'s ``web_options``: 2 gevent workers, no preload), on free ports on
127.0.0.1 and the local Redis. The connector is the real ``connector web`` process with a generated owner's
configuration; the baseline is a Flask app whose POST does nothing but one RQ enqueue of the raw body (same queue
class and serializer as the connector). Both get the same requests: realistic registers of ~25 marks from the
generator, each with its own ``webhook-id`` and a Standard Webhooks signature made as a sender makes it, sent by
16 concurrent connections (a light raw-socket client; one connection per request, as a sync gunicorn closed after
each). Printed per run and as medians: req/s, p50 and p99 latency, and the ratio connector / baseline; every
connector answer must be 202 and every 202 a job in Redis (checked and printed). Issue targets: ≥ 0.8× the
baseline, p99 ≤ 50 ms at 16 connections. Run: ``python -m bench.ingest``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from collections import Counter
from datetime import date

from redis import Redis

from bench.common import (
    REDIS_URL,
    Processes,
    answers,
    child_env,
    cleanup_token,
    cores,
    drive,
    free_port,
    group_cpu,
    http_post,
    new_token,
    redis_cpu,
    wait_until,
)
from bench.generator import SchoolOwner
from connector.contract.signatures import sign

DAYS = ("2026-11-23", "2026-11-24", "2026-11-25")


# --- the baseline: bare Flask + one RQ enqueue, served the way ``connector web`` serves the connector ------------


def bare_app(queue_name: str):
    from flask import Flask, jsonify, request
    from rq import Queue
    from rq.serializers import JSONSerializer

    app = Flask(__name__)
    redis = Redis.from_url(os.environ.get("REDIS_URL") or REDIS_URL)  # as connector.store.connection.connect() does
    queue = Queue(queue_name, connection=redis, serializer=JSONSerializer)

    @app.post("/webhooks/<tenant>/<adapter>")
    def receive(tenant: str, adapter: str):
        queue.enqueue_call("bench.ingest.never_run", args=(tenant, adapter, request.get_data().decode()),
                           job_id=f"{queue_name}-{uuid.uuid4().hex}", result_ttl=0)  # an id the cleanup finds
        return jsonify({"accepted": 1}), 202

    return app


def never_run(*args) -> None:  # the baseline's job function: nothing drains the baseline's queue
    raise RuntimeError("not meant to run")


def serve_bare(bind: str, workers: int, queue_name: str) -> None:
    """gunicorn with exactly the options ``connector web`` sets (``connector.cli.web_options``)."""
    from gunicorn.app.base import BaseApplication

    from connector.cli import web_options

    class BareWeb(BaseApplication):
        def load_config(self):
            for key, value in web_options(bind, workers, self.cfg.settings).items():
                self.cfg.set(key, value)

        def load(self):
            return bare_app(queue_name)

    BareWeb(prog="bare web").run()


# --- requests ----------------------------------------------------------------------------------------------------


def signed_requests(owner: SchoolOwner, bodies: list[tuple[str, bytes]], port: int, count: int, tag: str) -> list[bytes]:
    """``count`` requests cycling over ``bodies``, each with a fresh webhook-id and a signature made now."""
    secrets = {s.id: owner.secret(s) for s in owner.schools}
    now = int(time.time())
    out = []
    for n in range(count):
        tenant, body = bodies[n % len(bodies)]
        msg_id = f"msg_{tag}_{n:07d}"
        out.append(http_post(port, f"/webhooks/{tenant}/generic", body, {
            "Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(now),
            "webhook-signature": sign(body, msg_id, now, secrets[tenant]),
        }))
    return out


def register_bodies(owner: SchoolOwner) -> list[tuple[str, bytes]]:
    bodies = []
    for day in DAYS:
        for tenant, envelope in owner.registers(date.fromisoformat(day)):
            bodies.append((tenant, json.dumps(envelope, ensure_ascii=False).encode()))
    return bodies


# --- --profile: where a request's time goes, in-process, both apps called as WSGI apps with the same requests ------


def wsgi_environ(request: bytes) -> dict:
    import io
    import sys

    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    method, path, _ = lines[0].split(" ")
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
               "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
               "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
               "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False}
    for line in lines[1:]:
        name, _, value = line.partition(": ")
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    return environ


def call(app, environ: dict) -> str:
    status = []
    for _ in app(environ, lambda s, h, e=None: status.append(s)):
        pass
    return status[0]


def cpu_per_call(fn, items) -> float:
    """CPU seconds per call of ``fn`` over ``items`` (after a few calls to warm up)."""
    for item in items[:20]:
        fn(item)
    started = time.process_time()
    for item in items:
        fn(item)
    return (time.process_time() - started) / len(items)


def profile(owner: SchoolOwner, count: int) -> None:
    """Where a request's CPU time goes: both apps called as WSGI apps in this process with the same requests; then
    the connector's steps one by one (each timed alone, no profiler), Redis round trips per request, and the
    functions with the most own time under cProfile."""
    import cProfile
    import io
    import pstats

    from redis.connection import Connection

    from connector import create_app
    from connector.engine.runtime import Runtime
    from connector.engine.rq_compat import enqueue_delivery
    from connector.contract.events import load_event
    from connector.contract.signatures import verify

    token = new_token("ingestprof")
    redis = Redis.from_url(REDIS_URL)
    trips: list[str] = []  # one entry per write to Redis (a pipeline is one), named by its first command
    original = Connection.send_packed_command

    def counting(self, command, check_health=True):
        first = bytes((command[0] if isinstance(command, list) else command)[:120]).split(b"\r\n")
        trips.append(first[2].decode() if len(first) > 2 else "?")
        return original(self, command, check_health)

    Connection.send_packed_command = counting
    try:
        rt = Runtime(owner.config(key_prefix=token, queue_name=token), redis)
        apps = {"baseline": bare_app(f"{token}-bare"), "connector": create_app(runtime=rt)}
        bodies = register_bodies(owner)
        print(f"in-process profile: {count:,} signed registers per app, the WSGI app called directly (no gunicorn, no "
              "client sockets); CPU time of this process")
        whole = {}
        for name, app in apps.items():
            environs = [wsgi_environ(r) for r in signed_requests(owner, bodies, 8000, count, f"{token}{name}")]
            for environ in environs[:50]:
                assert call(app, environ).startswith("202"), name
            trips.clear()
            whole[name] = cpu_per_call(lambda e, app=app: call(app, e), environs[50:])
            per = Counter(trips)
            n = len(environs) - 50 + 20
            print(f"  {name:9s}: {whole[name] * 1e6:6,.0f} µs per request; Redis round trips per request: "
                  f"{len(trips) / n:.1f} ({', '.join(f'{c} {k / n:.1f}' for c, k in per.most_common())})")
        print(f"  difference: {(whole['connector'] - whole['baseline']) * 1e6:,.0f} µs per request")

        secrets = {s.id: owner.secret(s) for s in owner.schools}
        now = int(time.time())
        signed = []
        for n, (tenant, body) in enumerate(bodies[:count]):
            msg_id = f"msg_{token}_step_{n}"
            signed.append((tenant, body, {"webhook-id": msg_id, "webhook-timestamp": str(now),
                                          "webhook-signature": sign(body, msg_id, now, secrets[tenant])}))
        envelopes = [json.loads(body) for _, body, _ in signed]
        events = [(tenant, [load_event(e)]) for (tenant, _, _), e in zip(signed, envelopes)]
        counter = iter(range(10 ** 9))
        from rq import Queue
        from rq.serializers import JSONSerializer
        queue = Queue(f"{token}-bare", connection=redis, serializer=JSONSerializer)
        steps = [
            ("verify signature (standardwebhooks)", lambda x: verify(x[1], x[2], [secrets[x[0]]]), signed),
            ("json.loads of the body", lambda x: json.loads(x[1]), signed),
            ("load_event: quick checks (marshmallow if odd)", lambda e: load_event(e), envelopes),
            ("enqueue_delivery: one script, marker + job", lambda x: enqueue_delivery(
                rt, x[0], "generic", f"step-{next(counter)}", x[1]), events),
            ("  for scale: one bare round trip (EXISTS)", lambda x: redis.exists(f"{token}:delivery:x"), events),
            ("baseline: enqueue_call of the body", lambda x: queue.enqueue_call(
                "bench.ingest.never_run", args=(x[0], "generic", x[1].decode()),
                job_id=f"{token}-bare-{uuid.uuid4().hex}", result_ttl=0), signed),
        ]
        print("  the connector's steps, each timed alone (µs per request, share of the connector's request):")
        for label, fn, items in steps:
            took = cpu_per_call(fn, items)
            print(f"      {label:44s} {took * 1e6:6,.0f} µs  {took / whole['connector']:5.1%}")

        profiler = cProfile.Profile(time.process_time)
        environs = [wsgi_environ(r) for r in signed_requests(owner, bodies, 8000, count // 2, f"{token}prof")]
        profiler.enable()
        for environ in environs:
            call(apps["connector"], environ)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
        print("  connector, the 12 functions with the most own CPU time under cProfile (inflates many small calls):")
        print("\n".join("    " + line for line in out.getvalue().splitlines()
                        if line.strip() and (line.lstrip()[0].isdigit() or "ncalls" in line)))
    finally:
        Connection.send_packed_command = original
        cleanup_token(redis, token)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000, help="requests per server per run (default 10,000)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers for both (connector web's default)")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--schools", type=int, default=10)
    parser.add_argument("--groups", type=int, default=20, help="groups per school")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="instead: profile one request of each app in-process and print where the time goes")
    parser.add_argument("--serve-bare", metavar="BIND", help=argparse.SUPPRESS)
    parser.add_argument("--queue", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare, args.workers, args.queue)
        return

    owner = SchoolOwner(args.schools, args.groups)
    if args.profile:
        profile(owner, min(args.requests, 3000))
        return
    bodies = register_bodies(owner)
    sizes = [len(b) for _, b in bodies]
    marks = statistics.mean(len(json.loads(b)["data"]["marks"]) for _, b in bodies[:500])
    token = new_token("ingest")
    redis = Redis.from_url(REDIS_URL)
    results: dict[str, list] = {"connector": [], "baseline": []}
    cpu_per_request: dict[str, list[float]] = {"connector": [], "baseline": []}
    with Processes(keep_logs=args.keep_logs) as procs:
        try:
            config = owner.write_config(procs.dir / "connector.yaml", key_prefix=token, queue_name=token)
            env = child_env()
            ports = {"connector": free_port(), "baseline": free_port()}
            procs.python("connector-web", ["-m", "connector.cli", "web", "--config", str(config), "--bind",
                                           f"127.0.0.1:{ports['connector']}", "--workers", str(args.workers)], env)
            procs.python("baseline-web", ["-m", "bench.ingest", "--serve-bare", f"127.0.0.1:{ports['baseline']}",
                                          "--workers", str(args.workers), "--queue", f"{token}-bare"], env)
            for name, port in ports.items():  # up: a gunicorn worker answers (any status)
                if not wait_until(lambda port=port: procs.check_alive() or answers(port), timeout=60, interval=0.2):
                    raise RuntimeError(f"{name} did not start answering")
            queues = {"connector": f"rq:queue:{token}", "baseline": f"rq:queue:{token}-bare"}
            print(f"ingest benchmark on {cores()} cores: {args.requests:,} signed attendance.register webhooks per "
                  f"server per run ({marks:.1f} marks, {statistics.median(sizes):,.0f} bytes each, from "
                  f"{len(owner.schools)} schools), {args.connections} connections, gunicorn {args.workers} gevent "
                  f"workers each; {args.runs} runs, interleaved")
            for run in range(args.runs):
                order = ["baseline", "connector"] if run % 2 == 0 else ["connector", "baseline"]
                for name in order:
                    port = ports[name]
                    warm = signed_requests(owner, bodies, port, args.warmup, f"{token}w{run}{name[0]}")
                    drive(port, warm, args.connections)
                    batch = signed_requests(owner, bodies, port, args.requests, f"{token}r{run}{name[0]}")
                    queued_before = redis.llen(queues[name])
                    server = procs.procs[f"{name}-web"].pid
                    cpu0, rcpu0 = group_cpu(server), redis_cpu(redis)
                    result = drive(port, batch, args.connections)
                    cpu, rcpu = group_cpu(server) - cpu0, redis_cpu(redis) - rcpu0
                    cpu_per_request[name].append(cpu / len(batch))
                    queued = redis.llen(queues[name]) - queued_before
                    statuses = Counter(result.statuses)
                    results[name].append(result)
                    other = {s: n for s, n in statuses.items() if s != 202}
                    print(f"  run {run + 1} {name:9s}: {result.rate:7,.0f} req/s  p50 {result.p(50) * 1e3:5.1f} ms  "
                          f"p99 {result.p(99) * 1e3:5.1f} ms  202: {statuses[202]:,}  non-202: "
                          f"{sum(other.values())} {dict(other) if other else ''}  jobs queued: {queued:,}  "
                          f"CPU per request: server {cpu / len(batch) * 1e6:,.0f} µs, Redis "
                          f"{rcpu / len(batch) * 1e6:,.0f} µs, client {result.cpu / len(batch) * 1e6:,.0f} µs")
                    if name == "connector" and queued != statuses[202]:
                        print(f"  !! {statuses[202]} answered 202 but {queued} jobs in the queue")
                    cleanup_token(redis, token)  # drop the queued jobs between runs (no worker drains them)
        finally:
            procs.stop_all()
            cleanup_token(redis, token)
    med = {name: {"rate": statistics.median(r.rate for r in rs), "p50": statistics.median(r.p(50) for r in rs),
                  "p99": statistics.median(r.p(99) for r in rs)} for name, rs in results.items()}
    non202 = sum(r.count(lambda s: s != 202) for r in results["connector"])
    ratio = med["connector"]["rate"] / med["baseline"]["rate"]
    print("medians:")
    for name in ("baseline", "connector"):
        m = med[name]
        print(f"  {name:9s}: {m['rate']:7,.0f} req/s  p50 {m['p50'] * 1e3:5.1f} ms  p99 {m['p99'] * 1e3:5.1f} ms  "
              f"gunicorn CPU {statistics.median(cpu_per_request[name]) * 1e6:,.0f} µs per request")
    print(f"  ratio connector / baseline: {ratio:.2f}x   target ≥ 0.8x  {'met' if ratio >= 0.8 else 'NOT met'}")
    print(f"  connector p99: {med['connector']['p99'] * 1e3:.1f} ms   target ≤ 50 ms  "
          f"{'met' if med['connector']['p99'] <= 0.050 else 'NOT met'}")
    print(f"  connector answers other than 202, all runs: {non202}")


if __name__ == "__main__":
    main()
