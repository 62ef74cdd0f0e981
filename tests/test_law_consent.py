"""Consent to e-service, the evidence each method needs, and the address order (delivery_sdk.law).

Consent: CPL Art. 90; SPC Online Litigation Rules Arts. 29-30; SPC Interpretation Art. 136. Evidence: CPL
Arts. 87-91, 95; Rules Art. 31; Interpretation Arts. 135, 138. Address order: SPC 2017 Opinion.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from delivery_sdk import ServiceMethod
from delivery_sdk.law import (
    ADDRESS_BASIS,
    ADDRESS_ORDER,
    ADDRESS_RANK,
    BASIS_ACCEPTED_SERVICE,
    BASIS_ACCEPTED_SERVICE_ARRIVAL,
    BASIS_OBJECTED,
    CONSENT_BASIS,
    CONSENT_GROUNDS,
    EVIDENCE,
    ConsentTiming,
    Evidence,
    LawConfig,
    accepted_service,
    address_rank,
    consent_covers,
    consent_status,
    electronic_documents,
    missing_evidence,
    required_evidence,
)
from delivery_sdk.law.addresses import address_basis, candidate_order
from delivery_sdk.model import Consent, ConsentMethod, Contact, ContactKind, DocumentKind
from delivery_sdk.records import AddressCandidate

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

# (method, article the basis must name)
METHODS = [
    (ConsentMethod.EXPRESS, "Rules Art. 29(1)"),
    (ConsentMethod.PRE_SUIT_AGREEMENT, "Rules Art. 29(2)"),
    (ConsentMethod.PLEADING_ADDRESS, "Rules Art. 29(3)"),
    (ConsentMethod.ACCEPTED_WITHOUT_OBJECTION, "Rules Art. 29(4)"),
    (ConsentMethod.PHONE, "Rules Art. 30"),
    (ConsentMethod.PLATFORM, "Rules Art. 30"),
    (ConsentMethod.CONFIRMATION_FORM, "Interpretation Art. 136"),
]


@pytest.mark.parametrize(("method", "article"), METHODS)
def test_every_consent_method_allows_e_service_with_its_article(method: ConsentMethod, article: str) -> None:
    status = consent_status(Consent(method=method, given_at=T0), DocumentKind.SUMMONS, at=T0)
    assert status.allowed, article
    assert bool(status), article
    assert article in status.basis, article
    assert "CPL Art. 90" in status.basis, article
    assert not status.paper_copy


def test_every_consent_method_has_a_basis() -> None:
    assert set(CONSENT_BASIS) == set(ConsentMethod)


# (consent, kind, at, paper, config, allowed, paper_copy, citation)
CASES = [
    (None, DocumentKind.SUMMONS, None, False, LawConfig(), False, False, "CPL Art. 90: no consent, no e-service"),
    (None, DocumentKind.JUDGMENT, T0, True, LawConfig(), False, False, "CPL Art. 90: no consent, no e-service"),
    (
        Consent(method=ConsentMethod.PHONE, given_at=datetime(2025, 3, 4, tzinfo=UTC)),
        DocumentKind.SUMMONS,
        T0,
        False,
        LawConfig(),
        False,
        False,
        "Rules Arts. 29-30: consent given after the service does not cover it",
    ),
    (
        Consent(method=ConsentMethod.PHONE, given_at=datetime(2025, 3, 4, tzinfo=UTC)),
        DocumentKind.SUMMONS,
        T0,
        False,
        LawConfig(consent_must_precede=False),
        True,
        False,
        "Rules Arts. 29-30: unless so configured",
    ),
    (
        Consent(method=ConsentMethod.EXPRESS),
        DocumentKind.JUDGMENT,
        T0,
        False,
        LawConfig(),
        True,
        False,
        "CPL Art. 90 (2021): judgments may be served electronically",
    ),
    (
        Consent(method=ConsentMethod.EXPRESS),
        DocumentKind.RULING,
        None,
        True,
        LawConfig(),
        True,
        True,
        "CPL Art. 90(2): paper on request for a ruling",
    ),
    (
        Consent(method=ConsentMethod.CONFIRMATION_FORM),
        DocumentKind.MEDIATION,
        None,
        True,
        LawConfig(),
        True,
        True,
        "CPL Art. 90(2): paper on request for a mediation document",
    ),
    (
        Consent(method=ConsentMethod.EXPRESS),
        DocumentKind.SUMMONS,
        None,
        True,
        LawConfig(),
        True,
        False,
        "CPL Art. 90(2): the paper right covers judgments, rulings and mediation documents only",
    ),
    (
        Consent(method=ConsentMethod.EXPRESS),
        DocumentKind.JUDGMENT,
        None,
        False,
        LawConfig(judgments_electronic=False),
        False,
        False,
        "CPL 2017 Art. 87: judgments excluded under the earlier text",
    ),
    (
        Consent(method=ConsentMethod.EXPRESS),
        DocumentKind.COMPLAINT,
        None,
        False,
        LawConfig(judgments_electronic=False),
        True,
        False,
        "CPL 2017 Art. 87: other documents still allowed",
    ),
]


@pytest.mark.parametrize(("consent", "kind", "at", "paper", "config", "allowed", "paper_copy", "cite"), CASES)
def test_consent_status(
    consent: Consent | None,
    kind: DocumentKind,
    at: datetime | None,
    paper: bool,
    config: LawConfig,
    allowed: bool,
    paper_copy: bool,
    cite: str,
) -> None:
    status = consent_status(consent, kind, at=at, paper_requested=paper, config=config)
    assert status.allowed is allowed, cite
    assert status.paper_copy is paper_copy, cite
    assert "Art" in status.basis, cite
    assert status.reason, cite


def test_electronic_documents() -> None:
    # CPL Art. 90 (2021) vs CPL 2017 Art. 87
    assert electronic_documents() == frozenset(DocumentKind)
    assert electronic_documents(LawConfig(judgments_electronic=False)) == frozenset(DocumentKind) - {
        DocumentKind.JUDGMENT,
        DocumentKind.RULING,
        DocumentKind.MEDIATION,
    }


# (method, address confirmed, evidence that is complete, citation)
EVIDENCE_CASES = [
    (ServiceMethod.DIRECT, True, {Evidence.SIGNED_RECEIPT}, "CPL Arts. 87-88: signed receipt"),
    (ServiceMethod.RETAINED, True, {Evidence.WITNESS_SIGNATURES}, "CPL Art. 89: witnesses"),
    (ServiceMethod.RETAINED, True, {Evidence.PHOTO_VIDEO}, "CPL Art. 89: or photo/video"),
    (
        ServiceMethod.ELECTRONIC,
        True,
        {Evidence.SYSTEM_TRACE, Evidence.ARRIVAL_TIME, Evidence.ESERVICE_VOUCHER},
        "CPL Art. 90; Rules Art. 31; Interpretation Art. 135",
    ),
    (
        ServiceMethod.ELECTRONIC,
        False,
        {Evidence.SYSTEM_TRACE, Evidence.ARRIVAL_TIME, Evidence.ESERVICE_VOUCHER, Evidence.READ_RECORD},
        "Rules Art. 31: unconfirmed address needs read or reply data",
    ),
    (
        ServiceMethod.POSTAL,
        True,
        {Evidence.RETURN_RECEIPT, Evidence.WAYBILL_NUMBER},
        "CPL Art. 91: return receipt and waybill",
    ),
    (
        ServiceMethod.POSTAL,
        True,
        {Evidence.CARRIER_TRACKING, Evidence.WAYBILL_NUMBER},
        "CPL Art. 91: or carrier tracking",
    ),
    (
        ServiceMethod.PUBLICATION,
        True,
        {Evidence.NOTICE, Evidence.PUBLICATION_DATE, Evidence.POSTING_PHOTOS, Evidence.REASON_ON_FILE},
        "CPL Art. 95; Interpretation Art. 138",
    ),
]


@pytest.mark.parametrize(("method", "confirmed", "complete", "cite"), EVIDENCE_CASES)
def test_required_evidence(method: ServiceMethod, confirmed: bool, complete: set[Evidence], cite: str) -> None:
    assert missing_evidence(method, complete, address_confirmed=confirmed) == (), cite
    required = required_evidence(method, address_confirmed=confirmed)
    assert all("Art" in r.basis for r in required), cite
    for item in complete:  # every item given is needed: dropping one leaves a gap unless it had an alternative
        rest = complete - {item}
        gaps = missing_evidence(method, rest, address_confirmed=confirmed)
        assert len(gaps) == 1, cite
        assert item in gaps[0].any_of, cite


def test_evidence_table_covers_every_method() -> None:
    assert set(EVIDENCE) == set(ServiceMethod)
    # Rules Art. 31: arrival data alone leaves the read/reply requirement open at an unconfirmed address
    gaps = missing_evidence(
        ServiceMethod.ELECTRONIC,
        [Evidence.SYSTEM_TRACE, Evidence.ARRIVAL_TIME, Evidence.ESERVICE_VOUCHER],
        address_confirmed=False,
    )
    assert [g.any_of for g in gaps] == [frozenset({Evidence.READ_RECORD, Evidence.REPLY_RECORD})]
    assert len(missing_evidence(ServiceMethod.PUBLICATION, [])) == 4


def test_address_order_follows_the_spc_2017_opinion() -> None:
    assert ADDRESS_ORDER == (
        "confirmation_form",
        "contract",
        "own_filings",
        "litigation",
        "common_use",
        "household_registry",
        "business_registry",
    )
    ranks = [ADDRESS_RANK[s] for s in ADDRESS_ORDER]
    assert ranks == sorted(ranks)
    assert set(ADDRESS_BASIS) == set(ADDRESS_ORDER)
    assert all("SPC" in b for b in ADDRESS_BASIS.values())
    assert address_rank("postal_database") is None


@pytest.mark.parametrize(
    ("source", "confirmed", "rank"),
    [
        ("contract", True, 0),  # a confirmed address comes first, whatever its source
        ("confirmation_form", False, 0),
        ("contract", False, 1),
        ("own_filings", False, 2),
        ("litigation", False, 3),
        ("common_use", False, 4),
        ("household_registry", False, 5),
        ("business_registry", False, 5),
        ("registry", False, 5),  # a registry of unknown kind ranks with the registries
        ("postal_database", False, 6),  # search aids after every source the Opinion names
        ("operator", False, 7),
        ("somewhere", False, 9),  # unknown sources last
    ],
)
def test_candidate_order_follows_the_opinion_then_the_search_aids(source: str, confirmed: bool, rank: int) -> None:
    contact = Contact(kind=ContactKind.POSTAL, value="湖北省武汉市武昌区中北路1号", confirmed=confirmed)
    candidate = AddressCandidate(contact=contact, source=source, confidence=0.7)
    assert candidate_order(candidate) == (rank, -0.7, -0.0)
    if source in ADDRESS_RANK and not confirmed:
        assert address_rank(source) == rank
        assert address_basis(candidate) == ADDRESS_BASIS[source]
    elif confirmed:
        assert address_basis(candidate) == ADDRESS_BASIS["confirmation_form"]
    else:
        assert address_basis(candidate) == f"SPC Opinion 2017 No. 19 (assisted person search: address from {source})"


def test_candidate_order_breaks_ties_by_confidence_then_the_latest_seen() -> None:
    def postal(confidence: float, seen: datetime | None) -> AddressCandidate:
        contact = Contact(kind=ContactKind.POSTAL, value="湖北省武汉市武昌区中北路1号")
        return AddressCandidate(contact=contact, source="contract", confidence=confidence, observed_at=seen)

    older, newer = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    ranked = sorted([postal(0.5, older), postal(0.9, None), postal(0.5, newer)], key=candidate_order)
    assert [(c.confidence, c.observed_at) for c in ranked] == [(0.9, None), (0.5, newer), (0.5, older)]


# -- Art. 29's four grounds and their timing (issue 16, part 3) -------------------------------------------

T1 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)  # a day after T0
ARTICLE_OF = {
    ConsentMethod.EXPRESS: ("Rules Art. 29(1)", ConsentTiming.BEFORE_SERVICE),
    ConsentMethod.PRE_SUIT_AGREEMENT: ("Rules Art. 29(2)", ConsentTiming.BEFORE_SERVICE),
    ConsentMethod.PLEADING_ADDRESS: ("Rules Art. 29(3)", ConsentTiming.BEFORE_SERVICE),
    ConsentMethod.ACCEPTED_WITHOUT_OBJECTION: ("Rules Art. 29(4)", ConsentTiming.BY_ACCEPTANCE),
    ConsentMethod.PHONE: ("Rules Art. 30", ConsentTiming.BEFORE_SERVICE),
    ConsentMethod.PLATFORM: ("Rules Art. 30", ConsentTiming.BEFORE_SERVICE),
    ConsentMethod.CONFIRMATION_FORM: ("Interpretation Art. 136", ConsentTiming.BEFORE_SERVICE),
}


@pytest.mark.parametrize("method", list(ConsentMethod))
def test_every_ground_has_its_article_and_timing(method: ConsentMethod) -> None:
    ground = CONSENT_GROUNDS[method]
    article, timing = ARTICLE_OF[method]
    assert ground.method is method
    assert article in ground.article
    assert ground.timing is timing
    assert ground.basis == CONSENT_BASIS[method]


# (consent, service sent at, accepted_at, objected_at, config, covered, reason fragment, citation)
TIMING_CASES = [
    (
        Consent(method=ConsentMethod.EXPRESS, given_at=T0),
        T1,
        None,
        None,
        LawConfig(),
        True,
        None,
        "Rules Art. 29(1): express consent before the service covers it",
    ),
    (
        Consent(method=ConsentMethod.PRE_SUIT_AGREEMENT),
        T0,
        None,
        None,
        LawConfig(),
        True,
        None,
        "Rules Art. 29(2): a pre-suit agreement (undated) exists before the suit",
    ),
    (
        Consent(method=ConsentMethod.PLEADING_ADDRESS, given_at=T0),
        T0,
        None,
        None,
        LawConfig(),
        True,
        None,
        "Rules Art. 29(3): an e-address in a pleading covers service at the same moment",
    ),
    (
        Consent(method=ConsentMethod.EXPRESS, given_at=T1),
        T0,
        None,
        None,
        LawConfig(),
        False,
        "after the service",
        "Rules Art. 29(1): consent given after the sending does not cover it",
    ),
    (
        Consent(method=ConsentMethod.ACCEPTED_WITHOUT_OBJECTION, given_at=T1),
        T0,
        None,
        None,
        LawConfig(),
        False,
        "covers that service and later ones",
        "Rules Art. 29(4): an acceptance cannot justify sending the service before it",
    ),
    (
        Consent(method=ConsentMethod.ACCEPTED_WITHOUT_OBJECTION, given_at=T0),
        T1,
        None,
        None,
        LawConfig(),
        True,
        None,
        "Rules Art. 29(4): an earlier acceptance covers later services",
    ),
    (
        None,
        T0,
        T1,
        None,
        LawConfig(),
        True,
        None,
        "Rules Art. 29(4): the accepted service itself is covered, the acceptance coming after it",
    ),
    (
        None,
        T0,
        T1,
        T1,
        LawConfig(),
        False,
        "objected",
        "Rules Art. 29(4): an objection at the acceptance: not accepted without objecting",
    ),
    (
        None,
        T0,
        T1,
        T0,
        LawConfig(),
        False,
        "objected",
        "Rules Art. 29(4): an objection before the acceptance defeats it",
    ),
    (
        None,
        T0,
        T0,
        T1,
        LawConfig(),
        True,
        None,
        "Rules Art. 29(4): an objection after the acceptance leaves the accepted service covered",
    ),
    (
        Consent(method=ConsentMethod.EXPRESS, given_at=T0),
        T1,
        None,
        T0,
        LawConfig(),
        False,
        "objected",
        "CPL Art. 90: an objection bars e-service sent after it",
    ),
    (
        Consent(method=ConsentMethod.EXPRESS, given_at=T0),
        T0,
        None,
        T1,
        LawConfig(),
        True,
        None,
        "CPL Art. 90: a service sent before the objection stays covered",
    ),
    (
        Consent(method=ConsentMethod.EXPRESS, given_at=T1),
        T0,
        None,
        None,
        LawConfig(consent_must_precede=False),
        True,
        None,
        "Rules Arts. 29-30: unless so configured",
    ),
    (None, T0, None, None, LawConfig(), False, "no consent", "CPL Art. 90: no consent, no e-service"),
]


@pytest.mark.parametrize(
    ("consent", "at", "accepted_at", "objected_at", "config", "covered", "reason", "cite"), TIMING_CASES
)
def test_consent_timing(
    consent: Consent | None,
    at: datetime,
    accepted_at: datetime | None,
    objected_at: datetime | None,
    config: LawConfig,
    covered: bool,
    reason: str | None,
    cite: str,
) -> None:
    assert consent_covers(consent, at, accepted_at=accepted_at, objected_at=objected_at, config=config) is covered, cite
    status = consent_status(
        consent, DocumentKind.SUMMONS, at=at, accepted_at=accepted_at, objected_at=objected_at, config=config
    )
    assert status.allowed is covered, cite
    assert "Art" in status.basis, cite
    if reason is not None:
        assert reason in status.reason, cite
    if accepted_at is not None and covered:
        assert status.method is ConsentMethod.ACCEPTED_WITHOUT_OBJECTION, cite
        assert "Art. 29(4)" in status.basis, cite
    if objected_at is not None and not covered:
        assert status.basis == BASIS_OBJECTED, cite


def test_an_accepted_judgment_still_follows_the_document_rule() -> None:
    # CPL 2017 Art. 87 (configured): the acceptance is consent, but a judgment is not served electronically
    config = LawConfig(judgments_electronic=False)
    status = consent_status(None, DocumentKind.JUDGMENT, at=T0, accepted_at=T1, config=config)
    assert not status.allowed
    assert "2017 Art. 87" in status.basis


# (arrived, accepted, config, effective, basis, citation)
ACCEPTED_SERVICE_CASES = [
    (T0, T1, LawConfig(), T1, BASIS_ACCEPTED_SERVICE, "Rules Arts. 29(4), 31(2)(1): effective at the acceptance"),
    (None, T1, LawConfig(), T1, BASIS_ACCEPTED_SERVICE, "Rules Art. 29(4): the acceptance presumes arrival"),
    (
        T0,
        T1,
        LawConfig(accepted_service_from_arrival=True),
        T0,
        BASIS_ACCEPTED_SERVICE_ARRIVAL,
        "Rules Arts. 29(4), 31(1): configured, the acceptance ratifies the service from its arrival",
    ),
    (
        None,
        T1,
        LawConfig(accepted_service_from_arrival=True),
        T1,
        BASIS_ACCEPTED_SERVICE,
        "Rules Art. 29(4): no known arrival: the acceptance it is",
    ),
]


@pytest.mark.parametrize(("arrived", "accepted", "config", "effective", "basis", "cite"), ACCEPTED_SERVICE_CASES)
def test_accepted_service(
    arrived: datetime | None, accepted: datetime, config: LawConfig, effective: datetime, basis: str, cite: str
) -> None:
    deemed = accepted_service(arrived, accepted, config=config, channel="d-1")
    assert deemed.method is ServiceMethod.ELECTRONIC, cite
    assert (deemed.effective_at, deemed.basis, deemed.channel) == (effective, basis, "d-1"), cite
    assert "Rules Arts. 29(4) and 31" in deemed.basis, cite
    assert deemed.served_on == effective.date(), cite  # 09:00 UTC: the same Beijing date
