"""Period arithmetic (CPL Art. 85) and the deadlines that service starts.

CPL Art. 85 (2023 text):

- periods are counted in hours, days, months or years; **the hour and the day a period starts in are not
  counted** (a 15-day period starting with service on 1 March runs 2 March ... 16 March);
- **a period whose last day is a rest day (法定休假日) ends on the next working day**; rest days inside the
  period are counted as usual (SPC answer of 2014-12-12 on computing periods: Saturdays and Sundays are rest
  days too; see :class:`~delivery_sdk.law.config.LawConfig.weekends_roll_over`);
- time in the post is not counted: a filing posted before the period expires is in time (:func:`is_timely`).

Months and years (the CPL is silent; Civil Code Art. 202 and the same SPC answer): the period ends on the
corresponding day of the last month, or on that month's last day when it has no such day.

The deadlines that service starts (:func:`deadlines_after_service`): defence 15 days from service of the
complaint (CPL Art. 128), appeal 15 days from service of a judgment and 10 days from service of a ruling
(CPL Art. 171); 30 days for both when the party has no domicile in the PRC (CPL Arts. 285-286). Hearing
notice at least 3 days before the hearing (CPL Art. 139): :func:`latest_notice_service`.

Every date here is a Beijing date (Asia/Shanghai); aware datetimes are converted first.

Calendars: :func:`period_end` and its kin use, when given none, the official notices only
(:func:`~delivery_sdk.law.holidays.default_calendar`: a year without a notice raises ``CalendarNotCovered``),
since a bare date cannot say it is provisional. :func:`deadlines_after_service` uses
:func:`~delivery_sdk.law.holidays.effective_calendar`, provisional calendars included, and every
:class:`Deadline` says whether its last day rests on one (``provisional``, ``calendar``).
"""

from __future__ import annotations

import calendar as _stdcal
from datetime import date, datetime, timedelta

import attrs

from .._exceptions import ValidationError
from ..model import DocumentKind
from .config import LawConfig
from .holidays import BEIJING, HolidayCalendar, beijing_date, default_calendar, effective_calendar

__all__ = [
    "BASIS_APPEAL_JUDGMENT",
    "BASIS_APPEAL_RULING",
    "BASIS_DEFENCE",
    "BASIS_FOREIGN_APPEAL",
    "BASIS_FOREIGN_DEFENCE",
    "BASIS_HEARING_NOTICE",
    "BASIS_PERIOD",
    "Deadline",
    "add_months",
    "deadlines_after_service",
    "hearing_notice_in_time",
    "is_timely",
    "latest_notice_service",
    "period_end",
    "period_end_hours",
    "period_end_months",
]

BASIS_PERIOD = "CPL Art. 85"
BASIS_MONTHS = "CPL Art. 85; Civil Code Art. 202"
BASIS_DEFENCE = "CPL Art. 128 (defence within 15 days of service of the complaint); CPL Art. 85"
BASIS_APPEAL_JUDGMENT = "CPL Art. 171 (appeal within 15 days of service of the judgment); CPL Art. 85"
BASIS_APPEAL_RULING = "CPL Art. 171 (appeal within 10 days of service of the ruling); CPL Art. 85"
BASIS_FOREIGN_DEFENCE = "CPL Art. 285 (no domicile in the PRC: defence within 30 days); CPL Art. 85"
BASIS_FOREIGN_APPEAL = "CPL Art. 286 (no domicile in the PRC: appeal within 30 days); CPL Art. 85"
BASIS_HEARING_NOTICE = "CPL Art. 139 (notice of the hearing at least 3 days before it)"

DEFENCE_DAYS = 15  # CPL Art. 128
APPEAL_JUDGMENT_DAYS = 15  # CPL Art. 171
APPEAL_RULING_DAYS = 10  # CPL Art. 171
FOREIGN_DAYS = 30  # CPL Arts. 285-286

_DEFAULT_CONFIG = LawConfig()


