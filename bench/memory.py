"""memory: Redis bytes per pupil after one school year of synthetic history written through the real processing path.

A generated owner (default 2 schools × 10 groups ≈ 500 pupils) lives through every school day of 2026-27 as the
connector would see it, with the runtime's ``FixedClock`` moved along: each morning the scheduler's routines are
put on the due set (``absence.schedule_routines``); the day's notices and lesson registers go one delivery at a time
to ``processing.handle_events`` in time order; every action decided is sent at once with ``outbox.send`` to the
fake platform (so the ledger fills as in production); at the end of the day the deadlines that fell due are fired
with ``processing.fire_deadline`` and their actions sent, as the scheduler's ``run_due`` jobs do. The lessons-held
sets carry a 14-day TTL, the weekly ledger keys and the refs' 13-week keys TTLs of their own, in real time, which a
replayed year does not wait for: the ones past their TTL are removed as it would have removed them.

Then ``MEMORY USAGE <key> SAMPLES 0`` of every key under the benchmark's prefix, by kind, divided by the pupils.
Issue target: ≤ 3,000 B per pupil with Redis's default settings (issue 16; it was ≤ 4 KB), so by default the
benchmark starts a private ``redis-server`` with the stock hash settings (``--shared-redis`` measures on
``BENCH_REDIS_URL`` as it is configured). Not counted (transient, not per pupil's history): RQ jobs while queued, and the
delivery dedupe markers (one per webhook for 7 days), whose steady-state size is estimated and printed beside.
Run: ``python -m bench.memory``.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

from redis import Redis

from bench.common import REDIS_URL, cleanup_token, cores, new_token, stock_redis
from bench.fake_platform import FakePlatform
from bench.generator import SchoolOwner, replay_day
from connector.store import outbox as stored_outbox
from connector.engine.absence import schedule_routines
from connector.contract.terms import OSLO
from connector.engine.clock import FixedClock
from connector.engine.runtime import Runtime

KINDS = (
    (":pupil:", "pupil hashes (days, group, rule states)"),
    (":notices:", "notices (date ranges, reason codes)"),
    (":held:", "lessons held per group-day (14-day TTL)"),
    (":deadlines", "deadlines hash"),
    (":outbox", "outbox"),
    (":ledger", "ledger (external_ref -> remote id)"),
    (":refs", "refs (external_ref -> rule, pupil)"),
    (":due", "due set"),
)


def kind_of(key: str) -> str:
    return next((label for needle, label in KINDS if needle in key), "other")


def expire_held(rt: Runtime, before: str) -> int:
    """Remove the lessons-held sets of days before ``before`` (their TTL would have, in real time)."""
    old = [k for k in rt.redis.scan_iter(match=f"{rt.keys.prefix}:t:*:held:*", count=5000)
           if k.decode().rsplit(":", 1)[1] < before]
    if old:
        rt.redis.delete(*old)
    return len(old)


def expire_by_period(rt: Runtime) -> int:
    """Remove the ledger's weekly keys and the refs' 13-week keys whose TTL would have run out by now (both carry a
    relative TTL, in real time, which a replayed year does not wait for), counted from the end of their period."""
    now = rt.clock.now().timestamp()
    oldest = {"ledger": stored_outbox.LEDGER.current(now) - (stored_outbox.LEDGER.kept + 1),
              "refs": stored_outbox.REFS.current(now) - (stored_outbox.REFS.kept + 1)}
    old = []
    for kind, first_kept in oldest.items():
        for key in rt.redis.scan_iter(match=f"{rt.keys.prefix}:t:*:{kind}:*", count=5000):
            parts = key.decode().split(":")
            if int(parts[parts.index(kind) + 1]) < first_kept:
                old.append(key)
    if old:
        rt.redis.delete(*old)
    return len(old)


def measure(rt: Runtime) -> tuple[dict[str, list[int]], Counter, Counter, Counter]:
    """Bytes per key by kind (``MEMORY USAGE … SAMPLES 0``), the pupil hashes' encodings, and for hashes the entries
    and their payload (field + value bytes), to tell data from Redis's per-entry overhead."""
    sizes: dict[str, list[int]] = defaultdict(list)
    encodings: Counter = Counter()
    entries: Counter = Counter()
    payload: Counter = Counter()
    keys = list(rt.redis.scan_iter(match=f"{rt.keys.prefix}:*", count=5000))
    with rt.redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.memory_usage(key, samples=0)
            pipe.object("encoding", key)
            pipe.type(key)
        replies = pipe.execute()
    for key, size, encoding, type_ in zip(keys, replies[::3], replies[1::3], replies[2::3]):
        kind = kind_of(key.decode())
        sizes[kind].append(int(size or 0))
        if kind.startswith("pupil"):
            encodings[encoding.decode() if isinstance(encoding, bytes) else str(encoding)] += 1
        if type_ == b"hash":
            content = rt.redis.hgetall(key)
            entries[kind] += len(content)
            payload[kind] += sum(len(f) + len(v) for f, v in content.items())
    return sizes, encodings, entries, payload


def marker_bytes(rt: Runtime) -> int:
    """The size of one delivery dedupe marker, written as ``jobs.process_delivery`` writes it."""
    key = rt.keys.delivery("skole-001", "generic", "msg_2K9t3fW1x8ZcQbLr0aYvN5eJ")
    rt.redis.set(key, "1", ex=rt.config.dedupe_ttl_seconds)
    try:
        return int(rt.redis.memory_usage(key, samples=0))
    finally:
        rt.redis.delete(key)


