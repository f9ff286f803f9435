"""replay: a school year of a 500-pupil school through ``connector replay``'s engine; target under one minute.

The school is the generator's (``SchoolOwner(schools=1, groups_per_school=20)``: 20 groups of ~25 pupils, 190 school
days), written as the JSON Lines of envelopes a school would hand over (gzip), then read and replayed exactly as
``connector replay`` does (``connector.engine.replay``: read, validate, simulated clock, deadlines, shadow records),
and summarised for the report. The replay uses Redis database 12 (``BENCH_REDIS_URL``) under a prefix of its own,
removed when it ends. Writing the file is not timed; reading it is.

    python -m bench.replay [--groups 20] [--days 190] [--runs 1]
"""
from __future__ import annotations

import argparse
import gzip
import json
import statistics
import tempfile
import time
from pathlib import Path

from redis import Redis

from bench.common import REDIS_URL, cores, redis_cpu
from bench.generator import SchoolOwner
from connector.engine import replay, replay_report


def write_events(owner: SchoolOwner, days: int, path: Path) -> int:
    count = 0
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as out:
        for day in owner.school_days[:days]:
            for _, envelope in owner.day_events(day):
                out.write(json.dumps(envelope, ensure_ascii=False, separators=(",", ":")) + "\n")
                count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=20, help="groups of ~25 pupils (default: 20, ~500 pupils)")
    parser.add_argument("--days", type=int, default=190, help="school days from the first (default: the year, 190)")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    owner = SchoolOwner(schools=1, groups_per_school=args.groups, seed=2026)
    config = owner.config()
    tenant = owner.schools[0].id
    redis = Redis.from_url(REDIS_URL)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "year.jsonl.gz"
        envelopes = write_events(owner, args.days, path)
        print(f"{owner.pupil_count} pupils in {args.groups} groups, {min(args.days, len(owner.school_days))} school "
              f"days: {envelopes:,} envelopes ({path.stat().st_size / 1e6:.1f} MB compressed); {cores()} cores")
        seconds = []
        for run in range(args.runs):
            started, cpu, redis_started = time.perf_counter(), time.process_time(), redis_cpu(redis)
            events = replay.read_events(path)
            read = time.perf_counter() - started
            replayed = replay.replay(config, tenant, events, redis)
            summary = replay_report.summarise(replayed)
            replay_report.html(summary)
            seconds.append(time.perf_counter() - started)
            print(f"run {run + 1}: {seconds[-1]:.1f} s wall (reading and validating {read:.1f} s); CPU: this process "
                  f"{time.process_time() - cpu:.1f} s, Redis {redis_cpu(redis) - redis_started:.1f} s; "
                  f"{len(replayed.actions):,} actions, {sum(summary.pupils_per_rule.values()):,} pupil flags")
    print(f"median {statistics.median(seconds):.1f} s (target: under 60 s on 2 cores)")


if __name__ == "__main__":
    main()
