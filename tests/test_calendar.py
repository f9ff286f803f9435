import calendar as month_calendar
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from connector.rules.calendar import SchoolCalendar, SchoolYear

CALENDARS = Path(__file__).resolve().parents[2] / "shared" / "calendars"
FROLAND = CALENDARS / "froland-2026-27.yaml"

FROLAND_2026_27 = {
    "school_year": "2026-27",
    "first_day": "2026-08-13",
    "last_day": "2027-06-18",
    "breaks": [
        ["2026-09-28", "2026-10-02"],
        ["2026-11-06", "2026-11-06"],
        ["2026-12-21", "2027-01-04"],
        ["2027-02-22", "2027-02-26"],
        ["2027-03-22", "2027-03-30"],
        ["2027-05-07", "2027-05-07"],
    ],
}


@pytest.fixture
def froland() -> SchoolCalendar:
    return SchoolCalendar.from_mapping([FROLAND_2026_27])


@pytest.fixture
def no_breaks() -> SchoolCalendar:
    return SchoolCalendar([SchoolYear(date(2026, 8, 13), date(2027, 6, 18))])


@pytest.fixture
def unconfigured() -> SchoolCalendar:
    return SchoolCalendar()


def test_published_froland_calendar_reproduces_every_months_school_days():
    if not FROLAND.exists():
        pytest.skip(f"published calendar not found at {FROLAND} (shared/calendars is outside this repo)")
    data = yaml.safe_load(FROLAND.read_text(encoding="utf-8"))
    cal = SchoolCalendar.from_mapping([data])
    published = dict(data["published_school_days"])
    total = published.pop("total")

    counted = {}
    for month in published:
        year, mon = map(int, month.split("-"))
        first = max(date(year, mon, 1), data["first_day"])
        last = min(date(year, mon, month_calendar.monthrange(year, mon)[1]), data["last_day"])
        counted[month] = cal.count_school_days(first, last)

    assert counted == published
    assert total == 190
    assert cal.count_school_days(data["first_day"], data["last_day"]) == 190


def test_school_days_lists_the_same_days_it_counts(froland):
    days = froland.school_days(date(2026, 8, 1), date(2027, 7, 31))
    assert days == sorted(days)
    assert len(days) == froland.count_school_days(date(2026, 8, 1), date(2027, 7, 31))
    assert all(froland.is_school_day(d) for d in days)


def test_easter_holidays_are_not_school_days_even_without_the_easter_break(no_breaks):
    maundy_thursday, good_friday, easter_monday = date(2027, 3, 25), date(2027, 3, 26), date(2027, 3, 29)
    for d in (maundy_thursday, good_friday, easter_monday):
        assert not no_breaks.is_school_day(d)
    assert no_breaks.is_school_day(date(2027, 3, 24))
    assert no_breaks.is_school_day(date(2027, 3, 30))
    assert no_breaks.add_school_days(date(2027, 3, 24), 1) == date(2027, 3, 30)


def test_easter_break_runs_from_monday_22_to_tuesday_30_march(froland):
    assert froland.add_school_days(date(2027, 3, 19), 1) == date(2027, 3, 31)
    assert froland.count_school_days(date(2027, 3, 22), date(2027, 3, 30)) == 0


def test_17_may_is_a_holiday_also_when_it_is_whit_monday(no_breaks, unconfigured):
    assert not unconfigured.is_school_day(date(2028, 5, 17))  # a Wednesday
    assert not no_breaks.is_school_day(date(2027, 5, 17))  # Whit Monday as well
    assert no_breaks.add_school_days(date(2027, 5, 14), 1) == date(2027, 5, 18)


def test_ascension_day_and_the_day_off_after_it(froland, no_breaks):
    ascension = date(2027, 5, 6)
    assert not no_breaks.is_school_day(ascension)
    assert no_breaks.add_school_days(date(2027, 5, 5), 1) == date(2027, 5, 7)
    assert froland.add_school_days(date(2027, 5, 5), 1) == date(2027, 5, 10)


def test_first_school_day_after_christmas_break_is_tuesday_5_january(froland):
    assert froland.add_school_days(date(2026, 12, 18), 1) == date(2027, 1, 5)
    assert froland.next_school_day(date(2026, 12, 24)) == date(2027, 1, 5)
    assert froland.school_days_between(date(2026, 12, 18), date(2027, 1, 5)) == 1


