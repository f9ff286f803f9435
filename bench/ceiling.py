"""ceiling: the same marks through Redis alone, no Python rules and no RQ, to show how close the workers come.

Issue 16 asks for processing's marks/s "with a measured ceiling beside it: the same marks through the Redis scripts
alone with no Python rules and no RQ". This measures exactly that, on the ``processing`` benchmark's day:

1. **Record.** On a copy of the benchmark's state (``bench.processing.build_template``), each delivery is handled
   by the connector's own job function (``engine.jobs.process_delivery``, actions sent to the fake platform), and
   every Redis round trip it makes is recorded as the bytes sent and the number of replies read: the pupil
   check-out script, the commit transaction, the outbox, the dedupe marker. This part is not timed.
2. **Replay.** The state is copied afresh under the same prefix, and ``--clients`` processes (default 2, one per
   core) send the recorded bytes, delivery by delivery, each round trip waiting for its replies as the job did, on
   raw sockets with hiredis's parser: Redis does the same work (the same scripts, keys and transactions), while the
   clients do almost nothing. Timed: the wall time and Redis's CPU.

Reported: marks/s with the clients on the same 2 cores, Redis's CPU per mark, and **one Redis core's ceiling**
(1 s / Redis CPU per mark): what no number of worker processes on one Redis can pass. A check that the replay ended
in the recorded state (the same keys, the same pupils' hashes) guards against measuring something else. Runs on a
private ``redis-server`` with the stock settings, like ``bench/memory.py``. Run: ``python -m bench.ceiling``.
"""
from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import socket
import statistics
import time
from datetime import date

import hiredis
from redis import Redis
from redis.connection import Connection

from bench.common import cleanup_token, copy_prefix, cores, new_token, redis_cpu, stock_redis
from bench.fake_platform import FakePlatform
from bench.generator import SchoolOwner
from bench.processing import build_template, deliveries_of, marks_in, prepare

Trip = tuple[bytes, int]  # the bytes of one round trip and how many replies the job read for it


class Recorder:
    """Every round trip on redis-py's connections while active: the packed bytes and the replies read after them."""

    def __init__(self):
        self.trips: list[list] = []
        self.send, self.read = Connection.send_packed_command, Connection.read_response

    def __enter__(self) -> "Recorder":
        trips, send, read = self.trips, self.send, self.read

        def sending(conn, command, check_health=True):
            data = b"".join(bytes(part) for part in command) if isinstance(command, list) else bytes(command)
            trips.append([data, 0])
            return send(conn, command, check_health)

        def reading(conn, *args, **kwargs):
            if trips:
                trips[-1][1] += 1
            return read(conn, *args, **kwargs)

        Connection.send_packed_command, Connection.read_response = sending, reading
        return self

    def __exit__(self, *exc) -> None:
        Connection.send_packed_command, Connection.read_response = self.send, self.read


def record(owner: SchoolOwner, template: str, token: str, deliveries, redis: Redis) -> list[list[Trip]]:
    """Each delivery's round trips, as the connector's job function makes them (not timed)."""
    from connector.engine import jobs, runtime

    with FakePlatform() as platform:
        rt = prepare(owner, template, token, platform.url, redis)
        runtime.install(rt)
        try:
            per_delivery = []
            for n, (tenant, events) in enumerate(deliveries):
                with Recorder() as recorder:
                    jobs.process_delivery(tenant, "generic", rt.keys.delivery(tenant, "generic", f"{token}-{n}"),
                                          events)
                per_delivery.append([(data, replies) for data, replies in recorder.trips])
        finally:
            runtime.install(None)
    return per_delivery


