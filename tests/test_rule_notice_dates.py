"""The dates a guardian's message reports, read from its text on the day it was sent (``rules.notice_dates``).

Pure: a text, the school's date the message was sent and the school calendar in, school days out. The calendar is
the end-to-end tests' school year (a break on Fri 6 Nov 2026, Christmas 21 Dec–4 Jan). The week of the examples:

    Mon 23  Tue 24  Wed 25  Thu 26  Fri 27 Nov 2026  |  Mon 30 Nov  Tue 1  Wed 2  Thu 3  Fri 4 Dec
"""
from __future__ import annotations

import logging
from datetime import date

import pytest

from connector.rules import notice_dates
from tests.rule_support import CALENDAR

MON, TUE, WED, THU, FRI = (date(2026, 11, d) for d in (23, 24, 25, 26, 27))
SAT, SUN = date(2026, 11, 28), date(2026, 11, 29)
NEXT_MON, NEXT_TUE, NEXT_WED, NEXT_THU, NEXT_FRI = date(2026, 11, 30), *(date(2026, 12, d) for d in (1, 2, 3, 4))


def read(text: str, sent: date) -> list[date]:
    return notice_dates.reported_days(text, sent, CALENDAR)


# --- what the parent said, in bokmål ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, sent, expected", [
    ("Hei, Jonas har feber og blir hjemme i dag. Mvh pappa", WED, [WED]),
    ("Han er syk idag", WED, [WED]),
    ("Hun var syk i går, glemte å melde", WED, [TUE]),
    ("Han blir hjemme i morgen, han har omgangssyke", WED, [THU]),
    ("Hun er syk i dag og i morgen", WED, [WED, THU]),
    ("Vi melder fravær for Liam fredag og mandag, han er med på begravelse i Bergen.", WED, [FRI, NEXT_MON]),
    ("Hun var syk på tirsdag", THU, [TUE]),
    ("Han var borte mandag, tirsdag og onsdag", THU, [MON, TUE, WED]),
    ("Hun var syk i går og blir hjemme fredag også", WED, [TUE, FRI]),
    ("Han er syk hele uka", WED, [MON, TUE, WED, THU, FRI]),
    ("Han har vært syk hele uken", THU, [MON, TUE, WED, THU]),
    ("Han blir borte resten av uka", WED, [WED, THU, FRI]),
    ("Vi er bortreist hele neste uke", WED, [NEXT_MON, NEXT_TUE, NEXT_WED, NEXT_THU, NEXT_FRI]),
    ("Han er borte fra 2. til 4. desember", WED, [NEXT_WED, NEXT_THU, NEXT_FRI]),
    ("Borte 3.-5. des, tannregulering i Oslo", WED, [NEXT_THU, NEXT_FRI]),
    ("Fravær 1.–2. desember", WED, [NEXT_TUE, NEXT_WED]),
    ("Hun er syk til og med onsdag", MON, [MON, TUE, WED]),
    ("Han er syk t.o.m. torsdag", TUE, [TUE, WED, THU]),
    ("Hun er på ferie til 1.12.", FRI, [FRI, NEXT_MON, NEXT_TUE]),
    ("Han er hjemme fra mandag til onsdag", FRI, [NEXT_MON, NEXT_TUE, NEXT_WED]),
    ("Han er borte fra og med i dag til og med fredag", WED, [WED, THU, FRI]),
    ("Hun har vært syk siden mandag", WED, [MON, TUE, WED]),
    ("Han blir borte neste fredag", MON, [NEXT_FRI]),
    ("Hun var syk forrige fredag", WED, [date(2026, 11, 20)]),
    ("Han er borte onsdag", WED, [WED]),  # the weekday of the sending day, said ahead: that day
    ("Han kommer ikke på skolen mandag neste uke", WED, [NEXT_MON]),
    ("Han har vondt i magen og blir hjemme. Kommer tilbake på mandag.", WED, [WED, THU, FRI]),
    ("Hun var syk i går, men er tilbake i dag", WED, [TUE]),
    ("Han er syk, kommer tilbake på skolen igjen på fredag", WED, [WED, THU]),
])
def test_bokmal(text, sent, expected):
    assert read(text, sent) == expected