def test_christmas_days_are_holidays_without_a_break(no_breaks):
    assert not no_breaks.is_school_day(date(2026, 12, 25))
    assert not no_breaks.is_school_day(date(2027, 1, 1))
    assert no_breaks.add_school_days(date(2026, 12, 24), 1) == date(2026, 12, 28)


def test_autumn_break_is_week_40(froland):
    assert [froland.is_school_day(date(2026, 9, 28) + timedelta(days=i)) for i in range(5)] == [False] * 5
    assert froland.add_school_days(date(2026, 9, 25), 1) == date(2026, 10, 5)


def test_friday_plus_one_school_day_is_monday(froland):
    assert froland.add_school_days(date(2026, 10, 9), 1) == date(2026, 10, 12)
    assert not froland.is_school_day(date(2026, 10, 10))
    assert not froland.is_school_day(date(2026, 10, 11))


def test_notice_for_friday_absence_is_due_three_school_days_later_on_wednesday(froland):
    assert froland.add_school_days(date(2026, 10, 16), 3) == date(2026, 10, 21)


def test_zero_school_days_is_the_day_itself_or_the_next_school_day(froland):
    assert froland.add_school_days(date(2026, 10, 14), 0) == date(2026, 10, 14)
    assert froland.add_school_days(date(2026, 10, 17), 0) == date(2026, 10, 19)


def test_negative_school_days_count_backwards(froland):
    assert froland.add_school_days(date(2026, 10, 12), -1) == date(2026, 10, 9)
    assert froland.add_school_days(date(2027, 1, 5), -1) == date(2026, 12, 18)
    assert froland.add_school_days(date(2026, 10, 11), -3) == date(2026, 10, 7)


def test_school_days_between_undoes_add_school_days_all_year(froland):
    d = date(2026, 7, 1)
    while d <= date(2027, 8, 31):
        for n in range(1, 11):
            assert froland.school_days_between(d, froland.add_school_days(d, n)) == n, (d, n)
            if froland.is_school_day(d):
                assert froland.school_days_between(d, froland.add_school_days(d, -n)) == -n, (d, -n)
        d += timedelta(days=1)


def test_add_school_days_agrees_with_stepping_one_day_at_a_time(froland):
    d = date(2026, 6, 1)
    for n in (1, 5, 20, 200, 400):
        expected = d
        for _ in range(n):
            expected += timedelta(days=1)
            while not froland.is_school_day(expected):
                expected += timedelta(days=1)
        assert froland.add_school_days(d, n) == expected


def test_school_days_between_is_antisymmetric(froland):
    a, b = date(2026, 10, 3), date(2026, 12, 24)
    assert froland.school_days_between(a, b) == -froland.school_days_between(b, a)
    assert froland.school_days_between(a, a) == 0


def test_without_school_years_every_weekday_except_holidays_is_a_school_day(unconfigured):
    assert unconfigured.is_school_day(date(2026, 7, 15))
    assert not unconfigured.is_school_day(date(2026, 7, 18))
    assert not unconfigured.is_school_day(date(2026, 5, 14))  # Ascension
    weekday_holidays_2026 = 8  # 17 May is a Sunday and 26 December a Saturday in 2026
    assert unconfigured.count_school_days(date(2026, 1, 1), date(2026, 12, 31)) == 261 - weekday_holidays_2026
    assert unconfigured.add_school_days(date(2026, 4, 1), 1) == date(2026, 4, 7)


def test_extra_days_off_are_not_school_days(unconfigured):
    cal = SchoolCalendar(extra_days_off=[date(2026, 10, 14)])
    assert unconfigured.is_school_day(date(2026, 10, 14))
    assert not cal.is_school_day(date(2026, 10, 14))
    assert cal.add_school_days(date(2026, 10, 13), 1) == date(2026, 10, 15)


def test_after_the_last_configured_year_deadlines_fall_back_to_weekdays(froland):
    assert froland.add_school_days(date(2027, 6, 18), 1) == date(2027, 6, 21)
    assert froland.add_school_days(date(2027, 6, 16), 5) == date(2027, 6, 23)
    assert froland.is_school_day(date(2027, 7, 1))


def test_before_the_first_configured_year_deadlines_fall_back_to_weekdays(froland):
    assert froland.add_school_days(date(2026, 8, 7), 1) == date(2026, 8, 10)
    assert froland.add_school_days(date(2026, 8, 10), 4) == date(2026, 8, 14)
    assert froland.add_school_days(date(2026, 8, 13), -1) == date(2026, 8, 12)


