"""The official PRC holiday calendar that CPL Art. 85 rolls periods over.

CPL Art. 85(3): "期间届满的最后一日是法定休假日的，以法定休假日后的第一日为期间届满的日期" — a period whose last
day is a rest day ends on the next working day. Which days are rest days is fixed each year by a State
Council General Office notice (国务院办公厅关于XXXX年部分节假日安排的通知): the holidays, and the weekend days
that become working days in exchange (调休上班日). Those notices ship as TOML files under ``data/``
(``prc-2025.toml``, ``prc-2026.toml``), each with its source in its header; :func:`load_calendar` reads any
such file, so a deployment adds next year's notice without a release.

A :class:`HolidayCalendar` answers for the years it covers; for any other year it raises
:class:`CalendarNotCovered` (a deadline computed on a guessed calendar is worse than none) unless it was
built with ``strict=False``, in which case only weekends are rest days there.

Dates are Beijing dates: :func:`beijing_date` turns an aware datetime into the date in Asia/Shanghai.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from .._exceptions import ValidationError

__all__ = [
    "BEIJING",
    "SHIPPED_YEARS",
    "CalendarNotCovered",
    "HolidayCalendar",
    "beijing_date",
    "default_calendar",
    "load_calendar",
]

try:
    BEIJING: timezone | ZoneInfo = ZoneInfo("Asia/Shanghai")
except ZoneInfoNotFoundError:  # pragma: no cover - no tz database: China has kept UTC+8 without DST since 1991
    BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

SHIPPED_YEARS = (2025, 2026)


class CalendarNotCovered(ValidationError):
    """A date in a year the holiday calendar has no official notice for."""


def beijing_date(moment: datetime | date) -> date:
    """The Beijing (Asia/Shanghai) date of ``moment``; a plain ``date`` is taken as already a Beijing date.

    Raises :class:`ValidationError` for a naive datetime: a legal date cannot be guessed from one."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValidationError("a service moment must be a timezone-aware datetime")
        return moment.astimezone(BEIJING).date()
    return moment


def _dates(values: Iterable[date]) -> frozenset[date]:
    out = frozenset(values)
    for d in out:
        if not isinstance(d, date) or isinstance(d, datetime):
            raise ValidationError(f"calendar entries must be dates, got {type(d).__name__}")
    return out


def _sources(values: Mapping[int, str]) -> Mapping[int, str]:
    return MappingProxyType(dict(values))


def _years(values: Iterable[int]) -> frozenset[int]:
    return frozenset(int(y) for y in values)


