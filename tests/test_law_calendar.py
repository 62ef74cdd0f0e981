"""The official holiday calendar that CPL Art. 85 rolls periods over (delivery_sdk.law.holidays).

Each case cites its source: the State Council General Office notice for the year (2025: 国办发明电〔2024〕12号
of 2024-11-12; 2026: notice of 2025-11-04), or CPL Art. 85 for the weekend rule.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from delivery_sdk import ValidationError
from delivery_sdk.law import (
    BEIJING,
    SHIPPED_YEARS,
    CalendarNotCovered,
    HolidayCalendar,
    beijing_date,
    default_calendar,
    load_calendar,
)

N2025 = "State Council notice on 2025 holidays (国办发明电〔2024〕12号)"
N2026 = "State Council notice on 2026 holidays (2025-11-04)"
ART85 = "CPL Art. 85"

# (day, working?, official holiday?, citation)
DAYS = [
    (date(2025, 1, 1), False, True, N2025 + " §1 元旦"),
    (date(2025, 1, 2), True, False, N2025 + " §1 元旦 (no adjustment)"),
    (date(2025, 1, 26), True, False, N2025 + " §2 春节: Sunday 26 Jan is a working day"),
    (date(2025, 1, 28), False, True, N2025 + " §2 春节 (农历除夕)"),
    (date(2025, 2, 4), False, True, N2025 + " §2 春节 (正月初七)"),
    (date(2025, 2, 5), True, False, N2025 + " §2 春节 ends 4 Feb"),
    (date(2025, 2, 8), True, False, N2025 + " §2 春节: Saturday 8 Feb is a working day"),
    (date(2025, 4, 27), True, False, N2025 + " §4 劳动节: Sunday 27 Apr is a working day"),
    (date(2025, 5, 5), False, True, N2025 + " §4 劳动节"),
    (date(2025, 5, 31), False, True, N2025 + " §5 端午节 (a Saturday inside the holiday)"),
    (date(2025, 9, 28), True, False, N2025 + " §6 国庆节: Sunday 28 Sep is a working day"),
    (date(2025, 10, 8), False, True, N2025 + " §6 国庆节、中秋节 (8 days)"),
    (date(2025, 10, 11), True, False, N2025 + " §6 国庆节: Saturday 11 Oct is a working day"),
    (date(2025, 10, 12), False, False, ART85 + ": an ordinary Sunday is a rest day"),
    (date(2025, 3, 15), False, False, ART85 + ": an ordinary Saturday is a rest day"),
    (date(2026, 1, 3), False, True, N2026 + " §1 元旦 (1-3 Jan)"),
    (date(2026, 1, 4), True, False, N2026 + " §1 元旦: Sunday 4 Jan is a working day"),
    (date(2026, 2, 14), True, False, N2026 + " §2 春节: Saturday 14 Feb is a working day"),
    (date(2026, 2, 15), False, True, N2026 + " §2 春节 (腊月二十八)"),
    (date(2026, 2, 23), False, True, N2026 + " §2 春节 (正月初七)"),
    (date(2026, 2, 24), True, False, N2026 + " §2 春节 ends 23 Feb"),
    (date(2026, 2, 28), True, False, N2026 + " §2 春节: Saturday 28 Feb is a working day"),
    (date(2026, 4, 6), False, True, N2026 + " §3 清明节"),
    (date(2026, 5, 9), True, False, N2026 + " §4 劳动节: Saturday 9 May is a working day"),
    (date(2026, 6, 19), False, True, N2026 + " §5 端午节"),
    (date(2026, 9, 20), True, False, N2026 + " §7 国庆节: Sunday 20 Sep is a working day"),
    (date(2026, 9, 25), False, True, N2026 + " §6 中秋节"),
    (date(2026, 10, 7), False, True, N2026 + " §7 国庆节 (1-7 Oct)"),
    (date(2026, 10, 8), True, False, N2026 + " §7 国庆节 ends 7 Oct"),
    (date(2026, 10, 10), True, False, N2026 + " §7 国庆节: Saturday 10 Oct is a working day"),
]


@pytest.mark.parametrize(("day", "working", "holiday", "cite"), DAYS, ids=[f"{d[0]}" for d in DAYS])
def test_shipped_calendar(day: date, working: bool, holiday: bool, cite: str) -> None:
    cal = default_calendar()
    assert cal.is_working_day(day) is working, cite
    assert cal.is_holiday(day) is holiday, cite
    assert cal.is_rest_day(day) is (not working), cite
    assert cal.is_rest_day(day, weekends=False) is holiday, cite


def test_shipped_calendar_counts_and_sources() -> None:
    cal = default_calendar()
    assert SHIPPED_YEARS == (2025, 2026)
    assert cal.years == {2025, 2026}
    # 2025: 1 + 8 + 3 + 5 + 3 + 8 = 28 holiday days; 5 adjusted working days (N2025).
    assert len({d for d in cal.holidays if d.year == 2025}) == 28
    assert sorted(d for d in cal.working_days if d.year == 2025) == [
        date(2025, 1, 26),
        date(2025, 2, 8),
        date(2025, 4, 27),
        date(2025, 9, 28),
        date(2025, 10, 11),
    ]
    # 2026: 3 + 9 + 3 + 5 + 3 + 3 + 7 = 33 holiday days; 6 adjusted working days (N2026).
    assert len({d for d in cal.holidays if d.year == 2026}) == 33
    assert len({d for d in cal.working_days if d.year == 2026}) == 6
    assert all(d.weekday() >= 5 for d in cal.working_days)
    assert "国办发明电〔2024〕12号" in cal.sources[2025]
    assert "2026年部分节假日安排" in cal.sources[2026]
    assert "https://" in cal.sources[2025]
    assert "https://" in cal.sources[2026]
    assert default_calendar() is cal  # read once


def test_shipped_files_carry_their_source_in_the_header() -> None:
    data = Path(__file__).resolve().parent.parent / "src" / "delivery_sdk" / "law" / "data"
    for year in SHIPPED_YEARS:
        head = (data / f"prc-{year}.toml").read_text(encoding="utf-8").splitlines()[:6]
        assert any(f"国务院办公厅关于{year}年部分节假日安排的通知" in line for line in head)
        assert any("https://" in line for line in head)


def test_uncovered_year_raises_unless_lenient() -> None:
    cal = default_calendar()
    with pytest.raises(CalendarNotCovered, match="2027"):
        cal.is_working_day(date(2027, 1, 4))
    assert issubclass(CalendarNotCovered, ValidationError)
    lenient = HolidayCalendar(holidays=(), years=(), strict=False)
    assert lenient.is_working_day(date(2027, 1, 4))  # Monday
    assert not lenient.is_working_day(date(2027, 1, 9))  # Saturday
    assert lenient.next_working_day(date(2027, 1, 9)) == date(2027, 1, 11)


def test_load_calendar_from_a_file(tmp_path: Path) -> None:
    f = tmp_path / "prc-2028.toml"
    f.write_text(
        "# test calendar (not an official notice)\n"
        'year = 2028\ntitle = "test"\nsource = "https://example.invalid/2028"\n'
        '[[holidays]]\nname = "x"\nfirst = 2028-01-31\nlast = 2028-02-02\n'
        '[[working_days]]\nname = "y"\ndates = [2028-02-05]\n',
        encoding="utf-8",
    )
    cal = load_calendar(f)
    assert cal.years == {2028}
    assert cal.holidays == {date(2028, 1, 31), date(2028, 2, 1), date(2028, 2, 2)}
    assert cal.is_working_day(date(2028, 2, 5))  # a Saturday made a working day
    assert cal.sources[2028] == "test <https://example.invalid/2028>"
    both = default_calendar().merged(cal)
    assert both.years == {2025, 2026, 2028}
    assert not both.is_working_day(date(2026, 2, 16))
    assert not both.is_working_day(date(2028, 2, 1))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("year = 2028\n[[holidays]]\nname = 'x'\nfirst = 2028-02-02\nlast = 2028-02-01\n", "first <= last"),
        ("year = 2028\n[[working_days]]\nname = 'x'\ndates = [2028-02-07]\n", "not a weekend day"),
        ("title = 'no year'\n", "not a holiday calendar"),
        ("year = 2028\n[[holidays]]\nname = 'x'\nfirst = 2029-01-01\nlast = 2029-01-01\n", "outside"),
        ("year = = 1", "invalid TOML"),
    ],
)
def test_load_calendar_rejects_bad_files(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationError, match=message):
        load_calendar(f)


def test_calendar_rejects_a_day_both_holiday_and_working() -> None:
    with pytest.raises(ValidationError, match="both"):
        HolidayCalendar(holidays={date(2028, 1, 1)}, working_days={date(2028, 1, 1)}, years={2028})
    with pytest.raises(ValidationError, match="at least one"):
        load_calendar()


def test_with_holidays_turns_a_working_day_into_a_holiday() -> None:
    cal = default_calendar().with_holidays(date(2026, 2, 14))
    assert not cal.is_working_day(date(2026, 2, 14))
    assert cal.is_holiday(date(2026, 2, 14))


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2025, 1, 27, 16, 0, tzinfo=UTC), date(2025, 1, 28)),  # 00:00 in Beijing
        (datetime(2025, 1, 27, 15, 59, 59, tzinfo=UTC), date(2025, 1, 27)),
        (datetime(2025, 1, 28, 1, 0, tzinfo=timezone(timedelta(hours=-5))), date(2025, 1, 28)),
        (datetime(2025, 1, 28, 0, 0, tzinfo=BEIJING), date(2025, 1, 28)),
        (date(2025, 1, 28), date(2025, 1, 28)),
    ],
)
def test_beijing_date(moment: datetime | date, expected: date) -> None:
    assert beijing_date(moment) == expected


def test_beijing_date_refuses_naive_datetimes() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        beijing_date(datetime(2025, 1, 28, 12, 0))


def test_calendars_are_immutable_values() -> None:
    cal = default_calendar()
    assert hash(cal) == hash(HolidayCalendar(holidays=cal.holidays, working_days=cal.working_days, years=cal.years))
    with pytest.raises(TypeError):
        cal.sources[2027] = "x"  # type: ignore[index]
