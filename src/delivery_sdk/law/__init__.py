"""Service law as code: pure, cited functions the policy and the proof of service call.

No I/O, no clock, no store: every function takes the facts and returns a value with its legal basis.

==========================  ==========================================================  =====================
rule                        article                                                     code
==========================  ==========================================================  =====================
holiday calendar            State Council notices on holiday arrangements (2025, 2026)  :mod:`.holidays`
periods                     CPL Art. 85; Civil Code Art. 202 (months)                   :mod:`.periods`
deadlines after service     CPL Arts. 128, 171, 285, 286                                :func:`deadlines_after_service`
hearing notice              CPL Art. 139                                                :func:`latest_notice_service`
deemed service moments      CPL Arts. 88-91, 95, 283; Rules Art. 31; Interp. 135, 138   :mod:`.service`
earliest service counts     SPC Online Litigation Rules Art. 31                         :func:`earliest_effective`
consent to e-service        CPL Art. 90; Rules Arts. 29-30; Interpretation Art. 136     :func:`consent_status`
evidence per method         CPL Arts. 87-91, 95; Rules Art. 31; Interp. 135, 138        :func:`required_evidence`
address order               SPC Opinion 2017 No. 19                                     :data:`ADDRESS_ORDER`
==========================  ==========================================================  =====================

Interpretive choices live in :class:`LawConfig`; ``docs/legal-reference.md`` explains each.
"""

from __future__ import annotations

from .addresses import ADDRESS_BASIS, ADDRESS_ORDER, ADDRESS_RANK, address_rank
from .config import LawConfig
from .consent import CONSENT_BASIS, PAPER_ON_REQUEST, ConsentStatus, consent_status, electronic_documents
from .evidence import EVIDENCE, Evidence, EvidenceRequirement, missing_evidence, required_evidence
from .holidays import (
    BEIJING,
    SHIPPED_YEARS,
    CalendarNotCovered,
    HolidayCalendar,
    beijing_date,
    default_calendar,
    load_calendar,
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
    BASIS_PUBLICATION,
    BASIS_PUBLICATION_ABROAD,
    BASIS_REFUSED,
    BASIS_RETAINED,
    PUBLICATION_DAYS,
    PUBLICATION_DAYS_ABROAD,
    SIGNER_ROLES,
    DeemedService,
    ReturnGround,
    direct_service,
    earliest_effective,
    electronic_service,
    postal_abroad_service,
    postal_service,
    postal_signature_basis,
    publication_service,
    retained_service,
    returned_mail_service,
)

__all__ = [
    "ADDRESS_BASIS",
    "ADDRESS_ORDER",
    "ADDRESS_RANK",
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
    "BASIS_PERIOD",
    "BASIS_POSTAL",
    "BASIS_POSTAL_ABROAD",
    "BASIS_PUBLICATION",
    "BASIS_PUBLICATION_ABROAD",
    "BASIS_REFUSED",
    "BASIS_RETAINED",
    "BEIJING",
    "CONSENT_BASIS",
    "EVIDENCE",
    "PAPER_ON_REQUEST",
    "PUBLICATION_DAYS",
    "PUBLICATION_DAYS_ABROAD",
    "SHIPPED_YEARS",
    "SIGNER_ROLES",
    "CalendarNotCovered",
    "ConsentStatus",
    "Deadline",
    "DeemedService",
    "Evidence",
    "EvidenceRequirement",
    "HolidayCalendar",
    "LawConfig",
    "ReturnGround",
    "add_months",
    "address_rank",
    "beijing_date",
    "consent_status",
    "deadlines_after_service",
    "default_calendar",
    "direct_service",
    "earliest_effective",
    "electronic_documents",
    "electronic_service",
    "hearing_notice_in_time",
    "is_timely",
    "latest_notice_service",
    "load_calendar",
    "missing_evidence",
    "period_end",
    "period_end_hours",
    "period_end_months",
    "postal_abroad_service",
    "postal_service",
    "postal_signature_basis",
    "publication_service",
    "required_evidence",
    "retained_service",
    "returned_mail_service",
]
