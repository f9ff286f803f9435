"""national: Norway's morning register, ≈ 830,000 marks in 33,200 signed webhooks, first request to last action.

Issue 16's first bar: about 830,000 pupils in grunnskolen, one first-lesson mark each, ≈ 33,200 registers of 25,
with the school year's history behind them, processed end to end (first request → last action written to a local
fake platform) in ≤ 3 minutes on 2 cores, with Redis under 3.5 GB.

**Building the history in minutes.** Generating and judging a year for 830,000 pupils would take hours, so the
benchmark builds one *model* owner (default 20 schools × 20 groups × 25 pupils = 10,000 pupils) the way the other
benchmarks do (``bench.processing.build_template``: the older days written straight into the stored format with the
connector's own encoders, the last school days through the real rules, their actions settled as sent) and then
copies it, server-side, to every school of the country: school *s* is a copy of model school *s mod 20*, pupil by
pupil (same group, same place in it), with the pupil ids and the tenant in the key names changed. The morning's
registers are the model's registers with the same substitutions, so every copied pupil's morning continues its own
history. The morning is the last school day up to today (the door refuses registers dated in the future), so the history
is the school year so far, not a whole year: the calendar the generator knows starts in August 2026. A deeper
history costs memory, not time: the rules read windows of a few weeks (``bench/history.py``: 10 vs 2,000 marks of
history, 0.99×). Values that name a model tenant (a follow-up state's task reference, the task refs) are copied as they
are: they are only read back when a platform updates a task, which no morning does.

**Checked against the rules.** After the run, every school must have had exactly the actions its model school had,
rule by rule (the copies are judged by the real rules on the real path, so a copy that did not continue its model's
history would differ), and every action must be written once.

**Measured** on a private ``redis-server`` with the stock settings (as ``bench/memory.py``), with ``connector web``
(2 gunicorn workers), 2 ``connector worker`` processes, the fake platform and the client on the same 2 cores, as in
``bench/burst.py``. Phases: the door (first request → last answer), the queue's peak, processing (→ queue empty and
no job running), sending (→ outbox empty and the platform's last write). Redis's memory after the history and at
its peak.
Run: ``python -m bench.national`` (setup about 3 minutes, the run a few; ``--schools 100`` for a quick look).
"""
from __future__ import annotations

import argparse
import copy
import threading
import time
from collections import Counter, defaultdict
from datetime import date

from redis import Redis

from bench.burst import signed
from bench.common import (
    Processes,
    answers,
    child_env,
    cores,
    drive,
    free_port,
    group_cpu,
    new_token,
    redis_cpu,
    stock_redis,
    wait_until,
    watch_burst,
)
from bench.fake_platform import FakePlatform, process_cpu
from bench.generator import SchoolOwner
from bench.processing import build_template, outbox_left
from connector.engine.runtime import Runtime

PUPILS_PER_SCHOOL_GROUP = 25


def pupil_offset(school: int, model_schools: int, groups: int) -> int:
    """How far school ``school``'s pupil ids lie from its model school's (ids are ``100000 + index``)."""
    return (school - school % model_schools) * groups * PUPILS_PER_SCHOOL_GROUP


def clone_history(redis: Redis, template: str, token: str, nation: SchoolOwner, model: SchoolOwner) -> int:
    """Copy the model's state to every school of the nation, server-side (``COPY``), renaming tenant and pupils."""
    by_model: dict[str, list[bytes]] = defaultdict(list)
    shared: list[bytes] = []
    for key in redis.scan_iter(match=f"{template}:*", count=10000):
        parts = key.decode().split(":")
        if len(parts) > 2 and parts[1] == "t":
            by_model[parts[2]].append(key)
        else:
            shared.append(key)
    groups = len(model.schools[0].groups)
    copied = 0
    pipe = redis.pipeline(transaction=False)
    for s, school in enumerate(nation.schools):
        model_id = model.schools[s % len(model.schools)].id
        offset = pupil_offset(s, len(model.schools), groups)
        for key in by_model[model_id]:
            parts = key.decode().split(":")
            parts[0], parts[2] = token, school.id
            if len(parts) == 5 and parts[3] in ("pupil", "notices"):
                parts[4] = str(int(parts[4]) + offset)
            pipe.copy(key, ":".join(parts))
            copied += 1
            if copied % 5000 == 0:
                pipe.execute()
    for key in shared:
        pipe.copy(key, token.encode() + key[len(template):])
    pipe.execute()
    return copied