def one_year(owner: SchoolOwner, args, redis: Redis) -> dict:
    token = new_token("memory")
    days = owner.school_days[: args.days] if args.days else owner.school_days
    clock = FixedClock(datetime(days[0].year, days[0].month, days[0].day, 5, tzinfo=timezone.utc))
    totals: Counter = Counter()
    deliveries_by_day: list[int] = []
    started = time.perf_counter()
    try:
        with FakePlatform() as platform:
            rt = Runtime(owner.config(key_prefix=token, queue_name=token, platform_url=platform.url), redis,
                         clock=clock)
            for n, day in enumerate(days):
                clock.set(datetime(day.year, day.month, day.day, 6, tzinfo=OSLO))
                schedule_routines(rt)
                counts = replay_day(rt, owner, day, per_delivery=True, send=True)
                totals.update(counts)
                deliveries_by_day.append(counts["deliveries"])
                expire_held(rt, (day - timedelta(days=14)).isoformat())
                expire_by_period(rt)
                if args.progress and (n + 1) % 20 == 0:
                    print(f"    … {day}: {n + 1} school days, {totals['deliveries']:,} deliveries, "
                          f"{totals['actions']:,} actions ({time.perf_counter() - started:.0f} s)", flush=True)
            stats = platform.stats()
            sizes, encodings, entries, payload = measure(rt)
            marker = marker_bytes(rt)
            pupil_fields = [rt.redis.hlen(rt.keys.pupil(t, p)) for (t, p) in owner.pupils]
    finally:
        cleanup_token(redis, token)
    return {"sizes": sizes, "encodings": encodings, "entries": entries, "payload": payload, "totals": totals, "stats": stats, "marker": marker,
            "deliveries_by_day": deliveries_by_day, "days": len(days), "seconds": time.perf_counter() - started,
            "pupil_fields": pupil_fields}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=2)
    parser.add_argument("--groups", type=int, default=10, help="groups per school")
    parser.add_argument("--days", type=int, default=0, help="only the first N school days (default: the whole year)")
    parser.add_argument("--runs", type=int, default=1, help="the result is deterministic; more runs show it is")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--shared-redis", action="store_true",
                        help="measure on BENCH_REDIS_URL's server with its own settings, not on a private Redis with "
                             "the stock hash settings (the default, so a host's tuning does not move the figure)")
    args = parser.parse_args()
    if args.shared_redis:
        run(args, Redis.from_url(REDIS_URL))
    else:
        with stock_redis() as redis:
            run(args, redis)


def run(args, redis: Redis) -> None:
    owner = SchoolOwner(args.schools, args.groups)
    pupils = owner.pupil_count
    print(f"memory benchmark on {cores()} cores: {pupils:,} pupils in {len(owner.schools)} schools, "
          f"{args.days or len(owner.school_days)} school days of 2026-27 through processing.handle_events, one "
          f"delivery at a time, actions sent to the fake platform, deadlines fired at the end of each day; "
          f"Redis {redis.info('server')['redis_version']}, hash-max-listpack-entries "
          f"{redis.config_get('hash-max-listpack-entries').get('hash-max-listpack-entries')}, "
          f"hash-max-listpack-value {redis.config_get('hash-max-listpack-value').get('hash-max-listpack-value')}")
    per_pupil = []
    for run in range(args.runs):
        r = one_year(owner, args, redis)
        total = sum(sum(v) for v in r["sizes"].values())
        per_pupil.append(total / pupils)
        t = r["totals"]
        print(f"  run {run + 1}: {total / pupils:,.0f} bytes per pupil ({total / 1e6:.2f} MB in "
              f"{sum(len(v) for v in r['sizes'].values()):,} keys) after {t['deliveries']:,} deliveries "
              f"({t['attendance.register']:,} registers, {t['absence.notice']:,} notices), {t['deadlines fired']:,} "
              f"deadlines fired, {t['actions']:,} actions ({r['stats']['task']} tasks, {r['stats']['alert']} alerts, "
              f"{r['stats']['note']} notes written); {r['seconds']:.0f} s")
    print("  actions by rule (last run): " + ", ".join(f"{rule} {n}" for rule, n in sorted(
        r["stats"]["rules"].items(), key=lambda item: -item[1])))
    print("  by kind (last run):")
    sizes = r["sizes"]
    for _, label in (*KINDS, ("", "other")):
        if label in sizes:
            values = sizes[label]
            n = r["entries"].get(label)
            detail = (f"  {n:7,} entries, {r['payload'][label] / n:4.0f} B payload + "
                      f"{(sum(values) - r['payload'][label]) / n:4.0f} B Redis overhead per entry") if n else ""
            print(f"      {label:42s} {sum(values) / pupils:7,.0f} B/pupil  {len(values):6,} keys{detail}")
    fields = sorted(r["pupil_fields"])
    print(f"  pupil hashes: encodings {dict(r['encodings'])}; fields per pupil median {statistics.median(fields):.0f}, "
          f"p90 {fields[int(0.9 * (len(fields) - 1))]}, max {fields[-1]}")
    week = sum(r["deliveries_by_day"][-5:])  # the last school week's deliveries: what 7 days of markers hold
    print(f"  not counted: delivery dedupe markers, {r['marker']} B each, kept 7 days: ≈ {week:,} × {r['marker']} B "
          f"= {week * r['marker'] / pupils:,.0f} B/pupil in steady state (per webhook, not per pupil's history)")
    median = statistics.median(per_pupil)
    if args.days and args.days < len(owner.school_days):
        print(f"median: {median:,.0f} bytes per pupil after {args.days} school days (not a school year: no verdict)")
    else:
        print(f"median: {median:,.0f} bytes per pupil for one school year   target ≤ 3,000 B (issue 16; ≤ 4,096 B "
              f"before)  {'met' if median <= 3000 else 'NOT met'}")


if __name__ == "__main__":
    main()