def replay(port: int, trips: list[list[Trip]], start, done) -> None:
    """One client: each recorded round trip sent as it was, its replies read before the next (a child process)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = hiredis.Reader()
    start.wait()
    for delivery in trips:
        for data, replies in delivery:
            sock.sendall(data)
            for _ in range(replies):
                reply = reader.gets()
                while reply is False:
                    reader.feed(sock.recv(65536))
                    reply = reader.gets()
    done.put(time.perf_counter())
    sock.close()


def state_digest(redis: Redis, token: str) -> str:
    """The prefix's keys and every hash's content, as one digest (the pupils, the outbox, the ledgers)."""
    digest = hashlib.sha256()
    for key in sorted(redis.scan_iter(match=f"{token}:*", count=10000)):
        kind = redis.type(key)
        digest.update(key + b"=" + kind)
        if kind == b"hash":
            digest.update(repr(sorted(redis.hgetall(key).items())).encode())
    return digest.hexdigest()


def run_once(owner, template, deliveries, recorded, clients: int, redis: Redis, token: str) -> dict:
    cleanup_token(redis, token)
    copy_prefix(redis, template, token)
    shares = [recorded[k::clients] for k in range(clients)]
    port = redis.connection_pool.connection_kwargs["port"]
    context = multiprocessing.get_context("fork")
    start, done = context.Event(), context.Queue()
    procs = [context.Process(target=replay, args=(port, share, start, done)) for share in shares]
    for proc in procs:
        proc.start()
    time.sleep(0.5)  # every client connected and waiting
    cpu0, started = redis_cpu(redis), time.perf_counter()
    start.set()
    finished = max(done.get(timeout=600) for _ in procs)
    cpu = redis_cpu(redis) - cpu0
    for proc in procs:
        proc.join()
    return {"seconds": finished - started, "redis_cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=2400)
    parser.add_argument("--clients", type=int, default=2, help="replaying processes (default 2, for 2 cores)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--schools", type=int, default=20)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--day", default="2026-11-24")
    parser.add_argument("--history-days", type=int, default=40)
    parser.add_argument("--warm-days", type=int, default=5)
    args = parser.parse_args()

    day = date.fromisoformat(args.day)
    owner = SchoolOwner(args.schools, args.groups)
    deliveries = deliveries_of(owner, day, args.deliveries)
    marks = marks_in(deliveries)
    with stock_redis() as redis:
        template = build_template(owner, day, args.history_days, args.warm_days, redis)
        token = new_token("ceil")
        recorded = record(owner, template, token, deliveries, redis)
        expected = state_digest(redis, token)
        trips = sum(len(d) for d in recorded)
        sent = sum(len(data) for d in recorded for data, _ in d)
        print(f"ceiling benchmark on {cores()} cores: the processing benchmark's {len(deliveries):,} deliveries "
              f"({marks:,} marks) of {day}, recorded as the job sends them: {trips / len(deliveries):.1f} round trips "
              f"and {sent / len(deliveries):,.0f} bytes per delivery; replayed by {args.clients} client processes "
              f"on a private stock redis-server, {args.runs} runs")
        rates, per_mark = [], []
        for run in range(args.runs):
            result = run_once(owner, template, deliveries, recorded, args.clients, redis, token)
            same = state_digest(redis, token) == expected
            rates.append(marks / result["seconds"])
            per_mark.append(result["redis_cpu"] / marks * 1e6)
            print(f"  run {run + 1}: {result['seconds']:5.2f} s  {rates[-1]:8,.0f} marks/s;  Redis CPU "
                  f"{per_mark[-1]:5.1f} µs a mark;  state as recorded: {'yes' if same else 'NO'}")
            if not same:
                raise SystemExit("the replay did not end in the recorded state: the figure would mean nothing")
        cleanup_token(redis, token)
        cleanup_token(redis, template)
    rate, cost = statistics.median(rates), statistics.median(per_mark)
    print(f"medians: {rate:,.0f} marks/s through Redis alone with {args.clients} clients on these cores;  Redis "
          f"{cost:.1f} µs CPU a mark, so one Redis core carries at most {1e6 / cost:,.0f} marks/s")


if __name__ == "__main__":
    main()