def national_registers(model: SchoolOwner, nation: SchoolOwner, day: date) -> list[tuple[str, dict]]:
    """The model's first-lesson registers of ``day``, once per school of the nation, pupils renamed; in time order."""
    per_model: dict[str, list[dict]] = defaultdict(list)
    for tenant, envelope in model.registers(day, first_lesson_only=True):
        per_model[tenant].append(envelope)
    groups = len(model.schools[0].groups)
    out = []
    for s, school in enumerate(nation.schools):
        offset = pupil_offset(s, len(model.schools), groups)
        for envelope in per_model[model.schools[s % len(model.schools)].id]:
            clone = copy.deepcopy(envelope)
            for mark in clone["data"]["marks"]:
                mark["student_id"] = str(int(mark["student_id"]) + offset)
            out.append((school.id, clone))
    out.sort(key=lambda item: item[1]["timestamp"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=1660, help="schools of 20 groups × 25 pupils (1,660 ≈ Norway)")
    parser.add_argument("--model-schools", type=int, default=20)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--day", help="the morning (default: the last school day up to today; the door refuses "
                                      "registers dated in the future)")
    parser.add_argument("--history-days", type=int, default=0, help="default: every school day of the year before it")
    parser.add_argument("--warm-days", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()
    if args.schools % args.model_schools:
        parser.error("--schools must be a multiple of --model-schools")

    t0 = time.perf_counter()
    model = SchoolOwner(args.model_schools, args.groups, size_spread=0)
    day = date.fromisoformat(args.day) if args.day else max(d for d in model.school_days if d <= date.today())
    args.history_days = args.history_days or model.school_days.index(day)
    nation = SchoolOwner(args.schools, args.groups, size_spread=0)
    registers = national_registers(model, nation, day)
    marks = sum(len(envelope["data"]["marks"]) for _, envelope in registers)
    with stock_redis() as redis:
        template = build_template(model, day, args.history_days, args.warm_days, redis)
        t_model = time.perf_counter()
        token = new_token("national")
        copied = clone_history(redis, template, token, nation, model)
        redis.delete(*list(redis.scan_iter(match=f"{template}*", count=10000)) or ["-"])
        history_bytes = redis.info("memory")["used_memory"]
        t_setup = time.perf_counter()
        print(f"national benchmark on {cores()} cores: {len(registers):,} register webhooks, {marks:,} marks, "
              f"{nation.pupil_count:,} pupils in {len(nation.schools):,} schools; history: {args.history_days} school "
              f"days before {day} (the last {args.warm_days} through the rules) built for a model of "
              f"{model.pupil_count:,} pupils in {t_model - t0:.0f} s, copied to every school ({copied:,} keys) in "
              f"{t_setup - t_model:.0f} s; Redis holds {history_bytes / 1e9:.2f} GB before the morning", flush=True)
        result = run(args, nation, model, registers, redis, token)
    seconds = result["seconds"]
    print(f"  door: {result['door']:.1f} s for {len(registers):,} requests ({len(registers) / result['door']:,.0f} "
          f"req/s; non-202 {result['non_202']});  queue peak {result['peak']:,};  processing done at "
          f"{result['processed']:.1f} s;  last action written at {seconds:.1f} s")
    print(f"  actions written {result['written']:,} ({result['kinds']});  failed jobs {result['failed']};  "
          f"schools whose actions differ from their model's: {result['mismatched']}")
    print(f"  CPU s: web {result['cpu_web']:.0f}, workers {result['cpu_workers']:.0f}, Redis {result['cpu_redis']:.0f}, "
          f"platform {result['cpu_platform']:.0f};  Redis memory peak {result['peak_bytes'] / 1e9:.2f} GB")
    sound = not result["non_202"] and not result["failed"] and not result["mismatched"]
    print(f"first request → last action written: {seconds:.0f} s   target ≤ 180 s  "
          f"{'met' if seconds <= 180 and sound else 'NOT met'};  {marks / seconds:,.0f} marks/s;  Redis peak "
          f"{result['peak_bytes'] / 1e9:.2f} GB   target < 3.5 GB  {'met' if result['peak_bytes'] < 3.5e9 else 'NOT met'}")


def run(args, nation: SchoolOwner, model: SchoolOwner, registers, redis: Redis, token: str) -> dict:
    url = f"redis://127.0.0.1:{redis.connection_pool.connection_kwargs['port']}/0"
    with FakePlatform() as platform, Processes(keep_logs=args.keep_logs) as procs:
        rt = Runtime(nation.config(key_prefix=token, queue_name=token, platform_url=platform.url), redis)
        config = nation.write_config(procs.dir / "connector.yaml", token, token, platform.url)
        env = child_env()
        env["REDIS_URL"] = url
        port = free_port()
        procs.python("web", ["-m", "connector.cli", "web", "--config", str(config), "--bind", f"127.0.0.1:{port}",
                             "--workers", str(args.web_workers)], env)
        workers = [f"worker-{k + 1}" for k in range(args.workers)]
        for name in workers:
            procs.python(name, ["-m", "connector.cli", "worker", "--config", str(config)], env)
        if not wait_until(lambda: procs.check_alive() or (
                answers(port, "/readyz") and redis.scard(f"rq:workers:{token}") >= args.workers), 300, 0.5):
            raise RuntimeError("the web server or the workers did not start")
        requests_ = signed(nation, registers, port, token)
        load: dict = {}
        cpu0 = {name: group_cpu(proc.pid) for name, proc in procs.procs.items()}
        rcpu0, pcpu0 = redis_cpu(redis), process_cpu(platform.proc.pid)
        redis.config_resetstat()
        started = time.time()
        sender = threading.Thread(target=lambda: load.update(result=drive(port, requests_, args.connections)))
        sender.start()
        peak, processed_at, done = watch_burst(redis, token, sender, lambda: outbox_left(rt, nation),
                                               procs.check_alive, args.timeout, interval=0.05)
        processed = processed_at - started
        sender.join()
        stats = platform.stats()
        cpu = {name: group_cpu(proc.pid) - cpu0[name] for name, proc in procs.procs.items()}
        result = load["result"]
        finished = max(done, stats["last_write"] or 0)
        mismatched = compare_with_models(platform, nation, model, len(model.schools[0].groups))
        return {
            "seconds": finished - started, "door": result.finished - result.started, "peak": peak,
            "processed": processed, "non_202": dict(Counter(s for s in result.statuses if s != 202)),
            "written": stats["written"], "kinds": f"{stats['task']} tasks, {stats['alert']} alerts, {stats['note']} notes",
            "failed": redis.zcard(f"rq:failed:{token}") + redis.zcard(f"rq:scheduled:{token}"),
            "mismatched": mismatched, "cpu_web": cpu["web"], "cpu_workers": sum(cpu[w] for w in workers),
            "cpu_redis": redis_cpu(redis) - rcpu0, "cpu_platform": process_cpu(platform.proc.pid) - pcpu0,
            "peak_bytes": redis.info("memory")["used_memory_peak"],
        }


def compare_with_models(platform: FakePlatform, nation: SchoolOwner, model: SchoolOwner, groups: int) -> int:
    """Schools whose actions (kind, rule and pupil's place in the school, counted) differ from their model school's;
    an action written twice counts as a difference too (the platform answers a second write of a ref 409)."""
    per_school: dict[int, Counter] = defaultdict(Counter)
    size = groups * PUPILS_PER_SCHOOL_GROUP
    for tally, count in platform.tally().items():
        kind, rule, student = tally.split("|", 2)
        school, place = divmod(int(student) - 100000, size) if student.isdigit() else (-1, student)
        per_school[school][(kind, rule, place)] += count
    models = len(model.schools)
    differ = sum(1 for s in range(len(nation.schools)) if per_school[s] != per_school[s % models])
    return differ + platform.stats()["conflict"]


if __name__ == "__main__":
    main()
