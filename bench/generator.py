"""generator: a deterministic synthetic school owner, for every benchmark that needs schools, pupils and events.

``SchoolOwner(schools=N, groups_per_school=G, seed=S)`` builds N schools of G groups of ~25 pupils, each group with
a weekly timetable (5 or 6 lessons a day with subjects and clock times), and gives every pupil a behaviour profile:

* ``present``   mostly present: a short illness now and then (1-3 days), an odd late arrival or dentist's hour;
* ``sporadic``  also misses single lessons here and there, mostly without a notice;
* ``weekday``   is often away on one weekday (Mondays, say), guardians report it late or not at all;
* ``trend``     absence that grows through the year (whole days and single lessons);
* ``long_term`` one long absence (3-9 weeks) covered by a medical notice, often late.

From these it produces, for any school day of the 2026-27 calendar, the contract's ``attendance.register``
envelopes (one per group and lesson, all pupils of the group marked) and the guardians' ``absence.notice``
envelopes arriving that day: before the first lesson (the marks are then ``documented``), some school days late,
or never. Everything follows from the seed: the same arguments give byte-identical events, and any day can be
generated on its own (no state is carried from day to day), so a city of 90,000 pupils costs one pass per day.

``owner.config(...)`` is a ``Config`` with one tenant per school (the example calendar, a generic adapter aimed at
the fake platform, secrets in environment variables set in this process, a directory with contact teachers);
``owner.write_config(...)`` writes the same as YAML for the ``connector`` processes a benchmark starts.

Run ``python -m bench.generator`` to print a summary of a day and a year (and to check every event against the
contract's schemas).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import yaml

from connector.store.pupils import stored_mapping as stored_pupil_fields
from connector.contract.terms import OSLO
from connector.config.schema import Config, config_from_dict
from connector.rules.calendar import SchoolCalendar
from connector.rules.history import encode_day, lesson_key, mark_code, notice_key
from connector.contract.events import EVENT_SCHEMAS, load_event

CALENDAR_FILE = Path(__file__).resolve().parents[1] / "connector" / "example" / "calendar-2026-27.yaml"
DEFAULT_PLATFORM = "http://127.0.0.1:8099/api"
API_TOKEN_VAR = "BENCH_API_TOKEN"

PROFILES = (("present", 0.78), ("sporadic", 0.10), ("weekday", 0.05), ("trend", 0.05), ("long_term", 0.02))

SUBJECTS = {
    "small": ["Norsk", "Norsk", "Matematikk", "Matematikk", "Engelsk", "Naturfag", "Samfunnsfag", "KRLE",
              "Kunst og håndverk", "Musikk", "Kroppsøving", "Mat og helse"],
    "middle": ["Norsk", "Norsk", "Matematikk", "Matematikk", "Engelsk", "Engelsk", "Naturfag", "Samfunnsfag", "KRLE",
               "Kunst og håndverk", "Musikk", "Kroppsøving", "Mat og helse"],
    "lower_secondary": ["Norsk", "Norsk", "Matematikk", "Matematikk", "Engelsk", "Naturfag", "Naturfag",
                        "Samfunnsfag", "KRLE", "Kroppsøving", "Kunst og håndverk", "Musikk", "Spansk",
                        "Valgfag", "Mat og helse"],
}
REASONS = {  # a notice's reason is free text; it travels in the job only
    "illness": ["Syk", "Feber og vondt i halsen", "Omgangssyke", "Forkjølet, blir hjemme i dag"],
    "medical": ["Tannlege", "Legetime", "Sykehusinnleggelse", "Fysioterapi"],
    "family": ["Begravelse i familien", "Familiebesøk", "Reise"],
    "other": ["Annet", "Kommer senere i dag"],
}


@dataclass(frozen=True, slots=True)
class Lesson:
    slot: int  # 1-based position in the day
    subject: str
    start: str  # HH:MM, school's local time
    end: str


@dataclass(frozen=True, slots=True)
class Pupil:
    id: str
    index: int  # position in the whole owner, for the seeds
    school: str  # tenant id
    group: str
    profile: str


@dataclass(frozen=True, slots=True)
class Group:
    school: str
    id: str  # "7A": unique within its school
    index: int  # position in the whole owner
    grade: int
    pupils: tuple[Pupil, ...]
    week: tuple[tuple[Lesson, ...], ...]  # Monday..Friday
    contact_teacher: str


@dataclass(frozen=True, slots=True)
class School:
    id: str
    name: str
    number: int
    groups: tuple[Group, ...]


@dataclass(frozen=True, slots=True)
class Episode:
    """Whole days away: a run of school days from ``start`` (index into the school days)."""

    start: int
    length: int
    kind: str  # illness, weekday, trend, long_term
    reason_code: str
    notice_delay: int | None  # school days after ``start`` the notice arrives; 0: before the first lesson; None: never


def _mix(*parts: int) -> int:
    """A stable 64-bit seed from integers (no hashing of strings: that is salted per process): FNV-style
    combination, then the splitmix64 finaliser."""
    x = 0xCBF29CE484222325
    for p in parts:
        x = ((x ^ p) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def _rng(*parts: int) -> random.Random:
    return random.Random(_mix(*parts))


def load_calendar() -> SchoolCalendar:
    return SchoolCalendar.from_mapping([yaml.safe_load(CALENDAR_FILE.read_text(encoding="utf-8"))])


class SchoolOwner:
    """N schools × groups × pupils with timetables and behaviour; events for any school day, all from ``seed``."""

    def __init__(self, schools: int = 4, groups_per_school: int = 10, pupils_per_group: int = 25, seed: int = 2026,
                 tenant_prefix: str = "skole", size_spread: int = 2):
        self.seed = seed
        self.calendar = load_calendar()
        year = self.calendar.years[0]
        self.school_days: list[date] = self.calendar.school_days(year.first_day, year.last_day)
        self._day_index = {d: i for i, d in enumerate(self.school_days)}
        self.schools: list[School] = []
        self.pupils: dict[tuple[str, str], Pupil] = {}
        weights = [w for _, w in PROFILES]
        names = [p for p, _ in PROFILES]
        group_index = pupil_index = 0
        for s in range(schools):
            tenant = f"{tenant_prefix}-{s + 1:03d}"
            rng = _rng(seed, 1, s)
            groups = []
            for g in range(groups_per_school):
                grade = 1 + (g * 10) // max(groups_per_school, 1) if groups_per_school >= 10 else 1 + (s + g * 3) % 10
                letter = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[sum(1 for x in groups if x.grade == grade)]
                group_id = f"{grade}{letter}"
                size = pupils_per_group + rng.randint(-size_spread, size_spread)  # ~25 (exactly, with spread 0)
                pupils = []
                for _ in range(size):
                    prng = _rng(seed, 2, pupil_index)
                    pupil = Pupil(id=str(100000 + pupil_index), index=pupil_index, school=tenant, group=group_id,
                                  profile=prng.choices(names, weights)[0])
                    pupils.append(pupil)
                    self.pupils[(tenant, pupil.id)] = pupil
                    pupil_index += 1
                groups.append(Group(
                    school=tenant, id=group_id, index=group_index, grade=grade, pupils=tuple(pupils),
                    week=self._timetable(grade, _rng(seed, 3, group_index)),
                    contact_teacher=f"u-{tenant}-{group_id.lower()}-kontakt",
                ))
                group_index += 1
            self.schools.append(School(id=tenant, name=f"Bench skole {s + 1}", number=s + 1, groups=tuple(groups)))
        self.groups: list[Group] = [g for school in self.schools for g in school.groups]
        self._group_count = len(self.groups)

    # --- structure -------------------------------------------------------------------------------------------------

    @staticmethod
    def _timetable(grade: int, rng: random.Random) -> tuple[tuple[Lesson, ...], ...]:
        stage = "small" if grade <= 4 else "middle" if grade <= 7 else "lower_secondary"
        per_day = 5 if grade <= 4 else 6
        minutes = 45 if grade <= 7 else 60
        week = []
        for weekday in range(5):
            day_subjects = rng.sample(SUBJECTS[stage], k=min(per_day, len(SUBJECTS[stage])))
            lessons, clock = [], 8 * 60 + 30
            for slot in range(1, per_day + 1):
                start, end = clock, clock + minutes
                lessons.append(Lesson(slot, day_subjects[slot - 1], f"{start // 60:02d}:{start % 60:02d}",
                                      f"{end // 60:02d}:{end % 60:02d}"))
                clock = end + (30 if slot == 3 else 10)  # lunch after the third lesson
            week.append(tuple(lessons))
        return tuple(week)

    @property
    def pupil_count(self) -> int:
        return len(self.pupils)

    def secret(self, school: School) -> str:
        raw = hashlib.sha256(f"bench-webhook-secret:{self.seed}:{school.id}".encode()).digest()[:24]
        return "whsec_" + base64.b64encode(raw).decode()

    @staticmethod
    def secret_var(school: School) -> str:
        return f"BENCH_WEBHOOK_SECRET_{school.number:03d}"

    def secret_env(self) -> dict[str, str]:
        """The environment variables the configuration's secret references name (webhook secrets, API token)."""
        env = {self.secret_var(s): self.secret(s) for s in self.schools}
        env[API_TOKEN_VAR] = f"bench-api-token-{self.seed}"
        return env

    def school(self, tenant: str) -> School:
        return self.schools[int(tenant.rsplit("-", 1)[1]) - 1]

    def config_dict(self, key_prefix: str = "connector", queue_name: str = "connector",
                    platform_url: str = DEFAULT_PLATFORM) -> dict[str, Any]:
        tenants = {}
        for school in self.schools:
            tenants[school.id] = {
                "name": school.name,
                "language": "nb",
                "calendar": [{"file": str(CALENDAR_FILE)}],
                "adapters": {"generic": {
                    "type": "generic",
                    "webhook_secrets": [{"env": self.secret_var(school)}],
                    "base_url": platform_url,
                    "api_token": {"env": API_TOKEN_VAR},
                    "timeout_seconds": 10,
                }},
                "directory": {
                    "roles": {"principal": f"u-{school.id}-rektor", "nearest_leader": f"u-{school.id}-avdleder",
                              "resource_person": f"u-{school.id}-ressurs"},
                    "groups": {g.id: {"contact_teacher": g.contact_teacher} for g in school.groups},
                },
            }
        return {"key_prefix": key_prefix, "queue_name": queue_name, "tenants": tenants}

    def config(self, key_prefix: str = "connector", queue_name: str = "connector",
               platform_url: str = DEFAULT_PLATFORM) -> Config:
        """The configuration, validated as the connector validates it; sets the secrets' variables in this process."""
        os.environ.update(self.secret_env())
        return config_from_dict(self.config_dict(key_prefix, queue_name, platform_url))

    def write_config(self, path: Path, key_prefix: str, queue_name: str, platform_url: str = DEFAULT_PLATFORM) -> Path:
        """The configuration as a YAML file for child processes; sets the secrets' variables in this process, whose
        environment the children inherit."""
        os.environ.update(self.secret_env())
        path.write_text(yaml.safe_dump(self.config_dict(key_prefix, queue_name, platform_url), sort_keys=False),
                        encoding="utf-8")
        return path

    # --- behaviour ------------------------------------------------------------------------------------------------

    def day_index(self, day: date) -> int:
        try:
            return self._day_index[day]
        except KeyError:
            raise ValueError(f"{day} is not a school day of the 2026-27 calendar") from None

    @lru_cache(maxsize=1 << 18)
    def _long_term(self, pupil_index: int) -> Episode:
        rng = _rng(self.seed, 4, pupil_index)
        n = len(self.school_days)
        length = rng.randint(15, 45)
        start = rng.randint(15, max(n - length - 5, 16))
        delay = rng.choices([0, 1, 2, 3, None], [0.35, 0.25, 0.2, 0.1, 0.1])[0]
        return Episode(start, length, "long_term", "medical", delay)

    @lru_cache(maxsize=1 << 20)
    def _starting(self, pupil_index: int, profile: str, i: int) -> Episode | None:
        """The episode of whole days that begins on school day ``i``, if one does."""
        if i < 0 or i >= len(self.school_days):
            return None
        h = _mix(self.seed, 5, pupil_index, i)
        u = h / 2 ** 64
        if u >= 0.012 + self._extra_start(pupil_index, profile, i):
            return None  # the common case, decided without a generator
        rng = random.Random(h)
        if u < 0.012:  # everyone falls ill now and then
            length = rng.choices([1, 2, 3], [0.5, 0.3, 0.2])[0]
            delay = rng.choices([0, 1, 2, 3, 4, None], [0.72, 0.08, 0.06, 0.04, 0.03, 0.07])[0]
            return Episode(i, length, "illness", rng.choice(["illness", "illness", "illness", "medical"]), delay)
        if profile == "weekday":
            delay = rng.choices([0, 1, 2, None], [0.3, 0.15, 0.15, 0.4])[0]
            return Episode(i, 1, "weekday", rng.choice(["illness", "other", "family"]), delay)
        delay = rng.choices([0, 2, None], [0.3, 0.2, 0.5])[0]  # trend
        return Episode(i, 1, "trend", rng.choice(["illness", "other"]), delay)

    def _extra_start(self, pupil_index: int, profile: str, i: int) -> float:
        """The chance of a whole day away on day ``i`` beyond falling ill, by profile."""
        if profile == "weekday":
            return 0.55 if self.school_days[i].weekday() == self._weekday(pupil_index) else 0.0
        if profile == "trend":
            return 0.01 + 0.19 * i / len(self.school_days)
        return 0.0

    @lru_cache(maxsize=1 << 18)
    def _weekday(self, pupil_index: int) -> int:
        return _rng(self.seed, 6, pupil_index).randrange(5)

    def episode(self, pupil: Pupil, i: int) -> Episode | None:
        """The whole-day absence covering school day ``i``, if any."""
        if pupil.profile == "long_term":
            long = self._long_term(pupil.index)
            if long.start <= i < long.start + long.length:
                return long
        for back in range(3):
            found = self._starting(pupil.index, pupil.profile, i - back)
            if found is not None and found.length > back:
                return found
        return None

    @staticmethod
    def documented(episode: Episode, i: int) -> bool:
        """A notice before the first lesson documents the first day; one that arrives at midday, the days after."""
        delay = episode.notice_delay
        return delay == 0 or (delay is not None and i - episode.start > delay)

    def plan(self, pupil: Pupil, i: int, lessons: int, whole: Episode | None | bool = False) -> dict[int, tuple] | None:
        """What happens to a pupil on school day ``i``: ``None`` when present at every lesson (most days), else
        slot -> (status, documented, minutes or None, reason or None) for the slots not simply present. ``whole``:
        the day's ``episode()`` when the caller has it already."""
        if whole is False:
            whole = self.episode(pupil, i)
        if whole is not None:
            documented = self.documented(whole, i)
            reason = REASONS[whole.reason_code][0] if documented else None
            return {slot: ("absent", documented, None, reason) for slot in range(1, lessons + 1)}
        if pupil.profile == "present":
            single, late = 0.003, 0.015
        elif pupil.profile == "sporadic":
            single, late = 0.035, 0.06
        elif pupil.profile == "trend":
            single, late = 0.005 + 0.06 * i / len(self.school_days), 0.06
        else:
            single, late = 0.005, 0.015
        # One draw decides whether anything happens today (probability ``bound``, the sum of the events' chances);
        # only then are the events drawn, each with its chance divided by ``bound``: every event keeps its chance.
        bound = late + 0.004 + lessons * single
        h = _mix(self.seed, 7, pupil.index, i)
        if h / 2 ** 64 >= bound:
            return None
        rng = random.Random(h)
        out: dict[int, tuple] = {}
        if rng.random() < late / bound:
            out[1] = ("late", False, rng.choice([5, 10, 15, 20]), None)
        if rng.random() < 0.004 / bound:  # a dentist's appointment: leaves early, guardians told the school before
            slot = rng.randint(2, lessons)
            out[slot] = ("left_early", True, rng.choice([15, 30]), "Tannlege")
            for later in range(slot + 1, lessons + 1):
                out[later] = ("absent", True, None, "Tannlege")
        for slot in range(1, lessons + 1):
            if slot not in out and rng.random() < single / bound:
                out[slot] = ("absent", False, None, None)
        return out or None

    def marks(self, pupil: Pupil, day: date, lessons: tuple[Lesson, ...]) -> dict[int, dict[str, Any]]:
        """slot -> the register's mark for this pupil (the contract's mark fields)."""
        plan = self.plan(pupil, self.day_index(day), len(lessons))
        marks = {}
        for lesson in lessons:
            mark = {"student_id": pupil.id, "status": "present", "documented": False}
            if plan and lesson.slot in plan:
                status, documented, minutes, reason = plan[lesson.slot]
                mark.update(status=status, documented=documented)
                if minutes is not None:
                    mark["minutes"] = minutes
                if reason is not None:
                    mark["reason"] = reason
            marks[lesson.slot] = mark
        return marks

    # --- events ---------------------------------------------------------------------------------------------------

    def lesson_id(self, group: Group, day: date, slot: int) -> str:
        """The platform's id of one lesson occurrence (a number, as Moodle's attendance sessions have)."""
        return str(10_000_000 + ((self.day_index(day) * self._group_count + group.index) * 8 + slot) % 89_999_999)

    @staticmethod
    def at(day: date, clock: str) -> datetime:
        hour, minute = map(int, clock.split(":"))
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=OSLO)

    def group_registers(self, group: Group, day: date, slots: Iterator[int] | None = None) -> list[dict[str, Any]]:
        """All of a group's registers for a day (computing each pupil's day once)."""
        lessons = group.week[day.weekday()]
        wanted = set(slots) if slots is not None else {lesson.slot for lesson in lessons}
        by_pupil = [self.marks(p, day, lessons) for p in group.pupils]
        out = []
        for lesson in lessons:
            if lesson.slot not in wanted:
                continue
            taken = self.at(day, lesson.start) + timedelta(minutes=5)
            out.append({
                "type": "attendance.register",
                "timestamp": taken.isoformat(),
                "data": {
                    "date": day.isoformat(), "group_id": group.id,
                    "lesson": {"id": self.lesson_id(group, day, lesson.slot), "subject": lesson.subject,
                               "start": lesson.start, "end": lesson.end},
                    "marks": [marks[lesson.slot] for marks in by_pupil],
                },
            })
        return out

    def registers(self, day: date, first_lesson_only: bool = False) -> list[tuple[str, dict[str, Any]]]:
        """(tenant, envelope) for every group's registers of ``day``, in the order they are taken (by lesson)."""
        out = []
        for group in self.groups:
            for envelope in self.group_registers(group, day, [1] if first_lesson_only else None):
                out.append((group.school, envelope))
        out.sort(key=lambda item: item[1]["timestamp"])  # stable: groups keep their order within a lesson
        return out

    def notices(self, day: date) -> list[tuple[str, dict[str, Any]]]:
        """(tenant, envelope) for the guardians' notices that arrive on ``day`` (before school, or at midday)."""
        i = self.day_index(day)
        out = []
        for group in self.groups:
            for pupil in group.pupils:
                seen = set()
                candidates = [self._starting(pupil.index, pupil.profile, i - back) for back in range(5)]
                if pupil.profile == "long_term":
                    candidates.append(self._long_term(pupil.index))
                for ep in candidates:
                    if ep is None or ep.notice_delay is None or ep.start + ep.notice_delay != i or ep in seen:
                        continue
                    seen.add(ep)
                    last = min(ep.start + ep.length - 1, len(self.school_days) - 1)
                    when = self.at(day, "07:15" if ep.notice_delay == 0 else "12:30")
                    rng = _rng(self.seed, 8, pupil.index, ep.start)
                    out.append((group.school, {
                        "type": "absence.notice",
                        "timestamp": when.isoformat(),
                        "data": {
                            "student_id": pupil.id, "from_date": self.school_days[ep.start].isoformat(),
                            "to_date": self.school_days[last].isoformat(),
                            "reason": rng.choice(REASONS[ep.reason_code]), "reason_code": ep.reason_code,
                            "guardian_id": f"g{pupil.id}", "channel": rng.choice(["app", "sms", "web"]),
                        },
                    }))
        out.sort(key=lambda item: item[1]["timestamp"])
        return out

    def day_events(self, day: date) -> list[tuple[str, dict[str, Any]]]:
        """A school day as the connector receives it: notices and registers, in time order."""
        events = self.notices(day) + self.registers(day)
        events.sort(key=lambda item: item[1]["timestamp"])
        return events

    # --- history, as the connector keeps it ------------------------------------------------------------------------

    def compact_history(self, days: list[date]) -> Iterator[tuple[str, str, dict[str, str], dict[str, str]]]:
        """(tenant, pupil id, day fields, notices) as the connector stores a pupil's past days: ``d:<date>`` -> the day
        record (lesson id -> code, from the connector's own ``mark_code``; present marks are not kept), and the
        notices that had arrived by the last of ``days`` (``<from>|<to>`` -> reason code).

        For seeding a benchmark's starting state quickly; the memory benchmark writes history the long way instead.
        """
        end = self.day_index(days[-1])
        for group in self.groups:
            records: dict[str, dict[str, str]] = {p.id: {} for p in group.pupils}
            notices: dict[str, dict[str, str]] = {p.id: {} for p in group.pupils}
            for day in days:
                lessons = group.week[day.weekday()]
                i = self.day_index(day)
                for pupil in group.pupils:
                    whole = self.episode(pupil, i)
                    if whole is not None and whole.notice_delay is not None and whole.start + whole.notice_delay <= end:
                        last = min(whole.start + whole.length - 1, len(self.school_days) - 1)
                        notices[pupil.id][notice_key(self.school_days[whole.start].isoformat(),
                                                     self.school_days[last].isoformat())] = whole.reason_code
                    plan = self.plan(pupil, i, len(lessons), whole)
                    if not plan:
                        continue
                    record = {}
                    for lesson in lessons:
                        if lesson.slot not in plan:
                            continue
                        status, documented, minutes, _ = plan[lesson.slot]
                        code = mark_code(status, documented,
                                         {"subject": lesson.subject, "start": lesson.start, "end": lesson.end}, minutes)
                        record[lesson_key({"id": self.lesson_id(group, day, lesson.slot)})] = code
                    records[pupil.id][f"d:{day.isoformat()}"] = encode_day(record)
            for pupil in group.pupils:
                yield group.school, pupil.id, records[pupil.id], notices[pupil.id]