def test_summer_between_two_configured_years_has_no_school_days(froland):
    cal = SchoolCalendar([
        SchoolYear(date(2026, 8, 13), date(2027, 6, 18), name="2026-27"),
        SchoolYear(date(2027, 8, 19), date(2028, 6, 20), name="2027-28"),
    ])
    assert not cal.is_school_day(date(2027, 7, 1))
    assert cal.add_school_days(date(2027, 6, 18), 1) == date(2027, 8, 19)
    assert cal.add_school_days(date(2027, 8, 19), -1) == date(2027, 6, 18)
    assert cal.school_days_between(date(2027, 6, 18), date(2027, 8, 19)) == 1
    assert cal.count_school_days(date(2027, 6, 19), date(2027, 8, 18)) == 0


def test_from_mapping_accepts_date_objects_and_ignores_unknown_keys():
    cal = SchoolCalendar.from_mapping([{
        "first_day": date(2026, 8, 13), "last_day": date(2027, 6, 18), "published_school_days": {"total": 190},
    }])
    assert cal.years[0].name is None
    assert cal.is_school_day(date(2026, 8, 13))


@pytest.mark.parametrize("year, message", [
    ({"first_day": "2026-08-13", "last_day": "2026-08-01"}, "last_day 2026-08-01 is before first_day"),
    ({"first_day": "2026-08-13", "last_day": "2027-06-18", "breaks": [["2026-10-02", "2026-09-28"]]},
     "ends before it starts"),
    ({"first_day": "2026-08-13", "last_day": "2027-06-18", "breaks": [["2027-06-21", "2027-06-25"]]},
     "outside the year"),
    ({"first_day": "13.08.2026", "last_day": "2027-06-18"}, "first_day: expected a date"),
    ({"last_day": "2027-06-18"}, "first_day: expected a date"),
    ({"first_day": "2026-08-13", "last_day": "2027-06-18", "breaks": ["2026-10-01"]}, r"breaks\[0\] must be a pair"),
])
def test_from_mapping_rejects_bad_school_years(year, message):
    with pytest.raises(ValueError, match=message):
        SchoolCalendar.from_mapping([{"school_year": "2026-27", **year}])


def test_from_mapping_rejects_overlapping_school_years():
    with pytest.raises(ValueError, match="2025-26 and 2026-27 overlap"):
        SchoolCalendar.from_mapping([
            {"school_year": "2026-27", "first_day": "2026-08-13", "last_day": "2027-06-18"},
            {"school_year": "2025-26", "first_day": "2025-08-14", "last_day": "2026-08-13"},
        ])


def test_from_mapping_rejects_a_single_mapping_instead_of_a_list():
    with pytest.raises(ValueError, match="expected a list of school years"):
        SchoolCalendar.from_mapping(FROLAND_2026_27)


def test_late_evening_utc_in_winter_is_the_next_day_in_oslo(froland):
    assert froland.local_date(datetime(2027, 1, 11, 23, 30, tzinfo=timezone.utc)) == date(2027, 1, 12)
    assert froland.local_date(datetime(2027, 7, 11, 21, 30, tzinfo=timezone.utc)) == date(2027, 7, 11)
    assert froland.local_date(datetime(2027, 7, 11, 22, 30, tzinfo=timezone.utc)) == date(2027, 7, 12)


def test_local_date_refuses_naive_datetimes(froland):
    with pytest.raises(ValueError, match="aware"):
        froland.local_date(datetime(2027, 1, 11, 23, 30))


@pytest.mark.parametrize("day, utc", [
    (date(2026, 10, 25), datetime(2026, 10, 24, 22, 0, tzinfo=timezone.utc)),  # summer time ends at 03:00 that day
    (date(2026, 10, 26), datetime(2026, 10, 25, 23, 0, tzinfo=timezone.utc)),
    (date(2027, 3, 28), datetime(2027, 3, 27, 23, 0, tzinfo=timezone.utc)),  # summer time starts at 02:00 that day
    (date(2027, 3, 29), datetime(2027, 3, 28, 22, 0, tzinfo=timezone.utc)),
])
def test_start_of_day_is_local_midnight_across_dst_changes(froland, day, utc):
    start = froland.start_of_day(day)
    assert (start.hour, start.minute) == (0, 0)
    assert start == utc
    assert froland.local_date(start) == day
    assert froland.local_date(start - timedelta(microseconds=1)) == day - timedelta(days=1)


