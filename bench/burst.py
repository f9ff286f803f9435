"""burst: a city's morning register, 90,000 marks in 3,600 signed webhooks, from the first request to the last action.

A generated owner of 180 schools × 20 groups × exactly 25 pupils (90,000 pupils) with 40 school days of history
(the last 2 through the rules, see ``bench.processing.build_template``); the morning's first-lesson registers of
2026-11-24, one per group: 3,600 ``attendance.register`` webhooks of 25 marks, each signed as a sender signs it.

The real services run as an operator runs them on a 2-core machine: ``connector web`` (gunicorn, 2 sync workers)
and 2 ``connector worker`` processes, plus the fake platform, all on 127.0.0.1 and the local Redis. The webhooks
are POSTed by 16 concurrent connections while the workers drain the queue. Timed from the first request sent to
the last action written: the door has answered every request, the queue is empty, no job runs, the outbox is empty
(every action the rules decided was written to the fake platform); the due-set scheduler is not needed here.
Printed: total seconds (issue target ≤ 60 s), req/s at the door, marks/s processed, per run and as medians.
Run: ``python -m bench.burst`` (several minutes: the setup writes 90,000 pupils' history once).
"""
from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
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
    forget_rq_side_keys,
    free_port,
    group_cpu,
    http_post,
    new_token,
    redis_cpu,
    rq_side_keys,
    wait_until,
    watch_burst,
)
from bench.fake_platform import FakePlatform, process_cpu
from bench.generator import SchoolOwner
from bench.processing import build_template, outbox_left, prepare
from connector.contract.signatures import sign


def signed(owner: SchoolOwner, registers, port: int, tag: str) -> list[bytes]:
    now = int(time.time())
    secrets = {s.id: owner.secret(s) for s in owner.schools}
    out = []
    for n, (tenant, envelope) in enumerate(registers):
        body = json.dumps(envelope, ensure_ascii=False).encode()
        msg_id = f"msg_{tag}_{n:05d}"
        out.append(http_post(port, f"/webhooks/{tenant}/generic", body, {
            "Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(now),
            "webhook-signature": sign(body, msg_id, now, secrets[tenant])}))
    return out


def run_once(owner: SchoolOwner, template: str, registers, args, redis: Redis, run: int) -> dict:
    token = new_token("burst")
    side: list[str] = []
    try:
        with FakePlatform() as platform, Processes(keep_logs=args.keep_logs) as procs:
            rt = prepare(owner, template, token, platform.url, redis)
            config = owner.write_config(procs.dir / "connector.yaml", token, token, platform.url)
            env = child_env()
            port = free_port()
            procs.python("web", ["-m", "connector.cli", "web", "--config", str(config), "--bind", f"127.0.0.1:{port}",
                                 "--workers", str(args.web_workers)], env)
            workers = [f"worker-{k + 1}" for k in range(args.workers)]
            for name in workers:
                procs.python(name, ["-m", "connector.cli", "worker", "--config", str(config)], env)
            try:
                return measure_run(owner, rt, procs, platform, registers, port, workers, token, args, redis, run)
            finally:  # the keys RQ names by the workers' random names, then the processes
                side = rq_side_keys(redis, [token])
                procs.stop_all()
    finally:
        forget_rq_side_keys(redis, side)
        cleanup_token(redis, token)


