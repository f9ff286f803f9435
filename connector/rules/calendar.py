"""School days: the unit every deadline in the action plan is counted in ("notice within 3 school days").

A school day is a weekday that is not a Norwegian public holiday, not one of the school's extra days off and, once
the school has entered its calendar (skolerute), inside one of its school years and outside that year's breaks.

The calendar never raises on a date: counting past ``date.max`` (or back past ``date.min``) stops there, and an
instant whose Oslo date would lie beyond either end is given that end. The door refuses such dates long before
(``connector.contract.events.check_windows``); this is the guard for whatever reaches a rule another way.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import MAXYEAR, date, datetime, timedelta
from functools import cache
from typing import Iterable, Mapping

import holidays

from connector.contract.terms import OSLO

ONE_DAY = timedelta(days=1)


@cache
def _public_holidays(year: int) -> frozenset[date]:
    """Shared by every tenant: the national holidays do not depend on the school.

    The ``holidays`` package lists some Sundays (Easter Sunday, Whit Sunday) and, with ``include_sundays``, all of
    them; weekends are excluded before this set is consulted, so either way the answer is the same.
    """
    return frozenset(holidays.country_holidays("NO", years=year))


@dataclass(frozen=True)
class SchoolYear:
    """One published skolerute. Validated on construction so a bad calendar fails when loaded, not at a deadline."""

    first_day: date
    last_day: date
    breaks: tuple[tuple[date, date], ...] = ()  # inclusive ranges without teaching
    name: str | None = None  # e.g. "2026-27"

    def __post_init__(self) -> None:
        label = f"school year {self.name or self.first_day.isoformat()}"
        if self.last_day < self.first_day:
            raise ValueError(f"{label}: last_day {self.last_day} is before first_day {self.first_day}")
        for start, end in self.breaks:
            if end < start:
                raise ValueError(f"{label}: break {start}..{end} ends before it starts")
            if start < self.first_day or end > self.last_day:
                raise ValueError(
                    f"{label}: break {start}..{end} lies outside the year {self.first_day}..{self.last_day}"
                )

    def in_break(self, d: date) -> bool:
        return any(start <= d <= end for start, end in self.breaks)


class SchoolCalendar:
    """Answers school-day questions in O(log n), because it is asked once per attendance mark.

    The configured years are expanded once into one sorted list of school days; questions about them are answered
    by bisecting it. Outside the configured years (before the first, after the last) the calendar falls back to
    "weekday and not a holiday": a school that has not entered next year's calendar yet still gets a plausible
    deadline rather than none. The summer between two configured years has no school days.
    """

    def __init__(self, years: Iterable[SchoolYear] = (), extra_days_off: Iterable[date] = ()):
        self.years = tuple(sorted(years, key=lambda y: y.first_day))
        self.extra_days_off = frozenset(extra_days_off)
        for earlier, later in zip(self.years, self.years[1:]):
            if later.first_day <= earlier.last_day:
                raise ValueError(
                    f"school years {earlier.name or earlier.first_day} and {later.name or later.first_day} overlap: "
                    f"{later.first_day} is not after {earlier.last_day}"
                )
        self._days_off_by_year: dict[int, frozenset[date]] = {}
        self._days = [d for year in self.years for d in _each_day(year.first_day, year.last_day)
                      if d.weekday() < 5 and d not in self._days_off(d.year) and not year.in_break(d)]
        self._day_set = frozenset(self._days)
        self._first = self.years[0].first_day if self.years else None
        self._last = self.years[-1].last_day if self.years else None

    @classmethod
    def from_mapping(cls, years: list[Mapping]) -> SchoolCalendar:
        """Builds the calendar from the skolerute as YAML/JSON gives it, so the loader need not know its shape."""
        if isinstance(years, (Mapping, str, bytes)):
            raise ValueError("calendar: expected a list of school years, each a mapping")
        parsed = []
        for i, raw in enumerate(years):
            if not isinstance(raw, Mapping):
                raise ValueError(f"calendar entry {i + 1}: expected a mapping with first_day and last_day")
            label = f"school year {raw.get('school_year') or i + 1}"
            breaks = []
            for j, pair in enumerate(raw.get("breaks") or ()):
                if isinstance(pair, (str, bytes)) or not isinstance(pair, (list, tuple)) or len(pair) != 2:
                    raise ValueError(f"{label}: breaks[{j}] must be a pair [from, to], got {pair!r}")
                breaks.append((_as_date(pair[0], f"{label}: breaks[{j}] from"),
                               _as_date(pair[1], f"{label}: breaks[{j}] to")))
            name = raw.get("school_year")
            parsed.append(SchoolYear(
                first_day=_as_date(raw.get("first_day"), f"{label}: first_day"),
                last_day=_as_date(raw.get("last_day"), f"{label}: last_day"),
                breaks=tuple(breaks),
                name=None if name is None else str(name),
            ))
        return cls(parsed)

    def is_school_day(self, d: date) -> bool:
        if self._configured(d):
            return d in self._day_set
        return d.weekday() < 5 and d not in self._days_off(d.year)

    def add_school_days(self, d: date, n: int) -> date:
        """The n-th school day after d (before d when n < 0); n == 0 is the school day d falls on or next.

        Counting from a non-school day (a Saturday absence) therefore starts at the next school day, which is how
        guardians and teachers count "within 3 school days".
        """
        if n == 0:
            return self.next_school_day(d)
        return self._forward(d, n) if n > 0 else self._backward(d, -n)

    def due_after(self, start: date, n: int, today: date | None = None) -> date:
        """``n`` school days after ``start``; counted from ``today`` instead when that date has already passed,
        so a task made from an event that arrived late is never due in the past."""
        due = self.add_school_days(start, n)
        if today is not None and due < today:
            due = self.add_school_days(today, n)
        return due

    def school_days_between(self, start: date, end: date) -> int:
        """School days in (start, end], so that ``school_days_between(d, add_school_days(d, n)) == n`` for n > 0.

        Antisymmetric (end < start gives the negative of the reverse), so intervals add up:
        between(a, b) + between(b, c) == between(a, c).
        """
        if end >= start:
            return 0 if start == date.max else self.count_school_days(start + ONE_DAY, end)
        return -self.count_school_days(end + ONE_DAY, start)

    def count_school_days(self, first: date, last: date) -> int:
        """School days in [first, last]; counted without walking the days, so long ranges cost no more."""
        if last < first:
            return 0
        if self._first is None:
            return self._fallback_count(first, last)
        before = self._fallback_count(first, min(last, self._first - ONE_DAY)) if self._first > date.min else 0
        after = self._fallback_count(max(first, self._last + ONE_DAY), last) if self._last < date.max else 0
        return before + bisect_right(self._days, last) - bisect_left(self._days, first) + after

    def next_school_day(self, d: date) -> date:
        return d if self.is_school_day(d) else self._forward(d, 1)

    def school_days(self, first: date, last: date) -> list[date]:
        """The school days in [first, last]: a slice of the expanded years where they are configured (asked for a
        window of weeks several times per absent mark), day by day only outside them."""
        if last < first:
            return []
        if self._first is None or last < self._first or first > self._last:
            return [d for d in _each_day(first, last) if self.is_school_day(d)]
        before = [d for d in _each_day(first, self._first - ONE_DAY) if self.is_school_day(d)] \
            if first < self._first else []
        after = [d for d in _each_day(self._last + ONE_DAY, last) if self.is_school_day(d)] \
            if last > self._last else []
        inside = self._days[bisect_left(self._days, max(first, self._first)):bisect_right(self._days, min(last, self._last))]
        return before + inside + after

    def local_date(self, moment: datetime) -> date:
        """The school's date of an instant: a mark at 00:30 Oslo time belongs to that Oslo day, not the UTC one."""
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"local_date needs an aware datetime, got naive {moment.isoformat()}")
        try:
            return moment.astimezone(OSLO).date()
        except OverflowError:  # within hours of year 1 or 9999: the Oslo date lies beyond the end there is
            return date.max if moment.year == MAXYEAR else date.min

    def start_of_day(self, d: date) -> datetime:
        """Midnight in Oslo, so a deadline "end of the school day before" is the same wall-clock time all year."""
        return datetime(d.year, d.month, d.day, tzinfo=OSLO)

    def _configured(self, d: date) -> bool:
        return self._first is not None and self._first <= d <= self._last

    def _days_off(self, year: int) -> frozenset[date]:
        """Weekday holidays and extra days off of one calendar year: the only exceptions the fallback needs."""
        off = self._days_off_by_year.get(year)
        if off is None:
            off = frozenset(d for d in _public_holidays(year) | self.extra_days_off
                            if d.year == year and d.weekday() < 5)
            self._days_off_by_year[year] = off
        return off

    def _fallback_count(self, first: date, last: date) -> int:
        if last < first:
            return 0
        weeks, rest = divmod((last - first).days + 1, 7)
        weekdays = 5 * weeks + sum((first.weekday() + i) % 7 < 5 for i in range(rest))
        off = sum(first <= d <= last for year in range(first.year, last.year + 1) for d in self._days_off(year))
        return weekdays - off

    def _forward(self, d: date, n: int) -> date:
        """Bisects through the configured years; steps day by day only in the fallback, at most n school days.
        Stops at ``date.max``, the last day there is."""
        while True:
            if self._configured(d):
                pos = bisect_right(self._days, d)
                if pos + n <= len(self._days):
                    return self._days[pos + n - 1]
                n -= len(self._days) - pos
                d = self._last
            if d == date.max:
                return d
            d += ONE_DAY
            if self.is_school_day(d):
                n -= 1
                if n == 0:
                    return d

    def _backward(self, d: date, n: int) -> date:
        while True:
            if self._configured(d):
                pos = bisect_left(self._days, d)
                if pos >= n:
                    return self._days[pos - n]
                n -= pos
                d = self._first
            if d == date.min:
                return d
            d -= ONE_DAY
            if self.is_school_day(d):
                n -= 1
                if n == 0:
                    return d


def _each_day(first: date, last: date) -> Iterable[date]:
    d = first
    while d <= last:
        yield d
        if d == date.max:
            return
        d += ONE_DAY


def _as_date(value: object, field: str) -> date:
    """YAML gives dates as date objects, JSON as ISO strings; a datetime is refused, its time would be ignored."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{field}: expected a date as YYYY-MM-DD, got {value!r}")
