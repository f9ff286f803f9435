"""A pupil's compact absence history, as the rules read it.

One day is a small mapping ``lesson key -> code``: the lesson id (or ``day`` for a whole-day mark) to a two-letter
code, the status's letter and ``1``/``0`` for documented. Present marks are not kept: a day with no absence has
no record at all, which is what keeps a school year of history small.
"""
from __future__ import annotations

from datetime import date
from typing import Iterable, Mapping

STATUS_CODES = {"absent": "a", "late": "l", "left_early": "e"}
CODE_STATUSES = {code: status for status, code in STATUS_CODES.items()}
WHOLE_DAY = "day"

DayRecord = Mapping[str, str]
Notices = Mapping[str, str]  # "<from>|<to>" -> reason code ("" when none was given)


def mark_code(status: str, documented: bool) -> str:
    """``""`` for present: the mark clears that lesson from the record."""
    if status == "present":
        return ""
    return STATUS_CODES[status] + ("1" if documented else "0")


def lesson_key(lesson: Mapping | None) -> str:
    return str(lesson["id"]) if lesson else WHOLE_DAY


def undocumented_lessons(record: DayRecord, statuses: Iterable[str]) -> list[str]:
    wanted = {STATUS_CODES[s] for s in statuses}
    return sorted(key for key, code in record.items() if code[0] in wanted and code[1] == "0")


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
