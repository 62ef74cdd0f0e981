"""Consent to electronic service, and which documents may be served electronically.

- CPL Art. 90(1): electronic service needs the recipient's consent and a means that confirms receipt.
- SPC Online Litigation Rules Art. 29: consent is established when the recipient (1) agreed expressly,
  (2) agreed to e-service before the suit, (3) gave an electronic address in a complaint, appeal,
  application or defence, or (4) accepted a completed e-service (replied, took part) without objecting.
- Rules Art. 30: the court may ask for and confirm consent by phone, SMS or on the litigation platform.
- SPC Interpretation Art. 136: consent goes on the address-confirmation form (送达地址确认书).
- CPL Art. 90(2) (2021 amendment): judgments, rulings and mediation documents may be served electronically;
  a recipient who asks for paper must be given paper too. The earlier text (2017 CPL Art. 87) excluded them:
  :attr:`LawConfig.judgments_electronic` = False restores it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

import attrs

from ..model import Consent, ConsentMethod, DocumentKind
from .config import LawConfig

__all__ = [
    "CONSENT_BASIS",
    "PAPER_ON_REQUEST",
    "ConsentStatus",
    "consent_status",
    "electronic_documents",
]

CONSENT_BASIS: Mapping[ConsentMethod, str] = MappingProxyType(
    {
        ConsentMethod.EXPRESS: "CPL Art. 90; SPC Online Litigation Rules Art. 29(1) (express consent)",
        ConsentMethod.PRE_SUIT_AGREEMENT: "CPL Art. 90; SPC Online Litigation Rules Art. 29(2) (pre-suit agreement)",
        ConsentMethod.PLEADING_ADDRESS: (
            "CPL Art. 90; SPC Online Litigation Rules Art. 29(3) (e-address given in a pleading)"
        ),
        ConsentMethod.ACCEPTED_WITHOUT_OBJECTION: (
            "CPL Art. 90; SPC Online Litigation Rules Art. 29(4) (accepted a completed e-service without objecting)"
        ),
        ConsentMethod.PHONE: "CPL Art. 90; SPC Online Litigation Rules Art. 30 (confirmed by phone)",
        ConsentMethod.PLATFORM: "CPL Art. 90; SPC Online Litigation Rules Art. 30 (confirmed on the platform)",
        ConsentMethod.CONFIRMATION_FORM: (
            "CPL Art. 90; SPC Interpretation Art. 136 (address-confirmation form); SPC Online Litigation Rules Art. 30"
        ),
    }
)

# CPL Art. 90(2): the documents for which the recipient may ask for paper in addition.
PAPER_ON_REQUEST = frozenset({DocumentKind.JUDGMENT, DocumentKind.RULING, DocumentKind.MEDIATION})
BASIS_NO_CONSENT = "CPL Art. 90 (electronic service needs the recipient's consent)"
BASIS_EXCLUDED = "CPL 2017 Art. 87 (judgments, rulings and mediation documents not served electronically)"
BASIS_PAPER = "CPL Art. 90(2) (paper copy on request)"

_DEFAULT_CONFIG = LawConfig()


@attrs.frozen(kw_only=True)
class ConsentStatus:
    """Whether a document may be served electronically on this recipient, and why."""

    allowed: bool
    basis: str
    reason: str
    paper_copy: bool = False  # a paper copy must be provided as well (CPL Art. 90(2))

    def __bool__(self) -> bool:
        return self.allowed


def electronic_documents(config: LawConfig = _DEFAULT_CONFIG) -> frozenset[DocumentKind]:
    """The document kinds that may be served electronically, given consent (CPL Art. 90)."""
    if config.judgments_electronic:
        return frozenset(DocumentKind)
    return frozenset(DocumentKind) - PAPER_ON_REQUEST


def consent_status(
    consent: Consent | None,
    document_kind: DocumentKind,
    *,
    at: datetime | None = None,
    paper_requested: bool = False,
    config: LawConfig = _DEFAULT_CONFIG,
) -> ConsentStatus:
    """May ``document_kind`` be served electronically at ``at`` on a recipient whose consent is ``consent``?

    No consent record: not allowed (CPL Art. 90). A consent dated after ``at`` does not cover that service
    (:attr:`LawConfig.consent_must_precede`). A judgment, ruling or mediation document: allowed unless
    ``LawConfig.judgments_electronic`` is off; ``paper_requested`` then sets ``paper_copy`` — e-service stays
    effective and the court provides paper as well (CPL Art. 90(2))."""
    if consent is None:
        return ConsentStatus(allowed=False, basis=BASIS_NO_CONSENT, reason="no consent to electronic service")
    basis = CONSENT_BASIS[consent.method]
    if config.consent_must_precede and at is not None and consent.given_at is not None and consent.given_at > at:
        return ConsentStatus(allowed=False, basis=basis, reason="consent given after the service moment")
    if document_kind not in electronic_documents(config):
        return ConsentStatus(
            allowed=False,
            basis=BASIS_EXCLUDED,
            reason=f"{document_kind.value} documents are not served electronically under the configured rule",
        )
    paper = paper_requested and document_kind in PAPER_ON_REQUEST
    if paper:
        return ConsentStatus(
            allowed=True,
            basis=f"{basis}; {BASIS_PAPER}",
            reason=f"consent ({consent.method.value}); paper copy requested",
            paper_copy=True,
        )
    return ConsentStatus(allowed=True, basis=basis, reason=f"consent ({consent.method.value})")