def internal(envelope: dict[str, Any]) -> dict[str, Any]:
    """The internal event the connector makes of an envelope (the contract's schemas: only its fields are kept)."""
    event = load_event(envelope)
    if event is None:
        raise ValueError(f"unknown event type {envelope['type']!r}")
    return event


def fast_internal(envelope: dict[str, Any]) -> dict[str, Any]:
    """``internal(envelope)`` without marshmallow's cost, for replaying history in bulk: the generator's envelopes
    already hold exactly the contract's fields in their canonical form (``python -m bench.generator`` checks that
    both give the same event)."""
    return {"type": envelope["type"], "timestamp": envelope["timestamp"], **envelope["data"]}


def replay_day(rt, owner: SchoolOwner, day: date, *, per_delivery: bool, send: bool) -> Counter:
    """One school day through the real processing path, with ``rt.clock`` (a ``FixedClock``) moved along it.

    The day's notices and registers go to ``processing.handle_events`` in time order, one delivery per call as the
    worker's jobs do (``per_delivery``), or for speed a tenant's consecutive deliveries of one type in one call;
    then, at the end of the day, the deadlines that fell due are fired with ``processing.fire_deadline`` as the
    scheduler's ``run_due`` jobs would. With ``send``, every action is sent at once with ``outbox.send`` (as
    ``jobs.process_delivery`` and ``jobs.run_due`` do); without, the actions stay in the outbox.
    """
    from connector.engine import outbox, routing as processing

    counts: Counter = Counter()
    clock = rt.clock

    def handle(tenant: str, events: list[dict]) -> None:
        clock.set(datetime.fromisoformat(events[-1]["timestamp"]) + timedelta(minutes=1))
        actions = processing.handle_events(rt, tenant, "generic", events)
        counts["deliveries"] += 1
        counts["actions"] += len(actions)
        if send:
            for action in actions:
                counts[outbox.send(rt, tenant, action.external_ref)] += 1

    pending: dict[str, list[dict]] = {}
    for tenant, envelope in owner.day_events(day):
        event = fast_internal(envelope)
        counts[event["type"]] += 1
        if per_delivery:
            handle(tenant, [event])
            continue
        batch = pending.get(tenant)
        if batch and batch[-1]["type"] != event["type"]:
            handle(tenant, batch)
            batch = None
        if batch is None:
            pending[tenant] = batch = []
        batch.append(event)
    for tenant, batch in pending.items():
        if batch:
            handle(tenant, batch)
    clock.set(datetime(day.year, day.month, day.day, 23, 30, tzinfo=OSLO))
    now = clock.now().timestamp()
    for member in rt.redis.zrangebyscore(rt.keys.due, "-inf", now):
        tenant, kind, ident = member.decode().split("|", 2)
        if kind != "deadline":
            continue
        actions = processing.fire_deadline(rt, tenant, ident)
        counts["deadlines fired"] += 1
        counts["actions"] += len(actions)
        if send:
            for action in actions:
                counts[outbox.send(rt, tenant, action.external_ref)] += 1
    return counts


