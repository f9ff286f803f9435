"""A pupil's compact absence history, as the rules read it.

One day is a small mapping ``lesson key -> code``: a lesson's key (``day`` for a whole-day mark) to a code made of
the status's letter, ``1``/``0`` for documented, and, when the register said, ``|subject|minutes``. Present marks
are not kept: a day without absence has no record at all, which is what keeps a school year of history small.

A lesson's key is a short hash of the platform's lesson id, so a platform's long ids (GUIDs) cost no more than
short ones; the day is stored as ``key=code;key=code`` (:func:`encode_day`), not JSON, for the same reason: every
byte is kept once per lesson missed, for two school years.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from datetime import date, time, timedelta
from typing import Iterable, Mapping

from marshmallow import Schema, fields, validate

STATUS_CODES = {"absent": "a", "late": "l", "left_early": "e"}
CODE_STATUSES = {code: status for status, code in STATUS_CODES.items()}
WHOLE_DAY = "day"
ABSENCE = ("absent", "left_early")  # what "fravær" means for the plan's rules; lateness is recorded, not chased

# The subjects of the national curriculum (LK20) for grunnskolen, as platforms name them in bokmål and nynorsk, each
# stored as ``*`` and one letter: a subject's name is kept once per lesson missed, and "Kunst og håndverk" costs 18
# bytes where ``*K`` costs 2 (with the rest of the day, under Redis's 64-byte compact limit; see ``store.pupils``).
# Append only: a letter once given keeps its subject, or stored history would change meaning. Any other name is
# stored as it is (one that starts with ``*`` gets a second ``*``).
SUBJECT_LETTERS = {
    "Norsk": "N", "Matematikk": "M", "Engelsk": "E", "Naturfag": "F", "Samfunnsfag": "S", "KRLE": "R",
    "Kunst og håndverk": "K", "Kunst og handverk": "k", "Musikk": "U", "Mat og helse": "H", "Kroppsøving": "O",
    "Valgfag": "V", "Fremmedspråk": "P", "Framandspråk": "p", "Spansk": "s", "Tysk": "T", "Fransk": "f",
    "Arbeidslivsfag": "A", "Utdanningsvalg": "D", "Samisk": "I", "Kvensk": "Q", "Finsk": "i",
    "Norsk tegnspråk": "G", "Fordypning i norsk": "n", "Fordypning i engelsk": "e", "Fordypning i matematikk": "m",
}
LETTER_SUBJECTS = {letter: subject for subject, letter in SUBJECT_LETTERS.items()}
assert len(LETTER_SUBJECTS) == len(SUBJECT_LETTERS), "one letter per subject"


def _stored_subject(subject: str) -> str:
    letter = SUBJECT_LETTERS.get(subject)
    if letter:
        return "*" + letter
    return "*" + subject if subject.startswith("*") else subject


def _read_subject(stored: str) -> str | None:
    if not stored:
        return None
    if stored.startswith("**"):
        return stored[1:]
    if stored.startswith("*") and len(stored) == 2 and stored[1] in LETTER_SUBJECTS:
        return LETTER_SUBJECTS[stored[1]]
    return stored


DayRecord = Mapping[str, str]
Notices = Mapping[str, str]  # "<from>|<to>" -> reason code ("" when none was given)


@dataclass(frozen=True)
class Mark:
    status: str
    documented: bool
    subject: str | None = None
    minutes: int | None = None


def lesson_minutes(lesson: Mapping | None) -> int | None:
    """A lesson's length from its ``start``/``end`` (HH:MM or ISO datetimes), when the register gives them."""
    if not lesson or not lesson.get("start") or not lesson.get("end"):
        return None
    try:
        start, end = (time.fromisoformat(str(lesson[k])[-8:].lstrip("T")[:5]) for k in ("start", "end"))
    except ValueError:
        return None
    minutes = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
    return minutes if 0 < minutes <= 600 else None


def mark_code(status: str, documented: bool, lesson: Mapping | None = None, minutes: int | None = None) -> str:
    """``""`` for present: the mark clears that lesson from the record."""
    if status == "present":
        return ""
    code = STATUS_CODES[status] + ("1" if documented else "0")
    subject = (lesson or {}).get("subject")
    length = minutes if minutes is not None and status != "absent" else lesson_minutes(lesson)
    if subject or length:
        code += f"|{_stored_subject(subject.replace('|', '/').replace(';', ',')) if subject else ''}|{length or ''}"
    return code