def measure_run(owner, rt, procs, platform, registers, port, workers, token, args, redis, run) -> dict:
    """Wait for the services, then send the burst and time it to the last action written."""
    ready = wait_until(lambda: procs.check_alive() or (
        answers(port, "/readyz") and redis.scard(f"rq:workers:{token}") >= args.workers), 90, 0.2)
    if not ready:
        raise RuntimeError("the web server or the workers did not start")
    requests_ = signed(owner, registers, port, f"{token}{run}")
    result: dict = {}
    cpu0 = {name: group_cpu(proc.pid) for name, proc in procs.procs.items()}
    rcpu0, pcpu0 = redis_cpu(redis), process_cpu(platform.proc.pid)
    started = time.time()
    sender = threading.Thread(target=lambda: result.update(load=drive(port, requests_, args.connections)))
    sender.start()
    peak, _, done = watch_burst(redis, token, sender, lambda: outbox_left(rt, owner), procs.check_alive, args.timeout)
    sender.join()
    stats = platform.stats()
    finished = max(done, stats["last_write"] or 0)
    cpu = {name: group_cpu(proc.pid) - cpu0[name] for name, proc in procs.procs.items()}
    load = result["load"]
    failed = redis.zcard(f"rq:failed:{token}") + redis.zcard(f"rq:scheduled:{token}")
    return {"seconds": finished - started, "door_seconds": load.finished - load.started, "load": load,
            "statuses": Counter(load.statuses), "stats": stats, "failed": failed, "peak_queue": peak,
            "cpu_web": cpu["web"], "cpu_workers": sum(cpu[w] for w in workers),
            "cpu_redis": redis_cpu(redis) - rcpu0, "cpu_platform": process_cpu(platform.proc.pid) - pcpu0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--schools", type=int, default=180)
    parser.add_argument("--groups", type=int, default=20, help="groups per school (one register each)")
    parser.add_argument("--day", default="2026-11-24")
    parser.add_argument("--history-days", type=int, default=40)
    parser.add_argument("--warm-days", type=int, default=2, help="of which the last ones go through the rules")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers (connector web's default)")
    parser.add_argument("--workers", type=int, default=2, help="connector worker processes")
    parser.add_argument("--timeout", type=float, default=600, help="give up on a run after this many seconds")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()

    day = date.fromisoformat(args.day)
    setup = time.perf_counter()
    owner = SchoolOwner(args.schools, args.groups, size_spread=0)
    registers = owner.registers(day, first_lesson_only=True)
    marks = sum(len(envelope["data"]["marks"]) for _, envelope in registers)
    redis = Redis.from_url(REDIS_URL)
    template = build_template(owner, day, args.history_days, args.warm_days, redis)
    results = []
    try:
        print(f"burst benchmark on {cores()} cores: {len(registers):,} register webhooks, {marks:,} marks, "
              f"{owner.pupil_count:,} pupils in {len(owner.schools)} schools ({args.history_days} school days of "
              f"history, the last {args.warm_days} through the rules; set up in {time.perf_counter() - setup:.0f} s); "
              f"connector web ({args.web_workers} gunicorn workers) + {args.workers} connector workers + fake "
              f"platform; {args.connections} connections; {args.runs} runs")
        for run in range(args.runs):
            r = run_once(owner, template, registers, args, redis, run)
            results.append(r)
            other = {s: n for s, n in r["statuses"].items() if s != 202}
            print(f"  run {run + 1}: {r['seconds']:6.1f} s first request → last action written;  door: "
                  f"{len(registers) / r['door_seconds']:5,.0f} req/s (all answered in {r['door_seconds']:.1f} s, p50 "
                  f"{r['load'].p(50) * 1e3:.0f} ms, p99 {r['load'].p(99) * 1e3:.0f} ms, non-202 {sum(other.values())}"
                  f"{' ' + str(other) if other else ''});  processed {marks / r['seconds']:6,.0f} marks/s;  "
                  f"queue peak {r['peak_queue']:,};  actions written {r['stats']['written']} "
                  f"({r['stats']['task']} tasks, {r['stats']['alert']} alerts, {r['stats']['note']} notes);  failed "
                  f"jobs {r['failed']};  CPU s: web {r['cpu_web']:.0f}, workers {r['cpu_workers']:.0f}, Redis "
                  f"{r['cpu_redis']:.0f}, platform {r['cpu_platform']:.0f}")
    finally:
        cleanup_token(redis, template)
    total = statistics.median(r["seconds"] for r in results)
    door = statistics.median(len(registers) / r["door_seconds"] for r in results)
    print("medians:")
    print(f"  first request → last action written: {total:.1f} s   target ≤ 60 s  "
          f"{'met' if total <= 60 else 'NOT met'}")
    print(f"  door: {door:,.0f} req/s;  processed: {marks / total:,.0f} marks/s;  non-202 answers, all runs: "
          f"{sum(sum(n for s, n in r['statuses'].items() if s != 202) for r in results)}")


if __name__ == "__main__":
    main()
