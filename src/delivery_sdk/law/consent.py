"""Consent to electronic service, and which documents may be served electronically.

- CPL Art. 90(1): electronic service needs the recipient's consent and a means that confirms receipt.
- SPC Online Litigation Rules Art. 29: consent is established when the recipient (1) agreed expressly,
  (2) agreed to e-service before the suit, (3) gave an electronic address in a complaint, appeal,
  application or defence, or (4) accepted a completed e-service (replied that it received it, took part in
  the proceedings) without expressly objecting to e-service.
- Rules Art. 30: the court may ask for and confirm consent by phone, SMS or on the litigation platform.
- SPC Interpretation Art. 136: consent goes on the address-confirmation form (送达地址确认书).
- CPL Art. 90(1) (2021 amendment): judgments, rulings and mediation documents may be served electronically;
  a recipient who asks for paper must be given paper too. The earlier text (2017 CPL Art. 87) excluded them:
  :attr:`LawConfig.judgments_electronic` = False restores it.

**Timing** (:data:`CONSENT_GROUNDS`). Grounds (1)-(3), the confirmations of Art. 30 and the form of
Interpretation Art. 136 exist *before* a service: they cover a service sent once they were given
(:attr:`LawConfig.consent_must_precede`). Ground (4) arises only *after* an e-service was completed, from
the recipient's conduct: it cannot justify sending that e-service, but once the acceptance is recorded the
accepted e-service takes effect on that ground (:func:`accepted_service`: at the acceptance, Rules
Art. 31(2)(1); or, with :attr:`LawConfig.accepted_service_from_arrival`, from its arrival), and it covers
the services sent after it like any other consent. An express objection (不同意电子送达) defeats ground (4)
when it comes no later than the acceptance, and bars e-service sent from the moment it is made on any ground
(:func:`consent_covers`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

import attrs

from ..model import Consent, ConsentMethod, DocumentKind, ServiceMethod
from .config import LawConfig
from .holidays import beijing_date
from .service import DeemedService

__all__ = [
    "BASIS_ACCEPTED_SERVICE",
    "BASIS_ACCEPTED_SERVICE_ARRIVAL",
    "BASIS_EXCLUDED",
    "BASIS_NO_CONSENT",
    "BASIS_OBJECTED",
    "BASIS_PAPER",
    "CONSENT_BASIS",
    "CONSENT_GROUNDS",
    "PAPER_ON_REQUEST",
    "ConsentGround",
    "ConsentStatus",
    "ConsentTiming",
    "accepted_service",
    "consent_covers",
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


class ConsentTiming(enum.Enum):
    """When a ground of consent comes into being, relative to the service it covers."""

    BEFORE_SERVICE = "before_service"  # given before the service: covers services sent once it was given
    BY_ACCEPTANCE = "by_acceptance"  # arises by accepting a completed e-service (Rules Art. 29(4))


@attrs.frozen(kw_only=True)
class ConsentGround:
    """One ground of consent: the article that establishes it, when it arises, the basis recorded."""

    method: ConsentMethod
    article: str
    timing: ConsentTiming
    basis: str


_BEFORE, _ACCEPTANCE = ConsentTiming.BEFORE_SERVICE, ConsentTiming.BY_ACCEPTANCE
_ARTICLES = {
    ConsentMethod.EXPRESS: ("SPC Online Litigation Rules Art. 29(1)", _BEFORE),
    ConsentMethod.PRE_SUIT_AGREEMENT: ("SPC Online Litigation Rules Art. 29(2)", _BEFORE),
    ConsentMethod.PLEADING_ADDRESS: ("SPC Online Litigation Rules Art. 29(3)", _BEFORE),
    ConsentMethod.ACCEPTED_WITHOUT_OBJECTION: ("SPC Online Litigation Rules Art. 29(4)", _ACCEPTANCE),
    ConsentMethod.PHONE: ("SPC Online Litigation Rules Art. 30", _BEFORE),
    ConsentMethod.PLATFORM: ("SPC Online Litigation Rules Art. 30", _BEFORE),
    ConsentMethod.CONFIRMATION_FORM: ("SPC Interpretation Art. 136", _BEFORE),
}
CONSENT_GROUNDS: Mapping[ConsentMethod, ConsentGround] = MappingProxyType(
    {
        method: ConsentGround(method=method, article=article, timing=timing, basis=CONSENT_BASIS[method])
        for method, (article, timing) in _ARTICLES.items()
    }
)
"""Every :class:`ConsentMethod` with its article and timing: Art. 29's four grounds, Art. 30's confirmations
(ways of establishing express consent) and the address-confirmation form."""

# CPL Art. 90(1), second sentence: the documents for which the recipient may ask for paper in addition.
PAPER_ON_REQUEST = frozenset({DocumentKind.JUDGMENT, DocumentKind.RULING, DocumentKind.MEDIATION})
BASIS_NO_CONSENT = "CPL Art. 90 (electronic service needs the recipient's consent)"
BASIS_EXCLUDED = "CPL 2017 Art. 87 (judgments, rulings and mediation documents not served electronically)"
# Art. 90(1): its second paragraph fixes the service date. Stores written before this correction hold
# "CPL Art. 90(2) (paper copy on request)"; law.citations renders both as 第九十条第一款.
BASIS_PAPER = "CPL Art. 90(1) (paper copy on request)"
BASIS_OBJECTED = "CPL Art. 90; SPC Online Litigation Rules Art. 29(4) (the recipient objected to electronic service)"
# The service an acceptance made effective (Served.basis, the proof of service): the ground and the moment.
BASIS_ACCEPTED_SERVICE = (
    "CPL Art. 90; SPC Online Litigation Rules Arts. 29(4) and 31(2)(1) "
    "(completed e-service accepted without objecting: effective at the acceptance)"
)
BASIS_ACCEPTED_SERVICE_ARRIVAL = (
    "CPL Art. 90; SPC Online Litigation Rules Arts. 29(4) and 31(1) "
    "(completed e-service accepted without objecting: effective from its arrival)"
)

_DEFAULT_CONFIG = LawConfig()

# Why a consent does not cover a service (None: it does). Constants: the policy asks on its hot path.
_NONE = "no consent to electronic service"
_OBJECTED = "the recipient objected to electronic service"
_AFTER = "consent given after the service moment"
_ACCEPTED_AFTER = (
    "consent by accepting a completed e-service (Rules Art. 29(4)) covers that service and later ones, "
    "not one sent before the acceptance"
)


def _refusal(
    consent: Consent | None,
    at: datetime | None,
    accepted_at: datetime | None,
    objected_at: datetime | None,
    config: LawConfig,
) -> str | None:
    """The timing rule, in one place: why ``consent`` does not cover a service sent at ``at``, or None."""
    if accepted_at is not None:
        # Rules Art. 29(4): the recipient accepted this very e-service; an objection no later than the
        # acceptance means it did not accept "without objecting"
        return None if objected_at is None or objected_at > accepted_at else _OBJECTED
    if objected_at is not None and (at is None or objected_at <= at):
        return _OBJECTED  # an express refusal bars e-service from the moment it is made
    if consent is None:
        return _NONE
    given = consent.given_at
    if config.consent_must_precede and at is not None and given is not None and given > at:
        return _ACCEPTED_AFTER if consent.method is _BY_CONDUCT else _AFTER
    return None


_BY_CONDUCT = ConsentMethod.ACCEPTED_WITHOUT_OBJECTION


def consent_covers(
    consent: Consent | None,
    at: datetime | None,
    *,
    accepted_at: datetime | None = None,
    objected_at: datetime | None = None,
    config: LawConfig = _DEFAULT_CONFIG,
) -> bool:
    """Whether consent covers an e-service sent at ``at`` (no allocation: the policy asks per decision).

    ``consent`` covers it when given no later than ``at`` (:attr:`LawConfig.consent_must_precede`; a consent
    without a date is taken as given before). ``accepted_at``: the recipient accepted this e-service then,
    without objecting (Rules Art. 29(4)): covered whatever ``consent`` is. ``objected_at``: the recipient
    expressly refused e-service then: no service sent from that moment is covered, and an acceptance at or
    after it is not "without objecting".
    """
    return _refusal(consent, at, accepted_at, objected_at, config) is None


@attrs.frozen(kw_only=True)
class ConsentStatus:
    """Whether a document may be served electronically on this recipient, and why."""

    allowed: bool
    basis: str
    reason: str
    paper_copy: bool = False  # a paper copy must be provided as well (CPL Art. 90(1))
    method: ConsentMethod | None = None  # the ground the answer rests on (None: no consent)

    def __bool__(self) -> bool:
        return self.allowed


def electronic_documents(config: LawConfig = _DEFAULT_CONFIG) -> frozenset[DocumentKind]:
    """The document kinds that may be served electronically, given consent (CPL Art. 90)."""
    if config.judgments_electronic:
        return _ALL_KINDS
    return _WITHOUT_PAPER_KINDS


_ALL_KINDS = frozenset(DocumentKind)
_WITHOUT_PAPER_KINDS = _ALL_KINDS - PAPER_ON_REQUEST


def consent_status(
    consent: Consent | None,
    document_kind: DocumentKind,
    *,
    at: datetime | None = None,
    paper_requested: bool = False,
    config: LawConfig = _DEFAULT_CONFIG,
    accepted_at: datetime | None = None,
    objected_at: datetime | None = None,
) -> ConsentStatus:
    """May ``document_kind`` be served electronically at ``at`` on a recipient whose consent is ``consent``?

    No consent record: not allowed (CPL Art. 90). A consent dated after ``at`` does not cover that service
    (:attr:`LawConfig.consent_must_precede`; :data:`CONSENT_GROUNDS`). ``accepted_at``: the recipient accepted
    this completed e-service at that moment without objecting: allowed on Rules Art. 29(4), though the
    acceptance comes after the service (:func:`accepted_service` gives its moment). ``objected_at``: an express
    objection bars e-service from then on, and defeats an acceptance that does not come after it
    (:func:`consent_covers`). A judgment, ruling or mediation document: allowed unless
    ``LawConfig.judgments_electronic`` is off; ``paper_requested`` then sets ``paper_copy`` — e-service stays
    effective and the court provides paper as well (CPL Art. 90(1))."""
    refusal = _refusal(consent, at, accepted_at, objected_at, config)
    method = _BY_CONDUCT if accepted_at is not None else (consent.method if consent is not None else None)
    if refusal is _OBJECTED:
        return ConsentStatus(allowed=False, basis=BASIS_OBJECTED, reason=refusal, method=method)
    if method is None:
        return ConsentStatus(allowed=False, basis=BASIS_NO_CONSENT, reason=_NONE)
    basis = CONSENT_BASIS[method]
    if refusal is not None:
        return ConsentStatus(allowed=False, basis=basis, reason=refusal, method=method)
    if document_kind not in electronic_documents(config):
        return ConsentStatus(
            allowed=False,
            basis=BASIS_EXCLUDED,
            reason=f"{document_kind.value} documents are not served electronically under the configured rule",
            method=method,
        )
    if paper_requested and document_kind in PAPER_ON_REQUEST:
        return ConsentStatus(
            allowed=True,
            basis=f"{basis}; {BASIS_PAPER}",
            reason=f"consent ({method.value}); paper copy requested",
            paper_copy=True,
            method=method,
        )
    return _ALLOWED[method]


# The usual answer, built once per method (frozen values; the policy asks before every e-service).
_ALLOWED = {
    method: ConsentStatus(allowed=True, basis=basis, reason=f"consent ({method.value})", method=method)
    for method, basis in CONSENT_BASIS.items()
}


def accepted_service(
    arrived_at: datetime | None,
    accepted_at: datetime,
    *,
    config: LawConfig = _DEFAULT_CONFIG,
    channel: str | None = None,
) -> DeemedService:
    """The service an acceptance made effective (Rules Art. 29(4)): an e-service sent without prior consent,
    which the recipient accepted at ``accepted_at`` (replied that it received it, or acted on it) without
    objecting.

    Default reading: effective at the acceptance. The address was neither given nor confirmed by the
    recipient when the service was sent, so Rules Art. 31(2)(1) fixes the moment: "effective when the
    recipient replies that it received it or takes the procedural step the service called for". With
    :attr:`LawConfig.accepted_service_from_arrival`, the acceptance ratifies the completed service (Art. 29(4):
    "接受已经完成的电子送达") and it dates from its arrival (Art. 31(1); CPL Art. 90), when the arrival is known
    and not later than the acceptance. A "read" report is not an acceptance: it presumes receipt only where
    consent exists (Art. 31(2)(2)).
    """
    moment, basis = accepted_at, BASIS_ACCEPTED_SERVICE
    if config.accepted_service_from_arrival and arrived_at is not None and arrived_at <= accepted_at:
        moment, basis = arrived_at, BASIS_ACCEPTED_SERVICE_ARRIVAL
    return DeemedService(
        method=ServiceMethod.ELECTRONIC,
        served_on=beijing_date(moment),
        effective_at=moment,
        basis=basis,
        channel=channel,
    )
