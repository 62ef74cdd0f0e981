"""Service law as code: pure, cited functions the policy and the proof of service call.

No I/O, no clock, no store: every function takes the facts and returns a value with its legal basis.

==========================  ==========================================================  =====================
rule                        article                                                     code
==========================  ==========================================================  =====================
holiday calendar            State Council notices (2025, 2026, imported); provisional:  :mod:`.holidays`
                            Measures on National Holidays Art. 2 (2024 revision)
periods                     CPL Art. 85; Civil Code Art. 202 (months)                   :mod:`.periods`
deadlines after service     CPL Arts. 128, 171, 285, 286                                :func:`deadlines_after_service`
hearing notice              CPL Art. 139                                                :func:`latest_notice_service`
deemed service moments      CPL Arts. 89-91, 95, 283; Rules Art. 31; Interp. 135, 138   :mod:`.service`
who may sign for the party  CPL Art. 88                                                 :func:`postal_service`
earliest service counts     SPC Online Litigation Rules Art. 31                         :func:`earliest_effective`
consent to e-service        CPL Art. 90; Rules Arts. 29-30; Interpretation Art. 136     :func:`consent_status`
consent by acceptance       Rules Arts. 29(4), 31(2)(1)                                 :func:`accepted_service`
evidence per method         CPL Arts. 87-91, 95; Rules Art. 31; Interp. 135, 138        :func:`required_evidence`
address order               SPC Opinion 2017 No. 19                                     :data:`ADDRESS_ORDER`
==========================  ==========================================================  =====================

Interpretive choices live in :class:`LawConfig`; ``docs/legal-reference.md`` explains each. Every basis is a
short English string (events store it); :func:`chinese` renders it as a formal Chinese citation for court
staff (:mod:`.citations`).
"""

from __future__ import annotations

from .addresses import ADDRESS_BASIS, ADDRESS_ORDER, ADDRESS_RANK, address_rank
from .citations import chinese, chinese_numeral
from .config import LawConfig
from .consent import (
    BASIS_ACCEPTED_SERVICE,
    BASIS_ACCEPTED_SERVICE_ARRIVAL,
    BASIS_OBJECTED,
    CONSENT_BASIS,
    CONSENT_GROUNDS,
    PAPER_ON_REQUEST,
    ConsentGround,
    ConsentStatus,
    ConsentTiming,
    accepted_service,
    consent_covers,
    consent_status,
    electronic_documents,
)
from .evidence import EVIDENCE, Evidence, EvidenceRequirement, missing_evidence, required_evidence
from .holidays import (
    BASIS_STATUTORY_HOLIDAYS,
    BEIJING,
    CALENDAR_DIR_ENV,
    PROVISIONAL_FIRST,
    PROVISIONAL_LAST,
    SHIPPED_YEARS,
    CalendarNotCovered,
    HolidayCalendar,
    InvalidCalendarFile,
    StatutoryHoliday,
    beijing_date,
    default_calendar,
    effective_calendar,
    import_notice,
    load_calendar,
    provisional_calendar,
    statutory_holidays,
)
from .periods import (
    BASIS_APPEAL_JUDGMENT,
    BASIS_APPEAL_RULING,
    BASIS_DEFENCE,
    BASIS_FOREIGN_APPEAL,
    BASIS_FOREIGN_DEFENCE,
    BASIS_HEARING_NOTICE,
    BASIS_PERIOD,
    Deadline,
    add_months,
    deadlines_after_service,
    hearing_notice_in_time,
    is_timely,
    latest_notice_service,
    period_end,
    period_end_hours,
    period_end_months,
)
from .service import (
    BASIS_CONFIRMED_WRONG,
    BASIS_DIRECT,
    BASIS_ELECTRONIC,
    BASIS_ELECTRONIC_READ,
    BASIS_ELECTRONIC_REPLY,
    BASIS_POSTAL,
    BASIS_POSTAL_ABROAD,
    BASIS_POSTAL_AGENT,
    BASIS_POSTAL_FAMILY,
    BASIS_POSTAL_LEGAL_REPRESENTATIVE,
    BASIS_POSTAL_MAIL_ROOM,
    BASIS_PUBLICATION,
    BASIS_PUBLICATION_ABROAD,
    BASIS_REFUSED,
    BASIS_RETAINED,
    PUBLICATION_DAYS,
    PUBLICATION_DAYS_ABROAD,
    SIGNER_ROLES,
    DeemedService,
    ReturnGround,
    SignerRole,
    deemed_moment,
    direct_service,
    earliest_effective,
    electronic_service,
    postal_abroad_service,
    postal_service,
    publication_service,
    retained_service,
    returned_mail_service,
)

__all__ = [
    "ADDRESS_BASIS",
    "ADDRESS_ORDER",
    "ADDRESS_RANK",
    "BASIS_ACCEPTED_SERVICE",
    "BASIS_ACCEPTED_SERVICE_ARRIVAL",
    "BASIS_APPEAL_JUDGMENT",
    "BASIS_APPEAL_RULING",
    "BASIS_CONFIRMED_WRONG",
    "BASIS_DEFENCE",
    "BASIS_DIRECT",
    "BASIS_ELECTRONIC",
    "BASIS_ELECTRONIC_READ",
    "BASIS_ELECTRONIC_REPLY",
    "BASIS_FOREIGN_APPEAL",
    "BASIS_FOREIGN_DEFENCE",
    "BASIS_HEARING_NOTICE",
    "BASIS_OBJECTED",
    "BASIS_PERIOD",
    "BASIS_POSTAL",
    "BASIS_POSTAL_ABROAD",
    "BASIS_POSTAL_AGENT",
    "BASIS_POSTAL_FAMILY",
    "BASIS_POSTAL_LEGAL_REPRESENTATIVE",
    "BASIS_POSTAL_MAIL_ROOM",
    "BASIS_PUBLICATION",
    "BASIS_PUBLICATION_ABROAD",
    "BASIS_REFUSED",
    "BASIS_RETAINED",
    "BASIS_STATUTORY_HOLIDAYS",
    "BEIJING",
    "CALENDAR_DIR_ENV",
    "CONSENT_BASIS",
    "CONSENT_GROUNDS",
    "EVIDENCE",
    "PAPER_ON_REQUEST",
    "PROVISIONAL_FIRST",
    "PROVISIONAL_LAST",
    "PUBLICATION_DAYS",
    "PUBLICATION_DAYS_ABROAD",
    "SHIPPED_YEARS",
    "SIGNER_ROLES",
    "CalendarNotCovered",
    "ConsentGround",
    "ConsentStatus",
    "ConsentTiming",
    "Deadline",
    "DeemedService",
    "Evidence",
    "EvidenceRequirement",
    "HolidayCalendar",
    "InvalidCalendarFile",
    "LawConfig",
    "ReturnGround",
    "SignerRole",
    "StatutoryHoliday",
    "accepted_service",
    "add_months",
    "address_rank",
    "beijing_date",
    "chinese",
    "chinese_numeral",
    "consent_covers",
    "consent_status",
    "deadlines_after_service",
    "deemed_moment",
    "default_calendar",
    "direct_service",
    "earliest_effective",
    "effective_calendar",
    "electronic_documents",
    "electronic_service",
    "hearing_notice_in_time",
    "import_notice",
    "is_timely",
    "latest_notice_service",
    "load_calendar",
    "missing_evidence",
    "period_end",
    "period_end_hours",
    "period_end_months",
    "postal_abroad_service",
    "postal_service",
    "provisional_calendar",
    "publication_service",
    "required_evidence",
    "retained_service",
    "returned_mail_service",
    "statutory_holidays",
]