# --- and in nynorsk -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, sent, expected", [
    ("Hei! Ingrid er sjuk i dag og er heime. Helsing mamma", WED, [WED]),
    ("Ho var sjuk i går, gløymde å melde", WED, [TUE]),
    ("Han blir heime i morgon", WED, [THU]),
    ("Fråvær for Ola tysdag og onsdag", FRI, [NEXT_TUE, NEXT_WED]),
    ("Han var sjuk på måndag", WED, [MON]),
    ("Han har vore sjuk heile veka", FRI, [MON, TUE, WED, THU, FRI]),
    ("Ho er borte frå 2. til 4. desember", WED, [NEXT_WED, NEXT_THU, NEXT_FRI]),
    ("Ho er sjuk til og med torsdag", TUE, [TUE, WED, THU]),
    ("Han er heime frå måndag til onsdag", FRI, [NEXT_MON, NEXT_TUE, NEXT_WED]),
    ("Ho har vore sjuk sidan tysdag", THU, [TUE, WED, THU]),
    ("Han er borte resten av veka", THU, [THU, FRI]),
])
def test_nynorsk(text, sent, expected):
    assert read(text, sent) == expected


@pytest.mark.parametrize("text, sent, expected", [
    ("Hi, Noah is unwell today and will stay home. Thanks.", WED, [WED]),
    ("He was sick yesterday, sorry for not letting you know", WED, [TUE]),
    ("She will be away on Friday and Monday", WED, [FRI, NEXT_MON]),
])
def test_english_basics(text, sent, expected):
    assert read(text, sent) == expected


# --- the day of the week it was sent -----------------------------------------------------------------------------


def test_sent_on_a_friday_evening():
    """Friday's date all evening: "i morgen" is Saturday, which for a school means the next school day."""
    assert read("Liam blir hjemme i morgen", FRI) == [NEXT_MON]
    assert read("Liam blir heime i morgon", FRI) == [NEXT_MON]
    assert read("Han var syk i dag", FRI) == [FRI]
    assert read("Fravær mandag og tirsdag, vi skal til lege i Tromsø", FRI) == [NEXT_MON, NEXT_TUE]
    assert read("Han har vært syk hele uka", FRI) == [MON, TUE, WED, THU, FRI]


def test_sent_on_a_monday():
    """"I går" on a Monday is the Sunday: what the school missed him on was the last school day, Friday."""
    assert read("Hun var syk i går, glemte å melde", NEXT_MON) == [FRI]
    assert read("Ho var sjuk i går", NEXT_MON) == [FRI]
    assert read("Han var syk på fredag", NEXT_MON) == [FRI]
    assert read("Han var syk på mandag", NEXT_MON) == [MON]  # said in the past: last week's Monday, not today
    assert read("Syk i dag", NEXT_MON) == [NEXT_MON]
    assert read("Vi melder fravær for Liam fredag og mandag", NEXT_MON) == [NEXT_MON, NEXT_FRI]


def test_sent_at_the_weekend():
    assert read("Han blir hjemme mandag", SAT) == [NEXT_MON]
    assert read("Hun var syk fredag", SUN) == [FRI]


# --- explicit dates: the date parser, and the year nearest the message -------------------------------------------


@pytest.mark.parametrize("text, sent, expected", [
    ("Fravær 3. desember", WED, [NEXT_THU]),
    ("Fravær 3. des. pga tannlege", WED, [NEXT_THU]),
    ("Fravær 3 des", WED, [NEXT_THU]),
    ("Fravær 3. desember 2026", WED, [NEXT_THU]),
    ("Fravær 3/12", WED, [NEXT_THU]),
    ("Fravær 03.12.2026", WED, [NEXT_THU]),
    ("Fravær 3.12.", WED, [NEXT_THU]),
    ("Hun var syk 20. november", WED, [date(2026, 11, 20)]),
    ("Han er borte 5. januar", date(2026, 12, 15), [date(2027, 1, 5)]),  # sent in December: next January
    ("Han var syk 11. desember", date(2027, 1, 6), [date(2026, 12, 11)]),  # sent in January: last December
    ("Away on 3 December", WED, [NEXT_THU]),
    ("Borte fredag 4. desember", WED, [NEXT_FRI]),  # the weekday is part of the date, not this week's Friday
    ("Borte onsdag 2.12 og torsdag 3.12", WED, [NEXT_WED, NEXT_THU]),
    ("Vi reiser bort fra torsdag 26. november til 1. desember", WED, [THU, FRI, NEXT_MON, NEXT_TUE]),
])
def test_explicit_dates(text, sent, expected):
    assert read(text, sent) == expected