@attrs.frozen(kw_only=True)
class HolidayCalendar:
    """Rest and working days per the State Council notices (the calendar CPL Art. 85 rolls periods over).

    ``holidays``: the rest days of the official arrangements (weekend days inside a holiday range included).
    ``working_days``: weekend days that are working days (调休上班日). ``years``: the years these lists fully
    describe. ``sources``: year -> the notice (title and URL) the year comes from.
    """

    holidays: frozenset[date] = attrs.field(converter=_dates)
    working_days: frozenset[date] = attrs.field(default=frozenset(), converter=_dates)
    years: frozenset[int] = attrs.field(converter=_years)
    sources: Mapping[int, str] = attrs.field(factory=dict, converter=_sources, eq=False)
    strict: bool = True

    def __attrs_post_init__(self) -> None:
        both = self.holidays & self.working_days
        if both:
            raise ValidationError(f"dates both holiday and working day: {sorted(both)}")
        for d in self.holidays | self.working_days:
            if d.year not in self.years:
                raise ValidationError(f"{d} lies outside the calendar's years {sorted(self.years)}")

    def covers(self, day: date) -> bool:
        return day.year in self.years

    def _check(self, day: date) -> None:
        if self.strict and day.year not in self.years:
            covered = ", ".join(str(y) for y in sorted(self.years)) or "none"
            raise CalendarNotCovered(
                f"no official holiday calendar for {day.year} (covered: {covered}); load the State Council "
                "notice for that year with load_calendar() or build the HolidayCalendar with strict=False"
            )

    def is_holiday(self, day: date) -> bool:
        """An official holiday (a day of a State Council holiday arrangement)."""
        self._check(day)
        return day in self.holidays

    def is_working_day(self, day: date) -> bool:
        """A working day: an adjusted working day, or a Monday-Friday that is no holiday."""
        self._check(day)
        if day in self.working_days:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def is_rest_day(self, day: date, *, weekends: bool = True) -> bool:
        """A day a period may not end on (CPL Art. 85). ``weekends=False``: only official holidays count."""
        if weekends:
            return not self.is_working_day(day)
        return self.is_holiday(day)

    def next_working_day(self, day: date, *, weekends: bool = True) -> date:
        """``day`` itself if it is no rest day, else the first day after it that is none (CPL Art. 85)."""
        while self.is_rest_day(day, weekends=weekends):
            day += timedelta(days=1)
        return day

    def with_holidays(self, *days: date) -> HolidayCalendar:
        """A copy with more holidays (a day also listed as a working day stops being one)."""
        extra = frozenset(days)
        return attrs.evolve(
            self,
            holidays=self.holidays | extra,
            working_days=self.working_days - extra,
            years=self.years | {d.year for d in extra},
        )

    def merged(self, other: HolidayCalendar) -> HolidayCalendar:
        """The union of two calendars; ``other`` wins for the years it covers."""
        keep_h = {d for d in self.holidays if d.year not in other.years}
        keep_w = {d for d in self.working_days if d.year not in other.years}
        return HolidayCalendar(
            holidays=keep_h | other.holidays,
            working_days=keep_w | other.working_days,
            years=self.years | other.years,
            sources={**self.sources, **other.sources},
            strict=self.strict and other.strict,
        )


def _parse(data: Mapping[str, Any], origin: str) -> HolidayCalendar:
    try:
        year = int(data["year"])
        holidays: set[date] = set()
        for entry in data.get("holidays", ()):
            first, last = entry["first"], entry["last"]
            if not isinstance(first, date) or not isinstance(last, date) or last < first:
                raise ValidationError(f"{origin}: holiday {entry.get('name', '?')!r} needs dates first <= last")
            day = first
            while day <= last:
                holidays.add(day)
                day += timedelta(days=1)
        working: set[date] = set()
        for entry in data.get("working_days", ()):
            working.update(entry["dates"])
        title, source = str(data.get("title", "")), str(data.get("source", ""))
    except (KeyError, TypeError) as exc:
        raise ValidationError(f"{origin}: not a holiday calendar file ({exc!r})") from exc
    for d in working:
        if isinstance(d, date) and d.weekday() < 5:
            raise ValidationError(f"{origin}: adjusted working day {d} is not a weekend day")
    return HolidayCalendar(
        holidays=holidays,
        working_days=working,
        years={year},
        sources={year: f"{title} <{source}>" if source else title},
    )


def load_calendar(*files: str | Path) -> HolidayCalendar:
    """A calendar from one or more TOML notice files (the format of the shipped ``data/prc-YYYY.toml``)."""
    if not files:
        raise ValidationError("load_calendar needs at least one file")
    calendars = []
    for f in files:
        path = Path(f)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValidationError(f"{path.name}: invalid TOML ({exc})") from exc
        calendars.append(_parse(data, path.name))
    result = calendars[0]
    for cal in calendars[1:]:
        result = result.merged(cal)
    return result


_DEFAULT: HolidayCalendar | None = None


def default_calendar() -> HolidayCalendar:
    """The shipped calendar: the State Council notices for :data:`SHIPPED_YEARS` (read once)."""
    global _DEFAULT
    if _DEFAULT is None:
        result: HolidayCalendar | None = None
        for year in SHIPPED_YEARS:
            text = resources.files(__package__).joinpath("data", f"prc-{year}.toml").read_text(encoding="utf-8")
            cal = _parse(tomllib.loads(text), f"prc-{year}.toml")
            result = cal if result is None else result.merged(cal)
        assert result is not None
        _DEFAULT = result
    return _DEFAULT
