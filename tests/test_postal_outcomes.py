"""Every postal outcome through the engine with the fakes: who signed (CPL Arts. 87-88, 91), refusal (CPL Art.
89; SPC Provisions on Court Express Post Art. 11), return -> assisted person search -> re-mailing (SPC 2017
Opinion), a confirmed address that proved wrong (SPC 2017 Opinion), publication when no address is left or
the rounds are used up (CPL Art. 95). Each test pins the timeline, the legal basis on each step and the
final state. The EMS plugin's tests run the key outcomes against its local server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import attrs
import pytest

from delivery_sdk import (
    AddressCandidate,
    AgentRole,
    Contact,
    ContactKind,
    PartyKind,
    PolicyConfig,
    Representative,
    ServiceMethod,
    TaskState,
)
from delivery_sdk.events import (
    AddressSearchFailed,
    AddressUpdated,
    Mailed,
    PostReturned,
    PostSigned,
    PublicationStarted,
    Served,
)
from delivery_sdk.law.addresses import ADDRESS_BASIS
from delivery_sdk.law.holidays import beijing_date
from delivery_sdk.law.service import publication_service
from delivery_sdk.policy import (
    BASIS_CONFIRMED_WRONG,
    BASIS_POSTAL,
    BASIS_PUBLICATION,
    BASIS_PUBLICATION_FAILED,
    BASIS_PUBLICATION_UNKNOWN,
    BASIS_REFUSED,
)
from delivery_sdk.testing import Harness, Outcome, make_party, make_request
from delivery_sdk.testing.fakes import fake_waybill

POSTAL_LEG = ["print.routed", "dispatch.queued", "dispatch.sent", "print.printed", "post.mailed"]
YICHANG = "湖北省宜昌市夷陵区小溪塔街道发展大道57号"
XIANGYANG = "湖北省襄阳市樊城区人民路2号"
SERVED_AND_FILED = ["service.served", "service.filed"]


def run(scenario: Callable[[Harness], Awaitable[None]], **kwargs: Any) -> None:
    async def main() -> None:
        h = Harness(kinds=(), **kwargs)  # no electronic channel: straight to post, with the party's mobile on file
        try:
            await scenario(h)
            assert h.unused() == {}
        finally:
            await h.aclose()

    asyncio.run(main())


def types_of(h: Harness, task_id: str) -> list[str]:
    return [s.event.TYPE for s in h.client.timeline(task_id)]


def only(h: Harness, task_id: str, cls: type[Any]) -> Any:
    (event,) = [s.event for s in h.client.timeline(task_id) if isinstance(s.event, cls)]
    return event


def candidate(value: str, code: str, source: str = "household_registry") -> AddressCandidate:
    return AddressCandidate(
        contact=Contact(kind=ContactKind.POSTAL, value=value, division_code=code), source=source, confidence=0.8
    )


AGENT = Representative(name="王律师", role=AgentRole.LITIGATION_AGENT)


@pytest.mark.parametrize(
    ("role", "kind", "agents", "basis"),
    [
        pytest.param("recipient", PartyKind.PERSON, (), BASIS_POSTAL, id="recipient"),
        pytest.param(
            "family_member",
            PartyKind.PERSON,
            (),
            "CPL Arts. 88 and 91 (signed for by a co-resident adult family member)",
            id="family-member",
        ),
        pytest.param(
            "mail_room",
            PartyKind.ORGANISATION,
            (),
            "CPL Arts. 88 and 91 (signed for by the entity's mail handler)",
            id="mail-room",
        ),
        pytest.param(
            "agent",
            PartyKind.PERSON,
            (AGENT,),
            "CPL Arts. 88 and 91 (signed for by the litigation agent or designated receiver)",
            id="agent",
        ),
    ],
)
def test_signed_by_each_role_is_served_on_the_signing_date(
    role: str, kind: PartyKind, agents: tuple[Representative, ...], basis: str
) -> None:
    async def scenario(h: Harness) -> None:
        h.carrier.enqueue(Outcome.signed(after=timedelta(days=2), signer_role=role))
        party = attrs.evolve(make_party("P-sign", consent=False), kind=kind, agents=agents)
        task_id = await h.client.submit(make_request(party))
        await h.client.run_until_idle()

        assert types_of(h, task_id) == [
            "task.created",
            "service.fell_back_to_post",
            *POSTAL_LEG,
            "post.signed",
            *SERVED_AND_FILED,
        ]
        job = f"{task_id}.1"
        # the waybill was ordered from the carrier before the centre got the job, and the centre mailed under it
        assert h.carrier.orders[job].recipient_phone == "13800138000"
        assert h.centre("420100").jobs[0].waybill == fake_waybill(job)
        assert only(h, task_id, Mailed).waybill == fake_waybill(job)
        signed = only(h, task_id, PostSigned)
        assert signed.signer_role == role
        served = only(h, task_id, Served)
        assert (served.method, served.basis, served.dispatch_id) == (ServiceMethod.POSTAL, basis, job)
        assert served.effective_at == signed.signed_at
        status = h.client.status(task_id)
        assert (status.state, status.basis, status.served_at) == (TaskState.FILED, basis, signed.signed_at)

    run(scenario)


@pytest.mark.parametrize(
    ("role", "kind"),
    [
        pytest.param("family_member", PartyKind.ORGANISATION, id="family-member-for-a-company"),
        pytest.param("mail_room", PartyKind.PERSON, id="mail-room-for-a-person"),
        pytest.param("agent", PartyKind.PERSON, id="agent-never-appointed"),
        pytest.param("other:PROPERTY", PartyKind.PERSON, id="property-management"),
    ],
)
def test_a_signature_by_someone_who_may_not_receive_serves_nothing(role: str, kind: PartyKind) -> None:
    async def scenario(h: Harness) -> None:
        h.carrier.enqueue(Outcome.signed(signer_role=role))
        party = attrs.evolve(make_party("P-nosign", consent=False), kind=kind)
        task_id = await h.client.submit(make_request(party))
        await h.client.run_until_idle()

        assert types_of(h, task_id)[-2:] == ["post.signed", "task.needs_attention"]
        status = h.client.status(task_id)
        assert status.state is TaskState.NEEDS_ATTENTION
        assert status.served_at is None
        assert status.attention_reason == (
            f"the return receipt was signed by {role}, who may not receive for this party (CPL Art. 88): "
            "confirm receipt with the party or serve again"
        )

    run(scenario)


def test_refused_is_deemed_served_on_the_day_the_mail_came_back() -> None:
    async def scenario(h: Harness) -> None:
        h.carrier.enqueue(Outcome.returned("refused", after=timedelta(days=4)))
        task_id = await h.client.submit(make_request(make_party("P-ref", consent=False)))
        await h.client.run_until_idle()

        assert types_of(h, task_id) == [
            "task.created",
            "service.fell_back_to_post",
            *POSTAL_LEG,
            "post.returned",
            *SERVED_AND_FILED,
        ]
        returned = only(h, task_id, PostReturned)
        served = only(h, task_id, Served)
        assert served.basis == BASIS_REFUSED
        assert "CPL Arts. 89 and 91" in served.basis
        assert served.effective_at == returned.returned_at
        assert h.addresses.calls == []

    run(scenario)


def test_returned_then_searched_then_remailed_then_signed() -> None:
    async def scenario(h: Harness) -> None:
        h.carrier.enqueue(Outcome.returned("moved"), Outcome.signed(signer_role="family_member"))
        h.addresses.candidates["P-moved"] = [candidate(YICHANG, "420506")]
        task_id = await h.client.submit(make_request(make_party("P-moved", consent=False)))
        await h.client.run_until_idle()

        assert types_of(h, task_id) == [
            "task.created",
            "service.fell_back_to_post",
            *POSTAL_LEG,
            "post.returned",
            "address.updated",
            *POSTAL_LEG,
            "post.signed",
            *SERVED_AND_FILED,
        ]
        updated = only(h, task_id, AddressUpdated)
        assert updated.contact.value == YICHANG
        assert updated.basis == ADDRESS_BASIS["household_registry"]
        # the second round has its own waybill, ordered for the new address
        assert h.carrier.orders[f"{task_id}.2"].contact.value == YICHANG
        assert h.centre("420500").jobs[0].waybill == fake_waybill(f"{task_id}.2")
        served = only(h, task_id, Served)
        assert served.dispatch_id == f"{task_id}.2"
        assert served.basis == "CPL Arts. 88 and 91 (signed for by a co-resident adult family member)"
        assert h.client.status(task_id).postal_rounds == 2

    run(scenario)


def test_a_confirmed_address_that_proved_wrong_is_deemed_served_on_the_return_day() -> None:
    async def scenario(h: Harness) -> None:
        h.carrier.enqueue(Outcome.returned("unclaimed", after=timedelta(days=6)))
        party = make_party("P-conf", consent=False, address_confirmed=True)
        task_id = await h.client.submit(make_request(party))
        await h.client.run_until_idle()

        assert types_of(h, task_id)[-4:] == ["post.mailed", "post.returned", *SERVED_AND_FILED]
        returned = only(h, task_id, PostReturned)
        served = only(h, task_id, Served)
        assert (served.basis, served.effective_at) == (BASIS_CONFIRMED_WRONG, returned.returned_at)
        assert h.addresses.calls == []

    run(scenario)


def test_returned_until_no_address_is_left_then_publication_then_deemed_served() -> None:
    async def scenario(h: Harness) -> None:
        h.carrier.enqueue(Outcome.returned("address_wrong"), Outcome.returned("address_wrong"))
        h.addresses.candidates["P-gone"] = [candidate(YICHANG, "420506")]
        task_id = await h.client.submit(make_request(make_party("P-gone", consent=False)))
        await h.client.run_until_idle()

        assert types_of(h, task_id) == [
            "task.created",
            "service.fell_back_to_post",
            *POSTAL_LEG,
            "post.returned",
            "address.updated",
            *POSTAL_LEG,
            "post.returned",
            "address.search_failed",
            "publication.started",
            *SERVED_AND_FILED,
        ]
        failed = only(h, task_id, AddressSearchFailed)
        assert failed.basis.startswith("SPC Opinion 2017 No. 19")
        published = only(h, task_id, PublicationStarted)
        assert published.basis == BASIS_PUBLICATION_UNKNOWN
        assert published.published_at == [r.returned_at for r in _all(h, task_id, PostReturned)][-1]
        served = only(h, task_id, Served)
        assert served.method is ServiceMethod.PUBLICATION
        assert served.basis == BASIS_PUBLICATION
        # CPL Arts. 95 and 85: 30 days from the day after posting, rolled over a rest day; served on the last day
        deemed = publication_service(published.published_at)
        assert served.effective_at == deemed.effective_at
        assert beijing_date(served.effective_at) == deemed.served_on
        assert deemed.served_on >= beijing_date(published.published_at) + timedelta(days=30)
        assert h.client.status(task_id).state is TaskState.FILED

    run(scenario, policy=PolicyConfig(max_postal_rounds=3))


def _all(h: Harness, task_id: str, cls: type[Any]) -> list[Any]:
    return [s.event for s in h.client.timeline(task_id) if isinstance(s.event, cls)]


def test_rounds_exhausted_goes_to_publication_on_the_other_methods_failed_limb() -> None:
    async def scenario(h: Harness) -> None:
        h.carrier.enqueue(*(Outcome.returned("unclaimed") for _ in range(3)))
        h.addresses.candidates["P-rounds"] = [
            candidate(YICHANG, "420506"),
            candidate(XIANGYANG, "420606", "litigation"),
        ]
        task_id = await h.client.submit(make_request(make_party("P-rounds", consent=False)))
        await h.client.run_until_idle()

        types = types_of(h, task_id)
        assert types.count("post.returned") == 3
        assert types.count("address.updated") == 2
        assert types[-4:] == ["post.returned", "publication.started", *SERVED_AND_FILED]
        assert "address.search_failed" not in types
        updates = _all(h, task_id, AddressUpdated)
        assert [u.source for u in updates] == ["litigation", "household_registry"]  # SPC 2017 order
        assert [u.basis for u in updates] == [ADDRESS_BASIS["litigation"], ADDRESS_BASIS["household_registry"]]
        published = only(h, task_id, PublicationStarted)
        assert published.reason == "mail returned (unclaimed) after 3 round(s)"
        assert published.basis == BASIS_PUBLICATION_FAILED.format(rounds=3)
        assert only(h, task_id, Served).method is ServiceMethod.PUBLICATION

    run(scenario, policy=PolicyConfig(max_postal_rounds=3))


def test_rounds_exhausted_without_auto_publication_asks_a_person() -> None:
    async def scenario(h: Harness) -> None:
        h.carrier.enqueue(Outcome.returned("unclaimed"))
        h.addresses.candidates["P-ask"] = [candidate(YICHANG, "420506")]
        task_id = await h.client.submit(make_request(make_party("P-ask", consent=False)))
        await h.client.run_until_idle()

        assert types_of(h, task_id)[-2:] == ["post.returned", "task.needs_attention"]
        status = h.client.status(task_id)
        assert status.state is TaskState.NEEDS_ATTENTION
        assert status.attention_reason == (
            "mail returned (unclaimed) after 1 round(s); publication possible: "
            + BASIS_PUBLICATION_FAILED.format(rounds=1)
        )
        assert h.addresses.calls == []  # the one round allowed was used: no search

    run(scenario, policy=PolicyConfig(max_postal_rounds=1, auto_publication=False))


def test_a_carrier_that_refuses_the_waybill_order_asks_a_person_and_nothing_is_printed() -> None:
    async def scenario(h: Harness) -> None:
        h.carrier.refuse_orders = "address outside the service area"
        task_id = await h.client.submit(make_request(make_party("P-out", consent=False)))
        await h.client.run_until_idle()

        assert types_of(h, task_id)[-3:] == ["dispatch.queued", "dispatch.failed", "task.needs_attention"]
        status = h.client.status(task_id)
        assert status.state is TaskState.NEEDS_ATTENTION
        assert status.attention_reason == "the carrier refused the waybill order: address outside the service area"
        assert all(c.jobs == [] for c in h.centres)

    run(scenario)


def test_supervision_does_not_count_a_carrier_refusal_against_the_print_centre(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The job never reached the centre: it is the carrier's refusal (counted as such), not a job the centre
    failed to print (issue 23: the centre showed 'not printed' and a 50% success rate)."""
    from delivery_sdk import SQLiteStore
    from delivery_sdk.supervision import Supervisor

    path = tmp_path / "refused.sqlite3"

    async def scenario(h: Harness) -> None:
        h.carrier.refuse_orders = "receiver phone required"
        await h.client.submit(make_request(make_party("P-refused", consent=False)))
        await h.client.run_until_idle()
        h.carrier.refuse_orders = None
        h.carrier.enqueue(Outcome.signed(timedelta(days=2)))
        await h.client.submit(make_request(make_party("P-printed", consent=False)))
        await h.client.run_until_idle()

    run(scenario, store=SQLiteStore(path))
    with Supervisor(path) as sup:
        stats = sup.statistics()
    (centre,) = [c for c in stats.centres if c.jobs or c.carrier_refused]
    assert (centre.jobs, centre.printed, centre.open, centre.carrier_refused) == (1, 1, 0, 1)
    (row,) = [c for c in stats.channels if c.kind == "print"]
    assert (row.dispatches, row.attempts, row.delivered, row.carrier_refused) == (1, 1, 1, 1)
    assert row.success_rate == 1.0
    assert {c["kind"]: c["carrier_refused"] for c in stats.to_dict()["channels"]} == {"print": 1}
    from delivery_sdk.cli import main

    assert main(["stats", "--store", str(path)]) == 0
    assert "（另有 1 件在到达打印中心前被承运方拒收）" in capsys.readouterr().out
    assert main(["stats", "--store", str(path), "--lang", "en"]) == 0
    assert "(carrier refused 1 before the centre)" in capsys.readouterr().out