@attrs.frozen(kw_only=True)
class Deadline:
    """A period that service started: what it is, its last day (Beijing date, rolled over) and its basis.

    ``provisional``: the last day was fixed on a provisional calendar (a year whose State Council notice is
    not loaded: statutory holidays and weekends only), so it may move when the notice is loaded; ``calendar``
    says what the calendar of the last day's year(s) rests on (the notice, or the provisional rule)."""

    name: str
    due: date
    basis: str
    start: date  # the day the period started (service day, not counted)
    days: int
    provisional: bool = False
    calendar: str = ""

    @property
    def label(self) -> str:
        """``"暂定 provisional"`` for a provisional deadline, else ``""``: for a screen or a report."""
        return "暂定 provisional" if self.provisional else ""


def _cal(calendar: HolidayCalendar | None) -> HolidayCalendar:
    return default_calendar() if calendar is None else calendar


def _roll(end: date, calendar: HolidayCalendar | None, config: LawConfig, roll: bool = True) -> date:
    if not roll:
        return end
    return _cal(calendar).next_working_day(end, weekends=config.weekends_roll_over)


def period_end(
    start: date | datetime,
    days: int,
    calendar: HolidayCalendar | None = None,
    config: LawConfig = _DEFAULT_CONFIG,
    *,
    roll_over: bool = True,
) -> date:
    """The last day of a period of ``days`` days starting on ``start`` (CPL Art. 85).

    The start day is not counted, so the nominal end is ``start + days``; if that is a rest day the period
    ends on the next working day (adjusted working days, 调休上班日, are working days)."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValidationError(f"a period needs a positive number of days, got {days!r}")
    first = beijing_date(start)
    return _roll(first + timedelta(days=days), calendar, config, roll_over)


def add_months(start: date, months: int) -> date:
    """The corresponding day ``months`` later, or that month's last day (Civil Code Art. 202)."""
    index = start.year * 12 + (start.month - 1) + months
    year, month = divmod(index, 12)
    last = _stdcal.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(start.day, last))


def period_end_months(
    start: date | datetime,
    months: int,
    calendar: HolidayCalendar | None = None,
    config: LawConfig = _DEFAULT_CONFIG,
    *,
    roll_over: bool = True,
) -> date:
    """The last day of a period of ``months`` months (years: 12 * years) starting on ``start``.

    CPL Art. 85 with Civil Code Art. 202: the corresponding day of the last month, or its last day when it
    has none (31 Jan + 1 month = 28/29 Feb); then rolled over a rest day."""
    if isinstance(months, bool) or not isinstance(months, int) or months < 1:
        raise ValidationError(f"a period needs a positive number of months, got {months!r}")
    return _roll(add_months(beijing_date(start), months), calendar, config, roll_over)


def period_end_hours(start: datetime, hours: int) -> datetime:
    """The end of a period of ``hours`` hours (CPL Art. 85: the starting hour is not counted).

    Counting begins at the next full hour after ``start`` (Beijing time); the result is aware, in Beijing."""
    if isinstance(hours, bool) or not isinstance(hours, int) or hours < 1:
        raise ValidationError(f"a period needs a positive number of hours, got {hours!r}")
    beijing_date(start)  # validates awareness
    local = start.astimezone(BEIJING).replace(minute=0, second=0, microsecond=0)
    return local + timedelta(hours=hours + 1)


def is_timely(posted_at: datetime | date, deadline: date | Deadline) -> bool:
    """Whether a filing handed to the post (or filed) at ``posted_at`` is in time (CPL Art. 85(4)).

    Time in the post is not counted: what matters is the Beijing date of posting, which must not be after
    the last day of the period."""
    due = deadline.due if isinstance(deadline, Deadline) else deadline
    return beijing_date(posted_at) <= due


