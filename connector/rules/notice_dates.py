"""The school days a guardian's message reports: "i går", "fredag og mandag", "hele uka", "fra 3. til 5. desember".

A message classified as an absence notice counts as the written notice for the days it speaks of, read from its
text on the day it was sent (the school's local date of ``created_at``) and the school calendar:

* relative days: "i dag", "i går", "i morgen" (nynorsk "i morgon"), "i overmorgen", English "today" …; "i går"
  on a Monday is the Sunday, so a relative day that falls on a weekend (within :data:`SNAP_DAYS`) moves to the
  school day on its side: "i går" sent on Monday is Friday, "i morgen" sent on Friday is Monday;
* weekdays, nb/nn/en ("måndag", "tysdag"): ahead of the sending day ("fredag og mandag" sent on a Wednesday are
  the coming Friday and Monday; the sending day's own weekday is that day), unless the sentence speaks in the past
  ("var syk på tirsdag", "har vore sjuk"): then the last such day before it; "neste"/"forrige" and "mandag neste
  uke" move a week;
* weeks: "hele uka"/"heile veka" (this week's school days; up to the sending day when said in the past),
  "resten av uka", "neste uke", "forrige uke";
* explicit dates, read by ``dateparser`` (which knows Norwegian month names and abbreviations): "3. desember",
  "3. des.", "3 des", "3/12", "03.12.2026", "3.12."; without a year, the year that puts the date nearest the
  sending day ("5. januar" sent in December is next January);
* spans: "fra 3. til 5. desember", "3.-5. des", "mandag til onsdag", "frå måndag til onsdag", "til og med onsdag"
  (from the sending day), "siden mandag"/"sidan måndag" (to the sending day).

``dateparser`` is not asked about the relative words and weekdays: it reads "onsdag" sent on a Wednesday as next
week's, knows "i morgon" only as nynorsk and "tysdag" not as bokmål, and cannot tell "var syk på tirsdag" from
"blir borte tirsdag". Those are this module's own small pass.

What comes out is school days only, at most :data:`MAX_SCHOOL_DAYS`, never outside the dates the contract accepts
for a notice (``contract.events``: from the previous school year's start to a year ahead). A text that names no
date the school has lessons on reports what the connector always assumed: the sending day and the next school day.

The text exists only inside these functions' calls: nothing here stores, logs or returns it, only dates.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import chain
from datetime import date, datetime, timedelta
from typing import Iterable

import dateparser

from connector.contract.events import a_year_after, previous_school_year_start
from connector.rules.calendar import SchoolCalendar

MAX_SCHOOL_DAYS = 10  # a longer absence is the platform's notice with its dates, not a message's few words
SNAP_DAYS = 3  # how far a relative day on a non-school day moves to the school day on its side (a weekend)
TEXT_LIMIT = 4000  # a notice says its dates early; the rest of a long message (a quoted thread) is not read
MAX_MENTIONS = 40

_DATEPARSER_LANGUAGES = ["nb", "nn", "en"]
_DATEPARSER_SETTINGS = {"DATE_ORDER": "DMY", "REQUIRE_PARTS": ["day", "month"], "PREFER_DATES_FROM": "current_period"}

_MONTH = (r"(?:jan(?:uar|uary)?|feb(?:ruar|ruary)?|mar(?:s|ch)?|apr(?:il)?|mai|may|jun(?:i|e)?|jul(?:i|y)?"
          r"|aug(?:ust)?|sep(?:t|tember)?|okt(?:ober)?|oct(?:ober)?|nov(?:ember)?|des(?:ember)?|dec(?:ember)?)\b\.?")
_YEAR = r"(?:\s+(\d{4}))?"
_WEEK = r"(?:uka|uken|uke|veka|veke|week)\b"
_WEEKDAYS = {
    "mandag": 0, "måndag": 0, "monday": 0, "tirsdag": 1, "tysdag": 1, "tuesday": 1, "onsdag": 2, "wednesday": 2,
    "torsdag": 3, "thursday": 3, "fredag": 4, "friday": 4, "lørdag": 5, "laurdag": 5, "saturday": 5,
    "søndag": 6, "sundag": 6, "sunday": 6,
}
_NEXT = {"neste", "next"}
_PREVIOUS_WEEK = {"forrige", "førre", "last"}
_LATEST = {"sist", "siste"}

# Spans and dates first: a mention is never read twice (the "5" of "3.-5. des" is no date of its own).
_DAY_SPAN = re.compile(rf"\b(\d{{1,2}})\.?\s*(?:-|til og med|til|t\.o\.m\.?)\s*(\d{{1,2}})\.?\s*({_MONTH}){_YEAR}")
_DAY_MONTH = re.compile(rf"\b(\d{{1,2}})\.?\s*({_MONTH}){_YEAR}")
_MONTH_DAY = re.compile(rf"\b({_MONTH})\s+(\d{{1,2}})(?:st|nd|rd|th)?\b{_YEAR}")
_NUMERIC = re.compile(r"(?<![\d.,:])(\d{1,2})([./])(\d{1,2})(?:\2(\d{4}|\d{2}))?(\.?)(?![\d])")
_CLOCK = re.compile(r"(?:\bkl|\bklokka|\bklokken|\bat)\.?\s*$")
_WEEKS = [
    (re.compile(rf"\bresten\s+av\s+(?:denne\s+)?{_WEEK}|\b(?:the\s+)?rest\s+of\s+the\s+week\b"), "rest"),
    (re.compile(rf"\b(?:(?:hele|heile|the\s+whole|all)\s+)?(?:neste|next)\s+{_WEEK}"), "next"),
    (re.compile(rf"\b(?:(?:hele|heile|the\s+whole|all)\s+)?(?:forrige|førre|last)\s+{_WEEK}"), "previous"),
    (re.compile(rf"\b(?:hele|heile|the\s+whole|all)\s+(?:denne\s+|this\s+)?{_WEEK}|\b(?:denne|this)\s+{_WEEK}"), "this"),
]
_RELATIVE = [
    (re.compile(r"\bi\s?overmorg[eo]n\b|\bthe\s+day\s+after\s+tomorrow\b"), 2),
    (re.compile(r"\bi\s?(?:forgårs|førgårs|førgår)\b|\bthe\s+day\s+before\s+yesterday\b"), -2),
    (re.compile(r"\bi\s?(?:går|gar)\b|\byesterday\b"), -1),
    (re.compile(r"\bi\s?(?:dag|kveld|morges)\b|\btoday\b|\btonight\b|\bthis\s+morning\b"), 0),
    (re.compile(r"\bi\s?morg[eo]n\b|\btomorrow\b"), 1),
]
_WEEKDAY_NAME = rf"(?:{'|'.join(_WEEKDAYS)})(?:en)?"
_WEEKDAY_OF_WEEK = re.compile(rf"\b()({'|'.join(_WEEKDAYS)})(?:en)?\s+(?:i\s+|in\s+)?(neste|forrige|førre|next|last)\s+{_WEEK}")
_WEEKDAY = re.compile(
    r"\b(?:(forrige|førre|sist|siste|last|neste|next|kommende|komande|this|denne|coming)\s+)?"
    rf"({'|'.join(_WEEKDAYS)})(?:en)?\b()"
)
_NAMED_DAY = re.compile(rf"\b{_WEEKDAY_NAME}\s*,?\s*(?:den\s+)?$")  # "fredag 4. desember": the date says which
# What joins two mentions into a span ("fredag til mandag", "3.-5."), and what stands before a lone one.
_JOIN = re.compile(r"\s*(?:-|til og med|til|t\.\s?o\.\s?m\.?|tom|to|until|till|through|fram til|frem til|inntil)"
                   r"\s*(?:og\s+med\s+|på\s+|on\s+)?")
_UNTIL = re.compile(r"(?:til og med|til|t\.\s?o\.\s?m\.?|tom|until|till|through|fram til|frem til|inntil)\s+(?:på\s+)?$")
_BACK = re.compile(r"\b(?:tilbake|attende|back)(?:\s+(?:på|til|to|at|in)\s+(?:skolen|skulen|school))?\s+"
                   r"(?:igjen\s+)?(?:på\s+|on\s+)?$")  # "kommer tilbake (på skolen) mandag": away until the day before
_SINCE = re.compile(r"(?:siden|sidan|since)\s+(?:på\s+)?$")
_FROM = re.compile(r"(?:fra|frå|from|f\.\s?o\.\s?m\.?|fom)\s+(?:og\s+med\s+)?(?:på\s+)?$")
# The tense of the clause a weekday or week stands in: the nearest verb before it decides, else the first after.
_PAST = re.compile(r"\b(?:var|vart|ble|blei|hadde|vært|vore|vert|vori|hatt|glemte|gløymde|gløymte|glømte|"
                   r"was|were|had|been|forgot|missed)\b")
_PRESENT = re.compile(r"\b(?:er|blir|skal|kommer|kjem|vil|må|treng|trenger|melder|meld|is|are|will|be|"
                      r"going|shall|am)\b")
_SENTENCE_END = re.compile(r"[!?;\n]|(?<=[a-zæøå]{4})\.(?:\s|$)")


@dataclass
class _Mention:
    start: int
    end: int
    first: date
    last: date
    weekday: int | None = None  # a plain weekday, read again as a span's end relative to its start
    relative: int | None = None  # "i går" (-1), "i morgen" (1) …: moves off a weekend


def default_days(sent: date, calendar: SchoolCalendar) -> list[date]:
    """What a message that names no date covers: the day it was sent and the next school day ("i dag" or, in the
    evening, "i morgen")."""
    return calendar.school_days(sent, calendar.add_school_days(sent, 1))


def reported_days(text: str | None, sent: date, calendar: SchoolCalendar,
                  max_school_days: int = MAX_SCHOOL_DAYS) -> list[date]:
    """The school days the message reports, in order (see the module's docstring); never empty."""
    spans = _spans(_prepare(text or ""), sent, calendar)
    earliest, latest = previous_school_year_start(sent, calendar), a_year_after(sent)
    days: set[date] = set()
    for first, last in spans:
        first, last = max(first, earliest), min(last, latest)
        if first <= last:
            days.update(calendar.school_days(first, last)[:max_school_days])
    return sorted(days)[:max_school_days] or default_days(sent, calendar)


def as_ranges(days: Iterable[date], calendar: SchoolCalendar) -> list[tuple[date, date]]:
    """School days as the fewest ``(from, to)`` ranges: days that follow each other on the school calendar (Friday
    and Monday) make one range, as a notice's dates would."""
    ranges: list[list[date]] = []
    for day in sorted(set(days)):
        if ranges and calendar.add_school_days(ranges[-1][1], 1) == day:
            ranges[-1][1] = day
        else:
            ranges.append([day, day])
    return [(first, last) for first, last in ranges]


# --- reading --------------------------------------------------------------------------------------------------------


def _prepare(text: str) -> str:
    """Lower case, one kind of dash and space, without quoted lines (a reply's earlier message is not this one)."""
    lines = [line for line in text[:TEXT_LIMIT].splitlines() if not line.lstrip().startswith(">")]
    text = "\n".join(lines).lower()
    return re.sub(r"[ \t\u00a0]+", " ", re.sub(r"[\u2010-\u2015\u2212]", "-", text))


def _spans(text: str, sent: date, calendar: SchoolCalendar) -> list[tuple[date, date]]:
    mentions = _mentions(text, sent)
    spans: list[tuple[date, date]] = []
    i = 0
    while i < len(mentions):
        here = mentions[i]
        after = mentions[i + 1] if i + 1 < len(mentions) else None
        if after is not None and _JOIN.fullmatch(text[here.end:after.start]):
            last = after.last
            if after.weekday is not None:  # "fredag til mandag": the Monday after that Friday
                last = here.first + timedelta(days=(after.weekday - here.first.weekday()) % 7)
            if last >= here.first:
                spans.append((here.first, last))
                i += 2
                continue
        before = text[max(0, here.start - 40):here.start]
        if _BACK.search(before):
            if here.first >= sent:  # "kommer tilbake mandag": away from today until the day before
                spans.append((sent, here.first - timedelta(days=1)))
        elif _UNTIL.search(before) and here.last >= sent:
            spans.append((sent, here.last))
        elif (_SINCE.search(before) or (_FROM.search(before) and _past(text, here.start))) and here.first <= sent:
            spans.append((here.first, sent))
        elif here.relative and here.first == here.last and not calendar.is_school_day(here.first):
            spans.append((_snap(here.first, here.relative, calendar),) * 2)
        else:
            spans.append((here.first, here.last))
        i += 1
    return spans


def _snap(day: date, direction: int, calendar: SchoolCalendar) -> date:
    """"I går" on a Monday: the last school day before; "i morgen" on a Friday: the next (over a weekend only)."""
    moved = calendar.add_school_days(day, -1 if direction < 0 else 1)
    return moved if abs((moved - day).days) <= SNAP_DAYS else day


def _mentions(text: str, sent: date) -> list[_Mention]:
    taken: list[tuple[int, int]] = []
    found: list[_Mention] = []

    def matches(pattern: re.Pattern) -> Iterable[re.Match]:
        """A pattern's matches while there is room: a text of hundreds of dates costs no more than a short one."""
        for m in pattern.finditer(text):
            if len(found) >= MAX_MENTIONS:
                return
            yield m

    def free(m: re.Match) -> bool:
        return all(m.end() <= start or m.start() >= end for start, end in taken)

    def add(m: re.Match, first: date | None, last: date | None = None, named: bool = False, **extra) -> None:
        start = m.start()
        if named:  # "fredag 4. desember" is one day: the weekday before a date is part of it
            weekday = _NAMED_DAY.search(text, max(0, start - 20), start)
            start = weekday.start() if weekday else start
        taken.append((start, m.end()))  # read or not, its words are no other mention's
        if first is not None:
            found.append(_Mention(start, m.end(), first, last or first, **extra))

    for m in matches(_DAY_SPAN):
        month, year = m.group(3), m.group(4)
        first, last = _explicit(f"{m.group(1)} {month}", year, sent), _explicit(f"{m.group(2)} {month}", year, sent)
        if first and last and first <= last:
            add(m, first, last, named=True)
        elif first or last:  # "4. til 2. desember": two days, not a span backwards
            taken.append((m.start(), m.end()))
            for day in (first, last):
                if day:
                    found.append(_Mention(m.start(), m.end(), day, day))
    for pattern, words in ((_DAY_MONTH, lambda m: (f"{m.group(1)} {m.group(2)}", m.group(3))),
                           (_MONTH_DAY, lambda m: (f"{m.group(2)} {m.group(1)}", m.group(3)))):
        for m in matches(pattern):
            if free(m):
                add(m, _explicit(*words(m), sent), named=True)
    for m in matches(_NUMERIC):
        day, separator, month, year, trailing = m.groups()
        if not free(m) or _CLOCK.search(text[max(0, m.start() - 10):m.start()]):
            continue
        named = _NAMED_DAY.search(text, max(0, m.start() - 20), m.start())
        if separator == "." and not (year or trailing or named):  # "10.30" is a time; "3.12.", "3.12.2026" and
            continue                                               # "onsdag 2.12" are dates
        add(m, _explicit(f"{day}/{month}", year, sent), named=True)
    weekdays_of_weeks = list(matches(_WEEKDAY_OF_WEEK))
    for m in weekdays_of_weeks:  # before the weeks: "mandag neste uke" is a Monday, not a week
        taken.append((m.start(), m.end()))
    for pattern, which in _WEEKS:
        for m in matches(pattern):
            if free(m):
                add(m, *_week(which, sent, _past(text, m.start())))
    for pattern, offset in _RELATIVE:
        for m in matches(pattern):
            if free(m):
                add(m, sent + timedelta(days=offset), relative=offset)
    for m in weekdays_of_weeks:
        taken.remove((m.start(), m.end()))
    for m in chain(weekdays_of_weeks, matches(_WEEKDAY)):
        if free(m):
            modifier = m.group(3) or m.group(1) or ""
            weekday = _WEEKDAYS[m.group(2)]
            since = _SINCE.search(text[max(0, m.start() - 20):m.start()])
            day = _weekday(weekday, modifier, sent, bool(since) or _past(text, m.start()))
            add(m, day, weekday=None if modifier else weekday)
    found.sort(key=lambda mention: mention.start)
    return found[:MAX_MENTIONS]


def _explicit(words: str, year: str | None, sent: date) -> date | None:
    """A day and month (and perhaps a year) as ``dateparser`` reads them; without a year, the year nearest
    ``sent``. None when it is no date."""
    words = words.rstrip(".")
    if year and len(year) == 2:
        year = f"20{year}"
    try:
        parsed = dateparser.parse(f"{words} {year}" if year else words, languages=_DATEPARSER_LANGUAGES,
                                  settings={**_DATEPARSER_SETTINGS, "RELATIVE_BASE": datetime(sent.year, 7, 1)})
    except Exception:  # a library's failure on odd input is no date; the message still counts, as before
        return None
    if parsed is None:
        return None
    day = parsed.date()
    if year:
        return day
    candidates = []
    for y in (sent.year - 1, sent.year, sent.year + 1):
        try:
            candidates.append(day.replace(year=y))
        except ValueError:  # 29 February
            pass
    return min(candidates, key=lambda d: abs((d - sent).days), default=None)


def _week(which: str, sent: date, past: bool) -> tuple[date, date] | tuple[None]:
    monday = sent - timedelta(days=sent.weekday())
    if which == "this" and sent.weekday() >= 5 and not past:  # "borte hele uka", said at the weekend: the coming
        which = "next"
    if which == "next":
        monday += timedelta(days=7)
    elif which == "previous":
        monday -= timedelta(days=7)
    friday = monday + timedelta(days=4)
    if which == "rest":
        return (sent, friday) if sent <= friday else (None,)
    if which == "this" and past:
        return monday, min(friday, sent)
    return monday, friday


def _weekday(weekday: int, modifier: str, sent: date, past: bool) -> date:
    monday = sent - timedelta(days=sent.weekday())
    if modifier in _NEXT:
        return monday + timedelta(days=7 + weekday)
    if modifier in _PREVIOUS_WEEK:
        return monday + timedelta(days=weekday - 7)
    if past or modifier in _LATEST:
        return sent - timedelta(days=(sent.weekday() - weekday - 1) % 7 + 1)
    return sent + timedelta(days=(weekday - sent.weekday()) % 7)


def _past(text: str, at: int) -> bool:
    """Whether the clause around ``at`` speaks of the past: the nearest verb before it, else the first after it."""
    start = max((m.end() for m in _SENTENCE_END.finditer(text, 0, at)), default=0)
    end_match = _SENTENCE_END.search(text, at)
    end = end_match.start() if end_match else len(text)
    before = [(m.start(), True) for m in _PAST.finditer(text, start, at)] + \
             [(m.start(), False) for m in _PRESENT.finditer(text, start, at)]
    if before:
        return max(before)[1]
    after = [(m.start(), True) for m in _PAST.finditer(text, at, end)] + \
            [(m.start(), False) for m in _PRESENT.finditer(text, at, end)]
    return min(after)[1] if after else False
