"""Period arithmetic (CPL Art. 85) and the deadlines that service starts (CPL Arts. 128, 139, 171, 285-286).

Every case cites its article; holiday cases also cite the State Council notice of the year. The shipped
calendar covers 2025 and 2026; leap-year cases use a configured 2028 calendar (a test calendar, not an
official notice).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery_sdk import ValidationError
from delivery_sdk.law import (
    BEIJING,
    CalendarNotCovered,
    Deadline,
    HolidayCalendar,
    LawConfig,
    add_months,
    deadlines_after_service,
    default_calendar,
    hearing_notice_in_time,
    is_timely,
    latest_notice_service,
    period_end,
    period_end_hours,
    period_end_months,
)
from delivery_sdk.model import DocumentKind

SF25 = "Spring Festival 2025 (28 Jan-4 Feb; 26 Jan, 8 Feb working)"
ND25 = "National Day 2025 (1-8 Oct; 28 Sep, 11 Oct working)"
SF26 = "Spring Festival 2026 (15-23 Feb; 14, 28 Feb working)"
ND26 = "National Day 2026 (1-7 Oct; 20 Sep, 10 Oct working)"
J, R, C = DocumentKind.JUDGMENT, DocumentKind.RULING, DocumentKind.COMPLAINT

# (kind, served on, due, citation)
DEADLINES = [
    (C, date(2025, 1, 20), date(2025, 2, 5), "CPL Arts. 128, 85: day 15 = 4 Feb, last day of " + SF25),
    (J, date(2025, 1, 13), date(2025, 2, 5), "CPL Arts. 171, 85: day 15 = 28 Jan (除夕), " + SF25),
    (R, date(2025, 1, 16), date(2025, 1, 26), "CPL Arts. 171, 85: day 10 = Sunday 26 Jan, working, " + SF25),
    (R, date(2025, 1, 29), date(2025, 2, 8), "CPL Arts. 171, 85: day 10 = Saturday 8 Feb, working, " + SF25),
    (J, date(2025, 9, 16), date(2025, 10, 9), "CPL Arts. 171, 85: day 15 = 1 Oct, " + ND25),
    (C, date(2025, 9, 13), date(2025, 9, 28), "CPL Arts. 128, 85: day 15 = Sunday 28 Sep, working, " + ND25),
    (R, date(2025, 10, 1), date(2025, 10, 11), "CPL Arts. 171, 85: day 10 = Saturday 11 Oct, working, " + ND25),
    (J, date(2025, 9, 27), date(2025, 10, 13), "CPL Arts. 171, 85: day 15 = ordinary Sunday 12 Oct"),
    (J, date(2026, 1, 31), date(2026, 2, 24), "CPL Arts. 171, 85: day 15 = 15 Feb, " + SF26),
    (R, date(2026, 2, 4), date(2026, 2, 14), "CPL Arts. 171, 85: day 10 = Saturday 14 Feb, working, " + SF26),
    (R, date(2026, 2, 18), date(2026, 2, 28), "CPL Arts. 171, 85: day 10 = Saturday 28 Feb, working, " + SF26),
    (C, date(2026, 2, 6), date(2026, 2, 24), "CPL Arts. 128, 85: day 15 = 21 Feb, " + SF26),
    (J, date(2026, 9, 16), date(2026, 10, 8), "CPL Arts. 171, 85: day 15 = 1 Oct, " + ND26),
    (R, date(2026, 9, 10), date(2026, 9, 20), "CPL Arts. 171, 85: day 10 = Sunday 20 Sep, working, " + ND26),
    (R, date(2026, 9, 30), date(2026, 10, 10), "CPL Arts. 171, 85: day 10 = Saturday 10 Oct, working, " + ND26),
    (C, date(2026, 9, 10), date(2026, 9, 28), "CPL Arts. 128, 85: day 15 = 25 Sep, Mid-Autumn 2026 (25-27 Sep)"),
    (R, date(2025, 12, 22), date(2026, 1, 4), "CPL Arts. 171, 85: across the year end, 1-3 Jan 2026 off, 4 Jan on"),
    (C, date(2025, 3, 16), date(2025, 3, 31), "CPL Arts. 128, 85: month end on a Monday"),
    (R, date(2025, 2, 18), date(2025, 2, 28), "CPL Arts. 171, 85: end of February 2025 (not a leap year)"),
    (J, date(2025, 12, 16), date(2025, 12, 31), "CPL Arts. 171, 85: year end on a Wednesday"),
    (C, date(2025, 3, 7), date(2025, 3, 24), "CPL Arts. 128, 85: day 15 = ordinary Saturday 22 Mar"),
    (R, date(2025, 4, 21), date(2025, 5, 6), "CPL Arts. 171, 85: Labour Day 2025 (1-5 May)"),
    (R, date(2025, 4, 17), date(2025, 4, 27), "CPL Arts. 171, 85: Sunday 27 Apr 2025 is a working day"),
    (R, date(2026, 3, 25), date(2026, 4, 7), "CPL Arts. 171, 85: Qingming 2026 (4-6 Apr)"),
    (J, date(2025, 5, 16), date(2025, 6, 3), "CPL Arts. 171, 85: Dragon Boat 2025 (31 May-2 Jun)"),
    (J, date(2026, 4, 16), date(2026, 5, 6), "CPL Arts. 171, 85: Labour Day 2026 (1-5 May)"),
    (R, date(2026, 4, 29), date(2026, 5, 9), "CPL Arts. 171, 85: Saturday 9 May 2026 is a working day"),
]


@pytest.mark.parametrize(("kind", "served", "due", "cite"), DEADLINES, ids=[f"{d[1]}-{d[0].value}" for d in DEADLINES])
def test_deadline_after_service(kind: DocumentKind, served: date, due: date, cite: str) -> None:
    [deadline] = deadlines_after_service(kind, served)
    assert deadline.due == due, cite
    assert deadline.start == served
    article = "Art. 128" if kind is C else "Art. 171"
    assert article in deadline.basis, cite
    assert "Art. 85" in deadline.basis, cite
    assert deadline.name == ("defence" if kind is C else "appeal")
    assert deadline.days == (10 if kind is R else 15)


# (start, days, due with weekends rolling, due with only official holidays rolling, citation)
NO_WEEKEND = [
    (date(2025, 3, 7), 15, date(2025, 3, 24), date(2025, 3, 22), "CPL Art. 85: Saturday not a 法定休假日 if so chosen"),
    (date(2026, 1, 31), 15, date(2026, 2, 24), date(2026, 2, 24), "CPL Art. 85; " + SF26),
    (date(2025, 9, 27), 15, date(2025, 10, 13), date(2025, 10, 12), "CPL Art. 85: ordinary Sunday"),
    (date(2026, 9, 10), 15, date(2026, 9, 28), date(2026, 9, 28), "CPL Art. 85: Mid-Autumn 2026"),
]


@pytest.mark.parametrize(("start", "days", "due", "due_holidays_only", "cite"), NO_WEEKEND)
def test_weekends_roll_over_is_configurable(
    start: date, days: int, due: date, due_holidays_only: date, cite: str
) -> None:
    assert period_end(start, days) == due, cite
    assert period_end(start, days, config=LawConfig(weekends_roll_over=False)) == due_holidays_only, cite
    assert period_end(start, days, roll_over=False) == start + timedelta(days=days), cite


def _cal_2028() -> HolidayCalendar:
    """A configured 2028 calendar (hypothetical holiday on Wednesday 1 March, for the test only)."""
    return HolidayCalendar(holidays={date(2028, 3, 1)}, years={2028}, sources={2028: "test calendar"})


LEAP = [
    (date(2028, 2, 14), 15, date(2028, 2, 29), "CPL Art. 85: 29 Feb 2028 exists and is a Tuesday"),
    (date(2028, 2, 15), 15, date(2028, 3, 2), "CPL Art. 85: day 15 = 1 Mar, a configured holiday"),
    (date(2028, 2, 20), 10, date(2028, 3, 2), "CPL Art. 85: 29 Feb counted, day 10 = 1 Mar, a holiday"),
    (date(2028, 2, 19), 10, date(2028, 2, 29), "CPL Art. 85: day 10 = the leap day 29 Feb"),
    (date(2028, 2, 4), 25, date(2028, 2, 29), "CPL Art. 85: the leap day counts as a day"),
]


@pytest.mark.parametrize(("start", "days", "due", "cite"), LEAP)
def test_leap_year_with_a_configured_calendar(start: date, days: int, due: date, cite: str) -> None:
    assert period_end(start, days, _cal_2028()) == due, cite


def test_a_date_outside_the_calendar_is_refused() -> None:
    with pytest.raises(CalendarNotCovered):
        period_end(date(2026, 12, 20), 15)  # ends 4 Jan 2027: no 2027 notice shipped


MONTHS = [
    (date(2025, 1, 31), 1, date(2025, 2, 28), "Civil Code Art. 202: no 31 Feb, last day of February"),
    (date(2028, 1, 31), 1, date(2028, 2, 29), "Civil Code Art. 202: leap year"),
    (date(2025, 8, 31), 1, date(2025, 9, 30), "Civil Code Art. 202: no 31 Sep"),
    (date(2025, 12, 31), 2, date(2026, 2, 28), "Civil Code Art. 202: across the year end"),
    (date(2025, 11, 30), 3, date(2026, 2, 28), "Civil Code Art. 202: 28 Feb 2026"),
    (date(2028, 2, 29), 12, date(2029, 2, 28), "Civil Code Art. 202: a year from a leap day"),
    (date(2025, 5, 28), 3, date(2025, 8, 28), "SPC 2014 answer on periods: corresponding day"),
]


@pytest.mark.parametrize(("start", "months", "end", "cite"), MONTHS)
def test_add_months(start: date, months: int, end: date, cite: str) -> None:
    assert add_months(start, months) == end, cite


MONTH_PERIODS = [
    (date(2025, 7, 1), 3, date(2025, 10, 9), "CPL Art. 85; Civil Code Art. 202: 1 Oct 2025, " + ND25),
    (date(2025, 11, 30), 3, date(2026, 2, 28), "CPL Art. 85: Saturday 28 Feb 2026 is a working day, " + SF26),
    (date(2025, 11, 15), 3, date(2026, 2, 24), "CPL Art. 85: 15 Feb 2026, " + SF26),
    (date(2025, 10, 31), 3, date(2026, 2, 2), "CPL Art. 85; Civil Code Art. 202: 31 Jan 2026 is a Saturday"),
]


@pytest.mark.parametrize(("start", "months", "end", "cite"), MONTH_PERIODS)
def test_period_in_months(start: date, months: int, end: date, cite: str) -> None:
    assert period_end_months(start, months) == end, cite


def test_period_in_months_over_a_leap_year() -> None:
    lenient = HolidayCalendar(holidays=(), years=(), strict=False)
    # CPL Art. 85; Civil Code Art. 202: 29 Feb 2028 + 12 months = Wednesday 28 Feb 2029
    assert period_end_months(date(2028, 2, 29), 12, lenient) == date(2029, 2, 28)
    # CPL Art. 85: 31 Jan 2028 + 1 month = Tuesday 29 Feb 2028
    assert period_end_months(date(2028, 1, 31), 1, _cal_2028()) == date(2028, 2, 29)


def test_hours_do_not_count_the_starting_hour() -> None:
    # CPL Art. 85: "期间开始的时...不计算在期间内" — counting starts at the next full hour
    start = datetime(2025, 3, 1, 10, 25, tzinfo=BEIJING)
    assert period_end_hours(start, 24) == datetime(2025, 3, 2, 11, 0, tzinfo=BEIJING)
    assert period_end_hours(datetime(2025, 3, 1, 2, 25, tzinfo=UTC), 1) == datetime(2025, 3, 1, 12, 0, tzinfo=BEIJING)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_periods_need_a_positive_whole_number(bad: object) -> None:
    with pytest.raises(ValidationError):
        period_end(date(2025, 3, 3), bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        period_end_months(date(2025, 3, 3), bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        period_end_hours(datetime(2025, 3, 3, tzinfo=UTC), bad)  # type: ignore[arg-type]


SERVED_AT = [
    (
        C,
        datetime(2025, 3, 6, 17, 0, tzinfo=UTC),
        date(2025, 3, 24),
        "CPL Arts. 128, 85: 01:00 on 7 Mar in Beijing; day 15 = Saturday 22 Mar",
    ),
    (
        C,
        datetime(2025, 3, 6, 15, 0, tzinfo=UTC),
        date(2025, 3, 21),
        "CPL Arts. 128, 85: 23:00 on 6 Mar in Beijing; day 15 = Friday 21 Mar",
    ),
    (
        J,
        datetime(2025, 1, 13, 9, 0, tzinfo=BEIJING),
        date(2025, 2, 5),
        "CPL Arts. 171, 85: the time of day does not matter, " + SF25,
    ),
]


@pytest.mark.parametrize(("kind", "served_at", "due", "cite"), SERVED_AT)
def test_service_moments_count_in_beijing_time(kind: DocumentKind, served_at: datetime, due: date, cite: str) -> None:
    [deadline] = deadlines_after_service(kind, served_at)
    assert deadline.due == due, cite


ABROAD = [
    (C, date(2025, 9, 1), date(2025, 10, 9), "defence", "Art. 285", "CPL Arts. 285, 85: 30 days; " + ND25),
    (J, date(2026, 1, 16), date(2026, 2, 24), "appeal", "Art. 286", "CPL Arts. 286, 85: 30 days; " + SF26),
    (R, date(2026, 1, 16), date(2026, 2, 24), "appeal", "Art. 286", "CPL Arts. 286, 85: 30 days for rulings too"),
]


@pytest.mark.parametrize(("kind", "served", "due", "name", "article", "cite"), ABROAD)
def test_deadlines_for_a_party_without_prc_domicile(
    kind: DocumentKind, served: date, due: date, name: str, article: str, cite: str
) -> None:
    [deadline] = deadlines_after_service(kind, served, domiciled_abroad=True)
    assert (deadline.name, deadline.due, deadline.days) == (name, due, 30), cite
    assert article in deadline.basis, cite


@pytest.mark.parametrize(
    "kind", [DocumentKind.SUMMONS, DocumentKind.NOTICE, DocumentKind.MEDIATION, DocumentKind.OTHER]
)
def test_documents_that_start_no_period(kind: DocumentKind) -> None:
    # CPL Art. 100: a mediation document is effective on signature, no appeal; a summons/notice starts none
    assert deadlines_after_service(kind, date(2025, 3, 3)) == []


HEARINGS = [
    (date(2025, 3, 10), False, date(2025, 3, 7), "CPL Art. 139: served on the third day before is in time"),
    (date(2025, 3, 10), True, date(2025, 3, 6), "CPL Art. 139: three clear days between, if so chosen"),
    (date(2026, 2, 24), False, date(2026, 2, 21), "CPL Art. 139: a holiday does not move the court's limit"),
    (date(2025, 3, 2), False, date(2025, 2, 27), "CPL Art. 139: across a month end"),
    (date(2028, 3, 2), False, date(2028, 2, 28), "CPL Art. 139: across the leap day"),
]


@pytest.mark.parametrize(("hearing", "clear", "latest", "cite"), HEARINGS)
def test_latest_notice_service(hearing: date, clear: bool, latest: date, cite: str) -> None:
    config = LawConfig(hearing_notice_clear_days=clear)
    assert latest_notice_service(hearing, config) == latest, cite
    assert hearing_notice_in_time(latest, hearing, config), cite
    assert not hearing_notice_in_time(latest + timedelta(days=1), hearing, config), cite


def test_latest_notice_service_from_an_aware_hearing_time() -> None:
    # CPL Art. 139: a hearing at 09:00 Beijing on 10 March; served at 23:30 Beijing on 7 March is in time
    hearing = datetime(2025, 3, 10, 1, 0, tzinfo=UTC)
    assert hearing_notice_in_time(datetime(2025, 3, 7, 15, 30, tzinfo=UTC), hearing)
    assert not hearing_notice_in_time(datetime(2025, 3, 7, 16, 30, tzinfo=UTC), hearing)  # 00:30 on the 8th


TIMELY = [
    (datetime(2025, 2, 5, 15, 59, tzinfo=UTC), True, "CPL Art. 85(4): posted 23:59 Beijing on the last day"),
    (datetime(2025, 2, 5, 16, 0, tzinfo=UTC), False, "CPL Art. 85(4): posted 00:00 Beijing the day after"),
    (date(2025, 2, 4), True, "CPL Art. 85(4): posted before the last day, arriving later"),
    (date(2025, 2, 6), False, "CPL Art. 85(4): posted after expiry"),
]


@pytest.mark.parametrize(("posted", "timely", "cite"), TIMELY)
def test_is_timely(posted: datetime | date, timely: bool, cite: str) -> None:
    [deadline] = deadlines_after_service(J, date(2025, 1, 13))  # due 5 Feb 2025 (Spring Festival roll-over)
    assert is_timely(posted, deadline) is timely, cite
    assert is_timely(posted, deadline.due) is timely, cite


# -- properties ------------------------------------------------------------------------------------------

COVERED = st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 10, 31))


@settings(max_examples=300, deadline=None)
@given(served=COVERED, kind=st.sampled_from(list(DocumentKind)), abroad=st.booleans())
def test_a_deadline_never_precedes_its_service_date(served: date, kind: DocumentKind, abroad: bool) -> None:
    # CPL Art. 85: the first day is not counted, so the last day is after the service day
    for deadline in deadlines_after_service(kind, served, domiciled_abroad=abroad):
        assert isinstance(deadline, Deadline)
        assert deadline.due > served
        assert deadline.due >= served + timedelta(days=deadline.days)


@settings(max_examples=300, deadline=None)
@given(start=COVERED, days=st.integers(1, 45), weekends=st.booleans())
def test_a_period_ends_on_the_first_non_rest_day_from_its_nominal_end(start: date, days: int, weekends: bool) -> None:
    # CPL Art. 85: the last day rolls over rest days, and only over rest days
    cal = default_calendar()
    end = period_end(start, days, cal, LawConfig(weekends_roll_over=weekends))
    nominal = start + timedelta(days=days)
    assert end >= nominal
    assert not cal.is_rest_day(end, weekends=weekends)
    day = nominal
    while day < end:
        assert cal.is_rest_day(day, weekends=weekends)
        day += timedelta(days=1)


@settings(max_examples=300, deadline=None)
@given(start=COVERED, days=st.integers(1, 45), extra=COVERED, weekends=st.booleans())
def test_adding_a_holiday_never_shortens_a_period(start: date, days: int, extra: date, weekends: bool) -> None:
    # CPL Art. 85: more rest days can only push the last day later
    config = LawConfig(weekends_roll_over=weekends)
    cal = default_calendar()
    assert period_end(start, days, cal.with_holidays(extra), config) >= period_end(start, days, cal, config)


@settings(max_examples=200, deadline=None)
@given(start=COVERED, later=st.integers(0, 30), days=st.integers(1, 30))
def test_later_service_never_gives_an_earlier_deadline(start: date, later: int, days: int) -> None:
    # CPL Art. 85: the end is monotone in the start
    assert period_end(start + timedelta(days=later), days) >= period_end(start, days)
