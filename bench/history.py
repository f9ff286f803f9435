"""history: the cost of evaluating one mark with 10 vs 2,000 marks of a pupil's history (issue target: ≤ 1.2×).

Each pupil's history is written as the connector keeps it (day records of lesson-level absences, spread over the
current and the previous school year); then the same register mark (absent, then corrected to present) is
evaluated many times through ``processing.handle_events`` — the real path from queue to rules to the outbox —
for a pupil with a short and one with a long history. Run: ``python -m bench.history``.
"""
from __future__ import annotations

import argparse
import random
import statistics
from datetime import date

from bench.common import bench_runtime, cores, school_days_back, summary, timed
from connector.engine import routing as processing
from connector.rules.history import encode_day, lesson_key, mark_code

DAY = "2026-11-24"


RECENT_MARKS = 10


def write_history(rt, student: str, marks: int, dense: bool = False, seed: int = 7) -> None:
    """``marks`` lesson absences before ``DAY``, as the connector keeps them.

    The same ``RECENT_MARKS`` fall in the last 30 school days for every pupil (what the rules read); the rest lie
    further back, within the retention. ``dense`` instead spreads all marks over the whole period, window included.
    """
    tenant = rt.config.tenants["demo-skole"]
    calendar = tenant.calendar
    end = calendar.add_school_days(date.fromisoformat(DAY), -1)
    recent_days = school_days_back(calendar, end, 30)
    older_days = school_days_back(calendar, calendar.add_school_days(end, -60), 240)
    rng = random.Random(seed)
    records: dict[str, dict[str, str]] = {}
    for n in range(marks):
        if dense:
            pool = recent_days + older_days
        else:
            pool = recent_days if n < RECENT_MARKS else older_days
        day = rng.choice(pool).isoformat()
        lesson = lesson_key({"id": f"L{n % 8 + 1}"})
        subject = rng.choice(["Norsk", "Matematikk", "Engelsk", "Naturfag", "KRLE", "Kroppsøving"])
        records.setdefault(day, {})[lesson] = mark_code("absent", rng.random() < 0.5,
                                                       {"subject": subject, "start": "08:30", "end": "09:15"})
    key = rt.keys.pupil("demo-skole", student)
    rt.redis.hset(key, mapping={"g": "7A", **{f"d:{d}": encode_day(r) for d, r in records.items()}})


def register(student: str, status: str) -> list[dict]:
    return [{"type": "attendance.register", "timestamp": f"{DAY}T08:00:00+00:00", "date": DAY, "group_id": "7A",
             "lesson": {"id": "L3", "subject": "Matematikk", "start": "10:20", "end": "11:05"},
             "marks": [{"student_id": student, "status": status, "documented": False}]}]


def measure(rt, student: str, repeat: int, warm_up: int = 0) -> list[float]:
    absent, present = register(student, "absent"), register(student, "present")

    def one_mark_each_way():
        processing.handle_events(rt, "demo-skole", "generic", absent)
        processing.handle_events(rt, "demo-skole", "generic", present)

    for _ in range(warm_up):  # scripts loaded, first pattern findings noted
        one_mark_each_way()
    return [s / 2 for s in timed(one_mark_each_way, repeat)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    with bench_runtime() as rt:
        write_history(rt, "short", RECENT_MARKS)
        write_history(rt, "long", 2000)
        write_history(rt, "dense", 2000, dense=True)
        sizes = {s: rt.redis.hlen(rt.keys.pupil("demo-skole", s)) - 1 for s in ("short", "long", "dense")}
        results: dict[str, list[float]] = {"short": [], "long": [], "dense": []}
        for student in results:
            measure(rt, student, 0, warm_up=20)
        for _ in range(50):  # short interleaved rounds, so drift on the machine (others' work) hits all alike
            for student in results:
                results[student] += measure(rt, student, args.repeat // 50)
    median = {s: statistics.median(v) for s, v in results.items()}
    print(f"history benchmark on {cores()} cores (one mark: queue → rules → outbox, real Redis)")
    print(f"  10 marks of history                      ({sizes['short']:3d} days): {summary(results['short'])}")
    print(f"  2,000 marks, same last 30 school days    ({sizes['long']:3d} days): {summary(results['long'])}")
    print(f"  ratio (median, 2,000 / 10): {median['long'] / median['short']:.2f}x   target ≤ 1.2x")
    print(f"  for information, 2,000 marks spread into the window too, absent nearly every day "
          f"({sizes['dense']:3d} days): {summary(results['dense'])} = {median['dense'] / median['short']:.2f}x "
          "(the rules read a bounded window; a fuller window costs more, a longer history does not)")


if __name__ == "__main__":
    main()