def settle_outbox(rt, owner: SchoolOwner) -> int:
    """Whatever is in the outbox, as if it had been sent: into the ledger, out of the outbox and the due set."""
    from connector.store import outbox as stored_outbox

    moved = 0
    for school in owner.schools:
        refs = rt.redis.hkeys(rt.keys.outbox(school.id))
        if not refs:
            continue
        with rt.redis.pipeline(transaction=False) as pipe:
            for ref in refs:
                stored_outbox.record_written(pipe, rt.keys, school.id, ref.decode(), "settled", rt.clock.now().timestamp())
            pipe.delete(rt.keys.outbox(school.id))
            pipe.zrem(rt.keys.due, *[f"{school.id}|send|{ref.decode()}" for ref in refs])
            pipe.execute()
        moved += len(refs)
    return moved


def seed_history(rt, owner: SchoolOwner, days: list[date], group_field: bool = True) -> int:
    """Write ``compact_history`` into Redis under ``rt``'s prefix (pipelined); returns the fields written."""
    written = 0
    pipe = rt.redis.pipeline(transaction=False)
    for n, (tenant, student, fields, notices) in enumerate(owner.compact_history(days)):
        mapping = dict(fields)
        if group_field:
            mapping["g"] = owner.pupils[(tenant, student)].group
        if mapping:
            pipe.hset(rt.keys.pupil(tenant, student), mapping=stored_pupil_fields(mapping))
            written += len(mapping)
        if notices:
            pipe.hset(rt.keys.notices(tenant, student), mapping=notices)
        if n % 500 == 499:
            pipe.execute()
    pipe.execute()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=4)
    parser.add_argument("--groups", type=int, default=10, help="groups per school")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--day", default="2026-11-24", help="the school day to summarise")
    parser.add_argument("--year", action="store_true", help="also summarise the whole school year (slower)")
    parser.add_argument("--show", action="store_true", help="print one register and one notice")
    args = parser.parse_args()
    started = time.perf_counter()
    owner = SchoolOwner(args.schools, args.groups, seed=args.seed)
    day = date.fromisoformat(args.day)
    profiles = Counter(p.profile for p in owner.pupils.values())
    print(f"{len(owner.schools)} schools, {len(owner.groups)} groups, {owner.pupil_count} pupils "
          f"(profiles: {', '.join(f'{k} {v}' for k, v in profiles.most_common())}); "
          f"{len(owner.school_days)} school days in 2026-27")
    config = owner.config()
    print(f"config: {len(config.tenants)} tenants, validated by connector.config.schema.config_from_dict")

    def summarise(days: list[date]) -> None:
        statuses: Counter = Counter()
        notices = registers = 0
        for d in days:
            for _, envelope in owner.registers(d) + owner.notices(d):
                event = internal(envelope)  # raises on anything the contract's schemas refuse
                assert event == fast_internal(envelope), envelope
                assert EVENT_SCHEMAS[envelope["type"]].validate(envelope["data"]) == {}
                if event["type"] == "attendance.register":
                    registers += 1
                    statuses.update((m["status"], m["documented"]) for m in event["marks"])
                else:
                    notices += 1
        marks = sum(statuses.values())
        absent = sum(v for (s, _), v in statuses.items() if s != "present")
        print(f"  {registers} registers, {marks} marks ({absent / max(marks, 1):.1%} not present: "
              + ", ".join(f"{s}{'/doc' if d else ''} {v}" for (s, d), v in sorted(statuses.items()) if s != "present")
              + f"), {notices} notices; all valid per EVENT_SCHEMAS")

    print(f"{day}:")
    summarise([day])
    if args.year:
        print("the school year:")
        summarise(owner.school_days)
    if args.show:
        tenant, envelope = owner.registers(day)[0]
        print(json.dumps({"tenant": tenant, **envelope}, ensure_ascii=False)[:1500])
        notices = owner.notices(day)
        if notices:
            print(json.dumps({"tenant": notices[0][0], **notices[0][1]}, ensure_ascii=False))
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
