"""Issue 16, parts 1 and 4, through the public client with the fakes of delivery_sdk.testing.

Publication (CPL Art. 95: 30 days; CPL Art. 283: 60 days for a party abroad; CPL Art. 85: the posting day is
not counted, a last day on a rest day rolls over with ``LawConfig.publication_rolls_over``): the day the law
deems service is the same in the ``service.served`` event, the task, ``status``, the proof of service and the
deadlines, which run from the next day. Its moment is 00:00 Beijing time of that day (``law.deemed_moment``).

Who may sign the return receipt (CPL Art. 88; the date is CPL Art. 91's): ``law.postal_service`` decides,
from the signer the carrier reported; a signature by anyone else, or by someone the carrier did not name,
leaves the task unserved and asks a person.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs
import pytest

from delivery_sdk import (
    AgentRole,
    Document,
    DocumentKind,
    PartyKind,
    PolicyConfig,
    Representative,
    ServiceMethod,
    ServiceRequest,
    TaskState,
)
from delivery_sdk.channels import Receipt, ReceiptKind
from delivery_sdk.events import PostSigned, PublicationStarted, Served
from delivery_sdk.law import (
    BASIS_POSTAL_AGENT,
    BASIS_POSTAL_LEGAL_REPRESENTATIVE,
    BASIS_PUBLICATION,
    BASIS_PUBLICATION_ABROAD,
    BEIJING,
    Evidence,
    LawConfig,
    beijing_date,
    required_evidence,
)
from delivery_sdk.model import ChannelKind
from delivery_sdk.proof import build_record
from delivery_sdk.testing import Harness, Outcome, make_party, make_request


def bj(y: int, m: int, d: int, hour: int = 0) -> datetime:
    return datetime(y, m, d, hour, tzinfo=BEIJING)


def run(scenario: Callable[[Harness], Awaitable[None]], **kwargs: Any) -> None:
    async def main() -> None:
        h = Harness(**kwargs)
        try:
            await scenario(h)
            assert h.unused() == {}
        finally:
            await h.aclose()

    asyncio.run(main())


def only(h: Harness, task_id: str, cls: type[Any]) -> Any:
    (event,) = [s.event for s in h.client.timeline(task_id) if isinstance(s.event, cls)]
    return event


def judgment_request(party_id: str) -> ServiceRequest:
    """A judgment for a party the court cannot reach (no phone, no address): publication at once."""
    base = make_request(make_party(party_id, consent=False, mobile=None, address=None))
    document = Document(
        document_id="D1", title="民事判决书", kind=DocumentKind.JUDGMENT, sha256=hashlib.sha256(b"j").hexdigest()
    )
    return ServiceRequest(case=base.case, party=base.party, documents=(document,))


# -- 1. publication: one service day everywhere ------------------------------------------------------------------

# (posted at, PolicyConfig arguments, basis, the day the law deems service, the judgment's appeal due, citation)
# Posted Tue 1 Sep 2026, 10:00 Beijing time. Day 30 is Thu 1 Oct (National Day, 1-7 Oct: rolls over to Thu
# 8 Oct); day 60 from Sun 2 Aug 2026 is Thu 1 Oct as well.
PUBLICATIONS = [
    pytest.param(
        bj(2026, 9, 1, 10),
        {},
        BASIS_PUBLICATION,
        date(2026, 10, 8),
        date(2026, 10, 23),
        id="domestic-30-days-rolled-over-national-day",  # CPL Arts. 95, 85; appeal Art. 171: 9-23 Oct
    ),
    pytest.param(
        bj(2026, 9, 1, 10),
        {"law": LawConfig(publication_rolls_over=False)},
        BASIS_PUBLICATION,
        date(2026, 10, 1),
        date(2026, 10, 16),
        id="domestic-30-days-no-roll-over",  # CPL Art. 95: the 30th day itself; appeal 2-16 Oct (a Friday)
    ),
    pytest.param(
        bj(2026, 8, 2, 10),
        {"publication_period": timedelta(days=60)},
        BASIS_PUBLICATION_ABROAD,
        date(2026, 10, 8),
        None,
        id="abroad-60-days-rolled-over-national-day",  # CPL Arts. 283, 85
    ),
    pytest.param(
        bj(2026, 8, 2, 10),
        {"publication_period": timedelta(days=60), "law": LawConfig(publication_rolls_over=False)},
        BASIS_PUBLICATION_ABROAD,
        date(2026, 10, 1),
        None,
        id="abroad-60-days-no-roll-over",  # CPL Art. 283: the 60th day itself
    ),
]


@pytest.mark.parametrize(("posted", "policy", "basis", "served_on", "appeal_due"), PUBLICATIONS)
def test_publication_is_served_on_the_day_the_law_deems_everywhere(
    posted: datetime, policy: dict[str, Any], basis: str, served_on: date, appeal_due: date | None
) -> None:
    async def scenario(h: Harness) -> None:
        task_id = await h.client.submit(judgment_request("P-pub"))
        await h.client.run_until_idle(until=posted + timedelta(days=1))
        published = only(h, task_id, PublicationStarted)
        assert published.published_at == posted
        status = h.client.status(task_id)
        assert status.state is TaskState.PUBLISHING

        # the day before the service day: not served yet
        h.clock.advance_to(datetime.combine(served_on, datetime.min.time(), BEIJING) - timedelta(minutes=1))
        await h.client.run_until_idle(until=h.clock.now())
        assert h.client.status(task_id).served_at is None

        await h.client.run_until_idle()
        served = only(h, task_id, Served)
        assert (served.method, served.basis) == (ServiceMethod.PUBLICATION, basis)
        assert served.effective_at == datetime.combine(served_on, datetime.min.time(), BEIJING)

        status = h.client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.served_at == served.effective_at
        assert beijing_date(status.served_at) == served_on  # the judge's screen shows the service day
        assert h.client.task(task_id).served_at == served.effective_at

        # the periods run from the service day: the first day not counted (CPL Art. 85)
        assert status.deadlines
        assert {d.start for d in status.deadlines} == {served_on}
        if appeal_due is not None:
            assert [(d.name, d.due) for d in status.deadlines] == [("appeal", appeal_due)]

        # the proof of service (送达回证) shows the same day, and the same deadlines
        record = h.sink.filed[f"{task_id}:proof"]
        assert record.effective_at == served.effective_at
        proof = build_record(record)
        assert proof.served_on == served_on.isoformat()
        if appeal_due is not None:
            assert [(d.name, d.due) for d in proof.deadlines] == [("appeal", appeal_due.isoformat())]

    run(scenario, start=posted, policy=PolicyConfig(**policy), kinds=())


def test_a_late_report_of_an_arrival_after_the_publication_day_does_not_displace_it() -> None:
    # Rules Art. 31: the earliest effective service counts. Publication is deemed on Thu 8 Oct 2026 (CPL Arts. 95,
    # 85); an SMS whose arrival on 10 Oct is reported only on 12 Oct came later: the publication stands.
    async def scenario(h: Harness) -> None:
        h.sms.enqueue(Outcome.no_answer())
        party = make_party("P-late", consent=True, address=None)
        task_id = await h.client.submit(make_request(party))
        await h.client.run_until_idle(until=bj(2026, 9, 2))
        assert h.client.status(task_id).state is TaskState.PUBLISHING
        (sms,) = [d for d in h.client.task(task_id).dispatches if d.kind is ChannelKind.SMS]

        h.clock.advance_to(bj(2026, 10, 12, 9))  # the engine was not stepped meanwhile
        late = Receipt(dispatch_id=sms.dispatch_id, kind=ReceiptKind.DELIVERED, at=bj(2026, 10, 10, 9))
        await h.client.ingest(late)
        await h.client.run_until_idle()

        served = only(h, task_id, Served)
        assert (served.method, served.effective_at) == (ServiceMethod.PUBLICATION, bj(2026, 10, 8))
        assert h.client.status(task_id).served_at == bj(2026, 10, 8)  # a Beijing date of 8 Oct

    run(scenario, start=bj(2026, 9, 1, 10), kinds=(ChannelKind.SMS,))


def test_an_arrival_on_the_publication_day_itself_is_the_service() -> None:
    # Rules Art. 31: on the same day, an actual service counts before the deemed one (both serve on 8 Oct).
    async def scenario(h: Harness) -> None:
        h.sms.enqueue(Outcome.no_answer())
        party = make_party("P-same", consent=True, address=None)
        task_id = await h.client.submit(make_request(party))
        await h.client.run_until_idle(until=bj(2026, 9, 2))
        (sms,) = [d for d in h.client.task(task_id).dispatches if d.kind is ChannelKind.SMS]

        h.clock.advance_to(bj(2026, 10, 8, 15))
        await h.client.ingest(Receipt(dispatch_id=sms.dispatch_id, kind=ReceiptKind.DELIVERED, at=bj(2026, 10, 8, 9)))
        await h.client.run_until_idle()

        served = only(h, task_id, Served)
        assert (served.method, served.effective_at) == (ServiceMethod.ELECTRONIC, bj(2026, 10, 8, 9))

    run(scenario, start=bj(2026, 9, 1, 10), kinds=(ChannelKind.SMS,))


# -- 4. who may sign for the party (CPL Art. 88) ----------------------------------------------------------------

LEGAL_REP = Representative(name="李董事长", role=AgentRole.LEGAL_REPRESENTATIVE)
MAIL_HANDLER = Representative(name="收发室", role=AgentRole.MAIL_HANDLER)
RECEIVER = Representative(name="赵代收", role=AgentRole.DESIGNATED_RECEIVER)


def _signed(
    h: Harness, party_id: str, role: str | None, kind: PartyKind, agents: tuple[Representative, ...]
) -> Awaitable[str]:
    h.carrier.enqueue(Outcome.signed(after=timedelta(days=2), signer_role=role))
    party = attrs.evolve(make_party(party_id, consent=False), kind=kind, agents=agents)
    return h.client.submit(make_request(party))


@pytest.mark.parametrize(
    ("role", "kind", "agents", "basis"),
    [
        pytest.param(
            "legal_representative",
            PartyKind.ORGANISATION,
            (),
            BASIS_POSTAL_LEGAL_REPRESENTATIVE,
            id="legal-representative-of-a-company",  # CPL Art. 88: 法定代表人
        ),
        pytest.param("agent", PartyKind.PERSON, (RECEIVER,), BASIS_POSTAL_AGENT, id="designated-receiver"),
    ],
)
def test_a_signer_art_88_names_serves_on_the_signing_date(
    role: str, kind: PartyKind, agents: tuple[Representative, ...], basis: str
) -> None:
    async def scenario(h: Harness) -> None:
        task_id = await _signed(h, "P-ok", role, kind, agents)
        await h.client.run_until_idle()
        signed = only(h, task_id, PostSigned)
        served = only(h, task_id, Served)
        assert (served.method, served.basis, served.effective_at) == (ServiceMethod.POSTAL, basis, signed.signed_at)
        assert h.client.status(task_id).state is TaskState.FILED

    run(scenario, kinds=())


@pytest.mark.parametrize(
    ("role", "kind", "agents", "reason"),
    [
        pytest.param(
            "agent",
            PartyKind.ORGANISATION,
            (LEGAL_REP, MAIL_HANDLER),
            "the return receipt was signed by agent, who may not receive for this party (CPL Art. 88): "
            "confirm receipt with the party or serve again",
            id="agent-but-only-a-legal-representative-and-mail-handler-on-file",
        ),
        pytest.param(
            "agent",
            PartyKind.PERSON,
            (LEGAL_REP,),
            "the return receipt was signed by agent, who may not receive for this party (CPL Art. 88): "
            "confirm receipt with the party or serve again",
            id="agent-but-only-a-guardian-on-file",
        ),
        pytest.param(
            None,
            PartyKind.PERSON,
            (),
            "the carrier did not report who signed the return receipt, so it does not show service on the party "
            "(CPL Art. 88): check the receipt, confirm receipt with the party or serve again",
            id="the-carrier-did-not-say-who-signed",
        ),
        pytest.param(
            "legal_representative",
            PartyKind.PERSON,
            (),
            "the return receipt was signed by legal_representative, who may not receive for this party "
            "(CPL Art. 88): confirm receipt with the party or serve again",
            id="legal-representative-for-a-natural-person",
        ),
        pytest.param(
            "other:NEIGHBOUR",
            PartyKind.PERSON,
            (Representative(name="王律师", role=AgentRole.LITIGATION_AGENT),),
            "the return receipt was signed by other:NEIGHBOUR, who may not receive for this party (CPL Art. 88): "
            "confirm receipt with the party or serve again",
            id="a-neighbour",
        ),
    ],
)
def test_a_signature_by_anyone_else_leaves_the_task_unserved_and_asks_a_person(
    role: str | None, kind: PartyKind, agents: tuple[Representative, ...], reason: str
) -> None:
    async def scenario(h: Harness) -> None:
        task_id = await _signed(h, "P-no", role, kind, agents)
        await h.client.run_until_idle()
        assert [s.event.TYPE for s in h.client.timeline(task_id)][-2:] == ["post.signed", "task.needs_attention"]
        assert only(h, task_id, PostSigned).signer_role == (role or "unknown")  # recorded as evidence all the same
        status = h.client.status(task_id)
        assert (status.state, status.served_at, status.method) == (TaskState.NEEDS_ATTENTION, None, None)
        assert status.attention_reason == reason
        assert status.deadlines == ()

    run(scenario, kinds=())


def test_retained_service_and_refusal_keep_their_evidence() -> None:
    # CPL Art. 89: retained service needs witness signatures or a photo/video record, whoever signed nothing
    (retained,) = required_evidence(ServiceMethod.RETAINED)
    assert retained.any_of == frozenset({Evidence.WITNESS_SIGNATURES, Evidence.PHOTO_VIDEO})
    assert retained.basis == "CPL Art. 89"
    # CPL Art. 91: a postal service (a refusal returned too) needs the receipt or tracking and the waybill
    postal = required_evidence(ServiceMethod.POSTAL)
    assert [r.any_of for r in postal] == [
        frozenset({Evidence.RETURN_RECEIPT, Evidence.CARRIER_TRACKING}),
        frozenset({Evidence.WAYBILL_NUMBER}),
    ]


def test_the_deemed_moment_is_midnight_beijing_not_utc() -> None:
    # CPL Art. 95: served "on 8 Oct" is 00:00 on 8 Oct in Beijing, 16:00 on 7 Oct UTC: the Beijing date counts
    moment = bj(2026, 10, 8)
    assert moment.astimezone(UTC) == datetime(2026, 10, 7, 16, tzinfo=UTC)
    assert beijing_date(moment) == date(2026, 10, 8)