def _deadline(name: str, days: int, basis: str, start: date, calendar: HolidayCalendar, config: LawConfig) -> Deadline:
    due = period_end(start, days, calendar, config)
    # The roll-over looked at the days from the nominal end to the last day: their years decide.
    years = range((start + timedelta(days=days)).year, due.year + 1)
    provisional = any(calendar.is_provisional(y) for y in years)
    sources = "; ".join(dict.fromkeys(calendar.source(y) for y in years))
    return Deadline(name=name, due=due, basis=basis, start=start, days=days, provisional=provisional, calendar=sources)


def deadlines_after_service(
    document_kind: DocumentKind,
    served_at: date | datetime,
    calendar: HolidayCalendar | None = None,
    config: LawConfig = _DEFAULT_CONFIG,
    *,
    domiciled_abroad: bool = False,
) -> list[Deadline]:
    """The periods that service of a document of ``document_kind`` on ``served_at`` starts.

    - complaint (起诉状副本): defence, 15 days (CPL Art. 128); 30 days if the party has no domicile in the PRC
      (CPL Art. 285);
    - judgment: appeal, 15 days (CPL Art. 171); 30 days without PRC domicile (CPL Art. 286);
    - ruling: appeal, 10 days (CPL Art. 171; only the appealable rulings — refusal to accept a case, an
      objection to jurisdiction, dismissal of the suit — but the SDK cannot tell them apart, so it shows the
      period and the court decides); 30 days without PRC domicile (CPL Art. 286);
    - anything else (summons, notice, mediation document, other): none. A mediation document takes effect on
      signature and cannot be appealed (CPL Art. 100).

    ``calendar`` defaults to :func:`~delivery_sdk.law.holidays.effective_calendar`: the official notices, and
    provisional calendars for the other years to 2099 (the deadline then says ``provisional``). Raises
    ``CalendarNotCovered`` only for a last day beyond every calendar.
    """
    start = beijing_date(served_at)
    calendar = effective_calendar() if calendar is None else calendar
    if document_kind is DocumentKind.COMPLAINT:
        if domiciled_abroad:
            return [_deadline("defence", FOREIGN_DAYS, BASIS_FOREIGN_DEFENCE, start, calendar, config)]
        return [_deadline("defence", DEFENCE_DAYS, BASIS_DEFENCE, start, calendar, config)]
    if document_kind is DocumentKind.JUDGMENT:
        if domiciled_abroad:
            return [_deadline("appeal", FOREIGN_DAYS, BASIS_FOREIGN_APPEAL, start, calendar, config)]
        return [_deadline("appeal", APPEAL_JUDGMENT_DAYS, BASIS_APPEAL_JUDGMENT, start, calendar, config)]
    if document_kind is DocumentKind.RULING:
        if domiciled_abroad:
            return [_deadline("appeal", FOREIGN_DAYS, BASIS_FOREIGN_APPEAL, start, calendar, config)]
        return [_deadline("appeal", APPEAL_RULING_DAYS, BASIS_APPEAL_RULING, start, calendar, config)]
    return []


def latest_notice_service(hearing: date | datetime, config: LawConfig = _DEFAULT_CONFIG) -> date:
    """The last Beijing date on which the hearing notice (summons) may be served (CPL Art. 139).

    Default: ``hearing - 3 days`` (served on 7 March for a hearing on 10 March is in time). With
    ``LawConfig.hearing_notice_clear_days`` three clear days must lie between: ``hearing - 4 days``. No
    roll-over: Art. 85 lengthens a party's period, it does not move a limit that binds the court."""
    day = beijing_date(hearing)
    gap = config.hearing_notice_days + (1 if config.hearing_notice_clear_days else 0)
    return day - timedelta(days=gap)


def hearing_notice_in_time(
    served_at: date | datetime, hearing: date | datetime, config: LawConfig = _DEFAULT_CONFIG
) -> bool:
    """Whether a hearing notice served on ``served_at`` respects CPL Art. 139 for ``hearing``."""
    return beijing_date(served_at) <= latest_notice_service(hearing, config)