@lru_cache(maxsize=4096)
def parse_code(code: str) -> Mark:
    """Cached: a school has a few dozen distinct codes (status × subject × length), read again for every window."""
    status, documented = CODE_STATUSES[code[0]], code[1] == "1"
    if len(code) == 2:
        return Mark(status, documented)
    _, subject, minutes = code.split("|", 2)
    return Mark(status, documented, _read_subject(subject), int(minutes) if minutes else None)


def lesson_key(lesson: Mapping | None) -> str:
    """``day``, or 6 characters of the lesson id's hash (36 bits: two lessons of one pupil's day never meet)."""
    if not lesson:
        return WHOLE_DAY
    return base64.urlsafe_b64encode(hashlib.sha256(str(lesson["id"]).encode()).digest()[:6]).decode()[:6]


def encode_day(record: DayRecord) -> str:
    """``key=code;…`` in key order. Keys are ``day`` or URL-safe base64; codes hold no ``;`` (:func:`mark_code`)."""
    return ";".join(f"{key}={record[key]}" for key in sorted(record))


def decode_day(raw: bytes | str | None) -> dict[str, str]:
    if not raw:
        return {}
    text = raw.decode() if isinstance(raw, bytes) else raw
    return dict(entry.split("=", 1) for entry in text.split(";"))


def absence_lessons(record: DayRecord, statuses: Iterable[str] = ABSENCE, documented: bool | None = None) -> list[str]:
    """Lesson keys of the day with one of ``statuses``; ``documented=False`` keeps only undocumented ones."""
    wanted = set(statuses)
    keys = []
    for key, code in record.items():
        mark = parse_code(code)
        if mark.status in wanted and (documented is None or mark.documented == documented):
            keys.append(key)
    return sorted(keys)


def undocumented_lessons(record: DayRecord, statuses: Iterable[str] = ABSENCE) -> list[str]:
    return absence_lessons(record, statuses, documented=False)


def notice_key(from_date: str, to_date: str) -> str:
    return f"{from_date}|{to_date}"


def covering_notice(notices: Notices, day: str) -> str | None:
    """The notice whose range covers ``day`` (ISO dates compare correctly as strings), if any."""
    for key in notices:
        start, _, end = key.partition("|")
        if start <= day <= end:
            return key
    return None


def parse_day(day: str) -> date:
    return date.fromisoformat(day)


def day_weight(record: DayRecord, lessons_per_day: int, include_documented: bool = True) -> float:
    """How much of a school day the pupil missed: 1 for a whole-day absence, else a share of lessons (at most 1)."""
    keys = absence_lessons(record, documented=None if include_documented else False)
    if not keys:
        return 0.0
    if WHOLE_DAY in keys:
        return 1.0
    return min(1.0, len(keys) / max(lessons_per_day, 1))


def occasions(school_days: list[date], absent: set[date]) -> list[list[date]]:
    """Separate absence occasions: runs of consecutive school days with absence (a three-day flu is one)."""
    runs: list[list[date]] = []
    previous_absent = False
    for day in school_days:
        if day in absent:
            if previous_absent:
                runs[-1].append(day)
            else:
                runs.append([day])
        previous_absent = day in absent
    return runs


HISTORY = "history"


class HistorySettings(Schema):
    """How long what the connector keeps about a pupil is kept: the current and the previous school year by
    default, and then the summer (``retention_margin_days`` after the last kept year's last school day)."""

    retention_school_years = fields.Integer(validate=validate.Range(min=1, max=10))
    retention_margin_days = fields.Integer(validate=validate.Range(min=0, max=366))


PLAN = {HISTORY: ({"retention_school_years": 2, "retention_margin_days": 60}, HistorySettings)}


def retention_cutoff(today: date, years: Iterable, keep_school_years: int) -> date:
    """The first day still kept: the start of the oldest school year within the retention."""
    starts = sorted({y.first_day for y in years if y.first_day <= today}, reverse=True)
    if len(starts) >= keep_school_years:
        return starts[keep_school_years - 1]
    start_year = today.year if today.month >= 8 else today.year - 1
    return date(start_year - (keep_school_years - 1), 8, 1)


def retention_end(today: date, years: Iterable, keep_school_years: int, margin_days: int) -> date:
    """The day from which what was last written ``today`` (a pupil's days, notices, states; a case) is no longer
    kept: the last school day of the last school year within the retention, plus the margin.

    Written in the 2026-27 school year and kept two school years, it goes ``margin_days`` after the last school day
    of 2027-28: by then ``retention_cutoff`` has moved past all of it. A school year the calendar does not know
    ends on 30 June.
    """
    start = today.year if today.month >= 8 else today.year - 1
    last = start + keep_school_years - 1
    ends = [y.last_day for y in years if y.first_day.year == last]
    end = max(ends) if ends else date(last + 1, 6, 30)
    return end + timedelta(days=margin_days)