def test_a_time_of_day_is_no_date():
    """"kl. 10.15" and "10.30" are times: without a date the message covers the send day and the next."""
    assert read("Maja må til tannlegen kl. 10.15 og kommer etter lunsj.", WED) == [WED, THU]
    assert read("Hun kommer 10.30 i dag", WED) == [WED]


# --- what is not said, and the bounds ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["Maja må til tannlegen og kommer etter lunsj.", "Syk. Mvh mamma", "", None])
def test_no_date_is_the_send_day_and_the_next_school_day(text):
    assert read(text, WED) == [WED, THU]
    assert read(text, FRI) == [FRI, NEXT_MON]


def test_school_days_only():
    """The break on Fri 6 Nov and the weekend are no school days; a span over them keeps the school days."""
    assert read("Fravær fredag og mandag", date(2026, 11, 4)) == [date(2026, 11, 9)]
    assert read("Han er borte fra 18. til 22. desember", date(2026, 12, 14)) == [date(2026, 12, 18)]


def test_the_span_is_bounded():
    days = read("Han er borte fra 1. til 18. desember", WED)
    assert len(days) == notice_dates.MAX_SCHOOL_DAYS == 10
    assert days[0] == NEXT_TUE and days[-1] == date(2026, 12, 14)


def test_dates_outside_the_contracts_window_are_not_read():
    """A notice's dates lie from the previous school year's start to a year ahead (``contract.events``)."""
    assert read("Han var syk 3. desember 2020", WED) == [WED, THU]
    assert read("Han er borte 3. desember 2028", WED) == [WED, THU]


def test_a_range_backwards_is_two_days_not_a_span():
    assert read("Fravær 4. til 2. desember", WED) == [NEXT_WED, NEXT_FRI]


def test_a_range_of_weekdays_said_in_the_past():
    assert read("Han var borte fra fredag til mandag", date(2026, 12, 2)) == [FRI, NEXT_MON]


def test_the_text_is_not_logged(caplog):
    caplog.set_level(logging.DEBUG)
    read("Hemmelig tekst om Liam, fredag og mandag", WED)
    assert "Hemmelig" not in caplog.text and "Liam" not in caplog.text


# --- the notices' ranges -------------------------------------------------------------------------------------------


def test_ranges_join_school_days_that_follow_each_other():
    assert notice_dates.as_ranges([FRI, NEXT_MON], CALENDAR) == [(FRI, NEXT_MON)]
    assert notice_dates.as_ranges([MON, TUE, WED], CALENDAR) == [(MON, WED)]
    assert notice_dates.as_ranges([WED, FRI], CALENDAR) == [(WED, WED), (FRI, FRI)]
    assert notice_dates.as_ranges([], CALENDAR) == []


# --- whatever a message says ---------------------------------------------------------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

WORDS = ["i dag", "i går", "i morgen", "i morgon", "fredag", "måndag", "tysdag", "neste", "forrige", "uke", "veka",
         "hele", "heile", "resten av", "fra", "frå", "til", "til og med", "t.o.m.", "siden", "tilbake", "var", "er",
         "blir", "3.", "31.", "29. februar", "12/13", "3.12.", "des", "desember", "jan", "2026", "1999", "-", ",", ".",
         "kl.", "10.30", "og", "\n", "> sitert fredag", "yesterday", "next week", "0.", "99."]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=8)), max_size=25),
       st.dates(min_value=date(2026, 8, 1), max_value=date(2027, 7, 31)))
def test_any_text_gives_bounded_school_days_within_the_window(words, sent):
    days = read(" ".join(words), sent)
    assert days and days == sorted(set(days)) and len(days) <= notice_dates.MAX_SCHOOL_DAYS
    assert all(CALENDAR.is_school_day(d) for d in days)
    assert all(date(2025, 8, 1) <= d <= date(sent.year + 1, sent.month, min(sent.day, 28) if sent.month == 2 else
                                                sent.day) for d in days)
