"""The evidence each service method needs, as data (DOMAIN.md section 3, "Evidence each method needs").

A method needs every :class:`EvidenceRequirement` of its row; a requirement is met by any one of its
``any_of`` items (retained service: witness signatures *or* photo/video).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from types import MappingProxyType

import attrs

from ..model import ServiceMethod

__all__ = ["EVIDENCE", "Evidence", "EvidenceRequirement", "missing_evidence", "required_evidence"]


class Evidence(enum.Enum):
    """A kind of proof that service took place: a signed receipt, witnesses' signatures, photo or video, the
    platform's system trace, the time of arrival, the e-service voucher..."""

    SIGNED_RECEIPT = "signed_receipt"  # 送达回证 signed by the recipient
    WITNESS_SIGNATURES = "witness_signatures"
    PHOTO_VIDEO = "photo_video"
    SYSTEM_TRACE = "system_trace"  # the platform's full trace of the e-service
    ARRIVAL_TIME = "arrival_time"
    ESERVICE_VOUCHER = "eservice_voucher"  # 电子送达凭证
    READ_RECORD = "read_record"
    REPLY_RECORD = "reply_record"  # a reply or a procedural act
    RETURN_RECEIPT = "return_receipt"  # 回执
    CARRIER_TRACKING = "carrier_tracking"
    WAYBILL_NUMBER = "waybill_number"
    NOTICE = "notice"  # the published notice itself
    PUBLICATION_DATE = "publication_date"
    POSTING_PHOTOS = "posting_photos"
    REASON_ON_FILE = "reason_on_file"


@attrs.frozen(kw_only=True)
class EvidenceRequirement:
    """One item of proof: met by any of ``any_of``; ``basis`` is the article that asks for it."""

    any_of: frozenset[Evidence]
    basis: str

    def met_by(self, have: Iterable[Evidence]) -> bool:
        """True when the evidence at hand includes any of the kinds this requirement accepts."""
        return not self.any_of.isdisjoint(have)


def _req(basis: str, *items: Evidence) -> EvidenceRequirement:
    return EvidenceRequirement(any_of=frozenset(items), basis=basis)


EVIDENCE: Mapping[ServiceMethod, tuple[EvidenceRequirement, ...]] = MappingProxyType(
    {
        ServiceMethod.DIRECT: (_req("CPL Arts. 87-88", Evidence.SIGNED_RECEIPT),),
        ServiceMethod.RETAINED: (_req("CPL Art. 89", Evidence.WITNESS_SIGNATURES, Evidence.PHOTO_VIDEO),),
        ServiceMethod.ELECTRONIC: (
            _req("SPC Online Litigation Rules Art. 31", Evidence.SYSTEM_TRACE),
            _req("CPL Art. 90; SPC Interpretation Art. 135", Evidence.ARRIVAL_TIME),
            _req("SPC Online Litigation Rules Art. 31", Evidence.ESERVICE_VOUCHER),
        ),
        ServiceMethod.POSTAL: (
            _req("CPL Art. 91", Evidence.RETURN_RECEIPT, Evidence.CARRIER_TRACKING),
            _req("CPL Art. 91", Evidence.WAYBILL_NUMBER),
        ),
        ServiceMethod.PUBLICATION: (
            _req("CPL Art. 95", Evidence.NOTICE),
            _req("SPC Interpretation Art. 138", Evidence.PUBLICATION_DATE),
            _req("CPL Art. 95; SPC Interpretation Art. 138", Evidence.POSTING_PHOTOS),
            _req("CPL Art. 95 (reason and process recorded in the case file)", Evidence.REASON_ON_FILE),
        ),
    }
)
_UNCONFIRMED = _req(
    "SPC Online Litigation Rules Art. 31 (unconfirmed address)", Evidence.READ_RECORD, Evidence.REPLY_RECORD
)


def required_evidence(method: ServiceMethod, *, address_confirmed: bool = True) -> tuple[EvidenceRequirement, ...]:
    """The proof ``method`` needs; electronic service to an unconfirmed address also needs read/reply data."""
    rows = EVIDENCE[method]
    if method is ServiceMethod.ELECTRONIC and not address_confirmed:
        return (*rows, _UNCONFIRMED)
    return rows


def missing_evidence(
    method: ServiceMethod, have: Iterable[Evidence], *, address_confirmed: bool = True
) -> tuple[EvidenceRequirement, ...]:
    """The requirements of :func:`required_evidence` that ``have`` does not meet (empty: complete)."""
    held = frozenset(have)
    return tuple(r for r in required_evidence(method, address_confirmed=address_confirmed) if not r.met_by(held))