def test_due_after_counts_from_today_when_the_due_date_has_passed():
    from connector.rules.calendar import SchoolCalendar

    calendar = SchoolCalendar()
    assert calendar.due_after(date(2026, 11, 26), 2) == date(2026, 11, 30)
    assert calendar.due_after(date(2026, 11, 26), 2, today=date(2026, 11, 27)) == date(2026, 11, 30)
    assert calendar.due_after(date(2026, 11, 26), 2, today=date(2026, 12, 7)) == date(2026, 12, 9)


# --- the ends of the calendar: nothing raises near date.min and date.max, whatever reaches a rule ----------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

AT_THE_ENDS = [date.min, date.min + timedelta(days=3), date.max - timedelta(days=3), date.max]
AROUND_THE_ENDS = st.one_of(
    st.dates(max_value=date.min + timedelta(days=40)),
    st.dates(min_value=date.max - timedelta(days=40)),
    st.dates(min_value=date(2024, 1, 1), max_value=date(2029, 12, 31)),
    st.dates(),
)


@pytest.mark.parametrize("kind", ["froland", "unconfigured"])
@pytest.mark.parametrize("day", AT_THE_ENDS)
def test_school_day_arithmetic_at_date_min_and_date_max_clamps_instead_of_raising(request, kind, day):
    calendar = request.getfixturevalue(kind)
    for n in (-10, -1, 0, 1, 10):
        moved = calendar.add_school_days(day, n)
        assert date.min <= moved <= date.max
        assert (moved >= day) if n >= 0 else (moved <= day)
        calendar.due_after(day, n, today=date(2026, 11, 23))
        calendar.due_after(date(2026, 11, 23), n, today=day)
    assert calendar.next_school_day(day) >= day
    for other in AT_THE_ENDS + [date(2026, 11, 23)]:
        assert calendar.school_days_between(day, other) == -calendar.school_days_between(other, day)
    assert calendar.school_days_between(day, day) == 0
    assert calendar.count_school_days(day, day) == int(calendar.is_school_day(day))
    assert len(calendar.school_days(day, min(day + timedelta(days=2), date.max) if day < date.max else day)) <= 3


def test_at_date_max_counting_forward_stays_on_the_last_day():
    calendar = SchoolCalendar()
    assert date.max.weekday() == 4  # a Friday: 9999-12-31 is itself a school day in the fallback
    assert calendar.add_school_days(date.max, 1) == date.max
    assert calendar.add_school_days(date.max - timedelta(days=3), 5) == date.max
    assert calendar.add_school_days(date.min, -1) == date.min
    assert calendar.school_days(date.max - timedelta(days=1), date.max) == [date.max - timedelta(days=1), date.max]


@pytest.mark.parametrize("moment, expected", [
    ("9999-12-31T23:59:59-01:00", date.max),
    ("9999-12-31T23:59:59+00:00", date.max),
    ("0001-01-01T00:00:00+01:00", date.min),
    ("0001-01-01T00:00:00+00:00", date.min),
])
def test_local_date_of_an_instant_at_the_ends_is_clamped(froland, moment, expected):
    assert froland.local_date(datetime.fromisoformat(moment)) == expected


@settings(max_examples=300, deadline=None)
@given(day=AROUND_THE_ENDS, other=AROUND_THE_ENDS, n=st.integers(min_value=-40, max_value=40))
def test_no_date_makes_the_calendar_raise(day, other, n):
    calendar = SchoolCalendar.from_mapping([FROLAND_2026_27])
    moved = calendar.add_school_days(day, n)
    assert date.min <= moved <= date.max
    calendar.due_after(day, n, today=other)
    assert calendar.school_days_between(day, other) == -calendar.school_days_between(other, day)
    calendar.local_date(datetime(day.year, day.month, day.day, tzinfo=timezone(timedelta(hours=n % 24 - 12))))


def test_school_days_by_slicing_agree_with_asking_day_by_day_inside_across_and_outside_the_years():
    """``school_days`` slices the expanded years; it must list exactly the days ``is_school_day`` accepts."""
    calendar = SchoolCalendar([SchoolYear(date(2025, 8, 18), date(2026, 6, 19)),
                               SchoolYear(date(2026, 8, 17), date(2027, 6, 18),
                                          breaks=((date(2026, 10, 5), date(2026, 10, 9)),))])

    @settings(max_examples=200, deadline=None)
    @given(st.dates(date(2025, 6, 1), date(2027, 9, 1)), st.integers(-5, 400))
    def agree(first, length):
        last = first + timedelta(days=length)
        expected = [first + timedelta(days=i) for i in range(max(length + 1, 0))
                    if calendar.is_school_day(first + timedelta(days=i))]
        assert calendar.school_days(first, last) == expected

    agree()
